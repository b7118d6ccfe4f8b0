package sqlite

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/ztmkit/ztm/ca"
	"github.com/ztmkit/ztm/ca/ledger/ledgertest"
)

// TestConnectionPragmas checks the settings durability depends on, on the
// reader pool and on the writer connection.
func TestConnectionPragmas(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l, err := Open(ctx, filepath.Join(t.TempDir(), "l.db"), Options{BusyTimeout: 1234e6})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	check := func(who string, query func(string) (int64, string, error)) {
		sync, _, err := query("PRAGMA synchronous")
		if err != nil || sync != 2 {
			t.Errorf("%s: synchronous = %d, %v; want 2 (FULL)", who, sync, err)
		}
		bt, _, err := query("PRAGMA busy_timeout")
		if err != nil || bt != 1234 {
			t.Errorf("%s: busy_timeout = %d, %v", who, bt, err)
		}
		_, mode, err := query("PRAGMA journal_mode")
		if err != nil || mode != "wal" {
			t.Errorf("%s: journal_mode = %q, %v", who, mode, err)
		}
	}
	check("pool", func(q string) (int64, string, error) {
		var v any
		err := l.db.QueryRowContext(ctx, q).Scan(&v)
		return asInt(v), asString(v), err
	})
	check("writer", func(q string) (int64, string, error) {
		var v any
		err := l.writer.QueryRowContext(ctx, q).Scan(&v)
		return asInt(v), asString(v), err
	})
}

func asInt(v any) int64 {
	n, _ := v.(int64)
	return n
}

func asString(v any) string {
	s, _ := v.(string)
	return s
}

// TestMigrateFromVersion1 opens a ledger file of schema version 1 with a
// record in it: Open migrates it, the old record still verifies and new
// ones, with idempotency keys, chain on.
func TestMigrateFromVersion1(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "v1.db")
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(schema + fmt.Sprintf("PRAGMA application_id = %d; PRAGMA user_version = 1;", applicationID)); err != nil {
		t.Fatal(err)
	}
	r, err := ledgertest.NewIssuance("st", time.Unix(1_800_000_000, 0))
	if err != nil {
		t.Fatal(err)
	}
	r.Seq, r.PrevHash = 1, make([]byte, sha256.Size)
	if r.Hash, err = r.ChainHash(r.PrevHash); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO records (seq, kind, serial, subject, pubkey_hash, profile, requester, evidence, step, time_ns, cert, reason, prev_hash, hash)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, 1, 1, r.Serial.Bytes(), r.Subject, r.PublicKeyHash, r.Profile, r.Requester,
		nullBlob(r.EvidenceDigest), nullBlob(r.StepDigest), r.Time.UnixNano(), r.Certificate, 0, r.PrevHash, r.Hash); err != nil {
		t.Fatal(err)
	}
	db.Close()

	l, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var version int64
	if err := l.db.QueryRow("PRAGMA user_version").Scan(&version); err != nil || version != schemaVersion {
		t.Fatalf("user_version %d after Open, want %d (%v)", version, schemaVersion, err)
	}
	next, err := ledgertest.NewIssuance("st", time.Unix(1_800_000_001, 0))
	if err != nil {
		t.Fatal(err)
	}
	next.IdempotencyKey = []byte("request-1")
	next.KeyProvenance = ca.ProvenanceInjected // a column of version 5
	if err := l.Append(ctx, next, nil); err != nil {
		t.Fatal(err)
	}
	if h, err := l.Verify(ctx); err != nil || h.Seq != 2 {
		t.Fatalf("Verify after migration: %v %v", h, err)
	}
	if st, err := l.LookupRequest(ctx, []byte("request-1")); err != nil || st.Issuance.Seq != 2 || st.Issuance.KeyProvenance != ca.ProvenanceInjected {
		t.Fatalf("LookupRequest after migration: %v", err)
	}
}
