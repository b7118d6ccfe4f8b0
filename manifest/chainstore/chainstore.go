package chainstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/ztmkit/ztm/internal/groupcommit"
	"github.com/ztmkit/ztm/internal/sqlitefile"
	"github.com/ztmkit/ztm/manifest"
)

// Sentinel errors. The refusals of an append are package manifest's, the
// same for every step store; they are aliased here so that code written
// against chainstore's names keeps working.
var (
	// ErrFork is [manifest.ErrFork]: Append was given a step whose
	// sequence number is already stored for its device.
	ErrFork = manifest.ErrFork
	// ErrOutOfOrder is [manifest.ErrOutOfOrder]: Append was given a step
	// that does not follow the device's last stored step (a first step
	// with a sequence other than 0, or a gap).
	ErrOutOfOrder = manifest.ErrOutOfOrder
	// ErrBrokenLink is [manifest.ErrBrokenLink]: Append was given a step
	// whose previous-step digest is not the digest of the stored
	// predecessor's bytes.
	ErrBrokenLink = manifest.ErrBrokenLink
	// ErrNotFound is returned when a device has no stored step. It is
	// manifest.ErrNoSteps, what every step store returns.
	ErrNotFound = manifest.ErrNoSteps
	// ErrClosed is returned by every method after Close.
	ErrClosed = errors.New("chainstore: store is closed")
	// ErrFileHeader is returned by Open for a file whose SQLite header
	// names file format versions SQLite would open read-only or not at
	// all (a damaged header): the store would fail at its first append.
	ErrFileHeader = errors.New("chainstore: damaged SQLite file header")
)

// AppendError is [manifest.AppendError]: why Append refused a step. It
// wraps one of ErrFork, ErrOutOfOrder or ErrBrokenLink.
type AppendError = manifest.AppendError

// Store is a chain store over one SQLite database file.
type Store struct {
	// mu guards closed. Append and the readers hold it shared for their
	// whole call, so Close, which takes it exclusively, waits for them.
	mu     sync.RWMutex
	db     *sql.DB // the writer's one connection
	read   *sql.DB // readers: in WAL mode they see committed data, and do not wait for the writer
	closed bool

	// The writer's statements, prepared once on its connection, and the
	// readers' on theirs.
	head, insert *sql.Stmt
	last         *sql.Stmt

	reqs chan *appendReq // to the writer
	quit chan struct{}   // closed by Close to stop the writer
	done chan struct{}   // closed by the writer when it stops
}

// appendReq is one Append or AppendAll waiting for the writer: steps of
// one device, in order, stored together or not at all.
type appendReq struct {
	steps []*manifest.SignedStep
	res   chan error // buffered: the writer never blocks on it
}

// maxBatch bounds the appends one transaction takes.
const maxBatch = 256

// Linger is how long the writer, after a commit that held several appends
// (the sign of concurrent callers), keeps collecting appends before the
// next commit, so that one sync serves more of them. A lone caller never
// waits.
const Linger = time.Millisecond

const schema = `
CREATE TABLE IF NOT EXISTS steps (
	subject BLOB    NOT NULL,
	seq     INTEGER NOT NULL,
	lot     TEXT    NOT NULL,
	name    TEXT    NOT NULL,
	raw     BLOB    NOT NULL,
	PRIMARY KEY (subject, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS steps_by_lot ON steps (lot, subject);
`

// Open opens (creating it if needed) the store in the database file at
// path. The file's directory must exist; it is synced after the file is
// created so that the new file's entry survives a crash. A file whose
// SQLite header names file format versions SQLite would open read-only
// is refused with ErrFileHeader, before anything is written.
func Open(ctx context.Context, path string) (*Store, error) {
	if err := sqlitefile.CheckHeader(path); err != nil {
		return nil, openHeaderErr(path, err)
	}
	_, statErr := os.Stat(path)
	q := url.Values{}
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "foreign_keys(ON)")
	q.Set("_txlock", "immediate")
	dsn := "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + q.Encode()
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("chainstore: failed to open %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("chainstore: failed to create schema in %s: %w", path, err)
	}
	if errors.Is(statErr, os.ErrNotExist) {
		if err := syncDir(filepath.Dir(path)); err != nil {
			db.Close()
			return nil, err
		}
	}
	read, err := sql.Open("sqlite", dsn)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("chainstore: failed to open %s: %w", path, err)
	}
	read.SetMaxOpenConns(4)
	st := &Store{
		db:   db,
		read: read,
		reqs: make(chan *appendReq),
		quit: make(chan struct{}),
		done: make(chan struct{}),
	}
	for _, p := range []struct {
		db  *sql.DB
		dst **sql.Stmt
		sql string
	}{
		{db, &st.head, headQuery},
		{db, &st.insert, `INSERT INTO steps (subject, seq, lot, name, raw) VALUES (?, ?, ?, ?, ?)`},
		{read, &st.last, headQuery},
	} {
		if *p.dst, err = p.db.PrepareContext(ctx, p.sql); err != nil {
			st.closeDBs()
			return nil, fmt.Errorf("chainstore: failed to open %s: %w", path, err)
		}
	}
	go st.writer()
	return st, nil
}

// openHeaderErr is Open's error for what sqlitefile.CheckHeader
// returned.
func openHeaderErr(path string, err error) error {
	var ve *sqlitefile.VersionError
	if errors.As(err, &ve) {
		return fmt.Errorf("%w: %s: %v", ErrFileHeader, path, ve)
	}
	return fmt.Errorf("chainstore: failed to open %s: %w", path, err)
}

// headQuery reads a device's latest step.
const headQuery = `SELECT seq, raw FROM steps WHERE subject = ? ORDER BY seq DESC LIMIT 1`

// closeDBs closes the prepared statements, then the databases.
func (s *Store) closeDBs() error {
	var errs []error
	for _, st := range []*sql.Stmt{s.head, s.insert, s.last} {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	return errors.Join(append(errs, s.read.Close(), s.db.Close())...)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("chainstore: failed to sync directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("chainstore: failed to sync directory: %w", err)
	}
	return nil
}

// usable returns ErrClosed after Close, and an error for a Store not made by
// Open (a zero Store), whose methods would otherwise panic or block. s.mu is
// held.
func (s *Store) usable() error {
	switch {
	case s.closed:
		return ErrClosed
	case s.db == nil || s.reqs == nil:
		return errors.New("chainstore: Store not made by Open")
	}
	return nil
}

// Close closes the database. Further calls return ErrClosed.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.usable(); err != nil {
		return err
	}
	s.closed = true
	close(s.quit)
	<-s.done
	return s.closeDBs()
}

// Append parses a signed step (its exact COSE_Sign1 bytes), checks that it
// follows its device's last stored step, and stores it durably. It returns
// the parsed step. Refusals are a [*AppendError] (wrapping ErrFork,
// ErrOutOfOrder or ErrBrokenLink) or a decoding error from
// [manifest.ParseSignedStep]; a refused step changes nothing.
//
// ctx bounds the wait for the writer to take the step; once taken, Append
// waits for the commit, so that a step it reports as failed was not stored.
func (s *Store) Append(ctx context.Context, raw []byte) (*manifest.SignedStep, error) {
	steps, err := s.AppendAll(ctx, raw)
	if err != nil {
		return nil, err
	}
	return steps[0], nil
}

// AppendAll is Append for consecutive steps of one device, in order: the
// first must follow the device's last stored step and each next one the
// step before it. They are stored in one durable commit, all or none: a
// refusal of any of them (an [*AppendError] naming it) stores none.
func (s *Store) AppendAll(ctx context.Context, raws ...[]byte) ([]*manifest.SignedStep, error) {
	steps, err := manifest.ParseAppend(raws...)
	if err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.usable(); err != nil {
		return nil, err
	}
	req := &appendReq{steps: steps, res: make(chan error, 1)}
	select {
	case s.reqs <- req:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if err := <-req.res; err != nil {
		return nil, err
	}
	return steps, nil
}

// writer commits the appends waiting, a batch per transaction, until Close.
func (s *Store) writer() {
	defer close(s.done)
	// Close waits for the Appends in progress, so none is left queued;
	// any that were would be refused, not lost.
	for _, r := range groupcommit.Run(s.reqs, s.quit, groupcommit.Options{MaxBatch: maxBatch, Linger: Linger}, s.commit) {
		r.res <- ErrClosed
	}
}

// commit writes a batch in one transaction and answers every request: its
// refusal, or nil once the transaction is committed. If the transaction
// fails, every request in it fails and nothing is stored.
func (s *Store) commit(batch []*appendReq) {
	ctx := context.Background()
	failAll := func(err error) {
		for _, r := range batch {
			r.res <- err
		}
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		failAll(fmt.Errorf("chainstore: failed to begin: %w", err))
		return
	}
	head, insert := tx.Stmt(s.head), tx.Stmt(s.insert)
	results := make([]error, len(batch))
	for i, r := range batch {
		err := appendTx(ctx, head, insert, r.steps)
		var refusal *AppendError
		if err != nil && !errors.As(err, &refusal) {
			tx.Rollback()
			failAll(err)
			return
		}
		results[i] = err
	}
	if err := tx.Commit(); err != nil {
		failAll(fmt.Errorf("chainstore: failed to commit: %w", err))
		return
	}
	for i, r := range batch {
		r.res <- results[i]
	}
}

// appendTx checks consecutive steps of one device against its stored
// chain with [manifest.CheckAppend], inside a transaction (head and insert
// are its statements), and inserts them. It returns a *AppendError for a
// refusal, which writes nothing, and any other error for a failure of the
// database.
func appendTx(ctx context.Context, head, insert *sql.Stmt, steps []*manifest.SignedStep) error {
	var n uint64 // steps stored
	var last []byte
	var seq int64
	switch err := head.QueryRowContext(ctx, steps[0].Step.Subject).Scan(&seq, &last); {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return fmt.Errorf("chainstore: failed to read chain: %w", err)
	default:
		n = uint64(seq) + 1
	}
	// Check them all before writing any, the later ones against the
	// earlier ones.
	if err := manifest.CheckAppend(n, last, steps...); err != nil {
		return err
	}
	for _, ss := range steps {
		st := ss.Step
		if _, err := insert.ExecContext(ctx, st.Subject, int64(st.Sequence), st.Lot, st.Name, ss.Raw); err != nil {
			return fmt.Errorf("chainstore: failed to store step: %w", err)
		}
	}
	return nil
}

// Last returns a device's latest stored step, parsed from its exact stored
// bytes: the step the device's next one must follow. It returns
// ErrNotFound if none is stored.
func (s *Store) Last(ctx context.Context, subject []byte) (*manifest.SignedStep, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.usable(); err != nil {
		return nil, err
	}
	var seq int64
	var raw []byte
	switch err := s.last.QueryRowContext(ctx, subject).Scan(&seq, &raw); {
	case errors.Is(err, sql.ErrNoRows):
		return nil, ErrNotFound
	case err != nil:
		return nil, fmt.Errorf("chainstore: failed to read chain: %w", err)
	}
	ss, err := manifest.ParseSignedStep(raw)
	if err != nil {
		return nil, fmt.Errorf("chainstore: stored step %d of %x: %w", seq, subject, err)
	}
	return ss, nil
}

// Chain returns a device's stored steps in order, parsed from their exact
// stored bytes. It returns ErrNotFound if none is stored.
func (s *Store) Chain(ctx context.Context, subject []byte) (manifest.Chain, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.usable(); err != nil {
		return nil, err
	}
	rows, err := s.read.QueryContext(ctx, `SELECT raw FROM steps WHERE subject = ? ORDER BY seq`, subject)
	if err != nil {
		return nil, fmt.Errorf("chainstore: failed to read chain: %w", err)
	}
	defer rows.Close()
	var c manifest.Chain
	for rows.Next() {
		var raw []byte
		if err := rows.Scan(&raw); err != nil {
			return nil, fmt.Errorf("chainstore: failed to read chain: %w", err)
		}
		ss, err := manifest.ParseSignedStep(raw)
		if err != nil {
			return nil, fmt.Errorf("chainstore: stored step %d of %x: %w", len(c), subject, err)
		}
		c = append(c, ss)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("chainstore: failed to read chain: %w", err)
	}
	if len(c) == 0 {
		return nil, ErrNotFound
	}
	return c, nil
}

// Lot calls fn, in subject order, for every device whose latest step names
// lot, with the exact bytes of that latest step: the leaves of the lot's
// manifest (see [manifest.Lot]). It stops at fn's first error and returns
// it. fn must not call the Store.
func (s *Store) Lot(ctx context.Context, lot string, fn func(subject, latest []byte) error) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.usable(); err != nil {
		return err
	}
	rows, err := s.read.QueryContext(ctx, `
SELECT s.subject, s.raw FROM steps s
WHERE s.lot = ? AND s.seq = (SELECT MAX(seq) FROM steps t WHERE t.subject = s.subject)
ORDER BY s.subject`, lot)
	if err != nil {
		return fmt.Errorf("chainstore: failed to list lot: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var subject, raw []byte
		if err := rows.Scan(&subject, &raw); err != nil {
			return fmt.Errorf("chainstore: failed to list lot: %w", err)
		}
		if err := fn(subject, raw); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("chainstore: failed to list lot: %w", err)
	}
	return nil
}

// Devices returns the subjects of the devices whose latest step names lot,
// in order.
func (s *Store) Devices(ctx context.Context, lot string) ([][]byte, error) {
	var out [][]byte
	err := s.Lot(ctx, lot, func(subject, _ []byte) error {
		out = append(out, subject)
		return nil
	})
	return out, err
}
