package manifest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/binary"
	"math/bits"
	"runtime"
	"testing"
	"time"
)

// leafTemplate stands for a device's latest step: 391 bytes, the size of a
// typical kid-signed step (see the package's size table).
func leafTemplate() []byte { return make([]byte, 391) }

func lotSigner(tb testing.TB) *StepSigner {
	tb.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	s, err := NewStepSigner(k, SignOptions{Issuer: "oem"})
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// TestLotMemory checks that a lot without KeepProofs holds O(log n)
// hashes whatever its size.
func TestLotMemory(t *testing.T) {
	t.Parallel()
	lot, err := NewLot("L", LotOptions{})
	if err != nil {
		t.Fatal(err)
	}
	leaf := leafTemplate()
	const n = 100_000
	for i := range uint64(n) {
		binary.BigEndian.PutUint64(leaf, i)
		if _, err := lot.Add(leaf); err != nil {
			t.Fatal(err)
		}
		if h := lot.rangeHashes(); h > bits.Len64(i+1) {
			t.Fatalf("%d hashes held after %d leaves", h, i+1)
		}
	}
	if lot.levels != nil {
		t.Fatal("node hashes kept without KeepProofs")
	}
	if _, err := lot.Sign(rand.Reader, lotSigner(t), time.Unix(0, 0)); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkLotRoot1M builds the root of a lot of 1,000,000 devices (each
// leaf a 391-byte step) and signs it. It reports the time and the bytes
// allocated per device, and the hashes the compact range holds at the end.
func BenchmarkLotRoot1M(b *testing.B) {
	const n = 1_000_000
	s := lotSigner(b)
	leaf := leafTemplate()
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	start := time.Now()
	iters, held := 0, 0
	for b.Loop() {
		lot, err := NewLot("LOT-1M", LotOptions{})
		if err != nil {
			b.Fatal(err)
		}
		for i := range uint64(n) {
			binary.BigEndian.PutUint64(leaf, i)
			if _, err := lot.Add(leaf); err != nil {
				b.Fatal(err)
			}
		}
		if _, err := lot.Sign(rand.Reader, s, time.Unix(0, 0)); err != nil {
			b.Fatal(err)
		}
		held = lot.rangeHashes()
		iters++
	}
	elapsed := time.Since(start)
	runtime.ReadMemStats(&ms1)
	devices := float64(iters) * n
	b.ReportMetric(float64(elapsed.Nanoseconds())/devices, "ns/device")
	b.ReportMetric(float64(ms1.TotalAlloc-ms0.TotalAlloc)/devices, "B/device")
	b.ReportMetric(float64(held), "hashes-held")
}
