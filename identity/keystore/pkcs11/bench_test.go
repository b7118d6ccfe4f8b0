//go:build cgo

package pkcs11_test

import (
	"context"
	"crypto"
	"crypto/sha256"
	"sync"
	"testing"

	p11 "github.com/miekg/pkcs11"

	"github.com/ztmkit/ztm/identity/keystore/pkcs11"
	"github.com/ztmkit/ztm/internal/softhsmtest"
)

// benchOnce holds one token with one P-256 key, "bench", made by
// pkcs11-tool (no ztm code), shared by BenchmarkSign and BenchmarkSignRaw
// so that both sign with the same key on the same token.
var benchOnce struct {
	sync.Mutex
	tok *softhsmtest.Token
}

func benchKey(b *testing.B) softhsmtest.Token {
	b.Helper()
	benchOnce.Lock()
	defer benchOnce.Unlock()
	if benchOnce.tok == nil {
		tok := softhsmtest.New(b)
		tok.Tool(b, true, "--keypairgen", "--key-type", "EC:prime256v1", "--label", "bench", "--id", "be")
		benchOnce.tok = &tok
	}
	return *benchOnce.tok
}

// BenchmarkSign is an ES256 signature through the store: Key.Sign with its
// checks, the session pool and the DER conversion.
func BenchmarkSign(b *testing.B) {
	tok := benchKey(b)
	s, err := pkcs11.Open(context.Background(), pkcs11.Config{ModulePath: tok.Module, TokenLabel: tok.Label, PIN: tok.PIN})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	k, err := s.Get(context.Background(), "bench")
	if err != nil {
		b.Fatal(err)
	}
	digest := sha256.Sum256([]byte("benchmark"))
	b.ResetTimer()
	for b.Loop() {
		if _, err := k.Sign(nil, digest[:], crypto.SHA256); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSignRaw is the primitive BenchmarkSign wraps: C_SignInit and
// C_Sign with CKM_ECDSA through github.com/miekg/pkcs11 on one session,
// with the same key on the same token.
func BenchmarkSignRaw(b *testing.B) {
	tok := benchKey(b)
	r := openRaw(b, tok)
	hs := r.find(b, p11.CKO_PRIVATE_KEY, "bench")
	if len(hs) != 1 {
		b.Fatalf("%d keys labelled bench", len(hs))
	}
	digest := sha256.Sum256([]byte("benchmark"))
	mech := []*p11.Mechanism{p11.NewMechanism(p11.CKM_ECDSA, nil)}
	b.ResetTimer()
	for b.Loop() {
		if err := r.ctx.SignInit(r.sh, mech, hs[0]); err != nil {
			b.Fatal(err)
		}
		if _, err := r.ctx.Sign(r.sh, digest[:]); err != nil {
			b.Fatal(err)
		}
	}
}
