package keystore_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ztmkit/ztm/identity/keystore"
)

func TestPublicKeysEqual(t *testing.T) {
	t.Parallel()
	p1, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	p2, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	e1, _, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	copyOfP1 := *p1.Public().(*ecdsa.PublicKey)
	type noEqual struct{}
	for _, tc := range []struct {
		name string
		a, b crypto.PublicKey
		want bool
	}{
		{"same key", p1.Public(), &copyOfP1, true},
		{"same Ed25519 key", e1, append(ed25519.PublicKey(nil), e1...), true},
		{"other key", p1.Public(), p2.Public(), false},
		{"other type", p1.Public(), e1, false},
		{"nil b", p1.Public(), nil, false},
		{"nil a", nil, p1.Public(), false},
		{"no Equal method", noEqual{}, noEqual{}, false},
	} {
		require.Equal(t, tc.want, keystore.PublicKeysEqual(tc.a, tc.b), tc.name)
	}
}
