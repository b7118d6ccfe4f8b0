package est_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"testing"

	"github.com/ztmkit/ztm/ca/enroll"
	"github.com/ztmkit/ztm/identity"
	"github.com/ztmkit/ztm/internal/estline"
)

// TestForgedRequestKeepsNonce checks the Service's signature check made
// through Authority.Check: a request whose signature does not
// verify is refused before the evidence's nonce is spent, and the good
// request, checked once by the Service, is issued.
func TestForgedRequestKeepsNonce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, estline.Config{NoServer: true})
	st, _ := e.Station("idevid")
	l := e.Service.Local(enroll.Requester{Certificate: st})
	d := e.Devices[0]
	good := d.CSR(t, "SN-SIG")
	bad := bytes.Clone(good)
	bad[len(bad)-1] ^= 0x01
	nonce, err := l.Nonce(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ev := d.Evidence(t, nonce)
	n := e.Issuances()
	_, err = l.Enroll(ctx, &enroll.Request{CSR: bad, Profile: "idevid", Evidence: ev})
	var re *enroll.RefusalError
	if !errors.As(err, &re) || re.Reason != enroll.ReasonBadRequest || !errors.Is(err, identity.ErrInvalidCSR) {
		t.Fatalf("forged request: err = %v", err)
	}
	if got := e.Issuances(); got != n {
		t.Fatalf("forged request recorded %d records", got-n)
	}
	// The nonce was not spent: the same evidence enrolls the good request.
	chain, err := l.Enroll(ctx, &enroll.Request{CSR: good, Profile: "idevid", Evidence: ev})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(chain[0].RawSubjectPublicKeyInfo, mustCSRKey(t, good)) {
		t.Fatal("certificate is not for the request's key")
	}
	// The forged bytes stay refused after the good ones were checked.
	nonce, _ = l.Nonce(ctx)
	_, err = l.Enroll(ctx, &enroll.Request{CSR: bad, Profile: "idevid", Evidence: d.Evidence(t, nonce)})
	if !errors.As(err, &re) {
		t.Fatalf("forged request again: err = %v", err)
	}
}

func mustCSRKey(t *testing.T, der []byte) []byte {
	t.Helper()
	c, err := x509.ParseCertificateRequest(der)
	if err != nil {
		t.Fatal(err)
	}
	return c.RawSubjectPublicKeyInfo
}
