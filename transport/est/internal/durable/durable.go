// Package durable opens the SQLite file of the station's offline queue
// (package queue) in WAL mode with synchronous=FULL, and runs its writes
// through one writer goroutine that commits concurrent writes together
// (group commit): each caller is answered only after the transaction
// holding its write is on stable storage.
//
// The writer is the loop of package internal/groupcommit, as the CA
// ledgers' are: when the transaction it last committed held more than one
// write (callers are concurrent), it waits up to [Linger] for more writes
// before committing, so that one sync serves more callers. After a
// transaction of one write it never waits: a lone caller gets no added
// latency.
package durable

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	_ "modernc.org/sqlite" // database/sql driver "sqlite"

	"github.com/ztmkit/ztm/internal/groupcommit"
	"github.com/ztmkit/ztm/internal/sqlitefile"
)

// ErrClosed is returned by Do after Close.
var ErrClosed = errors.New("durable: closed")

// Open opens (creating if absent) the SQLite database at path with WAL and
// synchronous=FULL, runs schema in one transaction, and starts the writer.
func Open(ctx context.Context, path, schema string) (*DB, error) {
	// A damaged header (*sqlitefile.VersionError) would let SQLite open
	// the file read-only: refused here, not at the first write.
	if err := sqlitefile.CheckHeader(path); err != nil {
		return nil, err
	}
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_txlock", "immediate")
	dsn := "file:" + path + "?" + q.Encode()
	w, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	w.SetMaxOpenConns(1)
	r, err := sql.Open("sqlite", dsn)
	if err != nil {
		w.Close()
		return nil, err
	}
	r.SetMaxOpenConns(4)
	if _, err := w.ExecContext(ctx, schema); err != nil {
		w.Close()
		r.Close()
		return nil, fmt.Errorf("durable: schema: %w", err)
	}
	d := &DB{w: w, Read: r, ops: make(chan *op), stop: make(chan struct{}), done: make(chan struct{})}
	go d.loop()
	return d, nil
}

// DB is a database with one writer goroutine and a pool of readers.
type DB struct {
	w *sql.DB
	// Read is the pool for reads; it sees committed data only.
	Read *sql.DB

	ops       chan *op
	commits   atomic.Int64 // transactions committed, for tests
	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

type op struct {
	fn  func(*sql.Tx) error
	err chan error
}

// maxBatch bounds the writes committed in one transaction.
const maxBatch = 256

// Linger is how long the writer, holding a first write after a transaction
// of several, waits for more before it commits.
const Linger = time.Millisecond

// Do runs fn in a write transaction shared with other concurrent writes and
// returns once that transaction is committed durably. fn runs inside a
// savepoint: if it returns an error its writes are rolled back alone and
// that error is returned. If ctx ends first, Do returns ctx.Err() and fn
// may still be committed.
func (d *DB) Do(ctx context.Context, fn func(*sql.Tx) error) error {
	o := &op{fn: fn, err: make(chan error, 1)}
	select {
	case d.ops <- o:
	case <-d.stop:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-o.err:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// loop is the writer (see package groupcommit): batches of writes, one
// transaction each, lingering under concurrent load.
func (d *DB) loop() {
	defer close(d.done)
	for _, o := range groupcommit.Run(d.ops, d.stop, groupcommit.Options{MaxBatch: maxBatch, Linger: Linger}, d.commit) {
		o.err <- ErrClosed
	}
}

func (d *DB) commit(batch []*op) {
	ctx := context.Background()
	fail := func(err error) {
		for _, o := range batch {
			o.err <- err
		}
	}
	tx, err := d.w.BeginTx(ctx, nil)
	if err != nil {
		fail(err)
		return
	}
	errs := make([]error, len(batch))
	for i, o := range batch {
		if _, err := tx.Exec("SAVEPOINT op"); err != nil {
			tx.Rollback()
			fail(err)
			return
		}
		if errs[i] = o.fn(tx); errs[i] != nil {
			if _, err := tx.Exec("ROLLBACK TO op"); err != nil {
				tx.Rollback()
				fail(err)
				return
			}
		}
		if _, err := tx.Exec("RELEASE op"); err != nil {
			tx.Rollback()
			fail(err)
			return
		}
	}
	if err := tx.Commit(); err != nil {
		fail(err)
		return
	}
	d.commits.Add(1)
	for i, o := range batch {
		o.err <- errs[i]
	}
}

// Close stops the writer (writes in progress finish) and closes the
// database. It is idempotent.
func (d *DB) Close() error {
	var err error
	d.closeOnce.Do(func() {
		close(d.stop)
		<-d.done
		err = errors.Join(d.w.Close(), d.Read.Close())
	})
	return err
}
