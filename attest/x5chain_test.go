package attest_test

import (
	"context"
	"crypto"
	"crypto/x509"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ztmkit/ztm/attest"
)

// TestX5ChainLimits: evidence's x5chain has the limits of every ztm
// x5chain (RFC 9360 §2): one certificate is a bstr, more are an array of 2
// to 8. An array of one, and an array of nine, are malformed even when the
// chain they carry verifies (before, attest took both and manifest
// neither).
func TestX5ChainLimits(t *testing.T) {
	vendor := newPKI(t, "vendor attestation CA")
	e := newEnv(t, envOpts{chain: func(pub crypto.PublicKey) ([]*x509.Certificate, *x509.CertPool) {
		return vendor.issue(t, pub, leafOpts{}), vendor.pool
	}})
	leaf := vendor.issue(t, rawKey.Public(), leafOpts{})[0].Raw
	evidence := func(x5chain any) []byte {
		prot := mustCBOR(t, map[int64]any{1: -7, 33: x5chain})
		return craftCWT(t, prot, []byte{0xa0}, claimsCBOR(t, goodClaims(t, e)))
	}
	ctx := context.Background()
	r, err := e.ver.Verify(ctx, evidence(leaf))
	require.NoError(t, err, "one certificate as a bstr")
	require.Equal(t, attest.StatusAffirming, r.Status())
	r, err = e.ver.Verify(ctx, evidence([][]byte{leaf, vendor.root.Raw}))
	require.NoError(t, err, "leaf and root as an array")
	require.Equal(t, attest.StatusAffirming, r.Status())

	nine := make([][]byte, 9)
	for i := range nine {
		nine[i] = leaf
	}
	for name, x5 := range map[string]any{
		"array of one":  [][]byte{leaf},
		"array of nine": nine,
		"empty array":   [][]byte{},
	} {
		_, err := e.ver.Verify(ctx, evidence(x5))
		require.ErrorIs(t, err, attest.ErrMalformed, name)
		require.ErrorContains(t, err, "x5chain", name)
	}
}
