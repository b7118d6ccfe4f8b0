package postgres

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"math/big"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/ztmkit/ztm/ca"
	"github.com/ztmkit/ztm/ca/ledger/internal/sqlrecord"
)

// retryRead runs fn, and once more if the connection was lost and ctx is
// still live: a pooled connection may have died with a server restart
// without the pool knowing yet. Only idempotent reads go through it.
func (l *Ledger) retryRead(ctx context.Context, op string, fn func() error) error {
	if err := l.checkOpen(); err != nil {
		return err
	}
	err := fn()
	if err != nil && connectionLost(err) && !isContextErr(ctx, err) && !l.closed() {
		l.lost(err)
		err = fn()
	}
	if err == nil {
		return nil
	}
	if l.closed() {
		return ca.ErrLedgerClosed
	}
	if isContextErr(ctx, err) {
		return ctx.Err()
	}
	return dbError(op, err)
}

// Lookup implements [ca.Ledger]. It reads the database, so it sees every
// record any instance committed.
func (l *Ledger) Lookup(ctx context.Context, serial *big.Int) (*ca.Status, error) {
	if err := l.checkOpen(); err != nil {
		return nil, err
	}
	if serial == nil || serial.Sign() <= 0 {
		return nil, ca.ErrUnknownSerial
	}
	if err := l.refusal(); err != nil {
		return nil, err
	}
	return l.status(ctx, l.q.lookup, serial.Bytes(), serial, nil, ca.ErrUnknownSerial)
}

// LookupRequest implements [ca.Ledger], like Lookup.
func (l *Ledger) LookupRequest(ctx context.Context, key []byte) (*ca.Status, error) {
	if err := l.checkOpen(); err != nil {
		return nil, err
	}
	if len(key) == 0 || len(key) > ca.MaxIdempotencyKey {
		return nil, ca.ErrUnknownRequest
	}
	if err := l.refusal(); err != nil {
		return nil, err
	}
	return l.status(ctx, l.q.lookupKey, key, nil, key, ca.ErrUnknownRequest)
}

// LookupDevice implements [ca.Ledger], like Lookup.
func (l *Ledger) LookupDevice(ctx context.Context, device []byte) (*ca.Status, error) {
	if err := l.checkOpen(); err != nil {
		return nil, err
	}
	if len(device) == 0 || len(device) > ca.MaxDeviceID {
		return nil, ca.ErrUnknownDevice
	}
	if err := l.refusal(); err != nil {
		return nil, err
	}
	var serials [][]byte
	err := l.retryRead(ctx, "lookup", func() error {
		serials = nil
		rows, err := l.pool.Query(ctx, l.q.liveDevice, freshPlan, device)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var s []byte
			if err := rows.Scan(&s); err != nil {
				return err
			}
			serials = append(serials, s)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, err
	}
	switch len(serials) {
	case 0:
		return nil, ca.ErrUnknownDevice
	case 1:
	default:
		return nil, l.setFault(&ca.ChainError{Reason: "lookup: two live issuances for one device"})
	}
	st, err := l.status(ctx, l.q.lookup, serials[0], new(big.Int).SetBytes(serials[0]), nil, ca.ErrUnknownDevice)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(st.Issuance.Device, device) || st.Revocation != nil {
		return nil, l.setFault(&ca.ChainError{Seq: st.Issuance.Seq, Reason: "lookup: record is not the device's live issuance"})
	}
	return st, nil
}

// status reads the issuance and revocation records query returns for arg,
// or notFound when there is no issuance. What it read must be what was
// asked for (serial, or key) and hash into the chain (see verifyLookup).
func (l *Ledger) status(ctx context.Context, query string, arg []byte, serial *big.Int, key []byte, notFound error) (*ca.Status, error) {
	var found sqlrecord.Lookup
	err := l.retryRead(ctx, "lookup", func() error {
		found = sqlrecord.Lookup{}
		rows, err := l.pool.Query(ctx, query, freshPlan, arg)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			r, err := sqlrecord.Scan(rows)
			if err != nil {
				return err
			}
			if err := found.Add(r); err != nil {
				return err
			}
		}
		return rows.Err()
	})
	var st *ca.Status
	if err == nil {
		st, err = found.Status(serial, key, func(seq uint64) (next []byte, last int64, err error) {
			err = l.retryRead(ctx, "lookup", func() error {
				return l.pool.QueryRow(ctx, l.q.link, freshPlan, int64(seq)+1).Scan(&next, &last)
			})
			return next, last, err
		})
	}
	return sqlrecord.Answer(st, err, l.setFault, notFound)
}

// Revoked implements [ca.Ledger]. It reads the database on every call —
// the Ledger caches nothing — so a revocation committed by any instance
// is in the answer of every instance from the moment it commits.
func (l *Ledger) Revoked(ctx context.Context) ([]ca.Revocation, error) {
	if err := l.refusal(); err != nil {
		return nil, err
	}
	var out []ca.Revocation
	err := l.retryRead(ctx, "revoked", func() error {
		out = out[:0]
		rows, err := l.pool.Query(ctx, l.q.revoked, freshPlan)
		if err != nil {
			return err
		}
		var seq, t int64
		var rsn int16
		var serial []byte
		_, err = pgx.ForEachRow(rows, []any{&seq, &serial, &t, &rsn}, func() error {
			out = append(out, ca.Revocation{Seq: uint64(seq), Serial: new(big.Int).SetBytes(serial), Time: time.Unix(0, t).UTC(), Reason: ca.RevocationReason(rsn)})
			return nil
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Head implements [ca.Ledger].
func (l *Ledger) Head(ctx context.Context) (ca.Head, error) {
	var h ca.Head
	err := l.retryRead(ctx, "head", func() error {
		var seq int64
		var hash []byte
		err := l.pool.QueryRow(ctx, l.q.head, freshPlan).Scan(&seq, &hash)
		if errors.Is(err, pgx.ErrNoRows) {
			h = ca.Head{Hash: make([]byte, sha256.Size)}
			return nil
		}
		h = ca.Head{Seq: uint64(seq), Hash: hash}
		return err
	})
	if err != nil {
		return ca.Head{}, err
	}
	return h, nil
}

// Verify implements [ca.Ledger]. It reads every record in one read-only
// REPEATABLE READ transaction, so it checks one consistent snapshot while
// appends go on, and checks the hash chain; in the same snapshot it runs
// amcheck's bt_index_check (with heapallindexed) on every index of the
// ledger's tables when the amcheck extension is installed in the
// database (*ca.StorageError), and, with Config.Checkpoints, checks the
// ledger against the newest checkpoint (*ca.CheckpointError). Any of these
// failures, all wrapping ca.ErrLedgerCorrupt, makes the Ledger refuse
// every later append, lookup and CRL number until it is repaired and
// opened again (see the package documentation).
func (l *Ledger) Verify(ctx context.Context) (ca.Head, error) {
	cp, err := l.latestCheckpoint(ctx)
	if err != nil {
		return ca.Head{}, err
	}
	var h ca.Head
	var found error
	err = l.retryRead(ctx, "verify", func() error {
		found = nil
		tx, err := l.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
		if err != nil {
			return err
		}
		defer tx.Rollback(context.WithoutCancel(ctx))
		var atCheckpoint *ca.Record
		h, atCheckpoint, found, err = l.verifyChain(ctx, tx, cp)
		if err != nil || found != nil {
			return err
		}
		found, err = l.verifyStorage(ctx, tx, cp, h, atCheckpoint)
		return err
	})
	if err != nil {
		return ca.Head{}, err
	}
	if found != nil {
		return ca.Head{}, l.setFault(found)
	}
	return h, nil
}

// verifyChain walks the chain in tx. found is the chain's failure; the
// record at cp's sequence number is returned for the checkpoint check.
func (l *Ledger) verifyChain(ctx context.Context, tx pgx.Tx, cp *ca.Checkpoint) (h ca.Head, at *ca.Record, found, err error) {
	rows, err := tx.Query(ctx, l.q.all, freshPlan)
	if err != nil {
		return h, nil, nil, err
	}
	defer rows.Close()
	var v ca.ChainVerifier
	for rows.Next() {
		r, err := sqlrecord.Scan(rows)
		if err == nil {
			err = v.Add(r)
		}
		var ce *ca.ChainError
		if errors.As(err, &ce) {
			return h, nil, ce, nil
		}
		if err != nil {
			return h, nil, nil, err
		}
		if cp != nil && r.Seq == cp.Seq {
			at = r
		}
	}
	if err := rows.Err(); err != nil {
		return h, nil, nil, err
	}
	return v.Head(), at, nil, nil
}

// NextCRLNumber implements [ca.Ledger]. The number comes from one counter
// row, incremented under its row lock in a transaction of its own, and is
// returned only after that transaction commits: numbers strictly increase
// across every instance. A number whose COMMIT outcome is unknown is not
// returned ([ErrCommitUnknown]), which may leave a gap, never a repeat.
func (l *Ledger) NextCRLNumber(ctx context.Context) (*big.Int, error) {
	if err := l.checkOpen(); err != nil {
		return nil, err
	}
	if err := l.refusal(); err != nil {
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		n, sent, err := l.nextCRLNumber(ctx)
		if err == nil {
			return big.NewInt(n), nil
		}
		l.lost(err)
		switch {
		case l.closed():
			return nil, ca.ErrLedgerClosed
		case isContextErr(ctx, err):
			return nil, ctx.Err()
		case !sent && connectionLost(err) && attempt == 0:
			continue // a dead pooled connection; nothing was sent
		case sent && connectionLost(err) && !pgconn.SafeToRetry(err):
			return nil, &Error{Op: "crl number", Reason: ReasonCommitUnknown, Err: err}
		}
		return nil, dbError("crl number", err)
	}
}

// nextCRLNumber runs the increment and its COMMIT in one pipelined round
// trip; sent says the statements were handed to the connection.
func (l *Ledger) nextCRLNumber(ctx context.Context) (n int64, sent bool, err error) {
	conn, err := l.pool.Acquire(ctx)
	if err != nil {
		return 0, false, err
	}
	inTx := true
	defer func() { release(conn, inTx) }()
	b := &pgx.Batch{}
	b.Queue("BEGIN ISOLATION LEVEL READ COMMITTED")
	b.Queue("SET LOCAL synchronous_commit TO on")
	b.Queue(l.q.crlNext)
	b.Queue("COMMIT")
	br := conn.SendBatch(ctx, b)
	committed := false
	defer func() {
		// After the COMMIT is acknowledged, a failure to read the rest
		// changes nothing.
		if cerr := br.Close(); err == nil && cerr != nil && !committed {
			err = cerr
		}
	}()
	for range 2 {
		if _, err := br.Exec(); err != nil {
			return 0, true, err
		}
	}
	if err := br.QueryRow().Scan(&n); err != nil {
		return 0, true, err
	}
	tag, err := br.Exec()
	if err != nil {
		return 0, true, err
	}
	if tag.String() != "COMMIT" {
		return 0, true, errors.New("transaction rolled back")
	}
	committed, inTx = true, false
	return n, true, nil
}

// freshPlan makes pgx run a query as an unnamed statement, planned at
// each execution for the parameters and the table as they are. A named
// statement's generic plan, chosen while the records table was still
// small, can scan the wrong index for good once it has grown.
const freshPlan = pgx.QueryExecModeCacheDescribe
