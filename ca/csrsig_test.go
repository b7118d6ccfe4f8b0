package ca_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"testing"

	"github.com/ztmkit/ztm/ca"
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

func wantCSRReason(t *testing.T, err error, reason ca.CSRReason) {
	t.Helper()
	var ce *ca.CSRError
	if !errors.As(err, &ce) || !errors.Is(err, ca.ErrBadCSR) || ce.Reason != reason {
		t.Fatalf("got %v, want a CSRError %v", err, reason)
	}
}

// TestCheckCSRSignature checks that a signature checked ahead of Issue
// counts for those exact bytes only.
func TestCheckCSRSignature(t *testing.T) {
	ctx := context.Background()
	p := newPKI(t, keystore.ES256, nil)
	issue := func(der []byte) (*x509.Certificate, error) {
		return p.auth.Issue(ctx, &ca.Request{CSR: der, Profile: "idevid", Requester: "line"})
	}
	good := idevidCSR(t, deviceKey(t, "P-256"), "S1")
	bad := badSignature(t, good)

	// A forged request is refused by the check and then by Issue.
	wantCSRReason(t, p.auth.CheckCSRSignature(bad), ca.CSRBadSignature)
	_, err := issue(bad)
	wantCSRReason(t, err, ca.CSRBadSignature)

	// The same request signed properly: checking it does not vouch for a
	// copy with another signature (same contents, other bytes).
	if err := p.auth.CheckCSRSignature(good); err != nil {
		t.Fatal(err)
	}
	_, err = issue(bad)
	wantCSRReason(t, err, ca.CSRBadSignature)
	if _, err := issue(good); err != nil {
		t.Fatal(err)
	}

	// The other checks are made on a checked request: a weak key,
	// malformed bytes.
	weak := idevidCSR(t, deviceKey(t, "P-224"), "S2")
	wantCSRReason(t, p.auth.CheckCSRSignature(weak), ca.CSRWeakKey)
	wantCSRReason(t, p.auth.CheckCSRSignature(good[:len(good)-3]), ca.CSRMalformed)
	wantCSRReason(t, p.auth.CheckCSRSignature(nil), ca.CSRMalformed)
	noHW := csr(t, deviceKey(t, "P-256"), pkix.Name{SerialNumber: "S3", CommonName: "Sensor S3"})
	if err := p.auth.CheckCSRSignature(noHW); err != nil {
		t.Fatal(err)
	}
	_, err = issue(noHW)
	wantCSRReason(t, err, ca.CSRMissingField)
}
