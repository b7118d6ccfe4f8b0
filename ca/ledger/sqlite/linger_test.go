package sqlite_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ztmkit/ztm/ca"
	"github.com/ztmkit/ztm/ca/ledger/ledgertest"
	"github.com/ztmkit/ztm/ca/ledger/sqlite"
)

// appendAlone appends n records one after another and checks, through
// Stats, that each was committed in a transaction of its own.
func appendAlone(t *testing.T, l *sqlite.Ledger, n int) {
	t.Helper()
	for i := range n {
		before := l.Stats()
		// The deadline is a liveness bound, not a speed check: a writer
		// that lingered for a lone caller would hold it for an hour.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		err := l.Append(ctx, mustIssuance(t, "alone", time.Unix(1_800_000_000+int64(i), 0)), nil)
		cancel()
		if err != nil {
			t.Fatalf("lone append %d: %v", i, err)
		}
		after := l.Stats()
		if c, o := after.Commits-before.Commits, after.Ops-before.Ops; c != 1 || o != 1 {
			t.Fatalf("lone append %d: %d commits holding %d ops, want 1 and 1", i, c, o)
		}
	}
}

// appendConcurrently appends workers×each records from workers goroutines
// released together and returns the Stats delta.
func appendConcurrently(t *testing.T, l *sqlite.Ledger, workers, each int) sqlite.Stats {
	t.Helper()
	before := l.Stats()
	start := make(chan struct{})
	errs := make(chan error, workers*each)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			<-start
			for i := range each {
				r, err := newIssuance("worker", time.Unix(1_800_000_000+int64(w*each+i), 0))
				if err == nil {
					err = l.Append(context.Background(), r, nil)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	after := l.Stats()
	return sqlite.Stats{Commits: after.Commits - before.Commits, Ops: after.Ops - before.Ops}
}

// TestLinger checks the writer's adaptive linger: a lone caller's appends
// each commit alone (and are never held for the linger, which is set to an
// hour), concurrent appends share commits, and a lone caller after a burst
// of concurrency again commits alone.
func TestLinger(t *testing.T) {
	t.Parallel()
	const maxBatch = 16
	l, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "l.db"), sqlite.Options{MaxBatch: maxBatch, Linger: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	appendAlone(t, l, 10)

	// The concurrent phase uses a short linger so its last, partial
	// batches (fewer callers left than MaxBatch) do not wait long.
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l, err = sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "l.db"), sqlite.Options{MaxBatch: maxBatch, Linger: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	appendAlone(t, l, 3)
	const workers, each = 32, 8
	d := appendConcurrently(t, l, workers, each)
	if d.Ops != workers*each {
		t.Fatalf("ops %d, want %d", d.Ops, workers*each)
	}
	// Every batch after the first lingers until it is full or 20ms pass;
	// with 32 callers always waiting, batches are near MaxBatch.
	mean := float64(d.Ops) / float64(d.Commits)
	t.Logf("%d appends from %d callers in %d commits (%.1f per commit)", d.Ops, workers, d.Commits, mean)
	if mean < 4 {
		t.Errorf("mean batch %.1f with %d concurrent callers, want at least 4", mean, workers)
	}
	appendAlone(t, l, 5)

	head, err := l.Verify(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if want := uint64(3 + workers*each + 5); head.Seq != want {
		t.Fatalf("head seq %d, want %d", head.Seq, want)
	}
}

// TestNoLinger checks that a negative Linger turns the linger off and
// concurrent appends still commit, in a linear chain.
func TestNoLinger(t *testing.T) {
	t.Parallel()
	l, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "l.db"), sqlite.Options{Linger: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	d := appendConcurrently(t, l, 16, 4)
	if d.Ops != 64 || d.Commits == 0 || d.Commits > 64 {
		t.Fatalf("stats %+v", d)
	}
	appendAlone(t, l, 3)
	if head, err := l.Verify(context.Background()); err != nil || head.Seq != 67 {
		t.Fatalf("verify: %+v, %v", head, err)
	}
}

func newIssuance(requester string, at time.Time) (*ca.Record, error) {
	return ledgertest.NewIssuance(requester, at)
}
