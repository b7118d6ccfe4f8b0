package sqlite

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	msqlite "modernc.org/sqlite"

	"github.com/ztmkit/ztm/ca"
	"github.com/ztmkit/ztm/ca/ledger/internal/sqlrecord"
	"github.com/ztmkit/ztm/internal/groupcommit"
)

// applicationID marks a SQLite file as a ztm CA ledger ("ZTML").
const applicationID = 0x5A544D4C

// schemaVersion is the PRAGMA user_version of the current schema: the
// schema below, then each of migrations.
const schemaVersion int64 = 1 + int64(len(migrations))

// migrations take the schema from version i+1 to i+2. Released ones are
// never edited; a change is a new entry.
var migrations = [...]string{
	// 2: idempotency keys (ca.Record.IdempotencyKey), unique.
	`ALTER TABLE records ADD COLUMN idem_key BLOB CHECK (idem_key IS NULL OR length(idem_key) BETWEEN 1 AND 64);
	CREATE UNIQUE INDEX records_idem_key ON records (idem_key) WHERE idem_key IS NOT NULL;`,
	// 3: the requester certificate's serial (ca.Record.RequesterSerial).
	`ALTER TABLE records ADD COLUMN requester_serial BLOB CHECK (requester_serial IS NULL OR length(requester_serial) BETWEEN 1 AND 64);`,
	// 4: the device an IDevID names (ca.Record.Device), one live each.
	`ALTER TABLE records ADD COLUMN device BLOB CHECK (device IS NULL OR length(device) BETWEEN 1 AND 160);
	CREATE INDEX records_device ON records (device) WHERE kind = 1 AND device IS NOT NULL;`,
	// 5: how the certified key came to be (ca.Record.KeyProvenance); 0,
	// unrecorded, for the records before.
	`ALTER TABLE records ADD COLUMN key_provenance INTEGER NOT NULL DEFAULT 0
		CHECK (key_provenance = 0 OR (kind = 1 AND key_provenance BETWEEN 1 AND 4));`,
}

const schema = `
CREATE TABLE records (
	seq         INTEGER PRIMARY KEY,
	kind        INTEGER NOT NULL CHECK (kind IN (1, 2)),
	serial      BLOB    NOT NULL,
	subject     TEXT    NOT NULL,
	pubkey_hash BLOB,
	profile     TEXT    NOT NULL,
	requester   TEXT    NOT NULL,
	evidence    BLOB,
	step        BLOB,
	time_ns     INTEGER NOT NULL,
	cert        BLOB,
	reason      INTEGER NOT NULL,
	prev_hash   BLOB    NOT NULL,
	hash        BLOB    NOT NULL
) STRICT;
CREATE UNIQUE INDEX records_issued_serial  ON records (serial) WHERE kind = 1;
CREATE UNIQUE INDEX records_revoked_serial ON records (serial) WHERE kind = 2;
CREATE INDEX records_revocations ON records (seq) WHERE kind = 2;
CREATE INDEX records_quota ON records (requester, time_ns) WHERE kind = 1;
CREATE TABLE crl_number (
	id INTEGER PRIMARY KEY CHECK (id = 1),
	n  INTEGER NOT NULL
) STRICT;
INSERT INTO crl_number (id, n) VALUES (1, 0);
`

// Options tune a ledger. The zero value works.
type Options struct {
	// MaxBatch is the most appends committed in one transaction. If zero,
	// 256.
	MaxBatch int
	// BusyTimeout is how long a statement waits for another process's
	// lock. If zero, 10 seconds.
	BusyTimeout time.Duration
	// Linger is how long the writer, holding a first append, keeps
	// collecting more before it commits — only when the previous
	// transaction held more than one write, the sign of concurrent
	// callers. A lone caller never waits. If zero, DefaultLinger; if
	// negative, the writer never lingers.
	Linger time.Duration
	// Checkpoints is where the CA keeps its signed ledger checkpoints (see
	// ca.Checkpoint), and CheckpointKey the CA's public key that verifies
	// them; set both or neither. Open and Verify then refuse, with a
	// *ca.CheckpointError, a ledger shorter than or different from the
	// newest checkpoint, and one whose CRL counter is below it. If nil,
	// only the hash chain and the database's own integrity are checked,
	// and a cut tail goes unseen here.
	Checkpoints   ca.CheckpointSource
	CheckpointKey crypto.PublicKey
	// QuickOpen makes Open check only the database's integrity and, with
	// Checkpoints, the ledger's length and the record at the newest
	// checkpoint, instead of walking the whole chain as Verify does
	// (about 15 µs a record).
	//
	// WARNING: a record changed behind the CA's back, before the newest
	// checkpoint, is then found only by the next Verify; run it soon.
	QuickOpen bool
}

// DefaultLinger is the writer's linger when [Options].Linger is zero.
const DefaultLinger = time.Millisecond

// Ledger is a ca.Ledger in one SQLite file. It is safe for concurrent use.
type Ledger struct {
	path     string
	db       *sql.DB
	writer   *sql.Conn
	maxBatch int
	linger   time.Duration

	stmts     *stmts
	lookup    *sql.Stmt // Lookup's query, prepared once on the read pool
	lookupKey *sql.Stmt // LookupRequest's

	commits atomic.Uint64
	ops     atomic.Uint64

	checkpoints   ca.CheckpointSource
	checkpointKey crypto.PublicKey
	link          *sql.Stmt // the next record's prev_hash and the head's seq, for lookups
	fault         atomic.Pointer[error]
	// written is the last record this Ledger appended, or the head it
	// opened; only the writer goroutine uses it after Open.
	written ca.Head

	queue     chan op
	closing   chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

var _ ca.Ledger = (*Ledger)(nil)

// Open opens the ledger in the file at path, creating the file and its
// schema when absent. A file that is not a SQLite database, or a database
// that is not a ztm ledger, gives an *OpenError wrapping ErrNotLedger; a
// ledger with a newer schema one wrapping ErrSchemaVersion. Unless
// Options.QuickOpen is set, Open then checks the ledger as Verify does and
// refuses a corrupt one with an *OpenError wrapping the failure (a
// *ca.StorageError, *ca.ChainError or *ca.CheckpointError, all wrapping
// ca.ErrLedgerCorrupt).
func Open(ctx context.Context, path string, opts Options) (*Ledger, error) {
	if path == "" {
		return nil, &OpenError{Path: path, Err: errors.New("empty path")}
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 256
	}
	if opts.BusyTimeout <= 0 {
		opts.BusyTimeout = 10 * time.Second
	}
	switch {
	case opts.Linger == 0:
		opts.Linger = DefaultLinger
	case opts.Linger < 0:
		opts.Linger = 0
	}
	if err := checkFileHeader(path); err != nil {
		return nil, &OpenError{Path: path, Err: err}
	}
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", opts.BusyTimeout.Milliseconds()))
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_pragma", "foreign_keys(ON)")
	dsn := (&url.URL{Scheme: "file", OmitHost: true, Path: path, RawQuery: q.Encode()}).String()
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, &OpenError{Path: path, Err: err}
	}
	db.SetMaxOpenConns(8)
	db.SetMaxIdleConns(8)
	db.SetConnMaxIdleTime(0)
	if (opts.Checkpoints == nil) != (opts.CheckpointKey == nil) {
		return nil, &OpenError{Path: path, Err: errors.New("set Options.Checkpoints and CheckpointKey together")}
	}
	l := &Ledger{path: path, db: db, maxBatch: opts.MaxBatch, linger: opts.Linger,
		checkpoints: opts.Checkpoints, checkpointKey: opts.CheckpointKey}
	if err := l.init(ctx); err != nil {
		db.Close()
		return nil, err
	}
	if err := l.checkOnOpen(ctx, opts.QuickOpen); err != nil {
		db.Close()
		return nil, &OpenError{Path: path, Err: err}
	}
	if l.written, err = l.Head(ctx); err != nil {
		db.Close()
		return nil, &OpenError{Path: path, Err: err}
	}
	w, err := db.Conn(ctx)
	if err != nil {
		db.Close()
		return nil, &OpenError{Path: path, Err: err}
	}
	l.writer = w
	if l.stmts, err = prepare(ctx, w); err != nil {
		w.Close()
		db.Close()
		return nil, &OpenError{Path: path, Err: err}
	}
	if l.lookup, err = db.PrepareContext(ctx, lookupQuery); err == nil {
		if l.lookupKey, err = db.PrepareContext(ctx, lookupKeyQuery); err != nil {
			l.lookup.Close()
		} else if l.link, err = db.PrepareContext(ctx, linkQuery); err != nil {
			l.lookup.Close()
			l.lookupKey.Close()
		}
	}
	if err != nil {
		l.stmts.close()
		w.Close()
		db.Close()
		return nil, &OpenError{Path: path, Err: err}
	}
	l.queue = make(chan op, opts.MaxBatch)
	l.closing = make(chan struct{})
	l.done = make(chan struct{})
	go l.run()
	return l, nil
}

// stmts are the writer's statements, prepared once on its connection.
type stmts struct {
	begin, commit, rollback                 *sql.Stmt
	quota, revState, tail, insert, crlNext  *sql.Stmt
	keyTaken, hashAt, liveDevice, savepoint *sql.Stmt
	release, rollbackTo                     *sql.Stmt
}

func prepare(ctx context.Context, c *sql.Conn) (*stmts, error) {
	s := &stmts{}
	for _, p := range []struct {
		dst **sql.Stmt
		sql string
	}{
		{&s.begin, "BEGIN IMMEDIATE"},
		{&s.commit, "COMMIT"},
		{&s.rollback, "ROLLBACK"},
		{&s.quota, quotaQuery},
		{&s.revState, revStateQuery},
		{&s.tail, headQuery},
		{&s.keyTaken, keyTakenQuery},
		{&s.hashAt, hashAtQuery},
		{&s.liveDevice, liveDeviceQuery},
		{&s.savepoint, "SAVEPOINT supersede"},
		{&s.release, "RELEASE supersede"},
		{&s.rollbackTo, "ROLLBACK TO supersede"},
		{&s.insert, `INSERT INTO records
			(seq, kind, serial, subject, pubkey_hash, profile, requester, evidence, step, time_ns, cert, reason, prev_hash, hash, idem_key, requester_serial, device, key_provenance)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`},
		{&s.crlNext, "UPDATE crl_number SET n = n + 1 WHERE id = 1 RETURNING n"},
	} {
		st, err := c.PrepareContext(ctx, p.sql)
		if err != nil {
			return nil, err
		}
		*p.dst = st
	}
	return s, nil
}

func (s *stmts) close() error {
	var errs []error
	for _, st := range []*sql.Stmt{s.begin, s.commit, s.rollback, s.quota, s.revState, s.tail, s.insert, s.crlNext, s.keyTaken, s.hashAt,
		s.liveDevice, s.savepoint, s.release, s.rollbackTo} {
		errs = append(errs, st.Close())
	}
	return errors.Join(errs...)
}

// classify turns a SQLite error on open into an *OpenError.
func (l *Ledger) openErr(err error) error {
	var se *msqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case 26, 11: // SQLITE_NOTADB, SQLITE_CORRUPT
			return &OpenError{Path: l.path, Err: ErrNotLedger, Detail: se.Error()}
		}
	}
	return &OpenError{Path: l.path, Err: err}
}

func (l *Ledger) init(ctx context.Context) error {
	conn, err := l.db.Conn(ctx)
	if err != nil {
		return l.openErr(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return l.openErr(err)
	}
	committed := false
	defer func() {
		if !committed {
			conn.ExecContext(context.Background(), "ROLLBACK")
		}
	}()
	var appID, version, tables int64
	if err := conn.QueryRowContext(ctx, "PRAGMA application_id").Scan(&appID); err != nil {
		return l.openErr(err)
	}
	if err := conn.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return l.openErr(err)
	}
	if err := conn.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_schema").Scan(&tables); err != nil {
		return l.openErr(err)
	}
	switch {
	case appID == 0 && version == 0 && tables == 0:
		if _, err := conn.ExecContext(ctx, schema); err != nil {
			return l.openErr(err)
		}
		if _, err := conn.ExecContext(ctx, fmt.Sprintf("PRAGMA application_id = %d", applicationID)); err != nil {
			return l.openErr(err)
		}
		version = 1
	case appID != applicationID:
		return &OpenError{Path: l.path, Err: ErrNotLedger, Detail: fmt.Sprintf("application_id %#x", appID)}
	case version > schemaVersion || version < 1:
		return &OpenError{Path: l.path, Err: ErrSchemaVersion, Detail: fmt.Sprintf("schema version %d, this package reads %d", version, schemaVersion)}
	}
	for ; version < schemaVersion; version++ {
		if _, err := conn.ExecContext(ctx, migrations[version-1]); err != nil {
			return &OpenError{Path: l.path, Err: fmt.Errorf("migration to schema version %d: %w", version+1, err)}
		}
		if _, err := conn.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", version+1)); err != nil {
			return l.openErr(err)
		}
	}
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		return l.openErr(err)
	}
	committed = true
	return nil
}

// Close stops the writer, waiting for appends in progress, and closes the
// database. It is idempotent.
func (l *Ledger) Close() error {
	if l.closing == nil {
		return nil // not made by Open: nothing to close
	}
	var err error
	l.closeOnce.Do(func() {
		close(l.closing)
		<-l.done
		// Statements first: SQLite closes a connection, and checkpoints
		// the WAL into the database file, only once they are finalized.
		err = errors.Join(l.lookup.Close(), l.lookupKey.Close(), l.link.Close(), l.stmts.close(), l.writer.Close(), l.db.Close())
	})
	return err
}

// closed reports whether the ledger is closed; a Ledger not made by Open (a
// zero Ledger) is, so that its methods return ca.ErrLedgerClosed instead of
// panicking.
func (l *Ledger) closed() bool {
	if l.db == nil {
		return true
	}
	select {
	case <-l.closing:
		return true
	default:
		return false
	}
}

// op is one unit of work for the writer goroutine, applied inside a
// savepoint of the batch transaction.
type op struct {
	ctx   context.Context
	apply func(ctx context.Context, tx *batchTx) error
	reply chan error
}

// batchTx is the writer's view of the open transaction: the connection and
// the chain tail as it stands after the ops applied so far.
type batchTx struct {
	st       *stmts
	written  ca.Head // the last record this Ledger appended
	seq      uint64
	hash     []byte
	tailRead bool
}

func (t *batchTx) tail(ctx context.Context) error {
	if t.tailRead {
		return nil
	}
	var seq int64
	var hash []byte
	err := t.st.tail.QueryRowContext(ctx).Scan(&seq, &hash)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		t.seq, t.hash = 0, make([]byte, sha256.Size)
	case err != nil:
		return err
	default:
		t.seq, t.hash = uint64(seq), hash
	}
	if err := t.checkWritten(ctx); err != nil {
		return err
	}
	t.tailRead = true
	return nil
}

// checkWritten checks that the chain still holds the last record this
// Ledger appended: a tail cut (or cut and rewritten) behind its back while
// it runs is seen at the next append, before anything is appended to it.
// Appends by other processes on the same file only lengthen the chain.
func (t *batchTx) checkWritten(ctx context.Context) error {
	w := t.written
	switch {
	case w.Seq == 0:
		return nil
	case t.seq < w.Seq:
		return &ca.ChainError{Seq: w.Seq, Reason: fmt.Sprintf("ledger ends at record %d, below record %d this Ledger appended: its tail was cut", t.seq, w.Seq)}
	case t.seq == w.Seq:
		if !bytes.Equal(t.hash, w.Hash) {
			return &ca.ChainError{Seq: w.Seq, Reason: "the last record this Ledger appended was replaced"}
		}
		return nil
	}
	var h []byte
	if err := t.st.hashAt.QueryRowContext(ctx, int64(w.Seq)).Scan(&h); err != nil {
		return err
	}
	if !bytes.Equal(h, w.Hash) {
		return &ca.ChainError{Seq: w.Seq, Reason: "the last record this Ledger appended was replaced"}
	}
	return nil
}

// submit hands an op to the writer and waits for its answer, which comes
// after the batch it belongs to is committed.
func (l *Ledger) submit(ctx context.Context, apply func(ctx context.Context, tx *batchTx) error) error {
	if l.closed() {
		return ca.ErrLedgerClosed
	}
	o := op{ctx: ctx, apply: apply, reply: make(chan error, 1)}
	select {
	case l.queue <- o:
	case <-l.closing:
		return ca.ErrLedgerClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-o.reply:
		return err
	case <-l.done:
		// The writer stopped; it answered o if it took it.
		select {
		case err := <-o.reply:
			return err
		default:
			return ca.ErrLedgerClosed
		}
	case <-ctx.Done():
		return ctx.Err()
	}
}

// run is the single writer: it takes the first waiting op, then every op
// already queued (up to MaxBatch), applies them in one transaction, commits
// once, and answers each op. An op refused by a check fails alone; the
// others commit.
//
// When the previous transaction held more than one op, callers are
// concurrent: the writer then lingers, collecting ops until MaxBatch or
// the linger bound, so that one commit (its page writes and fsync) serves
// more of them. After a transaction of one op it never waits, so a lone
// caller pays no latency.
func (l *Ledger) run() {
	defer close(l.done)
	for _, o := range groupcommit.Run(l.queue, l.closing, groupcommit.Options{MaxBatch: l.maxBatch, Linger: l.linger}, l.runBatch) {
		o.reply <- ca.ErrLedgerClosed
	}
}

func (l *Ledger) runBatch(batch []op) {
	ctx := context.Background()
	errs := make([]error, len(batch))
	fail := func(err error) {
		for _, o := range batch {
			o.reply <- err
		}
	}
	if _, err := l.stmts.begin.ExecContext(ctx); err != nil {
		fail(fmt.Errorf("sqlite ledger: begin: %w", err))
		return
	}
	tx := &batchTx{st: l.stmts, written: l.written}
	for i, o := range batch {
		if err := o.ctx.Err(); err != nil {
			errs[i] = err
			continue
		}
		// An op reads what it checks and then writes with one statement,
		// which SQLite undoes alone when it fails on a constraint; so a
		// refusal (serial taken, quota, unknown or revoked serial or
		// requester) leaves the transaction and the chain tail as they
		// were. Any other error may have undone the whole transaction: the
		// batch fails.
		err := o.apply(ctx, tx)
		if err != nil && !isRefusal(err) {
			l.stmts.rollback.ExecContext(ctx)
			if errors.Is(err, ca.ErrLedgerCorrupt) {
				l.setFault(err)
			}
			fail(fmt.Errorf("sqlite ledger: %w", err))
			return
		}
		errs[i] = err
	}
	if _, err := l.stmts.commit.ExecContext(ctx); err != nil {
		l.stmts.rollback.ExecContext(ctx)
		fail(fmt.Errorf("sqlite ledger: commit: %w", err))
		return
	}
	if tx.tailRead {
		l.written = ca.Head{Seq: tx.seq, Hash: tx.hash}
	}
	l.commits.Add(1)
	l.ops.Add(uint64(len(batch)))
	for i, o := range batch {
		o.reply <- errs[i]
	}
}

func isRefusal(err error) bool {
	return errors.Is(err, ca.ErrSerialExists) || errors.Is(err, ca.ErrQuotaExceeded) || errors.Is(err, ca.ErrRequestExists) ||
		errors.Is(err, ca.ErrUnknownSerial) || errors.Is(err, ca.ErrAlreadyRevoked) ||
		errors.Is(err, ca.ErrRequesterRevoked) || errors.Is(err, ca.ErrRequesterUnknown) ||
		errors.Is(err, ca.ErrDeviceProvisioned)
}

// Stats counts the writer's work since Open.
type Stats struct {
	// Commits is the number of transactions committed.
	Commits uint64
	// Ops is the number of writes (appends and CRL numbers) they held; Ops
	// over Commits is the mean group-commit batch size.
	Ops uint64
}

// Stats returns the group-commit counters.
func (l *Ledger) Stats() Stats {
	return Stats{Commits: l.commits.Load(), Ops: l.ops.Load()}
}

// Append implements ca.Ledger. Concurrent calls share one transaction and
// one commit (group commit); each is answered after that commit.
func (l *Ledger) Append(ctx context.Context, rec *ca.Record, quota *ca.Quota) error {
	if err := rec.CheckAppendable(); err != nil {
		return fmt.Errorf("sqlite ledger: %w", err)
	}
	if err := l.refusal(); err != nil {
		return err
	}
	r := rec.Clone()
	r.Time = r.Time.UTC()
	err := l.submit(ctx, func(ctx context.Context, tx *batchTx) error {
		return l.appendTx(ctx, tx, r, quota)
	})
	if err != nil {
		return err
	}
	rec.Seq, rec.PrevHash, rec.Hash = r.Seq, r.PrevHash, r.Hash
	return nil
}

func (l *Ledger) appendTx(ctx context.Context, tx *batchTx, r *ca.Record, quota *ca.Quota) error {
	serial := r.Serial.Bytes()
	var n int64
	switch r.Kind {
	case ca.KindIssuance:
		// A revoked requester gets nothing, a repeat included.
		if r.RequesterSerial != nil {
			var issued, revoked int64
			if err := tx.st.revState.QueryRowContext(ctx, r.RequesterSerial.Bytes()).Scan(&issued, &revoked); err != nil {
				return err
			}
			if issued == 0 {
				return ca.ErrRequesterUnknown
			}
			if revoked > 0 {
				return ca.ErrRequesterRevoked
			}
		}
		// A serial already issued fails the INSERT on records_issued_serial,
		// a repeated request the one on records_idem_key. A repeat is
		// answered as such (ErrRequestExists) even where the device check
		// or the quota would refuse it: its key is looked up on those
		// refusals only, sparing every other issuance the query.
		refusal, err := issuanceRefusal(ctx, tx, r, quota)
		if err != nil {
			return err
		}
		if refusal == nil {
			break
		}
		if len(r.IdempotencyKey) > 0 {
			if err := tx.st.keyTaken.QueryRowContext(ctx, r.IdempotencyKey).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return ca.ErrRequestExists
			}
		}
		return refusal
	case ca.KindRevocation:
		var issued, revoked int64
		if err := tx.st.revState.QueryRowContext(ctx, serial).Scan(&issued, &revoked); err != nil {
			return err
		}
		if issued == 0 {
			return ca.ErrUnknownSerial
		}
		if revoked > 0 {
			return ca.ErrAlreadyRevoked
		}
	}
	if rv := r.SupersedingRevocation(); rv != nil {
		return insertSuperseding(ctx, tx, rv, r)
	}
	return insertRecord(ctx, tx, r)
}

// issuanceRefusal returns the refusal of issuance r by its device
// (ca.ErrDeviceProvisioned) or by quota (ca.ErrQuotaExceeded), or nil;
// err is a failure to query.
func issuanceRefusal(ctx context.Context, tx *batchTx, r *ca.Record, quota *ca.Quota) (refusal, err error) {
	if len(r.Device) > 0 {
		if err := checkDevice(ctx, tx, r); err != nil {
			if errors.Is(err, ca.ErrDeviceProvisioned) {
				return err, nil
			}
			return nil, err
		}
	}
	if quota != nil {
		var n int64
		if err := tx.st.quota.QueryRowContext(ctx, r.Requester, quota.Since.UnixNano()).Scan(&n); err != nil {
			return nil, err
		}
		if n >= int64(quota.Limit) {
			return ca.ErrQuotaExceeded, nil
		}
	}
	return nil, nil
}

// checkDevice refuses an issuance whose device holds a live issuance other
// than the one it supersedes.
func checkDevice(ctx context.Context, tx *batchTx, r *ca.Record) error {
	rows, err := tx.st.liveDevice.QueryContext(ctx, r.Device)
	if err != nil {
		return err
	}
	defer rows.Close()
	var live [][]byte
	for rows.Next() {
		var serial []byte
		if err := rows.Scan(&serial); err != nil {
			return err
		}
		live = append(live, serial)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	switch {
	case len(live) == 0 && r.Supersedes == nil:
		return nil
	case len(live) == 1 && r.Supersedes != nil && bytes.Equal(live[0], r.Supersedes.Bytes()):
		return nil
	}
	return ca.ErrDeviceProvisioned
}

// insertSuperseding records rv, the revocation of the certificate r
// supersedes, then r: both or neither.
func insertSuperseding(ctx context.Context, tx *batchTx, rv, r *ca.Record) error {
	if err := tx.tail(ctx); err != nil {
		return err
	}
	seq, hash := tx.seq, tx.hash
	if _, err := tx.st.savepoint.ExecContext(ctx); err != nil {
		return err
	}
	err := insertRecord(ctx, tx, rv)
	if err == nil {
		err = insertRecord(ctx, tx, r)
	}
	if err != nil {
		if _, rerr := tx.st.rollbackTo.ExecContext(ctx); rerr != nil {
			return errors.Join(err, rerr)
		}
		tx.seq, tx.hash = seq, hash
		r.Seq, r.PrevHash, r.Hash = 0, nil, nil
	}
	if _, rerr := tx.st.release.ExecContext(ctx); rerr != nil {
		return errors.Join(err, rerr)
	}
	return err
}

// insertRecord links r to the chain tail and inserts it.
func insertRecord(ctx context.Context, tx *batchTx, r *ca.Record) error {
	serial := r.Serial.Bytes()
	if err := tx.tail(ctx); err != nil {
		return err
	}
	r.Seq = tx.seq + 1
	r.PrevHash = tx.hash
	h, err := r.ChainHash(r.PrevHash)
	if err != nil {
		return err
	}
	r.Hash = h
	_, err = tx.st.insert.ExecContext(ctx, int64(r.Seq), int64(r.Kind), serial, r.Subject, nullBlob(r.PublicKeyHash), r.Profile, r.Requester,
		nullBlob(r.EvidenceDigest), nullBlob(r.StepDigest), r.Time.UnixNano(), nullBlob(r.Certificate),
		int64(r.Reason), r.PrevHash, r.Hash, nullBlob(r.IdempotencyKey), nullSerial(r.RequesterSerial), nullBlob(r.Device),
		int64(r.KeyProvenance))
	if err != nil {
		var se *msqlite.Error
		if errors.As(err, &se) && se.Code() == 2067 { // SQLITE_CONSTRAINT_UNIQUE
			switch {
			case strings.Contains(se.Error(), "idem_key"):
				return ca.ErrRequestExists
			case r.Kind == ca.KindIssuance:
				return ca.ErrSerialExists
			}
			return ca.ErrAlreadyRevoked
		}
		return err
	}
	tx.seq, tx.hash = r.Seq, r.Hash
	return nil
}

func nullSerial(n *big.Int) any {
	if n == nil {
		return nil
	}
	return n.Bytes()
}

func nullBlob(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}

// NextCRLNumber implements ca.Ledger; the number is committed before it
// is returned.
func (l *Ledger) NextCRLNumber(ctx context.Context) (*big.Int, error) {
	if err := l.refusal(); err != nil {
		return nil, err
	}
	var n int64
	err := l.submit(ctx, func(ctx context.Context, tx *batchTx) error {
		return tx.st.crlNext.QueryRowContext(ctx).Scan(&n)
	})
	if err != nil {
		return nil, err
	}
	return big.NewInt(n), nil
}

const recordColumns = sqlrecord.Columns

// liveDeviceQuery finds a device's unrevoked issuances (one at most, in a
// sound ledger) through records_device and records_revoked_serial.
const liveDeviceQuery = "SELECT r.serial FROM records r WHERE r.kind = 1 AND r.device = ?1 AND NOT EXISTS (SELECT 1 FROM records v WHERE v.kind = 2 AND v.serial = r.serial)"

func (l *Ledger) readErr(err error) error {
	if l.closed() {
		return ca.ErrLedgerClosed
	}
	var se *msqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case 11, 26: // SQLITE_CORRUPT, SQLITE_NOTADB
			return l.setFault(&ca.StorageError{Check: "read", Detail: se.Error()})
		}
	}
	return fmt.Errorf("sqlite ledger: %w", err)
}

// Lookup implements ca.Ledger.
func (l *Ledger) Lookup(ctx context.Context, serial *big.Int) (*ca.Status, error) {
	if l.closed() {
		return nil, ca.ErrLedgerClosed
	}
	if serial == nil || serial.Sign() <= 0 {
		return nil, ca.ErrUnknownSerial
	}
	if err := l.refusal(); err != nil {
		return nil, err
	}
	return l.status(ctx, l.lookup, serial.Bytes(), serial, nil, ca.ErrUnknownSerial)
}

// LookupRequest implements ca.Ledger.
func (l *Ledger) LookupRequest(ctx context.Context, key []byte) (*ca.Status, error) {
	if l.closed() {
		return nil, ca.ErrLedgerClosed
	}
	if len(key) == 0 || len(key) > ca.MaxIdempotencyKey {
		return nil, ca.ErrUnknownRequest
	}
	if err := l.refusal(); err != nil {
		return nil, err
	}
	return l.status(ctx, l.lookupKey, key, nil, key, ca.ErrUnknownRequest)
}

// LookupDevice implements ca.Ledger.
func (l *Ledger) LookupDevice(ctx context.Context, device []byte) (*ca.Status, error) {
	if l.closed() {
		return nil, ca.ErrLedgerClosed
	}
	if len(device) == 0 || len(device) > ca.MaxDeviceID {
		return nil, ca.ErrUnknownDevice
	}
	if err := l.refusal(); err != nil {
		return nil, err
	}
	var serials [][]byte
	rows, err := l.db.QueryContext(ctx, liveDeviceQuery, device)
	if err != nil {
		return nil, l.readErr(err)
	}
	for rows.Next() {
		var s []byte
		if err := rows.Scan(&s); err != nil {
			rows.Close()
			return nil, l.readErr(err)
		}
		serials = append(serials, s)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, l.readErr(err)
	}
	switch len(serials) {
	case 0:
		return nil, ca.ErrUnknownDevice
	case 1:
	default:
		return nil, l.setFault(&ca.ChainError{Reason: "lookup: two live issuances for one device"})
	}
	serial := new(big.Int).SetBytes(serials[0])
	st, err := l.status(ctx, l.lookup, serials[0], serial, nil, ca.ErrUnknownDevice)
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
func (l *Ledger) status(ctx context.Context, query *sql.Stmt, arg []byte, serial *big.Int, key []byte, notFound error) (*ca.Status, error) {
	rows, err := query.QueryContext(ctx, arg)
	if err != nil {
		return nil, l.readErr(err)
	}
	defer rows.Close()
	var found sqlrecord.Lookup
	for rows.Next() {
		r, err := sqlrecord.Scan(rows)
		if err != nil {
			return nil, l.readErr(err)
		}
		if err := found.Add(r); err != nil {
			return nil, l.setFault(err)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, l.readErr(err)
	}
	st, err := found.Status(serial, key, func(seq uint64) (next []byte, last int64, err error) {
		if err := l.link.QueryRowContext(ctx, int64(seq)+1).Scan(&next, &last); err != nil {
			return nil, 0, l.readErr(err)
		}
		return next, last, nil
	})
	return sqlrecord.Answer(st, err, l.setFault, notFound)
}

// linkQuery returns the prev_hash of record ?1 (NULL if there is none) and
// the last sequence number, both through the table's own b-tree.
const linkQuery = "SELECT (SELECT prev_hash FROM records WHERE seq = ?1), (SELECT max(seq) FROM records)"

// lookupQuery finds a serial's issuance and revocation through the partial
// unique indexes on serial; lookupKeyQuery an idempotency key's, through
// the one on idem_key.
const (
	lookupQuery    = "SELECT " + recordColumns + " FROM records WHERE kind = 1 AND serial = ?1 UNION ALL SELECT " + recordColumns + " FROM records WHERE kind = 2 AND serial = ?1"
	lookupKeyQuery = "SELECT " + recordColumns + " FROM records WHERE idem_key = ?1 AND kind = 1 UNION ALL SELECT " + recordColumns +
		" FROM records WHERE kind = 2 AND serial = (SELECT serial FROM records WHERE idem_key = ?1 AND kind = 1)"
)

// Revoked implements ca.Ledger.
func (l *Ledger) Revoked(ctx context.Context) ([]ca.Revocation, error) {
	if l.closed() {
		return nil, ca.ErrLedgerClosed
	}
	if err := l.refusal(); err != nil {
		return nil, err
	}
	rows, err := l.db.QueryContext(ctx, revokedQuery)
	if err != nil {
		return nil, l.readErr(err)
	}
	defer rows.Close()
	var out []ca.Revocation
	for rows.Next() {
		var seq, t, rsn int64
		var serial []byte
		if err := rows.Scan(&seq, &serial, &t, &rsn); err != nil {
			return nil, l.readErr(err)
		}
		out = append(out, ca.Revocation{Seq: uint64(seq), Serial: new(big.Int).SetBytes(serial), Time: time.Unix(0, t).UTC(), Reason: ca.RevocationReason(rsn)})
	}
	if err := rows.Err(); err != nil {
		return nil, l.readErr(err)
	}
	return out, nil
}

// Head implements ca.Ledger.
func (l *Ledger) Head(ctx context.Context) (ca.Head, error) {
	if l.closed() {
		return ca.Head{}, ca.ErrLedgerClosed
	}
	var seq int64
	var hash []byte
	err := l.db.QueryRowContext(ctx, headQuery).Scan(&seq, &hash)
	if errors.Is(err, sql.ErrNoRows) {
		return ca.Head{Hash: make([]byte, sha256.Size)}, nil
	}
	if err != nil {
		return ca.Head{}, l.readErr(err)
	}
	return ca.Head{Seq: uint64(seq), Hash: hash}, nil
}

// Verify implements ca.Ledger. It reads the records in one read
// transaction, so it sees one consistent snapshot while appends go on,
// and checks the hash chain; then it runs SQLite's PRAGMA integrity_check,
// which finds damaged pages and indexes that disagree with the table
// (*ca.StorageError), and, with Options.Checkpoints, checks the ledger
// against the newest checkpoint (*ca.CheckpointError). Any of these
// failures, all wrapping ca.ErrLedgerCorrupt, makes the ledger refuse
// every later append, lookup and CRL number until it is repaired and
// opened again (see the package documentation).
func (l *Ledger) Verify(ctx context.Context) (ca.Head, error) {
	if l.closed() {
		return ca.Head{}, ca.ErrLedgerClosed
	}
	head, err := l.verify(ctx)
	if err != nil && errors.Is(err, ca.ErrLedgerCorrupt) {
		l.setFault(err)
	}
	return head, err
}

func (l *Ledger) verify(ctx context.Context) (ca.Head, error) {
	cp, err := l.latestCheckpoint(ctx)
	if err != nil {
		return ca.Head{}, err
	}
	tx, err := l.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return ca.Head{}, l.readErr(err)
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, verifyQuery)
	if err != nil {
		return ca.Head{}, l.readErr(err)
	}
	defer rows.Close()
	var v ca.ChainVerifier
	var atCheckpoint *ca.Record
	for rows.Next() {
		r, err := sqlrecord.Scan(rows)
		if err != nil {
			var ce *ca.ChainError
			if errors.As(err, &ce) {
				return ca.Head{}, err
			}
			return ca.Head{}, l.readErr(err)
		}
		if err := v.Add(r); err != nil {
			return ca.Head{}, err
		}
		if cp != nil && r.Seq == cp.Seq {
			atCheckpoint = r
		}
	}
	if err := rows.Err(); err != nil {
		return ca.Head{}, l.readErr(err)
	}
	head := v.Head()
	if err := integrityCheck(ctx, tx); err != nil {
		return ca.Head{}, err
	}
	if cp != nil {
		if err := cp.Check(head, atCheckpoint); err != nil {
			return ca.Head{}, err
		}
		if err := checkCRLCounter(ctx, tx, cp, head); err != nil {
			return ca.Head{}, err
		}
	}
	return head, nil
}
