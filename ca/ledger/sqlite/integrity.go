package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/ztmkit/ztm/ca"
	"github.com/ztmkit/ztm/ca/ledger/internal/sqlrecord"
	"github.com/ztmkit/ztm/internal/sqlitefile"
)

// testOnlySkipOpenCheck, when set by a test, makes Open skip its integrity
// check, so that the checks lookups make themselves can be tested on a
// damaged file.
var testOnlySkipOpenCheck bool

type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// setFault records the first corruption found; from then on the ledger
// refuses appends, lookups, revocation lists and CRL numbers. It returns
// err.
func (l *Ledger) setFault(err error) error {
	l.fault.CompareAndSwap(nil, &err)
	return err
}

// refusal returns the error a ledger found corrupt answers with, or nil.
func (l *Ledger) refusal() error {
	if f := l.fault.Load(); f != nil {
		return fmt.Errorf("sqlite ledger: refusing to use a corrupt ledger (repair it and open it again): %w", *f)
	}
	return nil
}

func (l *Ledger) latestCheckpoint(ctx context.Context) (*ca.Checkpoint, error) {
	if l.checkpoints == nil {
		return nil, nil
	}
	cp, err := ca.LatestCheckpoint(ctx, l.checkpoints, l.checkpointKey)
	if err != nil {
		return nil, fmt.Errorf("sqlite ledger: %w", err)
	}
	return cp, nil
}

// checkOnOpen runs verify or, when quick, PRAGMA integrity_check and a
// check of the ledger against the newest checkpoint: its length, the
// record at the checkpoint, which must hash to the checkpoint's head, and
// the CRL counter.
func (l *Ledger) checkOnOpen(ctx context.Context, quick bool) error {
	if testOnlySkipOpenCheck {
		return nil
	}
	if !quick {
		_, err := l.verify(ctx)
		return err
	}
	if err := integrityCheck(ctx, l.db); err != nil {
		return err
	}
	cp, err := l.latestCheckpoint(ctx)
	if err != nil || cp == nil {
		return err
	}
	tx, err := l.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var seq sql.NullInt64
	var hash []byte
	if err := tx.QueryRowContext(ctx, lastQuery).Scan(&seq, &hash); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return l.readErr(err)
	}
	head := ca.Head{Seq: uint64(seq.Int64), Hash: hash}
	var rec *ca.Record
	if cp.Seq > 0 && head.Seq >= cp.Seq {
		if rec, err = record(ctx, tx, cp.Seq); err != nil && !errors.Is(err, ca.ErrUnknownRecord) {
			return err
		}
	}
	if err := cp.Check(head, rec); err != nil {
		return err
	}
	return checkCRLCounter(ctx, tx, cp, head)
}

// integrityCheck checks that the schema is exactly the one this package
// makes (a damaged definition could weaken a constraint, or describe an
// index SQLite would then trust), and runs PRAGMA integrity_check: every
// page, every index entry against its row, every constraint.
func integrityCheck(ctx context.Context, q querier) error {
	want, err := expectedSchema()
	if err != nil {
		return err
	}
	got, err := readSchema(ctx, q)
	if err != nil {
		return storageErr(ctx, "schema", err)
	}
	if got != want {
		return &ca.StorageError{Check: "schema", Detail: "table and index definitions differ from this package's"}
	}
	rows, err := q.QueryContext(ctx, "PRAGMA integrity_check(20)")
	if err != nil {
		return storageErr(ctx, "PRAGMA integrity_check", err)
	}
	defer rows.Close()
	var report []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return storageErr(ctx, "PRAGMA integrity_check", err)
		}
		report = append(report, line)
	}
	if err := rows.Err(); err != nil {
		return storageErr(ctx, "PRAGMA integrity_check", err)
	}
	if len(report) == 1 && report[0] == "ok" {
		return nil
	}
	return &ca.StorageError{Check: "PRAGMA integrity_check", Detail: strings.Join(report, "; ")}
}

func checkCRLCounter(ctx context.Context, q querier, cp *ca.Checkpoint, head ca.Head) error {
	var n int64
	if err := q.QueryRowContext(ctx, "SELECT n FROM crl_number WHERE id = 1").Scan(&n); err != nil {
		return storageErr(ctx, "CRL counter", err)
	}
	return cp.CheckCRLNumber(head, big.NewInt(n))
}

func record(ctx context.Context, q querier, seq uint64) (*ca.Record, error) {
	r, err := sqlrecord.Scan(q.QueryRowContext(ctx, recordAtQuery, int64(seq)))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ca.ErrUnknownRecord
	}
	return r, err
}

var _ ca.RecordReader = (*Ledger)(nil)

// Record implements ca.RecordReader. The record is returned as stored;
// the caller checks it against its hash.
func (l *Ledger) Record(ctx context.Context, seq uint64) (*ca.Record, error) {
	if l.closed() {
		return nil, ca.ErrLedgerClosed
	}
	if seq == 0 || seq > 1<<63-1 {
		return nil, ca.ErrUnknownRecord
	}
	r, err := record(ctx, l.db, seq)
	if err != nil && !errors.Is(err, ca.ErrUnknownRecord) {
		var ce *ca.ChainError
		if errors.As(err, &ce) {
			return nil, l.setFault(err)
		}
		return nil, l.readErr(err)
	}
	return r, err
}

// Backup writes a consistent copy of the ledger, as of one moment, to a
// new file at path (VACUUM INTO, which reads one snapshot while appends
// go on) and syncs it to stable storage. path must not exist. Restore
// reads it back.
func (l *Ledger) Backup(ctx context.Context, path string) error {
	if l.closed() {
		return ca.ErrLedgerClosed
	}
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("sqlite ledger: backup target %q exists or cannot be checked", path)
	}
	if _, err := l.db.ExecContext(ctx, "VACUUM INTO ?", path); err != nil {
		return fmt.Errorf("sqlite ledger: backup: %w", err)
	}
	if err := syncFile(path); err != nil {
		return fmt.Errorf("sqlite ledger: backup: %w", err)
	}
	return nil
}

// Restore makes the ledger file at path from a backup Backup wrote, after
// verifying the copy: it opens it with opts (PRAGMA integrity_check, and
// the newest checkpoint of opts.Checkpoints, which Restore requires),
// walks the whole chain (Verify) and only then moves it into place. A
// backup older than the newest checkpoint is refused with a
// *ca.CheckpointError naming both heads: the records after it would be
// lost (see the package documentation, Repair). path must not exist. It
// returns the restored ledger's head.
func Restore(ctx context.Context, backup, path string, opts Options) (ca.Head, error) {
	if opts.Checkpoints == nil || opts.CheckpointKey == nil {
		return ca.Head{}, errors.New("sqlite ledger: restore needs Options.Checkpoints and CheckpointKey to verify against")
	}
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		return ca.Head{}, fmt.Errorf("sqlite ledger: restore target %q exists or cannot be checked", path)
	}
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".restoring")
	defer os.Remove(tmp)
	if err := copyFile(backup, tmp); err != nil {
		return ca.Head{}, fmt.Errorf("sqlite ledger: restore: %w", err)
	}
	l, err := Open(ctx, tmp, opts)
	if err != nil {
		return ca.Head{}, err
	}
	head, err := l.Verify(ctx)
	if cerr := l.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return ca.Head{}, fmt.Errorf("sqlite ledger: restore: backup does not verify: %w", err)
	}
	if err := syncFile(tmp); err != nil {
		return ca.Head{}, fmt.Errorf("sqlite ledger: restore: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return ca.Head{}, fmt.Errorf("sqlite ledger: restore: %w", err)
	}
	return head, syncFile(filepath.Dir(path))
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}

func syncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// expectedSchema is the schema of a ledger of the current version, read
// from a fresh one in memory.
var expectedSchema = sync.OnceValues(func() (string, error) {
	db, err := sql.Open("sqlite", "file::memory:")
	if err != nil {
		return "", err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	ctx := context.Background()
	if _, err := db.ExecContext(ctx, schema); err != nil {
		return "", err
	}
	for _, m := range migrations {
		if _, err := db.ExecContext(ctx, m); err != nil {
			return "", err
		}
	}
	return readSchema(ctx, db)
})

func readSchema(ctx context.Context, q querier) (string, error) {
	rows, err := q.QueryContext(ctx, "SELECT type, name, tbl_name, sql FROM sqlite_schema ORDER BY name")
	if err != nil {
		return "", err
	}
	defer rows.Close()
	var b strings.Builder
	for rows.Next() {
		var typ, name, tbl string
		var def sql.NullString
		if err := rows.Scan(&typ, &name, &tbl, &def); err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "%q %q %q %q %v\n", typ, name, tbl, def.String, def.Valid)
	}
	return b.String(), rows.Err()
}

// storageErr is a failed storage check: a *ca.StorageError, unless the
// check was cut short by ctx — a deadline or a cancellation says nothing
// about the storage, and must not mark the ledger corrupt.
func storageErr(ctx context.Context, check string, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("sqlite ledger: %s: %w", check, ctxErr)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("sqlite ledger: %s: %w", check, err)
	}
	return &ca.StorageError{Check: check, Detail: err.Error()}
}

// checkFileHeader refuses, as a *ca.StorageError, a file whose header's
// file format versions SQLite would not open for writing (see
// sqlitefile.CheckHeader).
func checkFileHeader(path string) error {
	err := sqlitefile.CheckHeader(path)
	var ve *sqlitefile.VersionError
	if errors.As(err, &ve) {
		return &ca.StorageError{Check: "file header", Detail: ve.Error()}
	}
	return err
}
