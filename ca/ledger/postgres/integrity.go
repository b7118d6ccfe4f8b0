package postgres

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/ztmkit/ztm/ca"
	"github.com/ztmkit/ztm/ca/ledger/internal/sqlrecord"
)

// setFault records the first corruption found; from then on the Ledger
// refuses appends, lookups, revocation lists and CRL numbers. It returns
// err.
func (l *Ledger) setFault(err error) error {
	l.fault.CompareAndSwap(nil, &err)
	return err
}

// refusal returns the error a Ledger found corrupt answers with, or nil.
func (l *Ledger) refusal() error {
	if err := l.checkOpen(); err != nil {
		return err
	}
	if f := l.fault.Load(); f != nil {
		return fmt.Errorf("postgres ledger: refusing to use a corrupt ledger (repair it and open it again): %w", *f)
	}
	return nil
}

func (l *Ledger) latestCheckpoint(ctx context.Context) (*ca.Checkpoint, error) {
	if l.cfg.Checkpoints == nil {
		return nil, nil
	}
	cp, err := ca.LatestCheckpoint(ctx, l.cfg.Checkpoints, l.cfg.CheckpointKey)
	if err != nil {
		return nil, fmt.Errorf("postgres ledger: %w", err)
	}
	return cp, nil
}

// checkOnOpen checks the ledger against the newest checkpoint: its
// length, the record at the checkpoint (which must hash to the
// checkpoint's head) and the CRL counter, in one snapshot.
func (l *Ledger) checkOnOpen(ctx context.Context) error {
	cp, err := l.latestCheckpoint(ctx)
	if err != nil || cp == nil {
		return err
	}
	tx, err := l.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return dbError("open", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	var head ca.Head
	var seq int64
	err = tx.QueryRow(ctx, l.q.head, freshPlan).Scan(&seq, &head.Hash)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return dbError("open", err)
	}
	head.Seq = uint64(seq)
	var rec *ca.Record
	if cp.Seq > 0 && head.Seq >= cp.Seq {
		if rec, err = sqlrecord.Scan(tx.QueryRow(ctx, l.q.record, freshPlan, int64(cp.Seq))); err != nil && !errors.Is(err, pgx.ErrNoRows) {
			var ce *ca.ChainError
			if errors.As(err, &ce) {
				return err
			}
			return dbError("open", err)
		}
	}
	if err := cp.Check(head, rec); err != nil {
		return err
	}
	found, err := l.checkCRLCounter(ctx, tx, cp, head)
	if err != nil {
		return dbError("open", err)
	}
	return found
}

func (l *Ledger) checkCRLCounter(ctx context.Context, tx pgx.Tx, cp *ca.Checkpoint, head ca.Head) (found, err error) {
	var n int64
	if err := tx.QueryRow(ctx, l.q.crlCounter, freshPlan).Scan(&n); err != nil {
		return nil, err
	}
	return cp.CheckCRLNumber(head, big.NewInt(n)), nil
}

// verifyStorage runs amcheck, if installed, and the checkpoint checks, in
// Verify's snapshot. found is what they found; err a database failure.
func (l *Ledger) verifyStorage(ctx context.Context, tx pgx.Tx, cp *ca.Checkpoint, head ca.Head, at *ca.Record) (found, err error) {
	if found, err = l.amcheck(ctx, tx); found != nil || err != nil {
		return found, err
	}
	if cp == nil {
		return nil, nil
	}
	if err := cp.Check(head, at); err != nil {
		return err, nil
	}
	return l.checkCRLCounter(ctx, tx, cp, head)
}

// amcheck runs bt_index_check(index, heapallindexed => true) on every
// B-tree index of the ledger's schema when the amcheck extension is
// installed: it finds index pages that are inconsistent and heap rows
// missing from an index.
func (l *Ledger) amcheck(ctx context.Context, tx pgx.Tx) (found, err error) {
	// The function is called in the extension's own schema, not through
	// the search path, where another function could stand in for it.
	var extSchema string
	err = tx.QueryRow(ctx, `SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
		WHERE e.extname = 'amcheck'`, freshPlan).Scan(&extSchema)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	check := "SELECT " + pgx.Identifier{extSchema, "bt_index_check"}.Sanitize() + "($1::regclass, true)"
	rows, err := tx.Query(ctx, `SELECT c.oid::regclass::text FROM pg_index i
		JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam
		JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = $1 AND a.amname = 'btree' ORDER BY 1`, freshPlan, l.cfg.Schema)
	if err != nil {
		return nil, err
	}
	indexes, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	var report []string
	for _, idx := range indexes {
		if _, err := tx.Exec(ctx, "SAVEPOINT amcheck"); err != nil {
			return nil, err
		}
		if _, err := tx.Exec(ctx, check, freshPlan, idx); err != nil {
			if ctx.Err() != nil {
				// Cut short: that says nothing about the index.
				return nil, ctx.Err()
			}
			report = append(report, idx+": "+err.Error())
			if _, err := tx.Exec(ctx, "ROLLBACK TO SAVEPOINT amcheck"); err != nil {
				return nil, err
			}
			continue
		}
		if _, err := tx.Exec(ctx, "RELEASE SAVEPOINT amcheck"); err != nil {
			return nil, err
		}
	}
	if len(report) > 0 {
		return &ca.StorageError{Check: "amcheck bt_index_check", Detail: strings.Join(report, "; ")}, nil
	}
	return nil, nil
}

var _ ca.RecordReader = (*Ledger)(nil)

// Record implements ca.RecordReader. The record is returned as stored;
// the caller checks it against its hash.
func (l *Ledger) Record(ctx context.Context, seq uint64) (*ca.Record, error) {
	if seq == 0 || seq > 1<<63-1 {
		return nil, ca.ErrUnknownRecord
	}
	var r *ca.Record
	err := l.retryRead(ctx, "record", func() error {
		var err error
		r, err = sqlrecord.Scan(l.pool.QueryRow(ctx, l.q.record, freshPlan, int64(seq)))
		return err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ca.ErrUnknownRecord
	}
	var ce *ca.ChainError
	if errors.As(err, &ce) {
		return nil, l.setFault(ce)
	}
	return r, err
}
