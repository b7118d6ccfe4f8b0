// Package benchcpu reports the CPU time a benchmark's timed part used per
// operation, next to its wall time: process CPU (user and system, every
// goroutine and thread) from getrusage. Wall time per op over CPU time
// per op shows how busy the cores were; CPU per op is the cost another
// tenant's load on a shared machine changes least.
package benchcpu

import "testing"

// Start begins measuring; call it right after b.ResetTimer and defer the
// function it returns, which reports "cpu-ns/op" (on Unix systems; on
// others it reports nothing).
func Start(b *testing.B) func() {
	b.Helper()
	t0, ok := cpuNanos()
	return func() {
		t1, ok1 := cpuNanos()
		if ok && ok1 && b.N > 0 {
			b.ReportMetric(float64(t1-t0)/float64(b.N), "cpu-ns/op")
		}
	}
}
