package file

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"testing"

	"github.com/ztmkit/ztm/identity/keystore"
)

// benchKey creates an ES256 key in a new file store.
func benchKey(b *testing.B) *Key {
	b.Helper()
	s := openTest(b, b.TempDir(), testConfig())
	k, err := s.Create(context.Background(), keystore.CreateRequest{Label: "bench", Algorithm: keystore.ES256})
	if err != nil {
		b.Fatal(err)
	}
	return k.(*Key)
}

// BenchmarkSign signs a SHA-256 digest with an ES256 key through the file
// store: the liveness checks, one lstat of the key file, and ECDSA.
func BenchmarkSign(b *testing.B) {
	k := benchKey(b)
	digest := sha256.Sum256([]byte("benchmark"))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := k.Sign(rand.Reader, digest[:], crypto.SHA256); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSignRaw is BenchmarkSign's primitive: ecdsa.SignASN1 with the
// same key.
func BenchmarkSignRaw(b *testing.B) {
	priv := benchKey(b).e.signer.(*ecdsa.PrivateKey)
	digest := sha256.Sum256([]byte("benchmark"))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ecdsa.SignASN1(rand.Reader, priv, digest[:]); err != nil {
			b.Fatal(err)
		}
	}
}
