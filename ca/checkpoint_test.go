package ca_test

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/veraison/go-cose"

	"github.com/ztmkit/ztm/ca"
	"github.com/ztmkit/ztm/ca/ledger/memledger"
	"github.com/ztmkit/ztm/identity/keystore"
)

func withCheckpoints(dir string) func(*ca.Config) {
	return func(c *ca.Config) { c.Checkpoints = ca.NewCheckpointFile(filepath.Join(dir, "checkpoint")) }
}

// TestCheckpointAlgorithms signs a checkpoint with a CA key of each
// algorithm, parses it back, checks it with go-cose (an independent COSE
// implementation), and refuses every one-bit change and another key.
func TestCheckpointAlgorithms(t *testing.T) {
	for _, alg := range keystore.Algorithms() {
		t.Run(alg.String(), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			dir := t.TempDir()
			p := newPKI(t, alg, withCheckpoints(dir))
			issueAll(t, p)
			cp, err := p.auth.Checkpoint(ctx)
			if err != nil {
				t.Fatal(err)
			}
			head, _ := p.ledger.Head(ctx)
			got, err := ca.ParseCheckpoint(cp.Raw, p.inter.PublicKey)
			if err != nil {
				t.Fatal(err)
			}
			if got.Seq != head.Seq || !bytes.Equal(got.Hash, head.Hash) || !bytes.Equal(got.KeyID, p.inter.SubjectKeyId) || got.CRLNumber != nil {
				t.Fatalf("checkpoint %+v, ledger head %+v", got, head)
			}
			stored, err := ca.NewCheckpointFile(filepath.Join(dir, "checkpoint")).LatestCheckpoint(ctx)
			if err != nil || !bytes.Equal(stored, cp.Raw) {
				t.Fatalf("stored checkpoint: %v", err)
			}
			coseVerify(t, alg, p.inter.PublicKey, cp.Raw)
			for i := range cp.Raw {
				bad := bytes.Clone(cp.Raw)
				bad[i] ^= 0x01
				if _, err := ca.ParseCheckpoint(bad, p.inter.PublicKey); !errors.Is(err, ca.ErrBadCheckpoint) {
					t.Fatalf("byte %d flipped: %v", i, err)
				}
			}
			var fe *ca.CheckpointFormatError
			if _, err := ca.ParseCheckpoint(cp.Raw, p.root.PublicKey); !errors.As(err, &fe) || !fe.Signature {
				t.Fatalf("root key: %v", err)
			}
		})
	}
}

// coseVerify checks raw with go-cose.
func coseVerify(t *testing.T, alg keystore.Algorithm, pub any, raw []byte) {
	t.Helper()
	var msg cose.Sign1Message
	if err := msg.UnmarshalCBOR(raw); err != nil {
		t.Fatal(err)
	}
	if rk, ok := pub.(*rsa.PublicKey); ok {
		pub = rk
	}
	v, err := cose.NewVerifier(cose.Algorithm(alg.COSE()), pub)
	if err != nil {
		t.Fatal(err)
	}
	if err := msg.Verify(nil, v); err != nil {
		t.Fatalf("go-cose: %v", err)
	}
	if ct, _ := msg.Headers.Protected[cose.HeaderLabelContentType].(string); ct != ca.CheckpointContentType {
		t.Fatalf("content type %v", msg.Headers.Protected[cose.HeaderLabelContentType])
	}
}

// TestCRLCarriesCheckpoint: every new CRL comes with a checkpoint, whose
// head it carries and whose CRL number it is.
func TestCRLCarriesCheckpoint(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	p := newPKI(t, keystore.ES256, withCheckpoints(dir))
	certs := issueAll(t, p)
	if err := p.auth.Revoke(ctx, certs["ldevid"].SerialNumber, ca.ReasonKeyCompromise, "admin"); err != nil {
		t.Fatal(err)
	}
	der, err := p.auth.CRL(ctx)
	if err != nil {
		t.Fatal(err)
	}
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		t.Fatal(err)
	}
	h, ok, err := ca.CRLCheckpoint(crl)
	if err != nil || !ok {
		t.Fatalf("CRL checkpoint: %v %v", ok, err)
	}
	head, _ := p.ledger.Head(ctx)
	raw, err := ca.NewCheckpointFile(filepath.Join(dir, "checkpoint")).LatestCheckpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cp, err := ca.ParseCheckpoint(raw, p.inter.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	if h.Seq != head.Seq || !bytes.Equal(h.Hash, head.Hash) || cp.Seq != h.Seq || cp.CRLNumber.Cmp(crl.Number) != 0 {
		t.Fatalf("CRL head %d, checkpoint %d (CRL number %v), ledger %d, CRL number %v", h.Seq, cp.Seq, cp.CRLNumber, head.Seq, crl.Number)
	}
	// A later plain checkpoint keeps the CRL number.
	cp2, err := p.auth.Checkpoint(ctx)
	if err != nil || cp2.CRLNumber.Cmp(crl.Number) != 0 {
		t.Fatalf("later checkpoint: %v", err)
	}
}

func TestCheckpointHandler(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	now := testNow
	p := newPKI(t, keystore.ES256, func(c *ca.Config) {
		c.CheckpointInterval = time.Minute
		c.Time = func() time.Time { return now }
	})
	srv := httptest.NewServer(p.auth.CheckpointHandler())
	defer srv.Close()
	get := func() *ca.Checkpoint {
		t.Helper()
		resp, err := http.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != `application/cose; cose-type="cose-sign1"` {
			t.Fatalf("%d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		cp, err := ca.ParseCheckpoint(body, p.inter.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		return cp
	}
	first := get()
	issueAll(t, p)
	if again := get(); !bytes.Equal(again.Raw, first.Raw) {
		t.Fatal("checkpoint re-signed before the interval")
	}
	now = now.Add(2 * time.Minute)
	if later := get(); later.Seq != 4 || !later.Time.Equal(now) {
		t.Fatalf("after the interval: seq %d at %v", later.Seq, later.Time)
	}
	resp, err := http.Post(srv.URL, "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("POST: %d", resp.StatusCode)
	}
	_ = ctx
}

func TestRunCheckpoints(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := newPKI(t, keystore.ES256, func(c *ca.Config) {
		withCheckpoints(dir)(c)
		c.CheckpointInterval = 5 * time.Millisecond
	})
	issueAll(t, p)
	// RunCheckpoints runs until its context ends; end it once the
	// checkpoint is saved (a fixed 50 ms was too short on a loaded machine).
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- p.auth.RunCheckpoints(ctx) }()
	var (
		cp  *ca.Checkpoint
		err error
	)
	for ctx.Err() == nil {
		cp, err = ca.LatestCheckpoint(context.Background(), ca.NewCheckpointFile(filepath.Join(dir, "checkpoint")), p.inter.PublicKey)
		if err == nil && cp != nil && cp.Seq == 4 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		t.Fatal(err)
	}
	if err != nil || cp == nil || cp.Seq != 4 {
		t.Fatalf("%+v %v", cp, err)
	}
}

// TestCheckpointStoreForged puts another key's checkpoint in the store:
// the Authority refuses to work rather than trust or overwrite it.
func TestCheckpointStoreForged(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	other := newPKI(t, keystore.ES256, withCheckpoints(dir))
	if _, err := other.auth.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	p := newPKI(t, keystore.ES256, withCheckpoints(dir))
	if _, err := p.auth.Issue(ctx, &ca.Request{CSR: idevidCSR(t, deviceKey(t, "P-256"), "X1"), Profile: "idevid", Requester: "s"}); !errors.Is(err, ca.ErrBadCheckpoint) {
		t.Fatalf("Issue with a forged checkpoint: %v", err)
	}
}

// swappingLedger answers every Lookup with the status of another serial,
// as a ledger with a damaged serial index and no checks of its own would.
type swappingLedger struct {
	ca.Ledger
	other *big.Int
}

func (l swappingLedger) Lookup(ctx context.Context, _ *big.Int) (*ca.Status, error) {
	return l.Ledger.Lookup(ctx, l.other)
}

// TestIssuedCertificateChecksLookup: the Authority checks what a ledger's
// lookup returns, and refuses another serial's certificate.
func TestIssuedCertificateChecksLookup(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p := newPKI(t, keystore.ES256, nil)
	certs := issueAll(t, p)
	a, err := ca.New(ca.Config{Signer: p.interKey, Chain: []*x509.Certificate{p.inter, p.root},
		Ledger: swappingLedger{p.ledger, certs["ak"].SerialNumber}})
	if err != nil {
		t.Fatal(err)
	}
	if c, err := a.IssuedCertificate(ctx, certs["idevid"].SerialNumber); !errors.Is(err, ca.ErrLedgerCorrupt) {
		t.Fatalf("IssuedCertificate through a swapping ledger: %v, %v", c, err)
	}
}

// faultyLedger is a ledger in memory that, once broken, answers as a
// damaged database would: CRL numbers one lower than the counter's (set
// back), and Verify finding the chain broken. (The same damage done to a
// SQLite file is tested in ca/ledger/sqlite.)
type faultyLedger struct {
	*memledger.Ledger
	crlBack, chainBroken atomic.Bool
}

func (l *faultyLedger) NextCRLNumber(ctx context.Context) (*big.Int, error) {
	n, err := l.Ledger.NextCRLNumber(ctx)
	if err == nil && l.crlBack.Load() {
		n.Sub(n, big.NewInt(1))
	}
	return n, err
}

func (l *faultyLedger) Verify(ctx context.Context) (ca.Head, error) {
	if l.chainBroken.Load() {
		return ca.Head{}, fmt.Errorf("faulty ledger: record 2 changed: %w", ca.ErrLedgerCorrupt)
	}
	return l.Ledger.Verify(ctx)
}

// faultyAuthority is p's CA over a faultyLedger, with checkpoints in dir,
// and three IDevIDs it issued.
func faultyAuthority(t *testing.T, p *testPKI, dir string, edit func(*ca.Config)) (*ca.Authority, *faultyLedger, []*x509.Certificate) {
	t.Helper()
	l := &faultyLedger{Ledger: p.ledger}
	cfg := ca.Config{Signer: p.interKey, Chain: []*x509.Certificate{p.inter, p.root}, Ledger: l}
	withCheckpoints(dir)(&cfg)
	if edit != nil {
		edit(&cfg)
	}
	a, err := ca.New(cfg)
	require.NoError(t, err)
	var certs []*x509.Certificate
	for _, serial := range []string{"F1", "F2", "F3"} {
		c, err := a.Issue(context.Background(), &ca.Request{CSR: idevidCSR(t, deviceKey(t, "P-256"), serial), Profile: "idevid", Requester: "s"})
		require.NoError(t, err)
		certs = append(certs, c)
	}
	return a, l, certs
}

// TestCRLNumberReused: a ledger whose CRL counter went back would make
// the next CRL reuse a number; the CA refuses it against its checkpoint,
// and refuses to work after.
func TestCRLNumberReused(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	auth, l, certs := faultyAuthority(t, newPKI(t, keystore.ES256, nil), t.TempDir(), nil)
	_, err := auth.CRL(ctx)
	require.NoError(t, err)
	l.crlBack.Store(true)
	require.NoError(t, auth.Revoke(ctx, certs[0].SerialNumber, ca.ReasonSuperseded, "admin"))
	_, err = auth.CRL(ctx)
	require.ErrorIs(t, err, ca.ErrCheckpointMismatch, "CRL after the counter went back")
	_, err = auth.Issue(ctx, &ca.Request{CSR: idevidCSR(t, deviceKey(t, "P-256"), "X1"), Profile: "idevid", Requester: "s"})
	require.ErrorIs(t, err, ca.ErrLedgerCorrupt, "Issue after the rollback was seen")
}

// TestRunCheckpointsStopsOnCorruptLedger: a periodic round verifies the
// ledger before it signs; a broken chain stops RunCheckpoints with no
// checkpoint signed, and the Authority refuses to work after.
func TestRunCheckpointsStopsOnCorruptLedger(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	auth, l, _ := faultyAuthority(t, newPKI(t, keystore.ES256, nil), dir, func(c *ca.Config) { c.CheckpointInterval = 5 * time.Millisecond })
	l.chainBroken.Store(true)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.ErrorIs(t, auth.RunCheckpoints(ctx), ca.ErrLedgerCorrupt)
	_, err := ca.NewCheckpointFile(filepath.Join(dir, "checkpoint")).LatestCheckpoint(ctx)
	require.ErrorIs(t, err, ca.ErrNoCheckpoint, "a checkpoint was signed over a damaged ledger")
	require.ErrorIs(t, auth.Revoke(ctx, big.NewInt(1), ca.ReasonSuperseded, "x"), ca.ErrLedgerCorrupt)
}
