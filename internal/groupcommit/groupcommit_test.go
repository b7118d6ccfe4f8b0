package groupcommit

import (
	"sync"
	"testing"
	"time"
)

// TestRunBatchesAndLingers: writes queued together commit together; after
// a batch of several, the loop waits for more (one commit for writes that
// arrive within Linger); a lone write commits at once.
func TestRunBatchesAndLingers(t *testing.T) {
	in := make(chan int, 64)
	quit := make(chan struct{})
	var mu sync.Mutex
	var batches [][]int
	committed := make(chan struct{}, 64)
	done := make(chan []int)
	// Six queued before the loop starts: MaxBatch bounds the first commit.
	for i := range 6 {
		in <- i
	}
	go func() {
		done <- Run(in, quit, Options{MaxBatch: 4, Linger: 200 * time.Millisecond}, func(b []int) {
			mu.Lock()
			batches = append(batches, append([]int(nil), b...))
			mu.Unlock()
			committed <- struct{}{}
		})
	}()
	<-committed
	// The previous commit held 4: the loop lingers and takes the two
	// left plus the one sent within the linger.
	time.Sleep(20 * time.Millisecond)
	in <- 6
	<-committed
	// A lone write after a batch: lingers once (prev > 1) and commits
	// alone; the next lone one commits without waiting.
	in <- 7
	<-committed
	start := time.Now()
	in <- 8
	<-committed
	if d := time.Since(start); d > 150*time.Millisecond {
		t.Errorf("a lone write after a lone commit waited %v", d)
	}
	close(quit)
	if unsent := <-done; len(unsent) != 0 {
		t.Errorf("unsent %v", unsent)
	}
	mu.Lock()
	defer mu.Unlock()
	want := [][]int{{0, 1, 2, 3}, {4, 5, 6}, {7}, {8}}
	if len(batches) != len(want) {
		t.Fatalf("batches %v, want %v", batches, want)
	}
	for i := range want {
		if len(batches[i]) != len(want[i]) {
			t.Fatalf("batches %v, want %v", batches, want)
		}
		for j := range want[i] {
			if batches[i][j] != want[i][j] {
				t.Fatalf("batches %v, want %v", batches, want)
			}
		}
	}
}

// TestRunReturnsUnsent: after quit, writes still queued come back
// uncommitted.
func TestRunReturnsUnsent(t *testing.T) {
	in := make(chan int, 8)
	quit := make(chan struct{})
	close(quit)
	in <- 1
	in <- 2
	// With quit closed and writes queued, either may be chosen first;
	// every write is committed or returned, none lost.
	var got []int
	unsent := Run(in, quit, Options{MaxBatch: 8}, func(b []int) { got = append(got, b...) })
	if len(got)+len(unsent) != 2 {
		t.Fatalf("committed %v, unsent %v", got, unsent)
	}
}
