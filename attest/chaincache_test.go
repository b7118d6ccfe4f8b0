package attest_test

import (
	"context"
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ztmkit/ztm/attest"
	"github.com/ztmkit/ztm/attest/devicesim"
)

// TestVerifierChainCache checks what the verifier's cache of verified
// x5chains may not change: a chain verified once is refused after its
// attestation-key certificate expires, and a cached chain does not
// stand in for the evidence signature, which another key's evidence
// carrying the same chain fails.
func TestVerifierChainCache(t *testing.T) {
	t.Parallel()
	vendor := newPKI(t, "Chip Vendor AK CA")
	var chain []*x509.Certificate
	e := newEnv(t, envOpts{chain: func(pub crypto.PublicKey) ([]*x509.Certificate, *x509.CertPool) {
		chain = vendor.issue(t, pub, leafOpts{notAfter: t0.Add(2 * time.Hour), exts: []pkix.Extension{akName(t, testUEID)}})
		chain = append(chain, vendor.root) // x5chain often carries its root
		return chain, vendor.pool
	}})
	ctx := context.Background()
	verify := func(dev *devicesim.Device) error {
		ev, err := dev.EvidenceCWT(e.nonce(t))
		require.NoError(t, err)
		_, err = e.ver.Verify(ctx, ev)
		return err
	}
	for range 2 {
		require.NoError(t, verify(e.dev))
	}

	// Evidence with the same (cached) chain and a signature that fails.
	ev, err := e.dev.EvidenceCWT(e.nonce(t))
	require.NoError(t, err)
	ev[len(ev)-1] ^= 1
	var ve *attest.VerificationError
	_, err = e.ver.Verify(ctx, ev)
	require.ErrorAs(t, err, &ve)
	require.Equal(t, attest.ReasonBadSignature, ve.Reason)

	// Past the AK certificate's notAfter the cached chain is not served.
	e.clock.Advance(3 * time.Hour)
	require.ErrorAs(t, verify(e.dev), &ve)
	require.Equal(t, attest.ReasonUntrustedSigner, ve.Reason)
	require.ErrorIs(t, ve, attest.ErrVerification)

	// The same chain to a verifier with other roots is refused.
	other := newPKI(t, "Other AK CA")
	cfg := e.cfg
	cfg.Roots = other.pool
	v2, err := attest.NewVerifier(cfg)
	require.NoError(t, err)
	e.clock.Advance(-3 * time.Hour)
	ev, err = e.dev.EvidenceCWT(e.nonce(t))
	require.NoError(t, err)
	_, err = v2.Verify(ctx, ev)
	require.ErrorAs(t, err, &ve)
	require.Equal(t, attest.ReasonUntrustedSigner, ve.Reason)
}
