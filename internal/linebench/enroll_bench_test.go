package linebench_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/ztmkit/ztm/ca"
	"github.com/ztmkit/ztm/ca/enroll"
	"github.com/ztmkit/ztm/ca/ledger/sqlite"
	"github.com/ztmkit/ztm/internal/estline"
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
	st, key := l.Station("idevid")
	csrs := enrollCSRs(b, b.N)
	var next atomic.Int64
	ctx := context.Background()
	b.ReportAllocs()
	b.SetParallelism(enrollParallelism)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		c := l.Client(st, key)
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
	st, _ := l.Station("idevid")
	csrs := enrollCSRs(b, b.N)
	var next atomic.Int64
	ctx := context.Background()
	b.ReportAllocs()
	b.SetParallelism(enrollParallelism)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := next.Add(1) - 1
			if _, err := l.Authority.Issue(ctx, &ca.Request{CSR: csrs[i], Profile: "idevid", RequesterCertificate: st}); err != nil {
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

// newEnrollLine is the CA side of the enrollment benchmarks
// (internal/estline): a root and an issuing CA on a SQLite ledger, a
// verifier that knows one device model, the enroll.Service over both, and
// (if serve) an EST server on 127.0.0.1 over TLS. gate, if not nil, edits
// the Service's configuration.
func newEnrollLine(tb testing.TB, gate func(*enroll.Config), serve bool) *estline.Line {
	tb.Helper()
	ledger, err := sqlite.Open(context.Background(), filepath.Join(tb.TempDir(), "ledger.db"), sqlite.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ledger.Close() })
	return estline.New(tb, estline.Config{Ledger: ledger, Service: gate, NoServer: !serve})
}

// enrollCSRs makes n IDevID requests (outside the timer), each of another
// device of the model, with its own key and UEID: a device holds one live
// IDevID.
func enrollCSRs(tb testing.TB, n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = estline.NewCSR(tb, fmt.Sprintf("SN-B-%d", i))
	}
	return out
}
