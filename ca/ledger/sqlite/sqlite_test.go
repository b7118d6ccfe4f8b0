package sqlite_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ztmkit/ztm/ca"
	"github.com/ztmkit/ztm/ca/ledger/ledgertest"
	"github.com/ztmkit/ztm/ca/ledger/sqlite"
)

func openAt(t testing.TB, path string) *sqlite.Ledger {
	t.Helper()
	l, err := sqlite.Open(context.Background(), path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func rawDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestConformance(t *testing.T) {
	t.Parallel()
	paths := map[ca.Ledger]string{}
	newLedger := func(t *testing.T) ca.Ledger {
		path := filepath.Join(t.TempDir(), "ledger.db")
		l := openAt(t, path)
		paths[l] = path
		return l
	}
	ledgertest.Run(t, newLedger, ledgertest.Config{
		Tamper: func(t *testing.T, l ca.Ledger, seq uint64) {
			if _, err := rawDB(t, paths[l]).Exec("UPDATE records SET subject = 'SERIALNUMBER=forged' WHERE seq = ?", seq); err != nil {
				t.Fatal(err)
			}
		},
		TamperProvenance: func(t *testing.T, l ca.Ledger, seq uint64) {
			if _, err := rawDB(t, paths[l]).Exec("UPDATE records SET key_provenance = CASE key_provenance WHEN 1 THEN 2 ELSE 1 END WHERE seq = ?", seq); err != nil {
				t.Fatal(err)
			}
		},
		Reopen: func(t *testing.T, l ca.Ledger) ca.Ledger {
			path := paths[l]
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			nl := openAt(t, path)
			paths[nl] = path
			return nl
		},
	})
}

// TestTamperKinds changes stored records in several ways; each is caught.
func TestTamperKinds(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for name, stmt := range map[string]string{
		"delete middle record":  "DELETE FROM records WHERE seq = 3",
		"delete first record":   "DELETE FROM records WHERE seq = 1",
		"change certificate":    "UPDATE records SET cert = (SELECT cert FROM records WHERE seq = 2) WHERE seq = 3",
		"change time":           "UPDATE records SET time_ns = time_ns + 1 WHERE seq = 2",
		"change requester":      "UPDATE records SET requester = 'someone else' WHERE seq = 4",
		"recompute own hash":    "UPDATE records SET profile = 'x', hash = zeroblob(32) WHERE seq = 2",
		"duplicate serial kind": "UPDATE records SET kind = 2 WHERE seq = 5",
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "l.db")
			l := openAt(t, path)
			defer l.Close()
			fill(t, l, 5)
			if _, err := rawDB(t, path).Exec(stmt); err != nil {
				t.Fatal(err)
			}
			if _, err := l.Verify(ctx); !errors.Is(err, ca.ErrLedgerCorrupt) {
				t.Fatalf("Verify: %v", err)
			}
		})
	}
}

func TestOpenRefusesForeignFiles(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.db")
	os.WriteFile(garbage, []byte("this is not a database, just some text that is long enough to be a header........................................"), 0o600)
	foreign := filepath.Join(dir, "foreign.db")
	if _, err := rawDB(t, foreign).Exec("CREATE TABLE t (x)"); err != nil {
		t.Fatal(err)
	}
	newer := filepath.Join(dir, "newer.db")
	l := openAt(t, newer)
	l.Close()
	if _, err := rawDB(t, newer).Exec("PRAGMA user_version = 99"); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]error{garbage: sqlite.ErrNotLedger, foreign: sqlite.ErrNotLedger, newer: sqlite.ErrSchemaVersion} {
		l, err := sqlite.Open(ctx, path, sqlite.Options{})
		var oe *sqlite.OpenError
		if l != nil || !errors.Is(err, want) || !errors.As(err, &oe) {
			t.Errorf("%s: %v, want %v", filepath.Base(path), err, want)
		}
	}
	// A refused file is left as it was.
	if b, _ := os.ReadFile(garbage); string(b[:8]) != "this is " {
		t.Error("garbage file modified")
	}
	if _, err := sqlite.Open(ctx, filepath.Join(dir, "missing-dir", "l.db"), sqlite.Options{}); err == nil {
		t.Error("Open in a missing directory succeeded")
	}
}

func TestPragmas(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "l.db")
	l := openAt(t, path)
	defer l.Close()
	var mode string
	if err := rawDB(t, path).QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Fatalf("journal_mode %q %v", mode, err)
	}
}

func fill(t *testing.T, l ca.Ledger, n int) {
	t.Helper()
	for i := range n {
		r := mustIssuance(t, "filler", time.Unix(1_800_000_000+int64(i), 0))
		if err := l.Append(context.Background(), r, nil); err != nil {
			t.Fatal(err)
		}
	}
}

func mustIssuance(t testing.TB, requester string, at time.Time) *ca.Record {
	t.Helper()
	r, err := ledgertest.NewIssuance(requester, at)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestOddPath(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "a dir with spaces #1 & 50%")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "l?x=1.db")
	l := openAt(t, path)
	fill(t, l, 2)
	l.Close()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("ledger not at the path given: %v", err)
	}
	l = openAt(t, path)
	defer l.Close()
	if h, err := l.Verify(context.Background()); err != nil || h.Seq != 2 {
		t.Fatalf("%v %v", h, err)
	}
}

// TestTwoLedgersOneFile runs two Ledger values (as two CA processes would)
// on one file: their writers take turns through BEGIN IMMEDIATE and the
// chain stays linear; quota and serial checks see each other's records.
func TestTwoLedgersOneFile(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "l.db")
	a, b := openAt(t, path), openAt(t, path)
	defer a.Close()
	defer b.Close()
	const each = 40
	recs := make([]*ca.Record, 2*each)
	for i := range recs {
		recs[i] = mustIssuance(t, "shared", time.Unix(1_800_000_000, 0))
	}
	q := &ca.Quota{Limit: each, Since: time.Unix(0, 0)}
	var wg sync.WaitGroup
	var mu sync.Mutex
	granted := 0
	for i, r := range recs {
		l := a
		if i%2 == 1 {
			l = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := l.Append(ctx, r, q)
			switch {
			case err == nil:
				mu.Lock()
				granted++
				mu.Unlock()
			case !errors.Is(err, ca.ErrQuotaExceeded):
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if granted != each {
		t.Fatalf("%d granted across two ledgers, quota %d", granted, each)
	}
	// The same serial through the other ledger is refused.
	for _, r := range recs {
		if r.Seq == 0 {
			continue // refused by the quota
		}
		dup := r.Clone()
		dup.Requester = "other"
		if err := b.Append(ctx, dup, nil); !errors.Is(err, ca.ErrSerialExists) {
			t.Fatalf("same serial appended again: %v", err)
		}
		if err := a.Append(ctx, dup, nil); !errors.Is(err, ca.ErrSerialExists) {
			t.Fatalf("same serial appended again: %v", err)
		}
		break
	}
	ha, err := a.Verify(ctx)
	if err != nil {
		t.Fatal(err)
	}
	hb, err := b.Verify(ctx)
	if err != nil || hb.Seq != ha.Seq || !bytes.Equal(ha.Hash, hb.Hash) {
		t.Fatalf("ledgers disagree: %v %v %v", ha, hb, err)
	}
}

// TestTruncatedFile damages a closed ledger file; Open or Verify reports
// it with a typed error.
func TestTruncatedFile(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "l.db")
	l := openAt(t, path)
	fill(t, l, 60)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	// A clean Close checkpoints the log into the database file.
	if _, err := os.Stat(path + "-wal"); !os.IsNotExist(err) {
		t.Fatalf("WAL left after Close: %v", err)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, info.Size()/2); err != nil {
		t.Fatal(err)
	}
	l, err = sqlite.Open(ctx, path, sqlite.Options{})
	if err != nil {
		if !errors.Is(err, sqlite.ErrNotLedger) {
			t.Fatalf("Open: %v", err)
		}
		t.Logf("Open refused the file: %v", err)
		return
	}
	defer l.Close()
	_, err = l.Verify(ctx)
	if !errors.Is(err, ca.ErrLedgerCorrupt) {
		t.Fatalf("Verify on a truncated file: %v", err)
	}
	t.Logf("Verify: %v", err)
}
