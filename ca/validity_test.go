package ca_test

import (
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ztmkit/ztm/ca"
	"github.com/ztmkit/ztm/ca/ledger/memledger"
	"github.com/ztmkit/ztm/identity/keystore"
)

// TestIDevIDChainOutlives2037 checks that a chain made by the ceremonies
// with their defaults is as long-lived as the IDevIDs it issues
// (99991231235959Z, IEEE 802.1AR §8.5), so openssl still verifies a device
// in 2040, after a 10-year CA would have expired.
func TestIDevIDChainOutlives2037(t *testing.T) {
	t.Parallel()
	p := newPKI(t, keystore.ES256, nil)
	for _, c := range []*x509.Certificate{p.root, p.inter} {
		if c.NotAfter.Year() != 9999 {
			t.Fatalf("%s: notAfter %v, want 99991231235959Z", c.Subject, c.NotAfter)
		}
	}
	leaf := issueAll(t, p)["idevid"]
	dir := t.TempDir()
	rootPEM := writePEM(t, filepath.Join(dir, "root.pem"), p.root)
	interPEM := writePEM(t, filepath.Join(dir, "inter.pem"), p.inter)
	leafPEM := writePEM(t, filepath.Join(dir, "leaf.pem"), leaf)
	at := strconv.FormatInt(time.Date(2040, 6, 1, 0, 0, 0, 0, time.UTC).Unix(), 10)
	out, err := runOpenSSL(t, "verify", "-attime", at, "-CAfile", rootPEM, "-untrusted", interPEM, leafPEM)
	if err != nil || !strings.Contains(out, ": OK") {
		t.Fatalf("openssl verify -attime 2040: %v\n%s", err, out)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool(p.root), Intermediates: pool(p.inter),
		CurrentTime: time.Date(2040, 6, 1, 0, 0, 0, 0, time.UTC), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		t.Fatalf("Go verify at 2040: %v", err)
	}
}

func pool(certs ...*x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	for _, c := range certs {
		p.AddCert(c)
	}
	return p
}

// TestLeafOutlivingIssuerRefused checks that New refuses a configuration
// in which a certificate would outlive its issuer.
func TestLeafOutlivingIssuerRefused(t *testing.T) {
	t.Parallel()
	rootKey, interKey := caKey(t, keystore.ES256), caKey(t, keystore.ES256)
	root, err := ca.NewRoot(ca.RootRequest{Subject: pkix.Name{CommonName: "Root"}, Signer: rootKey})
	if err != nil {
		t.Fatal(err)
	}
	inter10, err := ca.NewIntermediate(ca.IntermediateRequest{Subject: pkix.Name{CommonName: "Ten Years"},
		PublicKey: interKey.Public(), Parent: root, ParentSigner: rootKey, Validity: 10 * 365 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	l := memledger.New()
	defer l.Close()
	cfg := ca.Config{Signer: interKey, Chain: []*x509.Certificate{inter10, root}, Ledger: l}
	// The default profiles issue IDevIDs and AK certificates without
	// expiration: a 10-year CA cannot be their issuer.
	_, err = ca.New(cfg)
	if !errors.Is(err, ca.ErrInvalidConfig) || !strings.Contains(err.Error(), `profile "idevid"`) || !strings.Contains(err.Error(), "Ten Years") {
		t.Fatalf("IDevIDs under a 10-year CA: %v", err)
	}
	// An IDevID profile with a finite validity, and LDevIDs, are cut to
	// the CA's notAfter: accepted.
	cfg.Profiles = []ca.Profile{{Name: "idevid", Kind: ca.IDevID, Validity: 20 * 365 * 24 * time.Hour}, ca.LDevIDProfile()}
	if _, err := ca.New(cfg); err != nil {
		t.Fatalf("finite profiles under a 10-year CA: %v", err)
	}
	// A chain whose intermediate outlives the root.
	shortRoot, err := ca.NewRoot(ca.RootRequest{Subject: pkix.Name{CommonName: "Short Root"}, Signer: rootKey, Validity: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "Outliving"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(48 * time.Hour),
		BasicConstraintsValid: true, IsCA: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, SubjectKeyId: []byte{1, 2, 3}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, shortRoot, interKey.Public(), rootKey)
	if err != nil {
		t.Fatal(err)
	}
	outliving, _ := x509.ParseCertificate(der)
	cfg.Chain = []*x509.Certificate{outliving, shortRoot}
	if _, err := ca.New(cfg); !errors.Is(err, ca.ErrInvalidConfig) || !strings.Contains(err.Error(), "after its issuer") {
		t.Fatalf("intermediate outliving its root: %v", err)
	}
}
