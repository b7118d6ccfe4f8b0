package attest_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/veraison/go-cose"

	"github.com/ztmkit/ztm/attest"
	"github.com/ztmkit/ztm/identity/keystore"
)

// benchPool is the number of distinct evidence tokens a benchmark cycles
// through.
const benchPool = 256

// cyclingRand returns, from its start, the same benchPool nonces over and
// over: nonce i is 32 bytes of i's little-endian value followed by zeros.
type cyclingRand struct{ i int }

func (r *cyclingRand) Read(p []byte) (int, error) {
	clear(p)
	p[0], p[1] = byte(r.i), byte(r.i>>8)
	r.i = (r.i + 1) % benchPool
	return len(p), nil
}

// benchSetup returns a verifier (ES256 device key, nonces, reference values)
// and benchPool evidence tokens, token i answering the i-th nonce its
// Nonces issue in every cycle of benchPool. The returned issue function
// issues the next nonce, moving the clock past the TTL at the start of each
// cycle so that the previous cycle's nonces are reclaimed and the same
// tokens are fresh again. Nonce issuance is part of what is measured: a jig
// issues one nonce per verification.
func benchSetup(b *testing.B, form attest.Format) (*attest.EATVerifier, [][]byte, func(), *env) {
	return benchSetupKey(b, form, nil)
}

// benchSetupKey is benchSetup with evidence whose cnf confirms key (none
// if nil).
func benchSetupKey(b *testing.B, form attest.Format, key crypto.PublicKey) (*attest.EATVerifier, [][]byte, func(), *env) {
	b.Helper()
	now := t0
	var issued int
	nonces := attest.NewNonces(attest.NonceConfig{
		TTL:  time.Minute,
		Time: func() time.Time { return now },
		Rand: &cyclingRand{},
	})
	e := newEnv(b, envOpts{alg: keystore.ES256, tweak: func(c *attest.Config) {
		c.Nonces = nonces
		c.Time = func() time.Time { return now }
	}})
	issue := func() {
		if issued%benchPool == 0 {
			now = now.Add(time.Minute)
		}
		issued++
		if _, err := nonces.Issue(); err != nil {
			b.Fatal(err)
		}
	}
	e.dev.BindKey(key)
	toks := make([][]byte, benchPool)
	for i := range toks {
		nonce := make([]byte, 32)
		nonce[0], nonce[1] = byte(i), byte(i>>8)
		var err error
		if form == attest.FormatCWT {
			toks[i], err = e.dev.EvidenceCWT(nonce)
		} else {
			toks[i], err = e.dev.EvidenceJWT(nonce)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	return e.ver, toks, issue, e
}

func benchVerify(b *testing.B, form attest.Format) {
	v, toks, issue, _ := benchSetup(b, form)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		issue()
		r, err := v.Verify(ctx, toks[i%benchPool])
		if err != nil || r.Status() != attest.StatusAffirming {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyCWT is the whole appraisal of ES256 CWT evidence: nonce
// issuance, strict decoding, signature, nonce consumption and appraisal
// against reference values. Its twin BenchmarkVerifyCWTRaw is go-cose alone
// (decode and verify) on the same bytes.
func BenchmarkVerifyCWT(b *testing.B) { benchVerify(b, attest.FormatCWT) }

func BenchmarkVerifyCWTRaw(b *testing.B) {
	_, toks, _, e := benchSetup(b, attest.FormatCWT)
	rawCWT(b, toks, e.key.Public())
}

// BenchmarkVerifyJWT is BenchmarkVerifyCWT for the JWT form; its twin
// BenchmarkVerifyJWTRaw is go-jose parsing and verifying the same bytes.
func BenchmarkVerifyJWT(b *testing.B) { benchVerify(b, attest.FormatJWT) }

func BenchmarkVerifyJWTRaw(b *testing.B) {
	_, toks, _, e := benchSetup(b, attest.FormatJWT)
	rawJWT(b, toks, e.key.Public())
}

// BenchmarkVerifyCWTKey is BenchmarkVerifyCWT for key-bound evidence
// (a cnf COSE_Key) with the key check a CA makes, Evidence.ConfirmKey
// against the request's key. Its twin BenchmarkVerifyCWTKeyRaw is go-cose
// alone on the same bytes.
func BenchmarkVerifyCWTKey(b *testing.B) { benchVerifyKey(b, attest.FormatCWT) }

func BenchmarkVerifyCWTKeyRaw(b *testing.B) {
	_, toks, _, e := benchSetupKey(b, attest.FormatCWT, benchCSRKey(b))
	rawCWT(b, toks, e.key.Public())
}

// BenchmarkVerifyJWTKey is BenchmarkVerifyCWTKey for the JWT form (a cnf
// jwk); its twin BenchmarkVerifyJWTKeyRaw is go-jose on the same bytes.
func BenchmarkVerifyJWTKey(b *testing.B) { benchVerifyKey(b, attest.FormatJWT) }

func BenchmarkVerifyJWTKeyRaw(b *testing.B) {
	_, toks, _, e := benchSetupKey(b, attest.FormatJWT, benchCSRKey(b))
	rawJWT(b, toks, e.key.Public())
}

// rawCWT is the raw twin of a CWT benchmark: go-cose alone decoding and
// verifying toks, signed by pub.
func rawCWT(b *testing.B, toks [][]byte, pub crypto.PublicKey) {
	cv, err := cose.NewVerifier(cose.AlgorithmES256, pub)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var msg cose.Sign1Message
		if err := msg.UnmarshalCBOR(toks[i%benchPool]); err != nil {
			b.Fatal(err)
		}
		if err := msg.Verify(nil, cv); err != nil {
			b.Fatal(err)
		}
	}
}

// rawJWT is the raw twin of a JWT benchmark: go-jose alone parsing and
// verifying toks, signed by pub.
func rawJWT(b *testing.B, toks [][]byte, pub crypto.PublicKey) {
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		obj, err := jose.ParseSignedCompact(string(toks[i%benchPool]), []jose.SignatureAlgorithm{jose.ES256})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := obj.Verify(pub); err != nil {
			b.Fatal(err)
		}
	}
}

// benchCSRKey is the fixed public key the key-bound evidence confirms.
func benchCSRKey(b *testing.B) crypto.PublicKey {
	d := make([]byte, 32)
	d[31] = 7
	k, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), d)
	if err != nil {
		b.Fatal(err)
	}
	return k.Public()
}

func benchVerifyKey(b *testing.B, form attest.Format) {
	csrKey := benchCSRKey(b)
	v, toks, issue, _ := benchSetupKey(b, form, csrKey)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		issue()
		r, err := v.Verify(ctx, toks[i%benchPool])
		if err != nil || r.Status() != attest.StatusAffirming {
			b.Fatal(err)
		}
		if err := r.Evidence.ConfirmKey(csrKey); err != nil {
			b.Fatal(err)
		}
	}
}
