package ca

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// checkpointState is an Authority's view of its checkpoints: the newest
// it knows of and, once a ledger was found not to extend one (or corrupt),
// that failure, which stops every later issuance, revocation and CRL.
type checkpointState struct {
	store    CheckpointStore
	interval time.Duration

	ready atomic.Bool
	fault atomic.Pointer[error]

	mu     sync.Mutex // held while checking and signing, so checkpoints are saved in order
	latest *Checkpoint
}

func (s *checkpointState) init(store CheckpointStore, interval time.Duration) {
	s.store = store
	s.interval = interval
	if s.interval == 0 {
		s.interval = time.Hour
	}
}

func (a *Authority) setFault(err error) error {
	if a.checkpoints.fault.CompareAndSwap(nil, &err) && a.logEnabled(context.Background(), slog.LevelError) {
		a.log.LogAttrs(context.Background(), slog.LevelError, "ca: ledger fault, refusing to work", slog.String("error", err.Error()))
	}
	return *a.checkpoints.fault.Load()
}

// usable returns the failure that stopped the Authority, if any. On first
// use it reads the newest stored checkpoint and checks the ledger against
// it.
func (a *Authority) usable(ctx context.Context) error {
	if err := a.made(); err != nil {
		return err
	}
	s := &a.checkpoints
	if !s.ready.Load() {
		s.mu.Lock()
		if !s.ready.Load() {
			if err := a.loadCheckpointLocked(ctx); err != nil && !errors.Is(err, ErrLedgerCorrupt) && !errors.Is(err, ErrBadCheckpoint) {
				s.mu.Unlock()
				return err // transient: try again next time
			}
			s.ready.Store(true)
		}
		s.mu.Unlock()
	}
	if f := s.fault.Load(); f != nil {
		return fmt.Errorf("ca: refusing to use the ledger: %w", *f)
	}
	return nil
}

func (a *Authority) loadCheckpointLocked(ctx context.Context) error {
	if a.checkpoints.store == nil {
		return nil
	}
	cp, err := LatestCheckpoint(ctx, a.checkpoints.store, a.signer.Public())
	if err != nil {
		if errors.Is(err, ErrBadCheckpoint) {
			return a.setFault(err)
		}
		return err
	}
	if cp == nil {
		return nil
	}
	head, err := a.ledger.Head(ctx)
	if err != nil {
		return err
	}
	if err := a.checkExtends(ctx, cp, head); err != nil {
		return err
	}
	a.checkpoints.latest = cp
	return nil
}

// checkExtends checks that the ledger, whose head is head, extends cp. A
// ledger that is not a RecordReader is checked by its length and, at the
// checkpoint's length, its head hash only.
func (a *Authority) checkExtends(ctx context.Context, cp *Checkpoint, head Head) error {
	var rec *Record
	if cp.Seq > 0 && head.Seq >= cp.Seq {
		rr, ok := a.ledger.(RecordReader)
		if !ok {
			if head.Seq > cp.Seq || bytes.Equal(head.Hash, cp.Hash) {
				return nil
			}
			return a.setFault(cp.Check(head, nil))
		}
		r, err := rr.Record(ctx, cp.Seq)
		if err != nil && !errors.Is(err, ErrUnknownRecord) {
			if errors.Is(err, ErrLedgerCorrupt) {
				return a.setFault(err)
			}
			return err
		}
		rec = r
	}
	if err := cp.Check(head, rec); err != nil {
		return a.setFault(err)
	}
	return nil
}

// Checkpoint signs and returns a checkpoint of the ledger's current head,
// after checking that the ledger extends the newest checkpoint the
// Authority knows of (its own last one, or the store's). It saves it to
// [Config].Checkpoints, if set, before returning it. A ledger that does
// not extend the previous checkpoint gives a [*CheckpointError], and the
// Authority then refuses every issuance, revocation and CRL.
func (a *Authority) Checkpoint(ctx context.Context) (*Checkpoint, error) {
	if err := a.usable(ctx); err != nil {
		return nil, err
	}
	a.checkpoints.mu.Lock()
	defer a.checkpoints.mu.Unlock()
	return a.checkpointLocked(ctx, nil)
}

// checkpointLocked makes a checkpoint; crlNumber is the number of the CRL
// it is made with, or nil.
func (a *Authority) checkpointLocked(ctx context.Context, crlNumber *big.Int) (*Checkpoint, error) {
	prev := a.checkpoints.latest
	if a.checkpoints.store != nil {
		stored, err := LatestCheckpoint(ctx, a.checkpoints.store, a.signer.Public())
		if err != nil {
			if errors.Is(err, ErrBadCheckpoint) {
				return nil, a.setFault(err)
			}
			return nil, err
		}
		if stored != nil && (prev == nil || stored.Seq > prev.Seq || (stored.Seq == prev.Seq && stored.Time.After(prev.Time))) {
			prev = stored
		}
	}
	head, err := a.ledger.Head(ctx)
	if err != nil {
		return nil, fmt.Errorf("ca: failed to read the ledger head: %w", err)
	}
	crl := crlNumber
	if prev != nil {
		if err := a.checkExtends(ctx, prev, head); err != nil {
			return nil, err
		}
		if crlNumber != nil {
			if err := prev.CheckCRLNumber(head, new(big.Int).Sub(crlNumber, big.NewInt(1))); err != nil {
				return nil, a.setFault(err)
			}
		} else {
			crl = prev.CRLNumber
		}
	}
	cp := &Checkpoint{Seq: head.Seq, Hash: head.Hash, Time: a.now().UTC(), CRLNumber: crl, KeyID: a.chain[0].SubjectKeyId}
	if err := signCheckpoint(a.rand, a.signer, cp); err != nil {
		return nil, err
	}
	if a.checkpoints.store != nil {
		if err := a.checkpoints.store.SaveCheckpoint(ctx, cp.Raw); err != nil {
			return nil, fmt.Errorf("ca: failed to save checkpoint: %w", err)
		}
	}
	a.checkpoints.latest = cp
	a.logCheckpoint(ctx, cp)
	return cp, nil
}

// RunCheckpoints verifies the whole ledger ([Ledger.Verify]: its chain,
// its database's own integrity check, its checkpoints) and then signs a
// checkpoint (see [Authority.Checkpoint]), every
// [Config].CheckpointInterval until ctx ends, and then returns ctx.Err().
// So the periodic checkpoints sign only heads that verified, and damage
// that arises while the CA runs (an index losing entries, which no lookup
// can see) is found within an interval. It returns early with the error
// of a verification or checkpoint that found the ledger corrupt, after
// which the Authority refuses every issuance, revocation and CRL; other
// failures (a store briefly unavailable) are retried at the next tick.
// Run it in its own goroutine.
func (a *Authority) RunCheckpoints(ctx context.Context) error {
	if err := a.made(); err != nil {
		return err
	}
	t := time.NewTicker(a.checkpoints.interval)
	defer t.Stop()
	for {
		if err := a.verifiedCheckpoint(ctx); err != nil {
			if errors.Is(err, ErrLedgerCorrupt) || errors.Is(err, ErrBadCheckpoint) {
				return err
			}
			if ctx.Err() == nil && a.logEnabled(ctx, slog.LevelWarn) {
				a.log.LogAttrs(ctx, slog.LevelWarn, "ca: periodic checkpoint failed", slog.String("error", err.Error()))
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

func (a *Authority) verifiedCheckpoint(ctx context.Context) error {
	if err := a.usable(ctx); err != nil {
		return err
	}
	if _, err := a.ledger.Verify(ctx); err != nil {
		if errors.Is(err, ErrLedgerCorrupt) {
			return a.setFault(err)
		}
		return err
	}
	_, err := a.Checkpoint(ctx)
	return err
}

// CheckpointHandler returns an http.Handler that serves the newest
// checkpoint to GET and HEAD requests, as application/cose (RFC 9052
// §9.2) with cose-type "cose-sign1", signing a new one first when the
// newest is older than [Config].CheckpointInterval. Serve it beside
// [Authority.CRLHandler]; a ledger found not to extend a checkpoint makes
// it answer 503.
func (a *Authority) CheckpointHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		cp, err := a.currentCheckpoint(r.Context())
		if err != nil {
			http.Error(w, "checkpoint unavailable", http.StatusServiceUnavailable)
			return
		}
		maxAge := int(a.checkpoints.interval.Seconds()) / 2
		w.Header().Set("Content-Type", `application/cose; cose-type="cose-sign1"`)
		w.Header().Set("Content-Length", strconv.Itoa(len(cp.Raw)))
		w.Header().Set("Cache-Control", "max-age="+strconv.Itoa(maxAge))
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodGet {
			w.Write(cp.Raw)
		}
	})
}

func (a *Authority) currentCheckpoint(ctx context.Context) (*Checkpoint, error) {
	if err := a.usable(ctx); err != nil {
		return nil, err
	}
	a.checkpoints.mu.Lock()
	defer a.checkpoints.mu.Unlock()
	if cp := a.checkpoints.latest; cp != nil && a.now().Before(cp.Time.Add(a.checkpoints.interval)) {
		return cp, nil
	}
	return a.checkpointLocked(ctx, nil)
}
