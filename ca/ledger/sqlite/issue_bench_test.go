package sqlite_test

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ztmkit/ztm/ca"
	"github.com/ztmkit/ztm/identity"
	"github.com/ztmkit/ztm/internal/benchcpu"
	"github.com/ztmkit/ztm/internal/testpki"
)

// The Issue benchmarks measure ca.Authority.Issue over this ledger: the
// durable path, every issuance committed (fsync) before Issue returns.
// They were ca's own (BenchmarkIssue…); they live here so that package ca's
// tests need no database. Their goals in internal/benchratio are the
// "ca/ledger/sqlite.Issue…" keys.

// benchRequests returns n IDevID requests, each of another device (a
// device holds one live IDevID), made before the timer starts.
func benchRequests(b *testing.B, n int) []*ca.Request {
	key := deviceKey(b)
	out := make([]*ca.Request, n)
	for i := range out {
		out[i] = &ca.Request{CSR: testpki.DeviceCSR(b, key, testpki.NewDeviceSerial("BENCH")), Profile: "idevid", Requester: "bench"}
	}
	return out
}

// rawIssuer is the raw primitive Issue wraps: parse the request, check its
// signature, sign a certificate with the CA key. No ledger.
type rawIssuer struct {
	pki *testpki.PKI
	csr []byte
	san pkix.Extension
}

func newRawIssuer(b *testing.B) *rawIssuer {
	san, err := identity.HardwareModuleNameExtension(identity.HardwareModuleName{Type: testpki.HWType, SerialNumber: []byte("BENCH-1")}, false)
	if err != nil {
		b.Fatal(err)
	}
	return &rawIssuer{pki: testpki.New(b, testpki.Config{}), csr: testpki.DeviceCSR(b, deviceKey(b), "BENCH-1"), san: san}
}

func (r *rawIssuer) issue(b *testing.B) {
	c, err := x509.ParseCertificateRequest(r.csr)
	if err != nil {
		b.Fatal(err)
	}
	if err := c.CheckSignature(); err != nil {
		b.Fatal(err)
	}
	var s [16]byte
	rand.Read(s[:])
	now := time.Now().Truncate(time.Second)
	tmpl := &x509.Certificate{
		SerialNumber:          new(big.Int).SetBytes(s[:]),
		Subject:               c.Subject,
		NotBefore:             now,
		NotAfter:              time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		ExtraExtensions:       []pkix.Extension{r.san},
	}
	if _, err := x509.CreateCertificate(rand.Reader, tmpl, r.pki.Issuing, c.PublicKey, r.pki.IssuingKey); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkIssue is one Issue at a time: every call waits for its own
// commit (fsync).
func BenchmarkIssue(b *testing.B) {
	a := newAuthorityOnFile(b, nil)
	reqs := benchRequests(b, b.N)
	ctx := context.Background()
	b.ResetTimer()
	for i := range b.N {
		if _, err := a.auth.Issue(ctx, reqs[i]); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkIssueRaw(b *testing.B) {
	r := newRawIssuer(b)
	b.ResetTimer()
	for b.Loop() {
		r.issue(b)
	}
}

// BenchmarkIssueParallel issues from GOMAXPROCS goroutines (times
// -cpu/SetParallelism); concurrent calls share ledger commits.
func BenchmarkIssueParallel(b *testing.B) {
	a := newAuthorityOnFile(b, nil)
	reqs := benchRequests(b, b.N)
	var next atomic.Int64
	ctx := context.Background()
	b.SetParallelism(32)
	b.ResetTimer()
	defer benchcpu.Start(b)()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := a.auth.Issue(ctx, reqs[next.Add(1)-1]); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	if st := a.ledger.Stats(); st.Commits > 0 {
		b.ReportMetric(float64(st.Ops)/float64(st.Commits), "issues/commit")
	}
}

func BenchmarkIssueParallelRaw(b *testing.B) {
	r := newRawIssuer(b)
	b.SetParallelism(32)
	b.ResetTimer()
	defer benchcpu.Start(b)()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r.issue(b)
		}
	})
}
