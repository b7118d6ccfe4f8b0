package postgres_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/ztmkit/ztm/ca"
	"github.com/ztmkit/ztm/ca/ledger/postgres"
	"github.com/ztmkit/ztm/internal/pgtest"
)

func stationCSR(t *testing.T) []byte {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "Station 1"}}, k)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// TestTailDeletedBySQL is the truncation attack on PostgreSQL: a revoked
// station's revocation, the last record, is deleted with SQL. The chain
// alone cannot show it; the checkpoint made with the CRL does: Open
// refuses the ledger, a Ledger that was open finds it in Verify and then
// refuses appends, and an Authority that keeps the checkpoints issues
// nothing on it.
func TestTailDeletedBySQL(t *testing.T) {
	t.Parallel()
	srv := pgtest.Start(t)
	dsn := srv.NewDatabase(t)
	ctx := context.Background()
	p := newPKI(t)
	chain := []*x509.Certificate{p.inter, p.root}
	store := ca.NewCheckpointFile(filepath.Join(t.TempDir(), "checkpoint"))
	cfg := postgres.Config{Checkpoints: store, CheckpointKey: p.key.Public()}
	l := open(t, dsn, cfg)
	auth, err := ca.New(ca.Config{Signer: p.key, Chain: chain, Ledger: l, Checkpoints: store})
	if err != nil {
		t.Fatal(err)
	}
	st, err := auth.Issue(ctx, &ca.Request{CSR: stationCSR(t), Profile: "station", Requester: "admin",
		Station: &ca.StationAuthorization{Profiles: []string{"idevid"}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := auth.Issue(ctx, &ca.Request{CSR: idevidCSR(t, "D1"), Profile: "idevid", RequesterCertificate: st}); err != nil {
		t.Fatal(err)
	}
	if err := auth.Revoke(ctx, st.SerialNumber, ca.ReasonKeyCompromise, "security"); err != nil {
		t.Fatal(err)
	}
	if _, err := auth.CRL(ctx); err != nil {
		t.Fatal(err)
	}
	exec(t, dsn, "DELETE FROM ztm_ca.records WHERE seq = (SELECT max(seq) FROM ztm_ca.records)")

	// The Ledger that was open finds the cut in Verify, and refuses.
	var ce *ca.CheckpointError
	if _, err := l.Verify(ctx); !errors.As(err, &ce) || ce.Checkpoint.Seq != 3 || ce.Ledger.Seq != 2 {
		t.Fatalf("Verify of the cut ledger: %v", err)
	}
	if _, err := auth.Issue(ctx, &ca.Request{CSR: idevidCSR(t, "D2"), Profile: "idevid", RequesterCertificate: st}); !errors.Is(err, ca.ErrLedgerCorrupt) {
		t.Fatalf("Issue after Verify found the cut: %v", err)
	}
	// Open refuses it.
	if _, err := postgres.Open(ctx, dsn, cfg); !errors.As(err, &ce) || !errors.Is(err, ca.ErrCheckpointMismatch) || ce.Checkpoint.Seq != 3 || ce.Ledger.Seq != 2 {
		t.Fatalf("Open of the cut ledger: %v", err)
	}
	// Without the checkpoints the ledger verifies…
	bare := open(t, dsn, postgres.Config{})
	if _, err := bare.Verify(ctx); err != nil {
		t.Fatalf("Verify without checkpoints: %v", err)
	}
	// … but an Authority that keeps them issues nothing on it.
	auth2, err := ca.New(ca.Config{Signer: p.key, Chain: chain, Ledger: bare, Checkpoints: store})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := auth2.Issue(ctx, &ca.Request{CSR: idevidCSR(t, "D3"), Profile: "idevid", RequesterCertificate: st}); !errors.Is(err, ca.ErrCheckpointMismatch) {
		t.Fatalf("revoked station enrolls again: %v", err)
	}
	if h, _ := bare.Head(ctx); h.Seq != 2 {
		t.Fatalf("head %d", h.Seq)
	}
}

// TestVerifyAmcheck runs Verify with the amcheck extension installed: it
// checks every index of the ledger and passes on a sound one.
func TestVerifyAmcheck(t *testing.T) {
	t.Parallel()
	srv := pgtest.Start(t)
	dsn := srv.NewDatabase(t)
	ctx := context.Background()
	exec(t, dsn, "CREATE EXTENSION IF NOT EXISTS amcheck")
	l := open(t, dsn, postgres.Config{})
	for range 3 {
		r := issuance(t, "line", time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
		r.IdempotencyKey = r.Serial.Bytes()
		if err := l.Append(ctx, r, nil); err != nil {
			t.Fatal(err)
		}
	}
	if h, err := l.Verify(ctx); err != nil || h.Seq != 3 {
		t.Fatalf("Verify with amcheck: %d %v", h.Seq, err)
	}
}

// TestVerifyAmcheckFailure is the negative control of TestVerifyAmcheck:
// amcheck installed in a schema of its own, its bt_index_check replaced by
// one that reports every index damaged, and a harmless one ahead of it on
// the search path (which Verify must not call). Verify reports a
// *ca.StorageError, and the Ledger then refuses appends.
func TestVerifyAmcheckFailure(t *testing.T) {
	t.Parallel()
	srv := pgtest.Start(t)
	dsn := srv.NewDatabase(t)
	ctx := context.Background()
	exec(t, dsn, "CREATE SCHEMA amcheck_real")
	exec(t, dsn, "CREATE EXTENSION amcheck SCHEMA amcheck_real")
	exec(t, dsn, `CREATE OR REPLACE FUNCTION amcheck_real.bt_index_check(index regclass, heapallindexed boolean) RETURNS void LANGUAGE plpgsql
		AS $$ BEGIN RAISE EXCEPTION 'item order invariant violated for index %', $1; END $$`)
	exec(t, dsn, `CREATE FUNCTION public.bt_index_check(regclass, boolean) RETURNS void LANGUAGE plpgsql
		AS $$ BEGIN END $$`)
	l := open(t, dsn, postgres.Config{})
	if err := l.Append(ctx, issuance(t, "line", time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)), nil); err != nil {
		t.Fatal(err)
	}
	var se *ca.StorageError
	if _, err := l.Verify(ctx); !errors.As(err, &se) || !errors.Is(err, ca.ErrLedgerCorrupt) {
		t.Fatalf("Verify: %v", err)
	}
	t.Log(se)
	if err := l.Append(ctx, issuance(t, "line", time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)), nil); !errors.Is(err, ca.ErrLedgerCorrupt) {
		t.Fatalf("Append after damage was found: %v", err)
	}
}

// TestTailDeletedWhileOpen deletes a revoked station's revocation, the
// last record, while the CA runs: the append that follows is linked below
// the last record the Ledger appended, so it is not answered with success
// (the station gets no certificate), and the Ledger refuses from then on.
func TestTailDeletedWhileOpen(t *testing.T) {
	t.Parallel()
	srv := pgtest.Start(t)
	dsn := srv.NewDatabase(t)
	ctx := context.Background()
	p := newPKI(t)
	l := open(t, dsn, postgres.Config{})
	auth := p.authority(t, l, ca.QuotaPolicy{})
	st, err := auth.Issue(ctx, &ca.Request{CSR: stationCSR(t), Profile: "station", Requester: "admin",
		Station: &ca.StationAuthorization{Profiles: []string{"idevid"}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := auth.Revoke(ctx, st.SerialNumber, ca.ReasonKeyCompromise, "security"); err != nil {
		t.Fatal(err)
	}
	exec(t, dsn, "DELETE FROM ztm_ca.records WHERE seq = 2")
	if c, err := auth.Issue(ctx, &ca.Request{CSR: idevidCSR(t, "D1"), Profile: "idevid", RequesterCertificate: st}); !errors.Is(err, ca.ErrLedgerCorrupt) {
		t.Fatalf("revoked station after its revocation was deleted: issued %v, %v", c != nil, err)
	}
	if _, err := auth.Issue(ctx, &ca.Request{CSR: idevidCSR(t, "D2"), Profile: "idevid", Requester: "line"}); !errors.Is(err, ca.ErrLedgerCorrupt) {
		t.Fatalf("Issue on a ledger found cut: %v", err)
	}
}
