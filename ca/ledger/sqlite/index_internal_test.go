package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ztmkit/ztm/ca"
	"github.com/ztmkit/ztm/ca/ledger/ledgertest"
)

// indexLedger writes a closed ledger of five records: issuances at seq 1,
// 2, 3 (the last two with idempotency keys), a revocation of seq 2 at 4,
// an issuance at 5; it returns its path and the records.
func indexLedger(t *testing.T) (string, []*ca.Record) {
	t.Helper()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "l.db")
	l, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	var recs []*ca.Record
	for i := range 5 {
		var r *ca.Record
		if i == 3 {
			r = &ca.Record{Kind: ca.KindRevocation, Serial: recs[1].Serial, Requester: "admin", Time: at}
		} else {
			if r, err = ledgertest.NewIssuance("line-1", at); err != nil {
				t.Fatal(err)
			}
			if i == 1 || i == 2 {
				r.IdempotencyKey = bytes.Repeat([]byte{byte(0xa0 + i)}, 32)
			}
		}
		if err := l.Append(ctx, r, nil); err != nil {
			t.Fatal(err)
		}
		recs = append(recs, r)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return path, recs
}

func rawConn(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	return db
}

// recreateIndex drops index name and creates it again without the entry of
// record seq, then restores its original definition in the schema, so
// that SQLite trusts an index that lacks an entry.
func recreateIndex(t *testing.T, path, name string, seq uint64) {
	t.Helper()
	db := rawConn(t, path)
	defer db.Close()
	var def string
	if err := db.QueryRow("SELECT sql FROM sqlite_schema WHERE name = ?", name).Scan(&def); err != nil {
		t.Fatal(err)
	}
	damaged := def + " AND seq <> " + itoa(seq)
	if !strings.Contains(def, " WHERE ") {
		damaged = def + " WHERE seq <> " + itoa(seq)
	}
	for _, s := range []string{
		"DROP INDEX " + name, damaged, "PRAGMA writable_schema = ON",
	} {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	if _, err := db.Exec("UPDATE sqlite_schema SET sql = ? WHERE name = ?", def, name); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("PRAGMA writable_schema = OFF"); err != nil {
		t.Fatal(err)
	}
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }

// redirectIndexEntry writes the damaged page by hand: in index name's root
// page (the whole index, in a ledger this small) the entry for key, whose
// rowid is the one byte from, is made to point at row to.
func redirectIndexEntry(t *testing.T, path, name string, key []byte, from, to byte) {
	t.Helper()
	db := rawConn(t, path)
	var root, pageSize int64
	if err := db.QueryRow("SELECT rootpage FROM sqlite_schema WHERE name = ?", name).Scan(&root); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow("PRAGMA page_size").Scan(&pageSize); err != nil {
		t.Fatal(err)
	}
	db.Close()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	page := data[(root-1)*pageSize : root*pageSize]
	entry := append(bytes.Clone(key), from)
	i := bytes.Index(page, entry)
	if i < 0 || bytes.Contains(page[i+1:], entry) {
		t.Fatalf("index %s: entry not found once in its root page", name)
	}
	page[i+len(key)] = to
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestIndexDamageRefusedAtOpen damages each index of the ledger, by
// recreating it without one entry and by writing a page whose entry
// points at another row: PRAGMA integrity_check finds each, and Open
// refuses the ledger with a *ca.StorageError.
func TestIndexDamageRefusedAtOpen(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, tc := range []struct {
		index string
		seq   uint64
	}{
		{"records_issued_serial", 3},
		{"records_revoked_serial", 4},
		{"records_revocations", 4},
		{"records_quota", 2},
		{"records_idem_key", 3},
	} {
		t.Run("recreated/"+tc.index, func(t *testing.T) {
			path, _ := indexLedger(t)
			recreateIndex(t, path, tc.index, tc.seq)
			_, err := Open(ctx, path, Options{})
			var se *ca.StorageError
			if !errors.As(err, &se) || !errors.Is(err, ca.ErrLedgerCorrupt) {
				t.Fatalf("Open: %v", err)
			}
			if !strings.Contains(se.Detail, tc.index) {
				t.Errorf("report does not name %s: %s", tc.index, se.Detail)
			}
		})
	}
	for _, index := range []string{"records_issued_serial", "records_idem_key"} {
		t.Run("page/"+index, func(t *testing.T) {
			path, recs := indexLedger(t)
			key := recs[2].Serial.Bytes()
			if index == "records_idem_key" {
				key = recs[2].IdempotencyKey
			}
			redirectIndexEntry(t, path, index, key, 3, 5)
			if _, err := Open(ctx, path, Options{}); !errors.As(err, new(*ca.StorageError)) {
				t.Fatalf("Open: %v", err)
			}
		})
	}
}

// TestIndexDamageLookups is the second attack of the issue, with the
// open-time integrity check skipped, as if the index was damaged while the
// ledger ran: an index entry for record 3's serial or idempotency key
// points at record 5. The lookup reads record 5, sees it is not what it
// asked for, and refuses, and the ledger then refuses every append:
// Lookup never answers with another certificate, and a repeated request
// gets no second one.
func TestIndexDamageLookups(t *testing.T) {
	ctx := context.Background()
	testOnlySkipOpenCheck = true
	t.Cleanup(func() { testOnlySkipOpenCheck = false })
	for _, index := range []string{"records_issued_serial", "records_idem_key"} {
		t.Run(index, func(t *testing.T) {
			path, recs := indexLedger(t)
			byKey := index == "records_idem_key"
			key := recs[2].Serial.Bytes()
			if byKey {
				key = recs[2].IdempotencyKey
			}
			redirectIndexEntry(t, path, index, key, 3, 5)
			l, err := Open(ctx, path, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			var st *ca.Status
			if byKey {
				st, err = l.LookupRequest(ctx, key)
			} else {
				st, err = l.Lookup(ctx, recs[2].Serial)
			}
			if !errors.Is(err, ca.ErrLedgerCorrupt) {
				t.Fatalf("lookup through the damaged index: %+v, %v", st, err)
			}
			// The repeat of request 3 is refused, not issued again.
			again, _ := ledgertest.NewIssuance("line-1", recs[2].Time)
			again.IdempotencyKey = recs[2].IdempotencyKey
			if err := l.Append(ctx, again, nil); !errors.Is(err, ca.ErrLedgerCorrupt) {
				t.Fatalf("Append after the damage was seen: %v", err)
			}
			rev := &ca.Record{Kind: ca.KindRevocation, Serial: recs[4].Serial, Requester: "admin", Time: recs[2].Time}
			if err := l.Append(ctx, rev, nil); !errors.Is(err, ca.ErrLedgerCorrupt) {
				t.Fatalf("revocation after the damage was seen: %v", err)
			}
			if _, err := l.Verify(ctx); !errors.As(err, new(*ca.StorageError)) {
				t.Fatalf("Verify: %v", err)
			}
			if h, _ := l.Head(ctx); h.Seq != 5 {
				t.Fatalf("head %d after refusals", h.Seq)
			}
		})
	}
}
