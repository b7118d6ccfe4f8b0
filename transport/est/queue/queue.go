package queue

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/ztmkit/ztm/ca/enroll"
	"github.com/ztmkit/ztm/internal/sqlitefile"
	"github.com/ztmkit/ztm/transport/est"
	"github.com/ztmkit/ztm/transport/est/internal/durable"
)

// Key is the idempotency key of a request: the SHA-256 of its CSR DER.
type Key [sha256.Size]byte

// String returns the key in lowercase hex.
func (k Key) String() string { return hex.EncodeToString(k[:]) }

// KeyOf returns the key of a certificate request.
func KeyOf(csr []byte) Key { return sha256.Sum256(csr) }

// State is where a request stands.
type State int

const (
	// Pending requests wait for their next attempt.
	Pending State = iota + 1
	// Done requests hold their certificate chain.
	Done
	// Failed requests were refused for good (bad request, evidence
	// refused, not authorized…); LastError says why. They are not retried.
	Failed
)

// String returns "pending", "done" or "failed".
func (s State) String() string {
	switch s {
	case Pending:
		return "pending"
	case Done:
		return "done"
	case Failed:
		return "failed"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// Item is one queued request.
type Item struct {
	// Key is the request's idempotency key.
	Key Key
	// Request is the request as added.
	Request enroll.Request
	// State is where it stands.
	State State
	// Attempts counts the attempts made.
	Attempts int
	// NextAttempt is when a pending request is tried next.
	NextAttempt time.Time
	// LastError is the error of the last failed attempt.
	LastError string
	// Chain is the certificate chain of a done request, leaf first.
	Chain []*x509.Certificate
}

// Options configure a Queue. The zero value works.
type Options struct {
	// MinBackoff is the wait after the first failed attempt; each further
	// failure doubles it, up to MaxBackoff, with ±20% jitter. If zero,
	// 1 second and 5 minutes.
	MinBackoff, MaxBackoff time.Duration
	// Concurrency is how many requests Flush sends at once. If zero, 4.
	Concurrency int
	// AttemptTimeout bounds one attempt. If zero, 60 seconds.
	AttemptTimeout time.Duration
	// Time returns the current time. If nil, time.Now.
	Time func() time.Time
}

// Queue is a durable store-and-forward queue of enrollment requests. It is
// safe for concurrent use; one Queue per file (other processes must not
// open the same file at the same time).
type Queue struct {
	db      *durable.DB
	min     time.Duration
	max     time.Duration
	conc    int
	timeout time.Duration
	now     func() time.Time

	flushMu sync.Mutex
	wake    chan struct{}
}

const schema = `
CREATE TABLE IF NOT EXISTS requests (
	key       BLOB PRIMARY KEY,
	csr       BLOB NOT NULL,
	profile   TEXT NOT NULL,
	evidence  BLOB,
	state     INTEGER NOT NULL,
	attempts  INTEGER NOT NULL DEFAULT 0,
	next_ns   INTEGER NOT NULL,
	last_err  TEXT NOT NULL DEFAULT '',
	chain     BLOB,
	added_ns  INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS requests_due ON requests (state, next_ns);`

// Open opens the queue in the SQLite file at path (WAL, synchronous=FULL),
// creating it when absent. Requests pending when the process stopped are
// pending again. A file whose SQLite header names file format versions
// SQLite would open read-only is refused with ErrFileHeader.
func Open(ctx context.Context, path string, opts Options) (*Queue, error) {
	db, err := durable.Open(ctx, path, schema)
	var ve *sqlitefile.VersionError
	switch {
	case errors.As(err, &ve):
		return nil, fmt.Errorf("%w: %s: %v", ErrFileHeader, path, ve)
	case err != nil:
		return nil, fmt.Errorf("queue: %w", err)
	}
	q := &Queue{db: db, min: opts.MinBackoff, max: opts.MaxBackoff, conc: opts.Concurrency,
		timeout: opts.AttemptTimeout, now: opts.Time, wake: make(chan struct{}, 1)}
	if q.min <= 0 {
		q.min = time.Second
	}
	if q.max <= 0 {
		q.max = 5 * time.Minute
	}
	if q.max < q.min {
		q.max = q.min
	}
	if q.conc <= 0 {
		q.conc = 4
	}
	if q.timeout <= 0 {
		q.timeout = time.Minute
	}
	if q.now == nil {
		q.now = time.Now
	}
	return q, nil
}

// Close closes the queue's file.
func (q *Queue) Close() error { return q.db.Close() }

// Add stores req durably and returns its key. It returns once the request
// is on stable storage. Adding a request whose CSR is already queued
// changes nothing and returns the same key.
func (q *Queue) Add(ctx context.Context, req *enroll.Request) (Key, error) {
	if req == nil || len(req.CSR) == 0 || req.Profile == "" {
		return Key{}, fmt.Errorf("queue: %w: request needs a CSR and a profile", est.ErrBadRequest)
	}
	k := KeyOf(req.CSR)
	now := q.now().UnixNano()
	err := q.db.Do(ctx, func(tx *sql.Tx) error {
		_, err := tx.Exec(`INSERT INTO requests (key, csr, profile, evidence, state, next_ns, added_ns)
			VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING`,
			k[:], req.CSR, req.Profile, req.Evidence, Pending, now, now)
		return err
	})
	if err != nil {
		return Key{}, fmt.Errorf("queue: failed to store request: %w", err)
	}
	select {
	case q.wake <- struct{}{}:
	default:
	}
	return k, nil
}

// ErrNotFound is returned by Get for a key that was never added.
var ErrNotFound = errors.New("queue: no such request")

// ErrFileHeader is returned by Open for a file whose SQLite header names
// file format versions SQLite would open read-only or not at all (a
// damaged header): the queue would otherwise fail at its first write.
var ErrFileHeader = errors.New("queue: damaged SQLite file header")

// Get returns the item for key.
func (q *Queue) Get(ctx context.Context, key Key) (*Item, error) {
	row := q.db.Read.QueryRowContext(ctx, `SELECT key, csr, profile, evidence, state, attempts, next_ns, last_err, chain FROM requests WHERE key = ?`, key[:])
	it, err := scanItem(row.Scan)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	return it, err
}

// List returns every item, oldest first.
func (q *Queue) List(ctx context.Context) ([]*Item, error) {
	rows, err := q.db.Read.QueryContext(ctx, `SELECT key, csr, profile, evidence, state, attempts, next_ns, last_err, chain FROM requests ORDER BY added_ns, key`)
	if err != nil {
		return nil, fmt.Errorf("queue: %w", err)
	}
	defer rows.Close()
	var out []*Item
	for rows.Next() {
		it, err := scanItem(rows.Scan)
		if err != nil {
			return nil, err
		}
		out = append(out, it)
	}
	return out, rows.Err()
}

func scanItem(scan func(...any) error) (*Item, error) {
	var key, chain []byte
	var next int64
	it := &Item{}
	if err := scan(&key, &it.Request.CSR, &it.Request.Profile, &it.Request.Evidence, &it.State, &it.Attempts, &next, &it.LastError, &chain); err != nil {
		return nil, err
	}
	copy(it.Key[:], key)
	it.NextAttempt = time.Unix(0, next)
	if len(chain) > 0 {
		certs, err := x509.ParseCertificates(chain)
		if err != nil {
			return nil, fmt.Errorf("queue: stored chain: %w", err)
		}
		it.Chain = certs
	}
	return it, nil
}

// Stats counts the outcome of a Flush.
type Stats struct {
	// Done and Failed count the requests that ended in this Flush;
	// Retry those that will be tried again; Pending those still pending
	// after it (including ones not yet due).
	Done, Failed, Retry, Pending int
}

// Flush sends every pending request that is due through e, Concurrency at
// a time, and records each outcome durably: the chain of an enrolled
// request, the error of a refused one, or the next attempt of one that
// failed for a reason a retry may cure (network, 5xx, 202/503 Retry-After,
// quota). A request the process dies while sending is sent again after
// restart; the server answers with the certificate it already issued for
// that CSR, so no device gets two. Calls to Flush are serialized.
func (q *Queue) Flush(ctx context.Context, e enroll.Enroller) (Stats, error) {
	q.flushMu.Lock()
	defer q.flushMu.Unlock()
	var st Stats
	rows, err := q.db.Read.QueryContext(ctx, `SELECT key, csr, profile, evidence, state, attempts, next_ns, last_err, chain
		FROM requests WHERE state = ? AND next_ns <= ? ORDER BY next_ns, key`, Pending, q.now().UnixNano())
	if err != nil {
		return st, fmt.Errorf("queue: %w", err)
	}
	var due []*Item
	for rows.Next() {
		it, err := scanItem(rows.Scan)
		if err != nil {
			rows.Close()
			return st, err
		}
		due = append(due, it)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return st, err
	}
	var mu sync.Mutex
	var firstErr error
	sem := make(chan struct{}, q.conc)
	var wg sync.WaitGroup
	for _, it := range due {
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			outcome, err := q.attempt(ctx, e, it)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if firstErr == nil {
					firstErr = err
				}
				return
			}
			switch outcome {
			case Done:
				st.Done++
			case Failed:
				st.Failed++
			default:
				st.Retry++
			}
		})
	}
	wg.Wait()
	if err := q.db.Read.QueryRowContext(context.WithoutCancel(ctx), `SELECT count(*) FROM requests WHERE state = ?`, Pending).Scan(&st.Pending); err != nil && firstErr == nil {
		firstErr = err
	}
	if firstErr == nil {
		firstErr = ctx.Err()
	}
	return st, firstErr
}

// attempt sends one request and records the outcome.
func (q *Queue) attempt(ctx context.Context, e enroll.Enroller, it *Item) (State, error) {
	actx, cancel := context.WithTimeout(ctx, q.timeout)
	chain, err := e.Enroll(actx, &it.Request)
	cancel()
	if err != nil && ctx.Err() != nil {
		// Stopped by the caller: the request stays as it was.
		return Pending, nil
	}
	wctx := context.WithoutCancel(ctx)
	if err == nil {
		var der []byte
		for _, c := range chain {
			der = append(der, c.Raw...)
		}
		return Done, q.db.Do(wctx, func(tx *sql.Tx) error {
			_, err := tx.Exec(`UPDATE requests SET state = ?, chain = ?, attempts = attempts + 1, last_err = '' WHERE key = ?`, Done, der, it.Key[:])
			return err
		})
	}
	if permanent(err) {
		return Failed, q.db.Do(wctx, func(tx *sql.Tx) error {
			_, err := tx.Exec(`UPDATE requests SET state = ?, attempts = attempts + 1, last_err = ? WHERE key = ?`, Failed, err.Error(), it.Key[:])
			return err
		})
	}
	wait := q.backoff(it.Attempts + 1)
	var rl *est.RetryLaterError
	if errors.As(err, &rl) && rl.After > wait {
		wait = min(rl.After, q.max)
	}
	next := q.now().Add(wait).UnixNano()
	return Pending, q.db.Do(wctx, func(tx *sql.Tx) error {
		_, err := tx.Exec(`UPDATE requests SET attempts = attempts + 1, next_ns = ?, last_err = ? WHERE key = ?`, next, err.Error(), it.Key[:])
		return err
	})
}

// backoff is MinBackoff·2^(n-1), capped, with ±20% jitter.
func (q *Queue) backoff(n int) time.Duration {
	d := q.min
	for i := 1; i < n && d < q.max; i++ {
		d *= 2
	}
	d = min(d, q.max)
	j := time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
	return j
}

// permanent reports whether err is a refusal a retry cannot cure: the
// registration authority's word (enroll.Retryable), or an EST answer that
// no retry changes.
func permanent(err error) bool {
	if errors.Is(err, enroll.ErrRefused) {
		return !enroll.Retryable(err)
	}
	var se *est.StatusError
	if errors.As(err, &se) {
		return !se.Temporary()
	}
	return errors.Is(err, est.ErrBadResponse) || errors.Is(err, enroll.ErrInvalidConfig)
}

// Run flushes the queue through e until ctx ends: at once, then whenever
// the next pending request is due or Add adds one (checking at least every
// MaxBackoff). It returns ctx.Err().
func (q *Queue) Run(ctx context.Context, e enroll.Enroller) error {
	for {
		if _, err := q.Flush(ctx, e); err != nil && ctx.Err() != nil {
			return ctx.Err()
		}
		wait := q.max
		var next sql.NullInt64
		if err := q.db.Read.QueryRowContext(ctx, `SELECT min(next_ns) FROM requests WHERE state = ?`, Pending).Scan(&next); err == nil && next.Valid {
			wait = min(max(time.Unix(0, next.Int64).Sub(q.now()), 0), q.max)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-q.wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// Wait returns the chain of the request with key once it is done, or its
// error once it failed, polling every interval (if zero, 100 ms) until ctx
// ends. Someone must be running Flush or Run.
func (q *Queue) Wait(ctx context.Context, key Key, interval time.Duration) ([]*x509.Certificate, error) {
	if interval <= 0 {
		interval = 100 * time.Millisecond
	}
	for {
		it, err := q.Get(ctx, key)
		if err != nil {
			return nil, err
		}
		switch it.State {
		case Done:
			return it.Chain, nil
		case Failed:
			return nil, &FailedError{Key: key, Reason: it.LastError}
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(interval):
		}
	}
}

// FailedError is returned by Wait for a request refused for good.
type FailedError struct {
	Key    Key
	Reason string
}

// Error describes the failure.
func (e *FailedError) Error() string {
	return "queue: request " + e.Key.String()[:16] + "… refused: " + e.Reason
}
