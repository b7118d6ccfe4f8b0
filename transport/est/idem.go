package est

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/big"
	"sync"

	"github.com/ztmkit/ztm/ca"
	"github.com/ztmkit/ztm/transport/est/internal/durable"
)

// IdempotencyStore is the server side of idempotent enrollment: a durable
// table from the SHA-256 of each enrolled certificate request to the serial
// number and requester it was issued for, in its own SQLite file
// (WAL, synchronous=FULL, group commit).
//
// The ca ledger cannot be searched by request, so the store takes part in
// the ledger's append itself: the Authority must be built over
// [IdempotencyStore.Ledger], which records the request's digest and the
// certificate's serial durably, as pending, before the ledger appends
// the issuance (and removes the entry if the ledger refuses it). The
// certificate itself stays in the ledger only. The next
// request with the same digest asks the ledger for that serial
// ([ca.Ledger.Lookup]) and either answers with the certificate the ledger
// holds, marking the entry done, or, if the ledger never committed it (a
// crash or a lost answer between the two writes), forgets the entry and
// issues afresh. So one request never yields two certificates, across
// crashes, as long as one store serves one Authority (several CA
// instances on a shared ledger need a shared store, which this is not).
//
// An IdempotencyStore is safe for concurrent use.
type IdempotencyStore struct {
	// locks serialize the enrollments of one request across every Gate
	// using the store.
	locks    keyLocks
	db       *durable.DB
	insert   *sql.Stmt
	lookupSt *sql.Stmt
}

const idemSchema = `
CREATE TABLE IF NOT EXISTS enrolled (
	csr_digest BLOB PRIMARY KEY,
	serial     BLOB NOT NULL,
	requester  TEXT NOT NULL,
	done       INTEGER NOT NULL
) WITHOUT ROWID;`

// OpenIdempotencyStore opens the store in the SQLite file at path,
// creating it when absent.
func OpenIdempotencyStore(ctx context.Context, path string) (*IdempotencyStore, error) {
	db, err := durable.Open(ctx, path, idemSchema)
	if err != nil {
		return nil, fmt.Errorf("est: failed to open idempotency store: %w", err)
	}
	s := &IdempotencyStore{db: db}
	if s.insert, err = db.Prepare(ctx, `INSERT INTO enrolled (csr_digest, serial, requester, done) VALUES (?, ?, ?, 0)`); err == nil {
		s.lookupSt, err = db.Read.PrepareContext(ctx, `SELECT serial, requester, done FROM enrolled WHERE csr_digest = ?`)
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("est: failed to open idempotency store: %w", err)
	}
	return s, nil
}

// Close closes the store. It is idempotent.
func (s *IdempotencyStore) Close() error {
	return s.db.Close()
}

// Ledger returns inner wrapped so that issuances made through a [Gate]
// using this store are recorded in the store as described on
// [IdempotencyStore]. Pass the result as ca.Config.Ledger. Appends not made
// by a Gate (revocations, other callers of Authority.Issue) go straight to
// inner.
func (s *IdempotencyStore) Ledger(inner ca.Ledger) ca.Ledger {
	return &idemLedger{Ledger: inner, store: s}
}

// idemLedger is the ledger wrapper. It embeds the inner ledger for every
// method but Append.
type idemLedger struct {
	ca.Ledger
	store *IdempotencyStore
}

var _ ca.Ledger = (*idemLedger)(nil)

type idemCtxKey struct{}

// idemCall travels in the context of Authority.Issue to the ledger's
// Append.
type idemCall struct {
	digest    []byte
	requester string
	// appended is set when the pending entry was written, so that the
	// Gate knows the outcome is durable in the store.
	appended bool
}

func (l *idemLedger) Append(ctx context.Context, rec *ca.Record, quota *ca.Quota) error {
	call, ok := ctx.Value(idemCtxKey{}).(*idemCall)
	if !ok || rec.Kind != ca.KindIssuance {
		return l.Ledger.Append(ctx, rec, quota)
	}
	serial := rec.Serial.Bytes()
	err := l.store.db.Do(ctx, func(tx *sql.Tx) error {
		_, err := tx.Stmt(l.store.insert).Exec(call.digest, serial, call.requester)
		return err
	})
	if err != nil {
		return fmt.Errorf("est: failed to record pending enrollment: %w", err)
	}
	err = l.Ledger.Append(ctx, rec, quota)
	switch {
	case err == nil:
		// The entry stays pending: the next request with this digest
		// confirms it against the ledger (one read) and marks it done.
		// That saves a second durable write on every issuance.
		call.appended = true
	case ctx.Err() != nil:
		// The record may still be committed: the pending entry stays and
		// is resolved by the next request.
	default:
		// Refused (quota, serial collision…): nothing was recorded.
		if derr := l.store.forget(context.WithoutCancel(ctx), call.digest); derr != nil {
			return errors.Join(err, derr)
		}
	}
	return err
}

func (s *IdempotencyStore) forget(ctx context.Context, digest []byte) error {
	return s.db.Do(ctx, func(tx *sql.Tx) error {
		_, err := tx.Exec(`DELETE FROM enrolled WHERE csr_digest = ?`, digest)
		return err
	})
}

// enrolledEntry is one row.
type enrolledEntry struct {
	serial    *big.Int
	requester string
	cert      []byte
	done      bool
}

// lookup returns the entry for digest, or nil.
func (s *IdempotencyStore) lookup(ctx context.Context, digest []byte) (*enrolledEntry, error) {
	var serial []byte
	e := &enrolledEntry{}
	err := s.lookupSt.QueryRowContext(ctx, digest).
		Scan(&serial, &e.requester, &e.done)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("est: idempotency lookup: %w", err)
	}
	e.serial = new(big.Int).SetBytes(serial)
	return e, nil
}

// resolve reads the certificate of an entry from the ledger. An entry
// still pending whose serial the ledger never recorded (the process
// stopped, or the ledger's answer was lost, between the two writes) is
// forgotten and nil returned, so that the request is issued afresh; a
// pending entry the ledger holds is marked done.
func (s *IdempotencyStore) resolve(ctx context.Context, ledger ca.Ledger, digest []byte, e *enrolledEntry) (*enrolledEntry, error) {
	st, err := ledger.Lookup(ctx, e.serial)
	switch {
	case err == nil:
		e.cert = st.Issuance.Certificate
		if !e.done {
			e.done = true
			if err := s.db.Do(ctx, func(tx *sql.Tx) error {
				_, err := tx.Exec(`UPDATE enrolled SET done = 1 WHERE csr_digest = ?`, digest)
				return err
			}); err != nil {
				return nil, err
			}
		}
		return e, nil
	case errors.Is(err, ca.ErrUnknownSerial) && !e.done:
		return nil, s.forget(ctx, digest)
	case errors.Is(err, ca.ErrUnknownSerial):
		return nil, fmt.Errorf("est: the ledger lost serial %x, recorded as issued for this request", e.serial)
	default:
		return nil, err
	}
}

// memIdem is the in-memory idempotency map of a Gate without a store.
type memIdem struct {
	mu sync.Mutex
	m  map[string]*enrolledEntry
}
