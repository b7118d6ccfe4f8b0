package ca_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"testing"

	"github.com/ztmkit/ztm/ca"
	"github.com/ztmkit/ztm/identity"
	"github.com/ztmkit/ztm/identity/keystore"
)

// badSignature returns der with the last byte of its signature changed:
// it still parses, its signature no longer verifies.
func badSignature(t *testing.T, der []byte) []byte {
	t.Helper()
	bad := bytes.Clone(der)
	bad[len(bad)-1] ^= 0x01
	csr, err := x509.ParseCertificateRequest(bad)
	if err != nil {
		t.Fatal(err)
	}
	if csr.CheckSignature() == nil {
		t.Fatal("signature still verifies")
	}
	return bad
}

func wantCSRReason(t *testing.T, err error, reason identity.CSRErrorReason) {
	t.Helper()
	var ce *identity.CSRError
	if !errors.As(err, &ce) || !errors.Is(err, identity.ErrInvalidCSR) || ce.Reason != reason {
		t.Fatalf("got %v, want a CSRError %v", err, reason)
	}
}

// TestCheckThenIssue checks the two phases: Check refuses a forged, weak
// or malformed request before anything is spent on it, and IssueChecked
// issues what Check accepted without parsing the request again.
func TestCheckThenIssue(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p := newPKI(t, keystore.ES256, nil)
	check := func(der []byte) (*ca.Checked, error) {
		return p.auth.Check(ctx, &ca.Request{CSR: der, Profile: "idevid", Requester: "line"})
	}
	good := idevidCSR(t, deviceKey(t, "P-256"), "S1")
	bad := badSignature(t, good)

	_, err := check(bad)
	wantCSRReason(t, err, identity.CSRBadSignature)
	_, err = p.auth.Issue(ctx, &ca.Request{CSR: bad, Profile: "idevid", Requester: "line"})
	wantCSRReason(t, err, identity.CSRBadSignature)

	weak := idevidCSR(t, deviceKey(t, "P-224"), "S2")
	_, err = check(weak)
	wantCSRReason(t, err, identity.CSRWeakKey)
	_, err = check(good[:len(good)-3])
	wantCSRReason(t, err, identity.CSRMalformed)
	_, err = check(nil)
	wantCSRReason(t, err, identity.CSRMalformed)
	noHW := csr(t, deviceKey(t, "P-256"), pkix.Name{SerialNumber: "S3", CommonName: "Sensor S3"})
	_, err = check(noHW)
	wantCSRReason(t, err, identity.CSRMissingField)

	c, err := check(good)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(c.CSR().Raw, good) || c.Requester() != "line" || c.Profile().Name != "idevid" {
		t.Fatalf("checked request: %x %q %q", c.CSR().Raw[:8], c.Requester(), c.Profile().Name)
	}
	if err := c.SetApproval(make([]byte, 65), nil); !errors.Is(err, ca.ErrInvalidRequest) {
		t.Fatalf("SetApproval with a 65-byte digest: %v", err)
	}
	if err := c.SetApproval([]byte("evidence-digest"), nil); err != nil {
		t.Fatal(err)
	}
	cert, err := p.auth.IssueChecked(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	st, err := p.auth.Ledger().Lookup(ctx, cert.SerialNumber)
	if err != nil || string(st.Issuance.EvidenceDigest) != "evidence-digest" {
		t.Fatalf("recorded evidence digest %q, %v", st.Issuance.EvidenceDigest, err)
	}
	if _, err := p.auth.IssueChecked(ctx, nil); !errors.Is(err, ca.ErrInvalidRequest) {
		t.Fatalf("IssueChecked(nil): %v", err)
	}
}
