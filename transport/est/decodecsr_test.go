package est_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ztmkit/ztm/identity"
	"github.com/ztmkit/ztm/transport/est"
)

// TestDecodeCSRBodyChecksAsTheCA: DecodeCSRBody checks a request with the
// one check the CA makes (identity.ParseRequest), not only its
// signature: a correctly signed request with a key ztm refuses, or one
// asking for a CA certificate, is a bad request carrying the CSR error.
func TestDecodeCSRBodyChecksAsTheCA(t *testing.T) {
	t.Parallel()
	d := newDevice(t, 0)
	_, _, err := est.DecodeCSRBody(b64(d.CSR(t, "SN-OK")))
	require.NoError(t, err)

	p224, err := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	require.NoError(t, err)
	caTrue, err := asn1.Marshal(struct{ IsCA bool }{true})
	require.NoError(t, err)
	for name, tc := range map[string]struct {
		key    any
		tmpl   *x509.CertificateRequest
		reason identity.CSRErrorReason
	}{
		"P-224": {p224, &x509.CertificateRequest{Subject: pkix.Name{SerialNumber: "SN-1"}}, identity.CSRWeakKey},
		"CA:true": {newKey(t), &x509.CertificateRequest{Subject: pkix.Name{SerialNumber: "SN-1"},
			ExtraExtensions: []pkix.Extension{{Id: asn1.ObjectIdentifier{2, 5, 29, 19}, Value: caTrue}}}, identity.CSRUnexpectedExtension},
	} {
		der, err := x509.CreateCertificateRequest(rand.Reader, tc.tmpl, tc.key)
		require.NoError(t, err)
		_, _, err = est.DecodeCSRBody(b64(der))
		require.ErrorIs(t, err, est.ErrBadRequest, name)
		var ce *identity.CSRError
		require.ErrorAs(t, err, &ce, name)
		require.Equal(t, tc.reason, ce.Reason, name)
	}
}
