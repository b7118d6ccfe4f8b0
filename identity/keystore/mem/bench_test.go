package mem_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"testing"

	"github.com/ztmkit/ztm/identity/keystore"
	"github.com/ztmkit/ztm/identity/keystore/mem"
)

// BenchmarkSign signs a SHA-256 digest through an ES256 key of the store.
func BenchmarkSign(b *testing.B) {
	k, err := mem.New().Create(context.Background(), keystore.CreateRequest{Label: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	digest := sha256.Sum256([]byte("ztm benchmark message"))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := k.Sign(rand.Reader, digest[:], crypto.SHA256); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSignRaw is the primitive BenchmarkSign wraps: ecdsa.SignASN1 on
// the same key.
func BenchmarkSignRaw(b *testing.B) {
	k, err := mem.New().Create(context.Background(), keystore.CreateRequest{Label: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	// The raw key is the one the store generated; reach it through the
	// package's own type to sign without the store.
	priv := rawKey(b, k)
	digest := sha256.Sum256([]byte("ztm benchmark message"))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ecdsa.SignASN1(rand.Reader, priv, digest[:]); err != nil {
			b.Fatal(err)
		}
	}
}

func rawKey(b *testing.B, k keystore.Key) *ecdsa.PrivateKey {
	type signerer interface{ Signer() crypto.Signer }
	s, ok := k.(signerer)
	if !ok {
		b.Fatalf("key %T does not expose its signer", k)
	}
	priv, ok := s.Signer().(*ecdsa.PrivateKey)
	if !ok {
		b.Fatalf("signer is %T", s.Signer())
	}
	return priv
}
