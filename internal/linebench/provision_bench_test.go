package linebench_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/ztmkit/ztm/ca"
	"github.com/ztmkit/ztm/ca/ledger/sqlite"
	"github.com/ztmkit/ztm/examples/linesim"
	"github.com/ztmkit/ztm/internal/benchcpu"
	"github.com/ztmkit/ztm/manifest/chainstore"
)

// provisionLine is the simulated line (examples/linesim) with its durable
// stores, as examples/factoryline runs it: the CA's ledger and the
// stations' steps in SQLite files. It returns the line and its ledger.
func provisionLine(b *testing.B) (*linesim.Line, *sqlite.Ledger) {
	b.Helper()
	dir := b.TempDir()
	var ledger *sqlite.Ledger
	l, err := linesim.NewLine(context.Background(), linesim.Config{
		OpenLedger: func(ctx context.Context) (ca.Ledger, error) {
			var err error
			ledger, err = sqlite.Open(ctx, filepath.Join(dir, "ledger.db"), sqlite.Options{})
			if err != nil {
				return nil, err
			}
			return ledger, nil
		},
		OpenStepStore: func(ctx context.Context) (linesim.StepStore, error) {
			return chainstore.Open(ctx, filepath.Join(dir, "chains.db"))
		},
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close() })
	return l, ledger
}

// BenchmarkProvision measures Station.Provision end to end for one device,
// devices in parallel: nonce, evidence (the device signs), local appraisal,
// EAR signature, on-device key and CSR, CSR check, enrollment through the
// enroll.Service in process (evidence verified again, nonce consumed, issuance
// recorded durably in the SQLite ledger), install, two signed steps
// appended durably, in one commit, to the SQLite chain store. Its twin,
// BenchmarkProvisionRaw, is the crypto floor of the same work. (It was the
// root package's; it lives here so that the root's tests need no SQLite.)
func BenchmarkProvision(b *testing.B) {
	l, ledger := provisionLine(b)
	cm := l.Partners[linesim.ContractManufacturer].Station
	devs := make([]*linesim.Device, b.N)
	for i := range devs {
		d, err := l.NewDevice(uint32(i+1), linesim.DeviceOptions{})
		if err != nil {
			b.Fatal(err)
		}
		devs[i] = d
	}
	var next atomic.Int64
	b.ReportAllocs()
	// Durable commits are shared by concurrent devices (group commit), as
	// on a line with several jigs.
	b.SetParallelism(8)
	b.ResetTimer()
	defer benchcpu.Start(b)()
	st0 := ledger.Stats()
	defer func() {
		st := ledger.Stats()
		b.ReportMetric(float64(st.Ops-st0.Ops)/float64(st.Commits-st0.Commits), "issues/commit")
	}()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			d := devs[next.Add(1)-1]
			if _, err := cm.Provision(context.Background(), d); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkProvisionRaw is the crypto a provisioned device needs at the
// least, with crypto/ecdsa on P-256, devices in parallel: one key
// generation; six signatures (the device's CSR and evidence, the station's
// attestation result and two steps, the CA's certificate); eight
// verifications: the evidence signature and the attestation-key
// certificate, by the station and again by the CA; the CSR, by each; and
// the two the standard library forces, x509.CreateCertificateRequest and
// x509.CreateCertificate each verifying the signature it just made.
func BenchmarkProvisionRaw(b *testing.B) {
	signer, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	msg := sha256.Sum256([]byte("message"))
	sig, _ := ecdsa.SignASN1(rand.Reader, signer, msg[:])
	b.SetParallelism(8)
	b.ResetTimer()
	defer benchcpu.Start(b)()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
				b.Fatal(err)
			}
			for range 6 {
				d := sha256.Sum256(msg[:])
				if _, err := ecdsa.SignASN1(rand.Reader, signer, d[:]); err != nil {
					b.Fatal(err)
				}
			}
			for range 8 {
				d := sha256.Sum256(msg[:])
				_ = d
				if !ecdsa.VerifyASN1(&signer.PublicKey, msg[:], sig) {
					b.Fatal("verify")
				}
			}
		}
	})
}
