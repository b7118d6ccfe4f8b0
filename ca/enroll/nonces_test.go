package enroll_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ztmkit/ztm/attest"
	"github.com/ztmkit/ztm/ca"
	"github.com/ztmkit/ztm/ca/enroll"
	"github.com/ztmkit/ztm/ca/ledger/memledger"
)

// TestNoncesFromVerifier: the nonce source is configured once, in the
// verifier; the Service hands out the nonces that verifier consumes.
func TestNoncesFromVerifier(t *testing.T) {
	ctx := context.Background()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	root, err := ca.NewRoot(ca.RootRequest{Subject: pkix.Name{CommonName: "Test Root"}, Signer: key})
	require.NoError(t, err)
	authority, err := ca.New(ca.Config{Signer: key, Chain: []*x509.Certificate{root}, Ledger: memledger.New()})
	require.NoError(t, err)
	keys := map[string]crypto.PublicKey{"k": key.Public()}

	nonces := attest.NewNonces(attest.NonceConfig{})
	v, err := attest.NewVerifier(attest.Config{Keys: keys, Nonces: nonces})
	require.NoError(t, err)
	svc, err := enroll.New(enroll.Config{Authority: authority, Verifier: v})
	require.NoError(t, err)
	n, err := svc.Nonce(ctx, enroll.Requester{Name: "station"})
	require.NoError(t, err)
	require.NoError(t, nonces.Consume(n), "the Service's nonce is the verifier's")

	// A verifier without nonces, and none configured: evidence could be
	// replayed.
	plain, err := attest.NewVerifier(attest.Config{Keys: keys})
	require.NoError(t, err)
	_, err = enroll.New(enroll.Config{Authority: authority, Verifier: plain})
	require.ErrorIs(t, err, enroll.ErrInvalidConfig)
}
