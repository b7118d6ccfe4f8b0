package postgres

import (
	"context"
	"crypto"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ztmkit/ztm/ca"
	"github.com/ztmkit/ztm/ca/ledger/internal/sqlrecord"
)

// Config tunes a ledger. The zero value works.
type Config struct {
	// Schema is the PostgreSQL schema (namespace) that holds the ledger's
	// tables; it is created when absent. Several ledgers — one per issuing
	// CA — can share a database under different schemas; every instance
	// of one CA must use the same. Lower-case letters, digits and '_', at
	// most 63 bytes. If empty, "ztm_ca".
	Schema string
	// MaxBatch is the most appends committed in one transaction. If zero,
	// 256.
	MaxBatch int
	// BatchTimeout bounds one group-commit transaction: taking a
	// connection, waiting for the chain lock, the statements and the
	// COMMIT. Appends in a batch that runs out of time fail with
	// [ErrUnavailable] (or [ErrCommitUnknown] if the COMMIT was sent). If
	// zero, 30 seconds.
	BatchTimeout time.Duration
	// Checkpoints is where the CA keeps its signed ledger checkpoints (see
	// ca.Checkpoint), and CheckpointKey the CA's public key that verifies
	// them; set both or neither. Open, New and Verify then refuse, with a
	// *ca.CheckpointError, a ledger shorter than or different from the
	// newest checkpoint, and one whose CRL counter is below it. Open and
	// New check the ledger's length, the record at the checkpoint and the
	// CRL counter; Verify, which walks the whole chain, the rest. If nil,
	// a cut tail goes unseen here.
	Checkpoints   ca.CheckpointSource
	CheckpointKey crypto.PublicKey
}

const defaultSchema = "ztm_ca"

func (c Config) withDefaults() (Config, error) {
	if c.Schema == "" {
		c.Schema = defaultSchema
	}
	if !schemaName.MatchString(c.Schema) {
		return c, fmt.Errorf("%w: schema name %q: want 1 to 63 of a-z, 0-9 and _, not starting with a digit", ErrInvalidConfig, c.Schema)
	}
	if (c.Checkpoints == nil) != (c.CheckpointKey == nil) {
		return c, fmt.Errorf("%w: set Checkpoints and CheckpointKey together", ErrInvalidConfig)
	}
	if c.MaxBatch < 0 || c.BatchTimeout < 0 {
		return c, fmt.Errorf("%w: negative MaxBatch or BatchTimeout", ErrInvalidConfig)
	}
	if c.MaxBatch == 0 {
		c.MaxBatch = 256
	}
	if c.BatchTimeout == 0 {
		c.BatchTimeout = 30 * time.Second
	}
	return c, nil
}

// Ledger is a [ca.Ledger] in a PostgreSQL database, shared by any number
// of Ledger values in any number of processes (CA instances). It is safe
// for concurrent use.
type Ledger struct {
	pool    *pgxpool.Pool
	ownPool bool
	cfg     Config
	q       queries

	commits atomic.Uint64
	records atomic.Uint64
	retries atomic.Uint64
	// suspect is set when a connection was lost: pooled connections may
	// be dead too (the server restarted), so the writer pings each one
	// before it sends a batch, until a batch commits.
	suspect atomic.Bool
	fault   atomic.Pointer[error]
	// written is the last record this Ledger appended, or the head it
	// opened; only the writer goroutine uses it after New.
	written ca.Head

	queue     chan *op
	closing   chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

var _ ca.Ledger = (*Ledger)(nil)

// Open connects to the database named by dsn (a PostgreSQL URL or
// key=value connection string, with pgxpool's pool_* parameters), creates
// or migrates the ledger schema, and starts the ledger. The pool is the
// Ledger's own; Close closes it.
func Open(ctx context.Context, dsn string, cfg Config) (*Ledger, error) {
	if _, err := cfg.withDefaults(); err != nil {
		return nil, err
	}
	pc, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// The parse error may quote the DSN, password included.
		return nil, fmt.Errorf("%w: cannot parse connection string", ErrInvalidConfig)
	}
	if _, ok := pc.ConnConfig.RuntimeParams["application_name"]; !ok {
		pc.ConnConfig.RuntimeParams["application_name"] = "ztm-ca-ledger"
	}
	if !strings.Contains(dsn, "pool_max_conns") && pc.MaxConns < 8 {
		pc.MaxConns = 8
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, dbError("open", err)
	}
	l, err := newLedger(ctx, pool, cfg)
	if err != nil {
		pool.Close()
		return nil, err
	}
	l.ownPool = true
	return l, nil
}

// New starts a ledger over a pool the caller owns (and closes, after the
// Ledger's Close), creating or migrating the ledger schema. The pool's
// connections need the privilege to create the schema and its tables the
// first time, and to read and write them.
func New(ctx context.Context, pool *pgxpool.Pool, cfg Config) (*Ledger, error) {
	if pool == nil {
		return nil, fmt.Errorf("%w: nil pool", ErrInvalidConfig)
	}
	return newLedger(ctx, pool, cfg)
}

func newLedger(ctx context.Context, pool *pgxpool.Pool, cfg Config) (*Ledger, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := migrate(ctx, pool, cfg.Schema); err != nil {
		return nil, err
	}
	l := &Ledger{
		pool:    pool,
		cfg:     cfg,
		q:       newQueries(cfg.Schema),
		queue:   make(chan *op, cfg.MaxBatch),
		closing: make(chan struct{}),
		done:    make(chan struct{}),
	}
	if err := l.checkOnOpen(ctx); err != nil {
		return nil, fmt.Errorf("postgres ledger: ledger refused: %w", err)
	}
	if l.written, err = l.Head(ctx); err != nil {
		return nil, err
	}
	go l.run()
	return l, nil
}

// Close stops the writer, waiting for the batch in progress, answers
// queued appends with [ca.ErrLedgerClosed], and closes the pool if Open
// made it. It is idempotent.
func (l *Ledger) Close() error {
	if l.closing == nil {
		return nil // not made by Open or New: nothing to close
	}
	l.closeOnce.Do(func() {
		close(l.closing)
		<-l.done
		if l.ownPool {
			l.pool.Close()
		}
	})
	return nil
}

// lost records that err lost a connection: the pool's other connections
// are suspect. A pool of the Ledger's own is emptied at once; the
// connections of a caller's pool are checked before the writer uses them.
func (l *Ledger) lost(err error) {
	if !connectionLost(err) {
		return
	}
	l.suspect.Store(true)
	if l.ownPool {
		l.pool.Reset()
	}
}

// closed reports whether the ledger is closed; a Ledger not made by Open or
// New (a zero Ledger) is, so that its methods return an error instead of
// panicking.
func (l *Ledger) closed() bool {
	if l.pool == nil || l.closing == nil {
		return true
	}
	select {
	case <-l.closing:
		return true
	default:
		return false
	}
}

// Stats counts a Ledger's work since it was made.
type Stats struct {
	// Commits is the number of group-commit transactions committed.
	Commits uint64
	// Records is the number of records they appended; Records over
	// Commits is the mean batch size.
	Records uint64
	// Retries is the number of batches run again after the database was
	// unreachable before their COMMIT.
	Retries uint64
}

// Stats returns the group-commit counters of this Ledger (this instance
// only, not others sharing the database).
func (l *Ledger) Stats() Stats {
	return Stats{Commits: l.commits.Load(), Records: l.records.Load(), Retries: l.retries.Load()}
}

// queries are the ledger's SQL statements with the schema filled in.
type queries struct {
	appendBatch, crlNext       string
	lookup, revoked, head, all string
	lookupKey, liveDevice      string
	record, link, crlCounter   string
}

const recordColumns = sqlrecord.Columns

func newQueries(schema string) queries {
	s := pgx.Identifier{schema}.Sanitize()
	r := strings.NewReplacer("{s}", s)
	return queries{
		appendBatch: r.Replace(`SELECT o_refusal, o_seq, o_prev, o_hash FROM {s}.append_batch(
			$1::smallint[], $2::bytea[], $3::text[], $4::bytea[], $5::text[], $6::text[], $7::bytea[], $8::bytea[],
			$9::bigint[], $10::bytea[], $11::smallint[], $12::bytea[], $13::bytea[], $14::bigint[], $15::bigint[],
			$16::bytea[], $17::bytea[], $18::bytea[], $19::boolean[], $20::smallint[], $21::boolean)`),
		crlNext: r.Replace("UPDATE {s}.crl_number SET n = n + 1 WHERE id = 1 RETURNING n"),
		lookup: r.Replace(`SELECT ` + recordColumns + ` FROM {s}.records WHERE kind = 1 AND serial = $1
			UNION ALL SELECT ` + recordColumns + ` FROM {s}.records WHERE kind = 2 AND serial = $1 ORDER BY seq`),
		lookupKey: r.Replace(`SELECT ` + recordColumns + ` FROM {s}.records WHERE idem_key = $1 AND kind = 1
			UNION ALL SELECT ` + recordColumns + ` FROM {s}.records WHERE kind = 2
				AND serial = (SELECT serial FROM {s}.records WHERE idem_key = $1 AND kind = 1) ORDER BY seq`),
		liveDevice: r.Replace(`SELECT r.serial FROM {s}.records r WHERE r.kind = 1 AND r.device = $1
			AND NOT EXISTS (SELECT 1 FROM {s}.records v WHERE v.kind = 2 AND v.serial = r.serial)`),
		revoked:    r.Replace("SELECT seq, serial, time_ns, reason FROM {s}.records WHERE kind = 2 ORDER BY seq"),
		head:       r.Replace("SELECT seq, hash FROM {s}.records ORDER BY seq DESC LIMIT 1"),
		all:        r.Replace("SELECT " + recordColumns + " FROM {s}.records ORDER BY seq"),
		record:     r.Replace("SELECT " + recordColumns + " FROM {s}.records WHERE seq = $1"),
		link:       r.Replace("SELECT (SELECT prev_hash FROM {s}.records WHERE seq = $1), (SELECT coalesce(max(seq), 0) FROM {s}.records)"),
		crlCounter: r.Replace("SELECT n FROM {s}.crl_number WHERE id = 1"),
	}
}

var errClosed = ca.ErrLedgerClosed

// checkOpen returns ErrLedgerClosed after Close.
func (l *Ledger) checkOpen() error {
	if l.closed() {
		return errClosed
	}
	return nil
}
