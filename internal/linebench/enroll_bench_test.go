package linebench_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ztmkit/ztm/attest"
	"github.com/ztmkit/ztm/attest/devicesim"
	"github.com/ztmkit/ztm/ca"
	"github.com/ztmkit/ztm/ca/enroll"
	"github.com/ztmkit/ztm/ca/ledger/sqlite"
	"github.com/ztmkit/ztm/identity"
	"github.com/ztmkit/ztm/internal/testpki"
	"github.com/ztmkit/ztm/transport/est"
)

// BenchmarkEnroll measures enrollments per second over loopback mTLS with
// keep-alive (each parallel goroutine its own Client and connection),
// through the Server and the enroll.Service (authorization, idempotency,
// ledger) of a CA whose ledger is a SQLite file: every enrollment is a
// durable commit. Evidence is left out (AllowNoEvidence) so that the pair
// measures what EST adds to Authority.Issue; the attest package
// benchmarks verification. (It was transport/est's BenchmarkEnroll.)
func BenchmarkEnroll(b *testing.B) {
	l := newEnrollLine(b, func(c *enroll.Config) { c.AllowNoEvidence = true }, true)
	st, key := l.station("idevid")
	csrs := enrollCSRs(b, b.N)
	var next atomic.Int64
	ctx := context.Background()
	b.ReportAllocs()
	b.SetParallelism(enrollParallelism)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		c := l.client(st, key)
		for pb.Next() {
			i := next.Add(1) - 1
			if _, err := c.SimpleEnroll(ctx, "", csrs[i], nil); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "enroll/s")
}

// BenchmarkEnrollRaw is the raw primitive of BenchmarkEnroll:
// Authority.Issue in process, with the same CA, SQLite ledger and station.
func BenchmarkEnrollRaw(b *testing.B) {
	l := newEnrollLine(b, nil, false)
	st, _ := l.station("idevid")
	csrs := enrollCSRs(b, b.N)
	var next atomic.Int64
	ctx := context.Background()
	b.ReportAllocs()
	b.SetParallelism(enrollParallelism)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := next.Add(1) - 1
			if _, err := l.auth.Issue(ctx, &ca.Request{CSR: csrs[i], Profile: "idevid", RequesterCertificate: st}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "enroll/s")
}

// enrollParallelism × GOMAXPROCS goroutines enroll at once in both
// benchmarks: a station line has many devices in flight, and the ledger's
// group commit needs concurrent requests to batch.
const enrollParallelism = 16

// enrollLine is the CA side of the enrollment benchmarks: a root and an
// issuing CA on a SQLite ledger, a verifier that knows one device model,
// the enroll.Service over both, and (if served) an EST server on
// 127.0.0.1 over TLS.
type enrollLine struct {
	tb    testing.TB
	auth  *ca.Authority
	url   string
	roots *x509.CertPool
}

// newEnrollLine sets up the line; gate, if not nil, edits the Service's
// configuration; serve starts the EST server.
func newEnrollLine(tb testing.TB, gate func(*enroll.Config), serve bool) *enrollLine {
	tb.Helper()
	pki := testpki.New(tb, testpki.Config{Organization: "-", RootName: "Test Root CA", IssuingName: "Test Issuing CA"})
	ledger, err := sqlite.Open(context.Background(), filepath.Join(tb.TempDir(), "ledger.db"), sqlite.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ledger.Close() })
	l := &enrollLine{tb: tb, auth: pki.Authority(tb, ledger, nil), roots: pki.Roots()}

	// The verifier knows one device model: its attestation key and the
	// reference values of its firmware.
	attKey := enrollKey(tb)
	sim, err := devicesim.New(devicesim.Config{Key: attKey, KeyID: []byte("dev-0"), UEID: enrollUEID(),
		OEMID: []byte{0x00, 0x1b, 0x63}, HWModel: []byte("sensor-v2"), SWName: "sensor-fw", SWVersion: "2.3.1",
		Images: map[string][]byte{"firmware": []byte("firmware image")}})
	if err != nil {
		tb.Fatal(err)
	}
	nonces := attest.NewNonces(attest.NonceConfig{})
	verifier, err := attest.NewVerifier(attest.Config{Keys: map[string]crypto.PublicKey{"dev-0": attKey.Public()},
		Nonces: nonces, ReferenceValues: []attest.ReferenceValues{sim.ReferenceValues()}})
	if err != nil {
		tb.Fatal(err)
	}
	gc := enroll.Config{Authority: l.auth, Verifier: verifier, Nonces: nonces}
	if gate != nil {
		gate(&gc)
	}
	svc, err := enroll.New(gc)
	if err != nil {
		tb.Fatal(err)
	}
	server, err := est.NewServer(est.ServerConfig{Service: svc})
	if err != nil {
		tb.Fatal(err)
	}
	if serve {
		l.serve(server, pki)
	}
	return l
}

// serve runs server on 127.0.0.1 over TLS, with a certificate from the
// test root, until the benchmark's cleanup.
func (l *enrollLine) serve(server *est.Server, pki *testpki.PKI) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		l.tb.Fatal(err)
	}
	key := enrollKey(l.tb)
	der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "est.test"},
		NotBefore:    time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}, pki.Root, key.Public(), pki.RootKey)
	if err != nil {
		l.tb.Fatal(err)
	}
	l.url = "https://" + ln.Addr().String()
	srv := est.NewHTTPServer(ln.Addr().String(), server,
		est.ServerTLSConfig(tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}))
	srv.ErrorLog = log.New(io.Discard, "", 0)
	go srv.ServeTLS(ln, "", "")
	l.tb.Cleanup(func() { srv.Close() })
}

// station issues a station certificate allowed the given profiles and
// returns it with its key.
func (l *enrollLine) station(profiles ...string) (*x509.Certificate, *ecdsa.PrivateKey) {
	l.tb.Helper()
	return testpki.Station(l.tb, l.auth, []string{"provision"}, profiles)
}

// client is an EST client of the line's server with the station's
// certificate, closed at cleanup.
func (l *enrollLine) client(cert *x509.Certificate, key crypto.Signer) *est.Client {
	l.tb.Helper()
	c, err := est.NewClient(est.ClientConfig{URL: l.url, Roots: l.roots,
		Certificate: &tls.Certificate{Certificate: [][]byte{cert.Raw}, PrivateKey: key, Leaf: cert}})
	if err != nil {
		l.tb.Fatal(err)
	}
	l.tb.Cleanup(c.Close)
	return c
}

// enrollHWType is the hardwareModuleName type of the devices' requests.
var enrollHWType = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 55555, 1, 1}

// enrollCSRs makes n IDevID requests (outside the timer), each of another
// device of the model, with its own key and UEID: a device holds one live
// IDevID.
func enrollCSRs(tb testing.TB, n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		der, err := identity.CreateCSR(nil, enrollKey(tb), identity.DeviceInfo{SerialNumber: fmt.Sprintf("SN-B-%d", i),
			HardwareModule: identity.HardwareModuleName{Type: enrollHWType, SerialNumber: enrollUEID()}})
		if err != nil {
			tb.Fatal(err)
		}
		out[i] = der
	}
	return out
}

// enrollUEID is a random UEID of type RAND (0x01, 16 bytes).
func enrollUEID() []byte {
	ueid := make([]byte, 17)
	ueid[0] = 0x01
	rand.Read(ueid[1:])
	return ueid
}

func enrollKey(tb testing.TB) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}
