package est_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/ztmkit/ztm/ca"
	"github.com/ztmkit/ztm/ca/enroll"
)

// benchCSRs makes n IDevID requests (outside the timer), each of another
// device of d's model: a device holds one live IDevID.
func benchCSRs(b *testing.B, d *device, n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = d.twin(b).csr(b, fmt.Sprintf("SN-B-%d", i))
	}
	return out
}

// BenchmarkEnroll measures enrollments per second over loopback mTLS with
// keep-alive (each parallel goroutine its own Client and connection),
// through the Server and the enroll.Service (authorization, idempotency, ledger).
// Evidence is left out (AllowNoEvidence) so that the pair measures what
// EST adds to Authority.Issue; the attest package benchmarks verification.
func BenchmarkEnroll(b *testing.B) {
	e := newEnv(b, envOpts{gate: func(c *enroll.Config) { c.AllowNoEvidence = true }})
	st, key := e.station("idevid")
	csrs := benchCSRs(b, e.devices[0], b.N)
	var next atomic.Int64
	ctx := context.Background()
	b.ReportAllocs()
	b.SetParallelism(benchParallelism)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		c := e.client(st, key)
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
// Authority.Issue in process, with the same CA, ledger and station.
func BenchmarkEnrollRaw(b *testing.B) {
	e := newEnv(b, envOpts{noServer: true})
	st, _ := e.station("idevid")
	csrs := benchCSRs(b, e.devices[0], b.N)
	var next atomic.Int64
	ctx := context.Background()
	b.ReportAllocs()
	b.SetParallelism(benchParallelism)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := next.Add(1) - 1
			if _, err := e.auth.Issue(ctx, &ca.Request{CSR: csrs[i], Profile: "idevid", RequesterCertificate: st}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "enroll/s")
}

// benchParallelism × GOMAXPROCS goroutines enroll at once in both
// benchmarks: a station line has many devices in flight, and the ledger's
// group commit needs concurrent requests to batch.
const benchParallelism = 16
