package attest_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"testing"

	"github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"
	"github.com/veraison/go-cose"

	"github.com/ztmkit/ztm/attest"
	"github.com/ztmkit/ztm/attest/devicesim"
	"github.com/ztmkit/ztm/identity/keystore"
)

func verifiedResult(t *testing.T, tamper devicesim.Tamper) *attest.Result {
	t.Helper()
	e := newEnv(t, envOpts{})
	e.dev.SetTamper(tamper)
	ev, err := e.dev.EvidenceCWT(e.nonce(t))
	if err != nil {
		t.Fatal(err)
	}
	r, _ := e.ver.Verify(context.Background(), ev)
	if r == nil {
		t.Fatal("no result")
	}
	return r
}

func TestResultRoundTrip(t *testing.T) {
	t.Parallel()
	vkey := newKey(t, keystore.ES256)
	for _, tc := range []struct {
		name   string
		tamper devicesim.Tamper
		want   attest.Status
	}{
		{"affirming", devicesim.Tamper{}, attest.StatusAffirming},
		{"contraindicated", devicesim.Tamper{DebugEnabled: true, WrongMeasurement: "bootloader"}, attest.StatusContraindicated},
	} {
		for _, form := range []string{"JWT", "CWT"} {
			t.Run(tc.name+"/"+form, func(t *testing.T) {
				r := verifiedResult(t, tc.tamper)
				if r.Digest() != nil {
					t.Error("digest before signing")
				}
				var tok []byte
				var err error
				if form == "JWT" {
					tok, err = r.SignJWT(nil, vkey, &attest.SignOptions{KeyID: []byte("verifier-1")})
				} else {
					tok, err = r.SignCWT(nil, vkey, &attest.SignOptions{KeyID: []byte("verifier-1")})
				}
				if err != nil {
					t.Fatal(err)
				}
				d := sha256.Sum256(tok)
				if !bytes.Equal(r.Digest(), d[:]) {
					t.Error("Digest is not the SHA-256 of the token")
				}
				p, err := attest.ParseResult(tok, vkey.Public(), nil)
				if err != nil {
					t.Fatal(err)
				}
				if p.Status() != tc.want || !bytes.Equal(p.Digest(), r.Digest()) {
					t.Errorf("parsed status %v digest %x", p.Status(), p.Digest())
				}
				a, b := r.Submods["device"], p.Submods["device"]
				if a.TrustVector != b.TrustVector || a.PolicyID != b.PolicyID || !bytes.Equal(a.EvidenceDigest, b.EvidenceDigest) ||
					!bytes.Equal(a.UEID, b.UEID) || len(a.Reasons) != len(b.Reasons) || !bytes.Equal(r.Nonce, p.Nonce) ||
					!r.IssuedAt.Equal(p.IssuedAt) || r.VerifierID != p.VerifierID || p.Profile != attest.EARProfile {
					t.Errorf("round trip differs:\n%+v\n%+v", a, b)
				}
				// Wrong key, and a tampered token, are refused.
				other := newKey(t, keystore.ES256)
				if _, err := attest.ParseResult(tok, other.Public(), nil); !errors.Is(err, attest.ErrBadSignature) {
					t.Errorf("wrong key: %v", err)
				}
				p384 := newKey(t, keystore.ES384)
				if _, err := attest.ParseResult(tok, p384.Public(), nil); !errors.Is(err, attest.ErrAlgorithmMismatch) {
					t.Errorf("key of another algorithm: %v", err)
				}
				if _, err := attest.ParseResult(tok, vkey.Public(), &attest.ResultOptions{MaxSize: 16}); !errors.Is(err, attest.ErrTooLarge) {
					t.Errorf("size limit: %v", err)
				}
			})
		}
	}
}

// TestEARReadableByPlainJOSE reads our EAR JWT with go-jose's jwt package
// only: no ztm code on the reading side.
func TestEARReadableByPlainJOSE(t *testing.T) {
	t.Parallel()
	vkey := newKey(t, keystore.ES256)
	r := verifiedResult(t, devicesim.Tamper{})
	tok, err := r.SignJWT(nil, vkey, &attest.SignOptions{KeyID: []byte("verifier-1")})
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := josejwt.ParseSigned(string(tok), []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	var std josejwt.Claims
	var ear struct {
		Profile    string `json:"eat_profile"`
		VerifierID struct {
			Build     string `json:"build"`
			Developer string `json:"developer"`
		} `json:"ear.verifier-id"`
		Nonce   string `json:"eat_nonce"`
		Submods map[string]struct {
			Status string         `json:"ear.status"`
			TV     map[string]int `json:"ear.trustworthiness-vector"`
			Policy string         `json:"ear.appraisal-policy-id"`
		} `json:"submods"`
	}
	if err := parsed.Claims(vkey.Public(), &std, &ear); err != nil {
		t.Fatal(err)
	}
	if parsed.Headers[0].KeyID != "verifier-1" || parsed.Headers[0].ExtraHeaders["typ"] != "JWT" {
		t.Errorf("header %+v", parsed.Headers[0])
	}
	if std.IssuedAt == nil || !std.IssuedAt.Time().Equal(t0) {
		t.Errorf("iat %v", std.IssuedAt)
	}
	dev := ear.Submods["device"]
	if ear.Profile != "tag:github.com,2023:veraison/ear" || dev.Status != "affirming" || dev.TV["hardware"] != 2 ||
		dev.TV["executables"] != 2 || dev.TV["configuration"] != 2 || dev.TV["instance-identity"] != 2 ||
		ear.VerifierID.Build != "ztm-test 1" || dev.Policy != "ztm/attest/default" || len(ear.Nonce) != 43 {
		b, _ := json.Marshal(ear)
		t.Errorf("EAR read by go-jose: %s", b)
	}
}

// TestCWTReadableByGoCOSE checks our evidence and EAR CWTs with go-cose
// alone: tagged COSE_Sign1, alg in the protected header, valid signature.
func TestCWTReadableByGoCOSE(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	ev, err := e.dev.EvidenceCWT(e.nonce(t))
	if err != nil {
		t.Fatal(err)
	}
	r, err := e.ver.Verify(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	vkey := newKey(t, keystore.ES256)
	ear, err := r.SignCWT(nil, vkey, &attest.SignOptions{KeyID: []byte("verifier-1")})
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		tok []byte
		pub crypto.PublicKey
	}{"evidence": {ev, e.key.Public()}, "EAR": {ear, vkey.Public()}} {
		var msg cose.Sign1Message
		if err := msg.UnmarshalCBOR(tc.tok); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		alg, err := msg.Headers.Protected.Algorithm()
		if err != nil || alg != cose.AlgorithmES256 {
			t.Fatalf("%s: alg %v %v", name, alg, err)
		}
		v, err := cose.NewVerifier(alg, tc.pub)
		if err != nil {
			t.Fatal(err)
		}
		if err := msg.Verify(nil, v); err != nil {
			t.Errorf("%s: go-cose does not verify it: %v", name, err)
		}
	}
}

// TestParseResultForeignExtensions reads an EAR CWT made with go-cose that
// carries another verifier's extension (Veraison's annotated evidence,
// -70000): unknown extensions are skipped, duplicate keys still refused.
func TestParseResultForeignExtensions(t *testing.T) {
	t.Parallel()
	payload := mustCBOR(t, map[int64]any{
		265:  attest.EARProfile,
		6:    int64(1772366400),
		1004: map[int64]any{0: "https://verifier.example", 1: "other 1.0"},
		266: map[string]any{"device": map[int64]any{
			1000:   int64(2),
			1001:   map[int64]any{4: int64(2)},
			-70000: map[string]any{"x": int64(1)},
		}},
	})
	s, err := cose.NewSigner(cose.AlgorithmES256, rawKey)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := cose.Sign1(rand.Reader, s, cose.Headers{Protected: cose.ProtectedHeader{cose.HeaderLabelAlgorithm: cose.AlgorithmES256}}, payload, nil)
	if err != nil {
		t.Fatal(err)
	}
	r, err := attest.ParseResult(tok, rawKey.Public(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.Status() != attest.StatusAffirming || r.Submods["device"].TrustVector.Hardware != 2 || r.VerifierID.Build != "other 1.0" {
		t.Errorf("result %+v", r.Submods["device"])
	}
	// A duplicated key is still refused: the top-level map gains a second
	// iat.
	dup := append([]byte{payload[0] + 1}, payload[1:]...)
	dup = append(dup, mustCBOR(t, int64(6))...)
	dup = append(dup, mustCBOR(t, int64(1))...)
	tok, err = cose.Sign1(rand.Reader, s, cose.Headers{Protected: cose.ProtectedHeader{cose.HeaderLabelAlgorithm: cose.AlgorithmES256}}, dup, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := attest.ParseResult(tok, rawKey.Public(), nil); !errors.Is(err, attest.ErrMalformed) {
		t.Errorf("duplicate iat: %v", err)
	}
}

// TestParseResultJSONStrict: EAR claims in JSON are read with exact member
// names, none repeated at any level, and iat required.
func TestParseResultJSONStrict(t *testing.T) {
	t.Parallel()
	const head = `{"eat_profile":"` + attest.EARProfile + `","ear.verifier-id":{"build":"v 1","developer":"https://v.example"}`
	parse := func(payload string) (*attest.Result, error) {
		return attest.ParseResult(craftJWT(`{"alg":"ES256"}`, payload, es256Raw(t)), rawKey.Public(), nil)
	}
	r, err := parse(head + `,"iat":1772366400,"x-other":{"a":1,"a":2},"submods":{"device":{"ear.status":"affirming","ear.trustworthiness-vector":{"hardware":2}}}}`)
	if err != nil {
		t.Fatal(err)
	}
	if r.Status() != attest.StatusAffirming || r.Submods["device"].TrustVector.Hardware != 2 || r.VerifierID.Build != "v 1" {
		t.Fatalf("result %+v", r)
	}
	for name, payload := range map[string]string{
		"ear.status twice":       head + `,"iat":1,"submods":{"device":{"ear.status":"contraindicated","ear.status":"affirming"}}}`,
		"submodule twice":        head + `,"iat":1,"submods":{"device":{"ear.status":"contraindicated"},"device":{"ear.status":"affirming"}}}`,
		"trust claim twice":      head + `,"iat":1,"submods":{"device":{"ear.status":"affirming","ear.trustworthiness-vector":{"hardware":96,"hardware":2}}}}`,
		"verifier id twice":      `{"eat_profile":"` + attest.EARProfile + `","iat":1,"ear.verifier-id":{"build":"a","build":"b"},"submods":{"device":{"ear.status":"affirming"}}}`,
		"no iat":                 head + `,"submods":{"device":{"ear.status":"affirming"}}}`,
		"no ear.status":          head + `,"iat":1,"submods":{"device":{}}}`,
		"status of another case": head + `,"iat":1,"submods":{"device":{"EAR.STATUS":"affirming"}}}`,
	} {
		if _, err := parse(payload); !errors.Is(err, attest.ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
	// A member named like a known one in another case is not that member.
	r, err = parse(head + `,"iat":1,"submods":{"device":{"ear.status":"contraindicated"}},"SUBMODS":{"device":{"ear.status":"affirming"}}}`)
	if err != nil || r.Status() != attest.StatusContraindicated {
		t.Fatalf("case variant of submods: %v, %v", r, err)
	}
}

// TestParseResultCBORStrict: the CWT form requires iat too, and its byte
// strings must be byte strings.
func TestParseResultCBORStrict(t *testing.T) {
	t.Parallel()
	s, err := cose.NewSigner(cose.AlgorithmES256, rawKey)
	if err != nil {
		t.Fatal(err)
	}
	parse := func(claims map[int64]any) error {
		tok, err := cose.Sign1(rand.Reader, s, cose.Headers{Protected: cose.ProtectedHeader{cose.HeaderLabelAlgorithm: cose.AlgorithmES256}}, mustCBOR(t, claims), nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = attest.ParseResult(tok, rawKey.Public(), nil)
		return err
	}
	good := func() map[int64]any {
		return map[int64]any{265: attest.EARProfile, 6: int64(1772366400), 1004: map[int64]any{0: "https://v.example", 1: "v 1"},
			266: map[string]any{"device": map[int64]any{1000: int64(2)}}}
	}
	if err := parse(good()); err != nil {
		t.Fatal(err)
	}
	noIAT := good()
	delete(noIAT, 6)
	if err := parse(noIAT); !errors.Is(err, attest.ErrMalformed) {
		t.Errorf("no iat: %v", err)
	}
	intNonce := good()
	intNonce[10] = []any{1, 2, 3, 4, 5, 6, 7, 8}
	if err := parse(intNonce); !errors.Is(err, attest.ErrMalformed) {
		t.Errorf("nonce as an array of integers: %v", err)
	}
}
