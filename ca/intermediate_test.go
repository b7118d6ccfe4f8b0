package ca_test

import (
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ztmkit/ztm/ca"
	"github.com/ztmkit/ztm/ca/ledger/memledger"
	"github.com/ztmkit/ztm/identity/keystore"
)

func writeCRL(t *testing.T, path string, der []byte) string {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestRevokeIntermediate checks that an Authority over the root key
// records the intermediates it signs, revokes them, and that its CRL makes
// openssl refuse a leaf under a revoked intermediate.
func TestRevokeIntermediate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	rootKey, interKey := caKey(t, keystore.ES256), caKey(t, keystore.ES256)
	root, err := ca.NewRoot(ca.RootRequest{Subject: pkix.Name{CommonName: "Offline Root"}, Signer: rootKey})
	if err != nil {
		t.Fatal(err)
	}
	rootLedger := memledger.New()
	defer rootLedger.Close()
	// The root's Authority issues CA certificates only.
	rootCA, err := ca.New(ca.Config{Signer: rootKey, Chain: []*x509.Certificate{root}, Ledger: rootLedger, Profiles: []ca.Profile{}})
	if err != nil {
		t.Fatal(err)
	}
	inter, err := rootCA.IssueIntermediate(ctx, ca.IntermediateRequest{Subject: pkix.Name{CommonName: "Line 1 Issuing CA"}, PublicKey: interKey.Public()}, "root-ceremony")
	if err != nil {
		t.Fatal(err)
	}
	st, err := rootLedger.Lookup(ctx, inter.SerialNumber)
	if err != nil || st.Issuance.Profile != ca.IntermediateProfile || st.Issuance.Requester != "root-ceremony" || !inter.Equal(mustParse(t, st.Issuance.Certificate)) {
		t.Fatalf("intermediate not recorded: %+v %v", st, err)
	}
	interLedger := memledger.New()
	defer interLedger.Close()
	interCA, err := ca.New(ca.Config{Signer: interKey, Chain: []*x509.Certificate{inter, root}, Ledger: interLedger})
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := interCA.Issue(ctx, &ca.Request{CSR: idevidCSR(t, deviceKey(t, "P-256"), "SN-R1"), Profile: "idevid", Requester: "s"})
	if err != nil {
		t.Fatal(err)
	}
	rootPEM := writePEM(t, filepath.Join(dir, "root.pem"), root)
	interPEM := writePEM(t, filepath.Join(dir, "inter.pem"), inter)
	leafPEM := writePEM(t, filepath.Join(dir, "leaf.pem"), leaf)
	verify := func(rootCRL []byte) (string, error) {
		interCRL, err := interCA.CRL(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return runOpenSSL(t, "verify", "-crl_check_all", "-CAfile", rootPEM, "-untrusted", interPEM,
			"-CRLfile", writeCRL(t, filepath.Join(dir, "root.crl"), rootCRL),
			"-CRLfile", writeCRL(t, filepath.Join(dir, "inter.crl"), interCRL), leafPEM)
	}
	crl, err := rootCA.CRL(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := verify(crl); err != nil || !strings.Contains(out, ": OK") {
		t.Fatalf("before revocation: %v\n%s", err, out)
	}
	if err := rootCA.Revoke(ctx, inter.SerialNumber, ca.ReasonCACompromise, "pki-admin"); err != nil {
		t.Fatalf("revoking the intermediate: %v", err)
	}
	crl, err = rootCA.CRL(ctx)
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := x509.ParseRevocationList(crl)
	if err != nil || parsed.CheckSignatureFrom(root) != nil || len(parsed.RevokedCertificateEntries) != 1 ||
		parsed.RevokedCertificateEntries[0].SerialNumber.Cmp(inter.SerialNumber) != 0 ||
		parsed.RevokedCertificateEntries[0].ReasonCode != int(ca.ReasonCACompromise) {
		t.Fatalf("root CRL: %v", err)
	}
	out, err := verify(crl)
	if err == nil || !strings.Contains(out, "certificate revoked") {
		t.Fatalf("leaf under a revoked intermediate: %v\n%s", err, out)
	}
}

func mustParse(t *testing.T, der []byte) *x509.Certificate {
	t.Helper()
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestRecordIntermediate records an intermediate made outside the ledger
// so that it can be revoked, and refuses what the Authority did not sign.
func TestRecordIntermediate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p := newPKI(t, keystore.ES256, nil)
	rootLedger := memledger.New()
	defer rootLedger.Close()
	rootCA, err := ca.New(ca.Config{Signer: p.rootKey, Chain: []*x509.Certificate{p.root}, Ledger: rootLedger, Profiles: []ca.Profile{}})
	if err != nil {
		t.Fatal(err)
	}
	if err := rootCA.Revoke(ctx, p.inter.SerialNumber, ca.ReasonCACompromise, "pki-admin"); !errors.Is(err, ca.ErrUnknownSerial) {
		t.Fatalf("unrecorded intermediate: %v", err)
	}
	if err := rootCA.RecordIntermediate(ctx, p.inter, "migration"); err != nil {
		t.Fatal(err)
	}
	if err := rootCA.RecordIntermediate(ctx, p.inter, "migration"); !errors.Is(err, ca.ErrSerialExists) {
		t.Fatalf("recorded twice: %v", err)
	}
	if err := rootCA.Revoke(ctx, p.inter.SerialNumber, ca.ReasonCACompromise, "pki-admin"); err != nil {
		t.Fatal(err)
	}
	// A leaf, a certificate of another CA, and the wrong parent are refused.
	leaf := issueAll(t, p)["idevid"]
	other := newPKI(t, keystore.ES256, nil)
	for name, c := range map[string]*x509.Certificate{"leaf": leaf, "other CA's intermediate": other.inter, "the root itself": p.root} {
		if err := rootCA.RecordIntermediate(ctx, c, "x"); !errors.Is(err, ca.ErrInvalidRequest) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := rootCA.IssueIntermediate(ctx, ca.IntermediateRequest{Subject: pkix.Name{CommonName: "x"}, PublicKey: p.interKey.Public(),
		Parent: other.root, ParentSigner: other.rootKey}, "x"); !errors.Is(err, ca.ErrInvalidConfig) {
		t.Fatalf("foreign parent: %v", err)
	}
	if _, err := ca.New(ca.Config{Signer: p.rootKey, Chain: []*x509.Certificate{p.root}, Ledger: rootLedger,
		Profiles: []ca.Profile{{Name: ca.IntermediateProfile, Kind: ca.LDevID}}}); !errors.Is(err, ca.ErrInvalidConfig) {
		t.Fatalf("reserved profile name: %v", err)
	}
}
