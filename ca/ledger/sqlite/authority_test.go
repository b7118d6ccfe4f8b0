package sqlite_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"math/big"
	"path/filepath"
	"testing"
	"time"

	"github.com/ztmkit/ztm/ca"
	"github.com/ztmkit/ztm/ca/ledger/sqlite"
	"github.com/ztmkit/ztm/internal/testpki"
)

// The tests of this file are an Authority's over this ledger, whose
// subject is the file: a database edited behind the CA's back. (They were
// in package ca, which tests its logic over a ledger in memory.)

// authorityOnFile is internal/testpki's CA with an Authority over a
// SQLite ledger at path.
type authorityOnFile struct {
	pki    *testpki.PKI
	path   string
	ledger *sqlite.Ledger
	auth   *ca.Authority
}

// newAuthorityOnFile opens a ledger in a temp dir and an Authority on it;
// edit, if not nil, changes the Authority's configuration first.
func newAuthorityOnFile(t testing.TB, edit func(*ca.Config)) *authorityOnFile {
	t.Helper()
	a := &authorityOnFile{
		pki:  testpki.New(t, testpki.Config{}),
		path: filepath.Join(t.TempDir(), "ledger.db"),
	}
	a.ledger = openAt(t, a.path)
	t.Cleanup(func() { a.ledger.Close() })
	a.auth = a.pki.Authority(t, a.ledger, edit)
	return a
}

// issueDevices issues an IDevID to each of n new devices.
func (a *authorityOnFile) issueDevices(t testing.TB, n int) []*x509.Certificate {
	t.Helper()
	key := deviceKey(t)
	var out []*x509.Certificate
	for range n {
		c, err := a.auth.Issue(context.Background(), &ca.Request{
			CSR: testpki.DeviceCSR(t, key, testpki.NewDeviceSerial("SN")), Profile: "idevid", Requester: "s"})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
	return out
}

func deviceKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func withCheckpoints(dir string) func(*ca.Config) {
	return func(c *ca.Config) { c.Checkpoints = ca.NewCheckpointFile(filepath.Join(dir, "checkpoint")) }
}

// TestCRLCounterRollback sets the ledger's CRL counter back: the next CRL
// would reuse a number, and is refused.
func TestCRLCounterRollback(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a := newAuthorityOnFile(t, withCheckpoints(t.TempDir()))
	certs := a.issueDevices(t, 4)
	if _, err := a.auth.CRL(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := rawDB(t, a.path).Exec("UPDATE crl_number SET n = 0"); err != nil {
		t.Fatal(err)
	}
	if err := a.auth.Revoke(ctx, certs[3].SerialNumber, ca.ReasonSuperseded, "admin"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.auth.CRL(ctx); !errors.Is(err, ca.ErrCheckpointMismatch) {
		t.Fatalf("CRL after the counter went back: %v", err)
	}
	csr := testpki.DeviceCSR(t, deviceKey(t), testpki.NewDeviceSerial("X1"))
	if _, err := a.auth.Issue(ctx, &ca.Request{CSR: csr, Profile: "idevid", Requester: "s"}); !errors.Is(err, ca.ErrLedgerCorrupt) {
		t.Fatalf("Issue after the rollback was seen: %v", err)
	}
}

// TestRunCheckpointsVerifies damages a record while the CA runs: the next
// periodic round verifies the ledger first, finds it, signs nothing and
// stops the Authority.
func TestRunCheckpointsVerifies(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a := newAuthorityOnFile(t, func(c *ca.Config) {
		withCheckpoints(dir)(c)
		c.CheckpointInterval = 5 * time.Millisecond
	})
	a.issueDevices(t, 4)
	if _, err := rawDB(t, a.path).Exec("UPDATE records SET requester = 'x' WHERE seq = 2"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.auth.RunCheckpoints(ctx); !errors.Is(err, ca.ErrLedgerCorrupt) {
		t.Fatalf("RunCheckpoints: %v", err)
	}
	if _, err := ca.NewCheckpointFile(filepath.Join(dir, "checkpoint")).LatestCheckpoint(ctx); !errors.Is(err, ca.ErrNoCheckpoint) {
		t.Fatalf("a checkpoint was signed over a damaged ledger: %v", err)
	}
	if err := a.auth.Revoke(ctx, big.NewInt(1), ca.ReasonSuperseded, "x"); !errors.Is(err, ca.ErrLedgerCorrupt) {
		t.Fatalf("Revoke after: %v", err)
	}
}
