package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ztmkit/ztm/ca"
	"github.com/ztmkit/ztm/ca/ledger/postgres"
	"github.com/ztmkit/ztm/internal/pgtest"
)

// TestMigrateFromVersion1 opens a ledger made by the first schema
// version: Open brings it to SchemaVersion, and records appended before
// and after chain as one.
func TestMigrateFromVersion1(t *testing.T) {
	t.Parallel()
	srv := pgtest.Start(t)
	dsn := srv.NewDatabase(t)
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if err := postgres.MigrateTo(ctx, pool, "ztm_ca", 1); err != nil {
		t.Fatal(err)
	}
	cborStrict := func() bool {
		t.Helper()
		var strict bool
		if err := pool.QueryRow(ctx, `SELECT p.proisstrict FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
			WHERE n.nspname = 'ztm_ca' AND p.proname = 'cbor_uint'`).Scan(&strict); err != nil {
			t.Fatal(err)
		}
		return strict
	}
	if !cborStrict() {
		t.Fatal("version 1's cbor_uint is not strict")
	}
	at := time.Unix(1_800_000_000, 0)
	if err := postgres.AppendDirect(ctx, pool, issuance(t, "st", at)); err != nil {
		t.Fatal(err)
	}

	l := open(t, dsn, postgres.Config{})
	defer l.Close()
	var version int
	if err := pool.QueryRow(ctx, `SELECT max(version) FROM ztm_ca.schema_version`).Scan(&version); err != nil || version != postgres.SchemaVersion {
		t.Fatalf("schema version %d after Open, want %d (%v)", version, postgres.SchemaVersion, err)
	}
	if cborStrict() {
		t.Fatal("cbor_uint is still strict after the migration")
	}
	var last *ca.Record
	for range 3 {
		last = issuance(t, "st", at)
		last.KeyProvenance = ca.ProvenanceEATConfirmed // a column of version 6
		if err := l.Append(ctx, last, nil); err != nil {
			t.Fatal(err)
		}
	}
	h, err := l.Verify(ctx)
	if err != nil || h.Seq != 4 {
		t.Fatalf("Verify after migration: head %d, %v", h.Seq, err)
	}
	st, err := l.Lookup(ctx, last.Serial)
	if err != nil || st.Issuance.KeyProvenance != ca.ProvenanceEATConfirmed {
		t.Fatalf("Lookup after migration: %+v, %v", st, err)
	}
}
