// Package groupcommit is the writer loop shared by ztm's durable stores
// (the CA ledgers, the chain store, the EST queue): one goroutine takes
// the writes callers queue, commits them in batches — one transaction,
// one sync to stable storage for many callers — and each store answers its
// callers once the batch is committed.
//
// Under concurrent load the loop lingers: after a commit that held more
// than one write, it keeps collecting for up to Linger before the next
// commit, so that one sync serves more callers. After a commit of a single
// write it never waits, so a lone caller pays no latency.
package groupcommit

import "time"

// Options tune Run.
type Options struct {
	// MaxBatch bounds the writes of one commit. Must be positive.
	MaxBatch int
	// Linger is how long the loop keeps collecting after a batched commit
	// (see the package documentation); zero or negative never lingers.
	Linger time.Duration
}

// Run takes writes from in and calls commit with each batch, in order,
// until quit is closed. It then returns the writes still queued in in
// without committing them, for the caller to refuse. commit runs on Run's
// goroutine and must not keep batch after it returns: Run reuses it.
func Run[T any](in <-chan T, quit <-chan struct{}, opts Options, commit func(batch []T)) (unsent []T) {
	batch := make([]T, 0, opts.MaxBatch)
	var timer *time.Timer
	if opts.Linger > 0 {
		timer = time.NewTimer(time.Hour)
		timer.Stop()
	}
	prev := 0
	for {
		batch = batch[:0]
		select {
		case w := <-in:
			batch = append(batch, w)
		case <-quit:
			for {
				select {
				case w := <-in:
					unsent = append(unsent, w)
				default:
					return unsent
				}
			}
		}
	drain:
		for len(batch) < opts.MaxBatch {
			select {
			case w := <-in:
				batch = append(batch, w)
			default:
				break drain
			}
		}
		if timer != nil && prev > 1 && len(batch) < opts.MaxBatch {
			batch = linger(in, quit, batch, opts, timer)
		}
		prev = len(batch)
		commit(batch)
	}
}

// linger adds writes to batch as they arrive until it holds MaxBatch, the
// linger bound passes or quit is closed.
func linger[T any](in <-chan T, quit <-chan struct{}, batch []T, opts Options, timer *time.Timer) []T {
	timer.Reset(opts.Linger)
	defer timer.Stop()
	for len(batch) < opts.MaxBatch {
		select {
		case w := <-in:
			batch = append(batch, w)
		case <-timer.C:
			return batch
		case <-quit:
			return batch
		}
	}
	return batch
}
