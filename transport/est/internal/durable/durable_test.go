package durable

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"sync"
	"testing"
)

// TestBatchIsolation runs many concurrent writes, some failing: each
// failing write is rolled back alone, every other one is committed, and
// everything committed is there after reopening.
func TestBatchIsolation(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "d.db")
	db, err := Open(ctx, path, `CREATE TABLE IF NOT EXISTS t (k INTEGER PRIMARY KEY)`)
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	var wg sync.WaitGroup
	errs := make([]error, 200)
	for i := range 200 {
		wg.Go(func() {
			errs[i] = db.Do(ctx, func(tx *sql.Tx) error {
				if _, err := tx.Exec(`INSERT INTO t (k) VALUES (?)`, i); err != nil {
					return err
				}
				if i%3 == 0 {
					return boom
				}
				return nil
			})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if (i%3 == 0) != errors.Is(err, boom) || (i%3 != 0 && err != nil) {
			t.Fatalf("write %d: %v", i, err)
		}
	}
	db.Close()
	if err := db.Do(ctx, func(*sql.Tx) error { return nil }); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
	db, err = Open(ctx, path, `CREATE TABLE IF NOT EXISTS t (k INTEGER PRIMARY KEY)`)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.Read.QueryRow(`SELECT count(*) FROM t`).Scan(&n); err != nil || n != 133 {
		t.Fatalf("%d rows, %v; want 133", n, err)
	}
	var mode string
	var syncMode int
	db.Read.QueryRow(`PRAGMA journal_mode`).Scan(&mode)
	db.w.QueryRow(`PRAGMA synchronous`).Scan(&syncMode)
	if mode != "wal" || syncMode != 2 {
		t.Fatalf("journal_mode %q synchronous %d; want wal, 2 (FULL)", mode, syncMode)
	}
}
