package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ztmkit/ztm/ca"
	"github.com/ztmkit/ztm/ca/ledger/ledgertest"
	"github.com/ztmkit/ztm/ca/ledger/postgres"
	"github.com/ztmkit/ztm/internal/pgtest"
)

func open(t testing.TB, dsn string, cfg postgres.Config) *postgres.Ledger {
	t.Helper()
	l, err := postgres.Open(context.Background(), dsn, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// connect opens a connection of the test's own, closed at cleanup.
func connect(t testing.TB, dsn string) *pgx.Conn {
	t.Helper()
	c, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// exec runs SQL on dsn behind the ledger's back.
func exec(t testing.TB, dsn, sql string, args ...any) {
	t.Helper()
	if _, err := connect(t, dsn).Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func TestConformance(t *testing.T) {
	t.Parallel()
	srv := pgtest.Start(t)
	var mu sync.Mutex
	dsns := map[ca.Ledger]string{}
	newLedger := func(t *testing.T) ca.Ledger {
		dsn := srv.NewDatabase(t)
		l, err := postgres.Open(context.Background(), dsn, postgres.Config{})
		if err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		dsns[l] = dsn
		mu.Unlock()
		return l
	}
	ledgertest.Run(t, newLedger, ledgertest.Config{
		Tamper: func(t *testing.T, l ca.Ledger, seq uint64) {
			mu.Lock()
			dsn := dsns[l]
			mu.Unlock()
			exec(t, dsn, "UPDATE ztm_ca.records SET subject = 'SERIALNUMBER=forged' WHERE seq = $1", int64(seq))
		},
		TamperProvenance: func(t *testing.T, l ca.Ledger, seq uint64) {
			mu.Lock()
			dsn := dsns[l]
			mu.Unlock()
			exec(t, dsn, "UPDATE ztm_ca.records SET key_provenance = CASE key_provenance WHEN 1 THEN 2 ELSE 1 END WHERE seq = $1", int64(seq))
		},
		Reopen: func(t *testing.T, l ca.Ledger) ca.Ledger {
			mu.Lock()
			dsn := dsns[l]
			mu.Unlock()
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			nl, err := postgres.Open(context.Background(), dsn, postgres.Config{})
			if err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			dsns[nl] = dsn
			mu.Unlock()
			return nl
		},
	})
}

// TestConformanceInstances runs the kit on a "ledger" that spreads its
// calls over three instances (three pools) on one database, so every race
// test of the kit races across instances.
func TestConformanceInstances(t *testing.T) {
	t.Parallel()
	srv := pgtest.Start(t)
	ledgertest.Run(t, func(t *testing.T) ca.Ledger {
		dsn := srv.NewDatabase(t)
		m := &multi{}
		for range 3 {
			l, err := postgres.Open(context.Background(), dsn, postgres.Config{})
			if err != nil {
				t.Fatal(err)
			}
			m.ls = append(m.ls, l)
		}
		return m
	}, ledgertest.Config{})
}

// multi is a ca.Ledger that sends each call to the next of several
// ledgers on the same database.
type multi struct {
	ls []*postgres.Ledger
	mu sync.Mutex
	i  int
}

func (m *multi) next() *postgres.Ledger {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.i++
	return m.ls[m.i%len(m.ls)]
}

func (m *multi) Append(ctx context.Context, r *ca.Record, q *ca.Quota) error {
	return m.next().Append(ctx, r, q)
}
func (m *multi) Lookup(ctx context.Context, s *big.Int) (*ca.Status, error) {
	return m.next().Lookup(ctx, s)
}
func (m *multi) LookupRequest(ctx context.Context, key []byte) (*ca.Status, error) {
	return m.next().LookupRequest(ctx, key)
}
func (m *multi) LookupDevice(ctx context.Context, d []byte) (*ca.Status, error) {
	return m.next().LookupDevice(ctx, d)
}
func (m *multi) Revoked(ctx context.Context) ([]ca.Revocation, error) { return m.next().Revoked(ctx) }
func (m *multi) NextCRLNumber(ctx context.Context) (*big.Int, error) {
	return m.next().NextCRLNumber(ctx)
}
func (m *multi) Head(ctx context.Context) (ca.Head, error)   { return m.next().Head(ctx) }
func (m *multi) Verify(ctx context.Context) (ca.Head, error) { return m.next().Verify(ctx) }
func (m *multi) Close() error {
	var errs []error
	for _, l := range m.ls {
		errs = append(errs, l.Close())
	}
	return errors.Join(errs...)
}

// TestSchema covers creation, concurrent migration, a newer schema, a
// foreign schema, and several ledgers in one database.
func TestSchema(t *testing.T) {
	t.Parallel()
	srv := pgtest.Start(t)
	ctx := context.Background()

	t.Run("ConcurrentOpen", func(t *testing.T) {
		dsn := srv.NewDatabase(t)
		const n = 8
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				l, err := postgres.Open(ctx, dsn, postgres.Config{})
				errs[i] = err
				if err == nil {
					l.Close()
				}
			}()
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("instance %d: %v", i, err)
			}
		}
		c, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(ctx)
		var rows, maxV int
		if err := c.QueryRow(ctx, "SELECT count(*), max(version) FROM ztm_ca.schema_version").Scan(&rows, &maxV); err != nil {
			t.Fatal(err)
		}
		if rows != postgres.SchemaVersion || maxV != postgres.SchemaVersion {
			t.Fatalf("schema_version has %d rows, max %d; want %d", rows, maxV, postgres.SchemaVersion)
		}
	})

	t.Run("NewerSchema", func(t *testing.T) {
		dsn := srv.NewDatabase(t)
		open(t, dsn, postgres.Config{}).Close()
		exec(t, dsn, "INSERT INTO ztm_ca.schema_version (version) VALUES (99)")
		l, err := postgres.Open(ctx, dsn, postgres.Config{})
		if l != nil || !errors.Is(err, postgres.ErrSchemaVersion) {
			t.Fatalf("Open on a newer schema: %v", err)
		}
	})

	t.Run("ForeignTables", func(t *testing.T) {
		dsn := srv.NewDatabase(t)
		exec(t, dsn, "CREATE SCHEMA ztm_ca; CREATE TABLE ztm_ca.records (x int)")
		l, err := postgres.Open(ctx, dsn, postgres.Config{})
		if l != nil || !errors.Is(err, postgres.ErrNotLedger) {
			t.Fatalf("Open on foreign tables: %v", err)
		}
	})

	t.Run("InvalidConfig", func(t *testing.T) {
		dsn := srv.NewDatabase(t)
		for _, cfg := range []postgres.Config{{Schema: "Bad-Name"}, {Schema: "x; DROP TABLE y"}, {MaxBatch: -1}, {BatchTimeout: -time.Second}} {
			if l, err := postgres.Open(ctx, dsn, cfg); l != nil || !errors.Is(err, postgres.ErrInvalidConfig) {
				t.Errorf("Open(%+v): %v", cfg, err)
			}
		}
		if l, err := postgres.Open(ctx, "postgres://%zz", postgres.Config{}); l != nil || !errors.Is(err, postgres.ErrInvalidConfig) {
			t.Errorf("Open with a bad DSN: %v", err)
		}
		if l, err := postgres.New(ctx, nil, postgres.Config{}); l != nil || !errors.Is(err, postgres.ErrInvalidConfig) {
			t.Errorf("New(nil pool): %v", err)
		}
	})

	t.Run("TwoSchemas", func(t *testing.T) {
		dsn := srv.NewDatabase(t)
		a := open(t, dsn, postgres.Config{Schema: "line_a"})
		b := open(t, dsn, postgres.Config{Schema: "line_b"})
		for range 3 {
			if err := a.Append(ctx, issuance(t, "st", time.Unix(1_800_000_000, 0)), nil); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.Append(ctx, issuance(t, "st", time.Unix(1_800_000_000, 0)), nil); err != nil {
			t.Fatal(err)
		}
		ha, _ := a.Verify(ctx)
		hb, _ := b.Verify(ctx)
		if ha.Seq != 3 || hb.Seq != 1 {
			t.Fatalf("heads %d and %d, want 3 and 1", ha.Seq, hb.Seq)
		}
	})

	t.Run("NewOnCallersPool", func(t *testing.T) {
		dsn := srv.NewDatabase(t)
		pool, err := pgxpool.New(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer pool.Close()
		l, err := postgres.New(ctx, pool, postgres.Config{Schema: "shared_pool"})
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Append(ctx, issuance(t, "st", time.Unix(1_800_000_000, 0)), nil); err != nil {
			t.Fatal(err)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		// Close left the caller's pool open.
		var n int
		if err := pool.QueryRow(ctx, "SELECT count(*) FROM shared_pool.records").Scan(&n); err != nil || n != 1 {
			t.Fatalf("pool after Close: %d records, %v", n, err)
		}
	})

	t.Run("Unreachable", func(t *testing.T) {
		// A port nothing listens on.
		dsn := fmt.Sprintf("postgres://%s@127.0.0.1:1/x?sslmode=disable&connect_timeout=2", pgtest.User)
		l, err := postgres.Open(ctx, dsn, postgres.Config{})
		var pe *postgres.Error
		if l != nil || !errors.Is(err, postgres.ErrUnavailable) || !errors.As(err, &pe) || pe.Reason != postgres.ReasonUnavailable {
			t.Fatalf("Open on a closed port: %v", err)
		}
	})
}

// TestTamperKinds changes stored records in several ways; each is caught.
func TestTamperKinds(t *testing.T) {
	t.Parallel()
	srv := pgtest.Start(t)
	ctx := context.Background()
	for name, stmt := range map[string]string{
		"delete middle record": "DELETE FROM ztm_ca.records WHERE seq = 3",
		"delete first record":  "DELETE FROM ztm_ca.records WHERE seq = 1",
		"change certificate":   "UPDATE ztm_ca.records SET cert = (SELECT cert FROM ztm_ca.records WHERE seq = 2) WHERE seq = 3",
		"change time":          "UPDATE ztm_ca.records SET time_ns = time_ns + 1 WHERE seq = 2",
		"change requester":     "UPDATE ztm_ca.records SET requester = 'someone else' WHERE seq = 4",
		"recompute own hash":   "UPDATE ztm_ca.records SET profile = 'x', hash = '\\x00' WHERE seq = 2",
		"swap order":           "UPDATE ztm_ca.records SET seq = 1000 WHERE seq = 2; UPDATE ztm_ca.records SET seq = 2 WHERE seq = 3; UPDATE ztm_ca.records SET seq = 3 WHERE seq = 1000",
	} {
		t.Run(name, func(t *testing.T) {
			dsn := srv.NewDatabase(t)
			l := open(t, dsn, postgres.Config{})
			for i := range 5 {
				if err := l.Append(ctx, issuance(t, "filler", time.Unix(1_800_000_000+int64(i), 0)), nil); err != nil {
					t.Fatal(err)
				}
			}
			exec(t, dsn, stmt)
			if _, err := l.Verify(ctx); !errors.Is(err, ca.ErrLedgerCorrupt) {
				t.Fatalf("Verify: %v", err)
			}
		})
	}
}
