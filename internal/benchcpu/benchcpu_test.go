package benchcpu

import (
	"crypto/sha256"
	"runtime"
	"testing"
	"time"
)

// TestStart: a benchmark that spins reports CPU per op close to its wall
// time per op; one that sleeps, far less.
func TestStart(t *testing.T) {
	if _, ok := cpuNanos(); !ok {
		t.Skip("no process CPU time on", runtime.GOOS)
	}
	spin := testing.Benchmark(func(b *testing.B) {
		defer Start(b)()
		var h [32]byte
		for b.Loop() {
			for range 2000 {
				h = sha256.Sum256(h[:])
			}
		}
	})
	cpu, wall := spin.Extra["cpu-ns/op"], float64(spin.NsPerOp())
	if cpu <= 0 || cpu < wall/4 {
		t.Fatalf("spinning: cpu %.0f ns/op, wall %.0f ns/op", cpu, wall)
	}
	sleep := testing.Benchmark(func(b *testing.B) {
		defer Start(b)()
		for b.Loop() {
			time.Sleep(2 * time.Millisecond)
		}
	})
	cpu, wall = sleep.Extra["cpu-ns/op"], float64(sleep.NsPerOp())
	if cpu > wall/2 {
		t.Fatalf("sleeping: cpu %.0f ns/op, wall %.0f ns/op", cpu, wall)
	}
}
