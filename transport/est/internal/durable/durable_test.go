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

// TestLinger checks the writer's adaptive linger through its commit count:
// a lone caller's writes each commit alone (the linger is never taken after
// a transaction of one), and concurrent writes share transactions.
func TestLinger(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, filepath.Join(t.TempDir(), "d.db"), `CREATE TABLE IF NOT EXISTS t (k INTEGER PRIMARY KEY)`)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	insert := func(k int) error {
		return db.Do(ctx, func(tx *sql.Tx) error {
			_, err := tx.Exec(`INSERT INTO t (k) VALUES (?)`, k)
			return err
		})
	}
	for i := range 5 {
		if err := insert(i); err != nil {
			t.Fatal(err)
		}
	}
	if n := db.commits.Load(); n != 5 {
		t.Fatalf("5 sequential writes took %d transactions, want 5", n)
	}
	const concurrent = 64
	var wg sync.WaitGroup
	errs := make(chan error, concurrent)
	for i := range concurrent {
		wg.Go(func() {
			if err := insert(100 + i); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := db.commits.Load() - 5; n >= concurrent/2 {
		t.Fatalf("%d concurrent writes took %d transactions, want them shared", concurrent, n)
	}
	// After the burst, a lone write still commits (the linger ends by its
	// bound, not by more writes).
	if err := insert(1000); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := db.Read.QueryRow(`SELECT count(*) FROM t`).Scan(&n); err != nil || n != 5+concurrent+1 {
		t.Fatalf("%d rows, %v; want %d", n, err, 5+concurrent+1)
	}
}
