package attest_test

import (
	"context"
	"testing"

	"github.com/go-jose/go-jose/v4"
	"github.com/veraison/go-cose"

	"github.com/ztmkit/ztm/attest"
	"github.com/ztmkit/ztm/identity/keystore"
)

// benchTokens returns n ES256 evidence tokens of one device, each answering
// its own fresh nonce, and the verifier (with nonces and reference values)
// that accepts each exactly once.
func benchTokens(b *testing.B, n int, form attest.Format) (*attest.EATVerifier, [][]byte, *env) {
	b.Helper()
	e := newEnv(b, envOpts{alg: keystore.ES256, tweak: func(c *attest.Config) {
		c.Nonces = attest.NewNonces(attest.NonceConfig{MaxOutstanding: n + 1})
	}})
	toks := make([][]byte, n)
	for i := range toks {
		nonce, err := e.ver.Nonces().Issue()
		if err != nil {
			b.Fatal(err)
		}
		if form == attest.FormatCWT {
			toks[i], err = e.dev.EvidenceCWT(nonce)
		} else {
			toks[i], err = e.dev.EvidenceJWT(nonce)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	return e.ver, toks, e
}

// BenchmarkVerifyCWT is the whole appraisal of ES256 CWT evidence: strict
// decoding, signature, nonce consumption and appraisal against reference
// values. Its twin BenchmarkVerifyCWTRaw is go-cose alone on the same bytes.
func BenchmarkVerifyCWT(b *testing.B) {
	v, toks, _ := benchTokens(b, b.N, attest.FormatCWT)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r, err := v.Verify(ctx, toks[i])
		if err != nil || r.Status() != attest.StatusAffirming {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyCWTRaw(b *testing.B) {
	_, toks, e := benchTokens(b, 1, attest.FormatCWT)
	cv, err := cose.NewVerifier(cose.AlgorithmES256, e.key.Public())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var msg cose.Sign1Message
		if err := msg.UnmarshalCBOR(toks[0]); err != nil {
			b.Fatal(err)
		}
		if err := msg.Verify(nil, cv); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyJWT is BenchmarkVerifyCWT for the JWT form; its twin
// BenchmarkVerifyJWTRaw is go-jose parsing and verifying the same bytes.
func BenchmarkVerifyJWT(b *testing.B) {
	v, toks, _ := benchTokens(b, b.N, attest.FormatJWT)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r, err := v.Verify(ctx, toks[i])
		if err != nil || r.Status() != attest.StatusAffirming {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyJWTRaw(b *testing.B) {
	_, toks, e := benchTokens(b, 1, attest.FormatJWT)
	pub := e.key.Public()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		obj, err := jose.ParseSignedCompact(string(toks[0]), []jose.SignatureAlgorithm{jose.ES256})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := obj.Verify(pub); err != nil {
			b.Fatal(err)
		}
	}
}
