package ca_test

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ztmkit/ztm/internal/benchcpu"

	"github.com/ztmkit/ztm/ca"
	"github.com/ztmkit/ztm/identity/keystore"
)

// benchSetup returns an Authority over a SQLite ledger in a temp dir and
// an IDevID request.
func benchSetup(b *testing.B) (*testPKI, *ca.Request) {
	p := newPKI(b, keystore.ES256, nil)
	req := &ca.Request{CSR: idevidCSR(b, deviceKey(b, "P-256"), "BENCH-1"), Profile: "idevid", Requester: "bench"}
	return p, req
}

// benchRequests returns n IDevID requests, each of another device (a
// device holds one live IDevID), made before the timer starts.
func benchRequests(b *testing.B, n int) []*ca.Request {
	key := deviceKey(b, "P-256")
	out := make([]*ca.Request, n)
	for i := range out {
		out[i] = &ca.Request{CSR: newDeviceCSR(b, key, "BENCH"), Profile: "idevid", Requester: "bench"}
	}
	return out
}

// rawIssue is the raw primitive Issue wraps: parse the request, check its
// signature, sign a certificate.
func rawIssue(b *testing.B, p *testPKI, csrDER []byte, san pkix.Extension) {
	c, err := x509.ParseCertificateRequest(csrDER)
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
		ExtraExtensions:       []pkix.Extension{san},
	}
	if _, err := x509.CreateCertificate(rand.Reader, tmpl, p.inter, c.PublicKey, p.interKey); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkIssue is one Issue at a time: every call waits for its own
// commit (fsync).
func BenchmarkIssue(b *testing.B) {
	p, _ := benchSetup(b)
	reqs := benchRequests(b, b.N)
	ctx := context.Background()
	b.ResetTimer()
	for i := range b.N {
		if _, err := p.auth.Issue(ctx, reqs[i]); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkIssueRaw(b *testing.B) {
	p, req := benchSetup(b)
	san := hwModuleSAN(b, exampleHWType, []byte("BENCH-1"))
	b.ResetTimer()
	for b.Loop() {
		rawIssue(b, p, req.CSR, san)
	}
}

// BenchmarkIssueParallel issues from GOMAXPROCS goroutines (times
// -cpu/SetParallelism); concurrent calls share ledger commits.
func BenchmarkIssueParallel(b *testing.B) {
	p, _ := benchSetup(b)
	reqs := benchRequests(b, b.N)
	var next atomic.Int64
	ctx := context.Background()
	b.SetParallelism(32)
	b.ResetTimer()
	defer benchcpu.Start(b)()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := p.auth.Issue(ctx, reqs[next.Add(1)-1]); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	if st := p.ledger.Stats(); st.Commits > 0 {
		b.ReportMetric(float64(st.Ops)/float64(st.Commits), "issues/commit")
	}
}

func BenchmarkIssueParallelRaw(b *testing.B) {
	p, req := benchSetup(b)
	san := hwModuleSAN(b, exampleHWType, []byte("BENCH-1"))
	b.SetParallelism(32)
	b.ResetTimer()
	defer benchcpu.Start(b)()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			rawIssue(b, p, req.CSR, san)
		}
	})
}
