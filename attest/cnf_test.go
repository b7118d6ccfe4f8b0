package attest_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/veraison/go-cose"

	"github.com/ztmkit/ztm/attest"
)

func cnfKeys(t *testing.T) map[string]crypto.Signer {
	t.Helper()
	out := make(map[string]crypto.Signer)
	for name, c := range map[string]elliptic.Curve{"P-256": elliptic.P256(), "P-384": elliptic.P384(), "P-521": elliptic.P521()} {
		k, err := ecdsa.GenerateKey(c, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		out[name] = k
	}
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	out["Ed25519"] = ed
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	out["RSA"] = rk
	return out
}

// TestConfirmationRoundTrip signs evidence confirming each kind of key, in
// both forms, and checks that the verified evidence confirms that key and
// no other.
func TestConfirmationRoundTrip(t *testing.T) {
	t.Parallel()
	v := newCnfVerifier(t)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	for name, k := range cnfKeys(t) {
		for _, form := range []string{"cwt", "jwt", "jkt"} {
			c := fuzzClaimsFor(t)
			c.Confirmation = &attest.Confirmation{Key: k.Public()}
			sign := attest.SignCWT
			switch form {
			case "jwt":
				sign = attest.SignJWT
			case "jkt":
				sign = attest.SignJWT
				tp, err := attest.JWKThumbprint(k.Public())
				if err != nil {
					t.Fatal(err)
				}
				c.Confirmation = &attest.Confirmation{JWKThumbprint: tp}
			}
			tok, err := sign(nil, v.key, c, &attest.SignOptions{KeyID: []byte("k")})
			if err != nil {
				t.Fatalf("%s %s: %v", name, form, err)
			}
			ev, err := v.v.Decode(tok)
			if err != nil {
				t.Fatalf("%s %s: %v", name, form, err)
			}
			if err := ev.ConfirmKey(k.Public()); err != nil {
				t.Errorf("%s %s: ConfirmKey(own key) = %v", name, form, err)
			}
			err = ev.ConfirmKey(other.Public())
			var ve *attest.VerificationError
			if !errors.Is(err, attest.ErrKeyNotConfirmed) || !errors.Is(err, attest.ErrVerification) || !errors.As(err, &ve) || ve.Reason != attest.ReasonKeyNotConfirmed {
				t.Errorf("%s %s: ConfirmKey(other key) = %v", name, form, err)
			}
		}
	}
}

func TestConfirmKeyAbsent(t *testing.T) {
	t.Parallel()
	v := newCnfVerifier(t)
	tok, err := attest.SignCWT(nil, v.key, fuzzClaimsFor(t), &attest.SignOptions{KeyID: []byte("k")})
	if err != nil {
		t.Fatal(err)
	}
	ev, err := v.v.Decode(tok)
	if err != nil {
		t.Fatal(err)
	}
	err = ev.ConfirmKey(v.key.Public())
	if !errors.Is(err, attest.ErrMissingClaim) || errors.Is(err, attest.ErrKeyNotConfirmed) {
		t.Fatalf("ConfirmKey without cnf = %v, want ErrMissingClaim", err)
	}
}

// TestConfirmationInteropCOSE reads a cnf whose COSE_Key go-cose encoded
// (with its alg parameter), and checks ztm's COSE_Key against go-cose's
// decoder.
func TestConfirmationInteropCOSE(t *testing.T) {
	t.Parallel()
	v := newCnfVerifier(t)
	for name, k := range cnfKeys(t) {
		if name == "RSA" {
			continue // go-cose has no RSA COSE_Key (RFC 8230)
		}
		ck, err := cose.NewKeyFromPublic(k.Public())
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		keyCBOR, err := ck.MarshalCBOR()
		if err != nil {
			t.Fatal(err)
		}
		cnf, err := cbor.Marshal(map[int64]cbor.RawMessage{1: keyCBOR})
		if err != nil {
			t.Fatal(err)
		}
		payload := claimsWithRaw(t, fuzzClaimsFor(t), 8, cnf)
		tok := signRawCWT(t, v.key, payload)
		ev, err := v.v.Decode(tok)
		if err != nil {
			t.Fatalf("%s: go-cose COSE_Key refused: %v", name, err)
		}
		if err := ev.ConfirmKey(k.Public()); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		// The other way: ztm's COSE_Key decodes in go-cose to the key.
		c2 := fuzzClaimsFor(t)
		c2.Confirmation = &attest.Confirmation{Key: k.Public()}
		enc, err := c2.MarshalCBOR()
		if err != nil {
			t.Fatal(err)
		}
		var m map[int64]cbor.RawMessage
		if err := cbor.Unmarshal(enc, &m); err != nil {
			t.Fatal(err)
		}
		var cm map[int64]cbor.RawMessage
		if err := cbor.Unmarshal(m[8], &cm); err != nil {
			t.Fatal(err)
		}
		var back cose.Key
		if err := back.UnmarshalCBOR(cm[1]); err != nil {
			t.Fatalf("%s: go-cose refuses ztm's COSE_Key: %v", name, err)
		}
		pub, err := back.PublicKey()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !pub.(interface{ Equal(crypto.PublicKey) bool }).Equal(k.Public()) {
			t.Errorf("%s: go-cose reads another key", name)
		}
	}
}

// TestConfirmationInteropJOSE reads a cnf jwk that go-jose wrote and a jkt
// of go-jose's RFC 7638 thumbprint.
func TestConfirmationInteropJOSE(t *testing.T) {
	t.Parallel()
	for name, k := range cnfKeys(t) {
		jwk := jose.JSONWebKey{Key: k.Public()}
		tp, err := jwk.Thumbprint(crypto.SHA256)
		if err != nil {
			t.Fatal(err)
		}
		ours, err := attest.JWKThumbprint(k.Public())
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(tp, ours) {
			t.Errorf("%s: JWKThumbprint %x, go-jose %x", name, ours, tp)
		}
		raw, err := jwk.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		for _, cnf := range []string{`{"jwk":` + string(raw) + `}`, `{"jkt":"` + base64.RawURLEncoding.EncodeToString(tp) + `"}`} {
			var c attest.Claims
			if err := c.UnmarshalJSON([]byte(`{"cnf":` + cnf + `}`)); err != nil {
				t.Fatalf("%s: %s: %v", name, cnf, err)
			}
			if !c.Confirmation.Confirms(k.Public()) {
				t.Errorf("%s: %s does not confirm its key", name, cnf)
			}
		}
	}
}

// TestConfirmationRefused covers the cnf forms ztm refuses.
func TestConfirmationRefused(t *testing.T) {
	t.Parallel()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	b, _ := k.PublicKey.Bytes()
	x, y := b64(b[1:33]), b64(b[33:])
	offCurve := append([]byte(nil), b[33:]...)
	offCurve[31] ^= 1
	jsonCases := map[string]string{
		"private d":        `{"jwk":{"kty":"EC","crv":"P-256","x":"` + x + `","y":"` + y + `","d":"` + x + `"}}`,
		"off curve":        `{"jwk":{"kty":"EC","crv":"P-256","x":"` + x + `","y":"` + b64(offCurve) + `"}}`,
		"short x":          `{"jwk":{"kty":"EC","crv":"P-256","x":"` + b64(b[2:33]) + `","y":"` + y + `"}}`,
		"alg mismatch":     `{"jwk":{"kty":"EC","crv":"P-256","alg":"ES384","x":"` + x + `","y":"` + y + `"}}`,
		"two methods":      `{"jwk":{"kty":"EC","crv":"P-256","x":"` + x + `","y":"` + y + `"},"jkt":"` + x + `"}`,
		"kid method":       `{"kid":"abc"}`,
		"jkt short":        `{"jkt":"AAAA"}`,
		"symmetric":        `{"jwk":{"kty":"oct","k":"AAAA"}}`,
		"dup member":       `{"jwk":{"kty":"EC","kty":"EC","crv":"P-256","x":"` + x + `","y":"` + y + `"}}`,
		"empty":            `{}`,
		"not object":       `"abc"`,
		"use enc":          `{"jwk":{"kty":"EC","use":"enc","crv":"P-256","x":"` + x + `","y":"` + y + `"}}`,
		"unknown curve":    `{"jwk":{"kty":"EC","crv":"secp256k1","x":"` + x + `","y":"` + y + `"}}`,
		"ed25519 with y":   `{"jwk":{"kty":"OKP","crv":"Ed25519","x":"` + x + `","y":"` + y + `"}}`,
		"padded base64url": `{"jwk":{"kty":"EC","crv":"P-256","x":"` + x + `=","y":"` + y + `"}}`,
	}
	for name, cnf := range jsonCases {
		var c attest.Claims
		if err := c.UnmarshalJSON([]byte(`{"cnf":` + cnf + `}`)); err == nil {
			t.Errorf("JSON %s: accepted", name)
		}
	}
	xb, yb := b[1:33], b[33:]
	cborCases := map[string]any{
		"private d":      map[int64]any{1: map[int64]any{1: 2, -1: 1, -2: xb, -3: yb, -4: xb}},
		"compressed":     map[int64]any{1: map[int64]any{1: 2, -1: 1, -2: xb, -3: true}},
		"off curve":      map[int64]any{1: map[int64]any{1: 2, -1: 1, -2: xb, -3: offCurve}},
		"short x":        map[int64]any{1: map[int64]any{1: 2, -1: 1, -2: xb[1:], -3: yb}},
		"alg mismatch":   map[int64]any{1: map[int64]any{1: 2, 3: -35, -1: 1, -2: xb, -3: yb}},
		"kid method":     map[int64]any{3: []byte("kid")},
		"two methods":    map[int64]any{1: map[int64]any{1: 2, -1: 1, -2: xb, -3: yb}, 3: []byte("kid")},
		"ckt unread":     map[int64]any{5: make([]byte, 32)},
		"symmetric":      map[int64]any{1: map[int64]any{1: 4, -1: xb}},
		"x as array":     map[int64]any{1: map[int64]any{1: 2, -1: 1, -2: []int{1, 2}, -3: yb}},
		"text kty":       map[int64]any{1: map[int64]any{1: "EC2", -1: 1, -2: xb, -3: yb}},
		"not a map":      []byte("cnf"),
		"empty COSE_Key": map[int64]any{1: map[int64]any{}},
	}
	for name, cnf := range cborCases {
		enc, err := cbor.Marshal(map[int64]any{8: cnf})
		if err != nil {
			t.Fatal(err)
		}
		var c attest.Claims
		if err := c.UnmarshalCBOR(enc); err == nil {
			t.Errorf("CBOR %s: accepted", name)
		}
		// The same with a claim the fast path does not know, for the
		// general path.
		enc, _ = cbor.Marshal(map[int64]any{8: cnf, -70000: 1})
		if err := c.UnmarshalCBOR(enc); err == nil {
			t.Errorf("CBOR %s (general path): accepted", name)
		}
	}
	// A CWT confirms a key, not a JWK thumbprint.
	c := &attest.Claims{Confirmation: &attest.Confirmation{JWKThumbprint: make([]byte, 32)}}
	if _, err := c.MarshalCBOR(); err == nil {
		t.Error("MarshalCBOR of a jkt: accepted")
	}
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// claimsWithRaw encodes c and adds claim key with the raw value.
func claimsWithRaw(t *testing.T, c *attest.Claims, key int64, raw []byte) []byte {
	t.Helper()
	c.Extensions = nil
	enc, err := c.MarshalCBOR()
	if err != nil {
		t.Fatal(err)
	}
	var m map[int64]cbor.RawMessage
	if err := cbor.Unmarshal(enc, &m); err != nil {
		t.Fatal(err)
	}
	m[key] = raw
	em, _ := cbor.CoreDetEncOptions().EncMode()
	out, err := em.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func signRawCWT(t *testing.T, key crypto.Signer, payload []byte) []byte {
	t.Helper()
	signer, err := cose.NewSigner(cose.AlgorithmES256, key)
	if err != nil {
		t.Fatal(err)
	}
	msg := cose.NewSign1Message()
	msg.Headers.Protected.SetAlgorithm(cose.AlgorithmES256)
	msg.Headers.Protected[cose.HeaderLabelKeyID] = []byte("k")
	msg.Payload = payload
	if err := msg.Sign(rand.Reader, nil, signer); err != nil {
		t.Fatal(err)
	}
	out, err := msg.MarshalCBOR()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// cnfVerifier is a verifier with one registered P-256 key "k".
type cnfVerifier struct {
	key *ecdsa.PrivateKey
	v   *attest.EATVerifier
}

func newCnfVerifier(t *testing.T) cnfVerifier {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	v, err := attest.NewVerifier(attest.Config{Keys: map[string]crypto.PublicKey{"k": key.Public()}, Time: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	return cnfVerifier{key: key, v: v}
}

func fuzzClaimsFor(t *testing.T) *attest.Claims {
	t.Helper()
	c := fuzzClaims()
	c.Submods = nil
	return c
}
