package manifest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"testing"
)

// TestKeyThumbprintFastPaths checks the hand-built SubjectPublicKeyInfo
// prefixes against crypto/x509's encoding.
func TestKeyThumbprintFastPaths(t *testing.T) {
	t.Parallel()
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	for _, pub := range []crypto.PublicKey{p256.Public(), p384.Public(), edPub, rsaKey.Public()} {
		der, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		want := sha256.Sum256(der)
		got, err := KeyThumbprint(pub)
		if err != nil || got.Alg != SHA256 || string(got.Value) != string(want[:]) {
			t.Fatalf("%T: thumbprint differs from SHA-256 of x509.MarshalPKIXPublicKey", pub)
		}
	}
}
