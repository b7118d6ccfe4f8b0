package sqlite_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/ztmkit/ztm/ca"
	"github.com/ztmkit/ztm/ca/ledger/sqlite"
)

// fixture is a CA with a SQLite ledger and a checkpoint file beside it.
type fixture struct {
	path  string
	store *ca.CheckpointFile
	key   *ecdsa.PrivateKey
	chain []*x509.Certificate
	l     *sqlite.Ledger
	auth  *ca.Authority
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	dir := t.TempDir()
	rootKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	root, err := ca.NewRoot(ca.RootRequest{Subject: pkix.Name{CommonName: "Tamper Test Root"}, Signer: rootKey})
	if err != nil {
		t.Fatal(err)
	}
	inter, err := ca.NewIntermediate(ca.IntermediateRequest{
		Subject: pkix.Name{CommonName: "Tamper Test Issuing CA"}, PublicKey: key.Public(), Parent: root, ParentSigner: rootKey,
	})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{
		path:  filepath.Join(dir, "ledger.db"),
		store: ca.NewCheckpointFile(filepath.Join(dir, "checkpoint")),
		key:   key,
		chain: []*x509.Certificate{inter, root},
	}
	if err := f.open(t); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.close(t) })
	return f
}

func (f *fixture) opts() sqlite.Options {
	return sqlite.Options{Checkpoints: f.store, CheckpointKey: f.key.Public()}
}

// open opens the ledger, checked against the checkpoints, and an
// Authority on it.
func (f *fixture) open(t testing.TB) error {
	t.Helper()
	l, err := sqlite.Open(context.Background(), f.path, f.opts())
	if err != nil {
		return err
	}
	f.l = l
	f.auth, err = ca.New(ca.Config{Signer: f.key, Chain: f.chain, Ledger: l, Checkpoints: f.store})
	if err != nil {
		t.Fatal(err)
	}
	return nil
}

// openUnchecked opens the ledger without its checkpoints, as an attacker's
// own tooling (or a misconfigured CA) would.
func (f *fixture) openUnchecked(t testing.TB) {
	t.Helper()
	l, err := sqlite.Open(context.Background(), f.path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	f.l = l
	if f.auth, err = ca.New(ca.Config{Signer: f.key, Chain: f.chain, Ledger: l}); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) close(t testing.TB) {
	t.Helper()
	if f.l != nil {
		if err := f.l.Close(); err != nil {
			t.Error(err)
		}
		f.l = nil
	}
}

func ldevidCSR(t testing.TB, cn string) []byte {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: cn}}, k)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// issue issues an LDevID for cn, as station if not nil, with the SHA-256
// of its CSR as idempotency key.
func (f *fixture) issue(t testing.TB, cn string, station *x509.Certificate) (*x509.Certificate, error) {
	t.Helper()
	return f.issueCSR(t, ldevidCSR(t, cn), station)
}

// issueCSR is issue for a given CSR.
func (f *fixture) issueCSR(t testing.TB, csr []byte, station *x509.Certificate) (*x509.Certificate, error) {
	t.Helper()
	key := sha256.Sum256(csr)
	req := &ca.Request{CSR: csr, Profile: "ldevid", IdempotencyKey: key[:]}
	if station != nil {
		req.RequesterCertificate = station
	} else {
		req.Requester = "line-1"
	}
	return f.auth.Issue(context.Background(), req)
}

func (f *fixture) mustIssue(t testing.TB, cn string, station *x509.Certificate) *x509.Certificate {
	t.Helper()
	c, err := f.issue(t, cn, station)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (f *fixture) station(t testing.TB) *x509.Certificate {
	t.Helper()
	c, err := f.auth.Issue(context.Background(), &ca.Request{
		CSR: ldevidCSR(t, "Station 1"), Profile: "station", Requester: "admin",
		Station: &ca.StationAuthorization{Profiles: []string{"ldevid"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// revoke revokes c (key compromise) through the CA.
func (f *fixture) revoke(t testing.TB, c *x509.Certificate) {
	t.Helper()
	if err := f.auth.Revoke(context.Background(), c.SerialNumber, ca.ReasonKeyCompromise, "security"); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) exec(t testing.TB, stmts ...string) {
	t.Helper()
	db := rawDB(t.(*testing.T), f.path)
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	db.Close()
}

// TestTailDeletedBySQL is attack 1 of the issue: a revoked station's
// revocation, the last record, is deleted with SQL. The hash chain alone
// cannot show it (Verify without checkpoints passes), but the checkpoint
// made with the CRL can: Open refuses the ledger, an Authority refuses to
// issue, revoke or sign a CRL on it, and the CRL names the longer head.
func TestTailDeletedBySQL(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	st := f.station(t)
	f.mustIssue(t, "device 1", st)
	f.revoke(t, st)
	der, err := f.auth.CRL(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.issue(t, "device 2", st); !errors.Is(err, ca.ErrNotAuthorized) {
		t.Fatalf("revoked station: %v", err)
	}
	f.close(t)
	f.exec(t, "DELETE FROM records WHERE seq = (SELECT max(seq) FROM records)")

	var ce *ca.CheckpointError
	err = f.open(t)
	if !errors.As(err, &ce) || !errors.Is(err, ca.ErrCheckpointMismatch) || !errors.Is(err, ca.ErrLedgerCorrupt) {
		t.Fatalf("Open of a cut ledger: %v", err)
	}
	if ce.Checkpoint.Seq != 3 || ce.Ledger.Seq != 2 {
		t.Fatalf("heads named: checkpoint %d, ledger %d", ce.Checkpoint.Seq, ce.Ledger.Seq)
	}
	t.Log(err)

	// Without its checkpoints the cut is invisible to the ledger…
	f.openUnchecked(t)
	if _, err := f.l.Verify(ctx); err != nil {
		t.Fatalf("Verify without checkpoints: %v", err)
	}
	// … but not to an Authority that keeps them: it issues nothing.
	auth, err := ca.New(ca.Config{Signer: f.key, Chain: f.chain, Ledger: f.l, Checkpoints: f.store})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := auth.Issue(ctx, &ca.Request{CSR: ldevidCSR(t, "device 3"), Profile: "ldevid", RequesterCertificate: st}); !errors.Is(err, ca.ErrCheckpointMismatch) {
		t.Fatalf("Issue on a cut ledger: %v", err)
	}
	if err := auth.Revoke(ctx, st.SerialNumber, ca.ReasonKeyCompromise, "x"); !errors.Is(err, ca.ErrCheckpointMismatch) {
		t.Fatalf("Revoke on a cut ledger: %v", err)
	}
	if _, err := auth.CRL(ctx); !errors.Is(err, ca.ErrCheckpointMismatch) {
		t.Fatalf("CRL on a cut ledger: %v", err)
	}
	if h, _ := f.l.Head(ctx); h.Seq != 2 {
		t.Fatalf("records appended on a cut ledger: head %d", h.Seq)
	}
	// Whoever holds the CRL sees the ledger is shorter than its checkpoint.
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		t.Fatal(err)
	}
	if err := crl.CheckSignatureFrom(f.chain[0]); err != nil {
		t.Fatal(err)
	}
	h, ok, err := ca.CRLCheckpoint(crl)
	if err != nil || !ok || h.Seq != 3 {
		t.Fatalf("CRL checkpoint %+v %v %v", h, ok, err)
	}
	cp := &ca.Checkpoint{Seq: h.Seq, Hash: h.Hash}
	head, _ := f.l.Head(ctx)
	if err := cp.Check(head, nil); !errors.Is(err, ca.ErrCheckpointMismatch) {
		t.Fatalf("CRL head against the cut ledger: %v", err)
	}
}

// TestTailReplacedBySQL cuts the revocation and appends another record in
// its place (through a CA without checkpoints): the ledger is as long as
// the checkpoint, and its chain verifies, but it differs.
func TestTailReplacedBySQL(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	st := f.station(t)
	f.revoke(t, st)
	if _, err := f.auth.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	f.close(t)
	f.exec(t, "DELETE FROM records WHERE seq = 2")
	f.openUnchecked(t)
	f.mustIssue(t, "device 2", st)
	if _, err := f.l.Verify(ctx); err != nil {
		t.Fatal(err)
	}
	f.close(t)
	var ce *ca.CheckpointError
	if err := f.open(t); !errors.As(err, &ce) || ce.Checkpoint.Seq != 2 || ce.Ledger.Seq != 2 {
		t.Fatalf("Open of a rewritten ledger: %v", err)
	}
}

// TestRecordChangedBySQL changes one record's certificate or status behind
// the ledger: Open refuses it, and a ledger that finds it in Verify
// refuses every later append and lookup.
func TestRecordChangedBySQL(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for name, stmt := range map[string]string{
		"certificate":            "UPDATE records SET cert = (SELECT cert FROM records WHERE seq = 3) WHERE seq = 2",
		"revocation serial":      "UPDATE records SET serial = (SELECT serial FROM records WHERE seq = 3) WHERE seq = 4",
		"revocation reason":      "UPDATE records SET reason = 0 WHERE seq = 4",
		"issuance to revocation": "UPDATE records SET kind = 2 WHERE seq = 3",
		"requester":              "UPDATE records SET requester = 'line-2' WHERE seq = 3",
		"idempotency key":        "UPDATE records SET idem_key = x'00' WHERE seq = 3",
		"hash recomputed":        "UPDATE records SET profile = 'station', hash = zeroblob(32) WHERE seq = 2",
	} {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			st := f.station(t)
			f.mustIssue(t, "device 1", nil)
			f.mustIssue(t, "device 2", nil)
			f.revoke(t, st)
			f.mustIssue(t, "device 3", nil)
			if _, err := f.auth.Checkpoint(ctx); err != nil {
				t.Fatal(err)
			}
			// Changed while the ledger is open: Verify finds it.
			f.exec(t, stmt)
			if _, err := f.l.Verify(ctx); !errors.Is(err, ca.ErrLedgerCorrupt) {
				t.Fatalf("Verify: %v", err)
			}
			if _, err := f.issue(t, "device 4", nil); !errors.Is(err, ca.ErrLedgerCorrupt) {
				t.Fatalf("Issue after Verify failed: %v", err)
			}
			if err := f.auth.Revoke(ctx, st.SerialNumber, ca.ReasonKeyCompromise, "x"); !errors.Is(err, ca.ErrLedgerCorrupt) {
				t.Fatalf("Revoke after Verify failed: %v", err)
			}
			if _, err := f.l.Lookup(ctx, st.SerialNumber); !errors.Is(err, ca.ErrLedgerCorrupt) {
				t.Fatalf("Lookup after Verify failed: %v", err)
			}
			f.close(t)
			// And Open refuses it.
			if err := f.open(t); !errors.Is(err, ca.ErrLedgerCorrupt) {
				t.Fatalf("Open: %v", err)
			}
		})
	}
}

// TestQuickOpen: with Options.QuickOpen, Open still refuses a cut ledger
// and damaged storage, but a record changed before the checkpoint is
// found only by Verify, which then stops the ledger.
func TestQuickOpen(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	for i := range 3 {
		f.mustIssue(t, fmt.Sprintf("device %d", i), nil)
	}
	if _, err := f.auth.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	f.close(t)
	f.exec(t, "UPDATE records SET requester = 'line-2' WHERE seq = 1")
	quick := f.opts()
	quick.QuickOpen = true
	l, err := sqlite.Open(ctx, f.path, quick)
	if err != nil {
		t.Fatalf("QuickOpen: %v", err)
	}
	if _, err := l.Verify(ctx); !errors.Is(err, ca.ErrLedgerCorrupt) {
		t.Fatalf("Verify: %v", err)
	}
	if _, err := l.NextCRLNumber(ctx); !errors.Is(err, ca.ErrLedgerCorrupt) {
		t.Fatalf("NextCRLNumber after Verify failed: %v", err)
	}
	l.Close()
	if _, err := sqlite.Open(ctx, f.path, f.opts()); !errors.Is(err, ca.ErrLedgerCorrupt) {
		t.Fatalf("full Open: %v", err)
	}
	f.exec(t, "DELETE FROM records WHERE seq = 3")
	if _, err := sqlite.Open(ctx, f.path, quick); !errors.Is(err, ca.ErrCheckpointMismatch) {
		t.Fatalf("QuickOpen of a cut ledger: %v", err)
	}
}

// TestTailDeletedWhileOpen deletes a revoked station's revocation, the
// last record, while the CA runs: the next append sees that the chain no
// longer holds the last record it appended, and the station gets nothing.
func TestTailDeletedWhileOpen(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	st := f.station(t)
	f.revoke(t, st)
	f.exec(t, "DELETE FROM records WHERE seq = 2")
	if c, err := f.issue(t, "device 1", st); !errors.Is(err, ca.ErrLedgerCorrupt) {
		t.Fatalf("revoked station after its revocation was deleted: issued %v, %v", c != nil, err)
	}
	if _, err := f.issue(t, "device 2", nil); !errors.Is(err, ca.ErrLedgerCorrupt) {
		t.Fatalf("Issue on a ledger found cut: %v", err)
	}
	if h, _ := f.l.Head(ctx); h.Seq != 1 {
		t.Fatalf("head %d", h.Seq)
	}
}

// TestRevocationDeletedBeforeAnyCRL is the issue's first attack exactly:
// revoke a station, delete that last record with SQL, reopen — with no
// CRL made in between. Revoke saved a checkpoint covering the revocation,
// so the reopened ledger is refused and the station enrolls nowhere.
func TestRevocationDeletedBeforeAnyCRL(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	st := f.station(t)
	f.revoke(t, st)
	f.close(t)
	f.exec(t, "DELETE FROM records WHERE seq = (SELECT max(seq) FROM records)")
	var ce *ca.CheckpointError
	if err := f.open(t); !errors.As(err, &ce) || ce.Checkpoint.Seq != 2 || ce.Ledger.Seq != 1 {
		t.Fatalf("Open: %v", err)
	}
	f.openUnchecked(t)
	auth, err := ca.New(ca.Config{Signer: f.key, Chain: f.chain, Ledger: f.l, Checkpoints: f.store})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := auth.Issue(ctx, &ca.Request{CSR: ldevidCSR(t, "device"), Profile: "ldevid", RequesterCertificate: st}); !errors.Is(err, ca.ErrCheckpointMismatch) {
		t.Fatalf("revoked station enrolls: %v", err)
	}
}
