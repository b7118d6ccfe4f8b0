package ca_test

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/ztmkit/ztm/ca"
	"github.com/ztmkit/ztm/identity"
	"github.com/ztmkit/ztm/identity/keystore"
)

// TestCSRErrorIsIdentitys: a request the CA refuses is refused with the
// one CSR error type, identity's, and the reason the one check of a
// request (identity.ParseRequest) gives it; the deprecated ca names are
// the same values.
func TestCSRErrorIsIdentitys(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p := newPKI(t, keystore.ES256, nil)
	good := deviceKey(t, "P-256")
	caTrue, err := asn1.Marshal(struct{ IsCA bool }{true})
	require.NoError(t, err)
	for name, der := range map[string][]byte{
		"weak key":  idevidCSR(t, deviceKey(t, "RSA-2048"), "S1"),
		"CA:true":   csr(t, good, pkix.Name{SerialNumber: "S1"}, hwModuleSAN(t, exampleHWType, []byte("S1")), pkix.Extension{Id: asn1.ObjectIdentifier{2, 5, 29, 19}, Value: caTrue}),
		"version 2": version2CSR(t, good),
	} {
		_, err := p.auth.Issue(ctx, &ca.Request{CSR: der, Profile: "idevid", Requester: "line"})
		var ce *identity.CSRError
		require.ErrorAs(t, err, &ce, name)
		require.ErrorIs(t, err, identity.ErrInvalidCSR, name)
		require.ErrorIs(t, err, identity.ErrInvalidCSR, name)
		_, want := identity.ParseRequest(der, identity.RequestRules{AnySHA2Signature: true, AnyAttribute: true})
		var wantCE *identity.CSRError
		require.ErrorAs(t, want, &wantCE, name)
		require.Equal(t, wantCE.Reason, ce.Reason, name)
	}
	require.Equal(t, identity.CSRWeakKey, identity.CSRWeakKey)
	require.Equal(t, identity.CSRUnexpectedExtension, identity.CSRUnexpectedExtension)
}

// version2CSR is an IDevID request, correctly signed, that says it is
// PKCS#10 version 2: PKCS#10 defines version 1 only, and the device-side
// check refused it while the CA took it.
func version2CSR(t *testing.T, key crypto.Signer) []byte {
	t.Helper()
	v1, err := x509.ParseCertificateRequest(idevidCSR(t, key, "S1"))
	require.NoError(t, err)
	in := cryptobyte.String(v1.RawTBSCertificateRequest)
	var info cryptobyte.String
	var version int64
	require.True(t, in.ReadASN1(&info, cbasn1.SEQUENCE) && info.ReadASN1Integer(&version) && version == 0)
	var tbs cryptobyte.Builder
	tbs.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1Int64(1)
		b.AddBytes(info)
	})
	tbsDER, err := tbs.Bytes()
	require.NoError(t, err)
	digest := sha256.Sum256(tbsDER)
	sig, err := key.Sign(rand.Reader, digest[:], crypto.SHA256)
	require.NoError(t, err)
	var out cryptobyte.Builder
	out.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddBytes(tbsDER)
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1ObjectIdentifier(asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}) // ecdsa-with-SHA256
		})
		b.AddASN1BitString(sig)
	})
	der, err := out.Bytes()
	require.NoError(t, err)
	req, err := x509.ParseCertificateRequest(der)
	require.NoError(t, err)
	require.NoError(t, req.CheckSignature())
	require.Equal(t, 1, req.Version)
	return der
}
