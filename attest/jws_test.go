package attest_test

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ztmkit/ztm/attest"
)

// TestJWSHeaderStrict: the JOSE header of JWT evidence is read as strictly
// as its claims: duplicate members, crit, an unencoded payload, an alg
// name in the wrong case, an x5c beyond the x5chain limit, and a token of
// other than three parts are refused with their reason.
func TestJWSHeaderStrict(t *testing.T) {
	e := newEnv(t, envOpts{tweak: withRawKey})
	ctx := context.Background()
	good := craftJWT(`{"alg":"ES256","kid":"raw"}`, claimsJSON(t, goodClaims(t, e)), es256Raw(t))
	r, err := e.ver.Verify(ctx, good)
	require.NoError(t, err)
	require.Equal(t, attest.StatusAffirming, r.Status())

	vendor := newPKI(t, "vendor attestation CA")
	leaf := base64.StdEncoding.EncodeToString(vendor.issue(t, rawKey.Public(), leafOpts{})[0].Raw)
	nine := `"` + strings.Repeat(leaf+`","`, 8) + leaf + `"`
	for _, tc := range []struct {
		name, header string
		reason       attest.Reason
	}{
		{"duplicate kid", `{"alg":"ES256","kid":"raw","kid":"other"}`, attest.ReasonMalformed},
		{"duplicate alg", `{"alg":"ES256","alg":"ES256","kid":"raw"}`, attest.ReasonMalformed},
		{"crit", `{"alg":"ES256","kid":"raw","crit":["exp"],"exp":1}`, attest.ReasonMalformed},
		{"b64 false", `{"alg":"ES256","kid":"raw","b64":false}`, attest.ReasonMalformed},
		{"alg in lower case", `{"alg":"es256","kid":"raw"}`, attest.ReasonUnsupportedAlgorithm},
		{"alg not a string", `{"alg":-7,"kid":"raw"}`, attest.ReasonMalformed},
		{"kid not a string", `{"alg":"ES256","kid":7}`, attest.ReasonMalformed},
		{"x5c of nine", `{"alg":"ES256","x5c":[` + nine + `]}`, attest.ReasonMalformed},
		{"x5c empty", `{"alg":"ES256","x5c":[]}`, attest.ReasonMalformed},
		{"x5c in base64url", `{"alg":"ES256","x5c":["` + strings.NewReplacer("+", "-", "/", "_").Replace(leaf) + `"]}`, attest.ReasonMalformed},
		{"header not an object", `["ES256"]`, attest.ReasonMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.ver.Verify(ctx, craftJWT(tc.header, claimsJSON(t, goodClaims(t, e)), es256Raw(t)))
			requireReason(t, err, tc.reason)
		})
	}
	for name, tok := range map[string]string{
		"four parts":      string(good) + ".AA",
		"two parts":       string(good[:strings.LastIndexByte(string(good), '.')]),
		"padded":          strings.Replace(string(good), ".", "=.", 1),
		"empty signature": string(good[:strings.LastIndexByte(string(good), '.')+1]),
	} {
		_, err := e.ver.Verify(ctx, []byte(tok))
		requireReason(t, err, attest.ReasonMalformed, name)
	}

	// An x5c of a leaf and its root verifies, as an x5chain does.
	e2 := newEnv(t, envOpts{chain: func(pub crypto.PublicKey) ([]*x509.Certificate, *x509.CertPool) {
		return vendor.issue(t, pub, leafOpts{}), vendor.pool
	}})
	root := base64.StdEncoding.EncodeToString(vendor.root.Raw)
	tok := craftJWT(`{"alg":"ES256","x5c":["`+leaf+`","`+root+`"]}`, claimsJSON(t, goodClaims(t, e2)), es256Raw(t))
	r, err = e2.ver.Verify(ctx, tok)
	require.NoError(t, err)
	require.Len(t, r.Evidence.Chain, 2)
}

func requireReason(t *testing.T, err error, want attest.Reason, msg ...any) {
	t.Helper()
	require.ErrorIs(t, err, attest.ErrVerification, msg...)
	var ve *attest.VerificationError
	require.ErrorAs(t, err, &ve, msg...)
	require.Equal(t, want, ve.Reason, "%v: %v", msg, err)
}
