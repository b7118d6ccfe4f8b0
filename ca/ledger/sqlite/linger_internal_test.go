package sqlite

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/ztmkit/ztm/ca/ledger/ledgertest"
)

// waitQueue waits until the writer's queue holds n ops.
func waitQueue(t *testing.T, l *Ledger, n int) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); len(l.queue) != n; {
		if time.Now().After(deadline) {
			t.Fatalf("queue holds %d ops, want %d", len(l.queue), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestLingerCollects drives the writer step by step: a batch of one is
// followed by no wait; after a batch of two the writer, holding one
// append, waits for more (here up to an hour, so only MaxBatch ends the
// wait) and commits them together; Close ends a linger and commits what
// the writer holds.
func TestLingerCollects(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l, err := Open(ctx, filepath.Join(t.TempDir(), "l.db"), Options{MaxBatch: 4, Linger: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	// appendAsync puts an append straight on the writer's queue, so that
	// when it returns the op is queued (an empty queue then means the
	// writer holds it), and returns the channel its answer comes on.
	appendAsync := func(i int) chan error {
		r, err := ledgertest.NewIssuance("linger", time.Unix(1_800_000_000+int64(i), 0))
		if err != nil {
			t.Fatal(err)
		}
		o := op{ctx: ctx, reply: make(chan error, 1), apply: func(ctx context.Context, tx *batchTx) error {
			return l.appendTx(ctx, tx, r, nil)
		}}
		l.queue <- o
		return o.reply
	}
	wait := func(name string, chs ...chan error) {
		t.Helper()
		for i, ch := range chs {
			if err := <-ch; err != nil {
				t.Fatalf("%s %d: %v", name, i, err)
			}
		}
	}

	// Hold the writer in a first op (a batch of one: no linger) while two
	// appends queue up behind it.
	release := make(chan struct{})
	started := make(chan struct{})
	hold := op{ctx: ctx, reply: make(chan error, 1), apply: func(context.Context, *batchTx) error {
		close(started)
		<-release
		return nil
	}}
	l.queue <- hold
	held := hold.reply
	<-started
	pair := []chan error{appendAsync(1), appendAsync(2)}
	waitQueue(t, l, 2)
	close(release)
	wait("held", held)
	wait("pair", pair...)
	if st := l.Stats(); st.Commits != 2 || st.Ops != 3 {
		t.Fatalf("after a held op and a pair: %+v, want 2 commits of 3 ops", st)
	}

	// The last batch held two: the writer takes the next append and
	// lingers; three more, sent once it holds the first, join its batch.
	first := appendAsync(3)
	waitQueue(t, l, 0) // the writer holds append 3 and lingers
	rest := []chan error{appendAsync(4), appendAsync(5), appendAsync(6)}
	wait("lingering batch", append([]chan error{first}, rest...)...)
	if st := l.Stats(); st.Commits != 3 || st.Ops != 7 {
		t.Fatalf("after the lingering batch: %+v, want 3 commits of 7 ops", st)
	}

	// The last batch held four: a lone append now lingers until Close,
	// which commits it.
	last := appendAsync(7)
	waitQueue(t, l, 0)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	wait("append during Close", last)
	if st := l.Stats(); st.Commits != 4 || st.Ops != 8 {
		t.Fatalf("after Close: %+v, want 4 commits of 8 ops", st)
	}
}
