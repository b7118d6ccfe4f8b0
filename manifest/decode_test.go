package manifest_test

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/fxamacker/cbor/v2"
	"github.com/veraison/go-cose"

	"github.com/ztmkit/ztm/manifest"
)

// signRaw signs payload under the given protected header map (encoded
// canonically by go-cose) and returns the tagged COSE_Sign1.
func signRaw(t testing.TB, key crypto.Signer, prot cose.ProtectedHeader, rawProt, payload []byte) []byte {
	t.Helper()
	s, err := cose.NewSigner(cose.AlgorithmES256, key)
	if err != nil {
		t.Fatal(err)
	}
	m := cose.Sign1Message{Headers: cose.Headers{Protected: prot, RawProtected: rawProt}, Payload: payload}
	if m.Headers.Protected == nil {
		m.Headers.Protected = cose.ProtectedHeader{cose.HeaderLabelAlgorithm: cose.AlgorithmES256}
	}
	if err := m.Sign(rand.Reader, nil, s); err != nil {
		t.Fatal(err)
	}
	raw, err := m.MarshalCBOR()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func stepHeader(kid []byte, ct any) cose.ProtectedHeader {
	return cose.ProtectedHeader{
		cose.HeaderLabelAlgorithm:   cose.AlgorithmES256,
		cose.HeaderLabelContentType: ct,
		cose.HeaderLabelKeyID:       kid,
		int64(15):                   map[any]any{int64(1): "x", int64(2): "01", int64(6): int64(1)},
	}
}

func bstr(t testing.TB, b []byte) []byte {
	out, err := cbor.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestParseSignedStepRefuses(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	good := f.build(goodSpecs[:2])[1]
	key := f.parties["chipco"].key
	kid := f.parties["chipco"].signer.Thumbprint().Value
	payload := good.Step

	canon, err := payload.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	// Same map, its length in a non-shortest form: same claims, other bytes.
	nonCanon := append([]byte{0xb8, canon[0] & 0x1f}, canon[1:]...)
	// Duplicate key 1 (the name) at the front of the map.
	dup := append([]byte{canon[0] + 1, 0x01, 0x61, 'x'}, canon[1:]...)
	// An unknown key 99.
	unknown := append([]byte{canon[0] + 1}, canon[1:]...)
	unknown = append(unknown, 0x18, 99, 0x00)
	// Protected header with a duplicate label.
	dupProt := bstr(t, []byte{0xa2, 0x01, 0x26, 0x01, 0x26})

	cases := []struct {
		name   string
		raw    []byte
		tooBig bool
	}{
		{name: "empty", raw: nil},
		{name: "garbage", raw: []byte("not cbor at all")},
		{name: "truncated", raw: good.Raw[:len(good.Raw)-7]},
		{name: "truncated to the header", raw: good.Raw[:3]},
		{name: "trailing byte", raw: append(bytes.Clone(good.Raw), 0x00)},
		{name: "untagged", raw: good.Raw[1:]},
		{name: "oversize", raw: make([]byte, manifest.MaxStepSize+1), tooBig: true},
		{name: "non-canonical payload, validly signed", raw: signRaw(t, key, stepHeader(kid, manifest.StepContentType), nil, nonCanon)},
		{name: "duplicate payload key, validly signed", raw: signRaw(t, key, stepHeader(kid, manifest.StepContentType), nil, dup)},
		{name: "unknown payload key, validly signed", raw: signRaw(t, key, stepHeader(kid, manifest.StepContentType), nil, unknown)},
		{name: "duplicate protected label", raw: signRaw(t, key, nil, dupProt, canon)},
		{name: "wrong content type", raw: signRaw(t, key, stepHeader(kid, "application/cbor"), nil, canon)},
		{name: "no kid nor x5chain", raw: signRaw(t, key, cose.ProtectedHeader{
			cose.HeaderLabelAlgorithm: cose.AlgorithmES256, cose.HeaderLabelContentType: manifest.StepContentType,
			int64(15): map[any]any{int64(1): "x"}}, nil, canon)},
		{name: "no CWT claims", raw: signRaw(t, key, cose.ProtectedHeader{
			cose.HeaderLabelAlgorithm: cose.AlgorithmES256, cose.HeaderLabelContentType: manifest.StepContentType,
			cose.HeaderLabelKeyID: kid}, nil, canon)},
		{name: "unknown protected label", raw: func() []byte {
			h := stepHeader(kid, manifest.StepContentType)
			h[int64(-65537)] = "x"
			return signRaw(t, key, h, nil, canon)
		}()},
		{name: "payload is not a step", raw: signRaw(t, key, stepHeader(kid, manifest.StepContentType), nil, []byte{0x01})},
		{name: "first step with a predecessor", raw: func() []byte {
			s := payload.Clone()
			s.Sequence = 0
			w, _ := (&manifest.Step{Name: "x", Subject: s.Subject, Sequence: 1, Prev: s.Prev, Time: t0}).Marshal()
			// Turn sequence 1 into 0 in the encoding (key 3, value 1 → 0).
			i := bytes.Index(w, []byte{0x03, 0x01})
			w[i+1] = 0x00
			return signRaw(t, key, stepHeader(kid, manifest.StepContentType), nil, w)
		}()},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ss, err := manifest.ParseSignedStep(tc.raw)
			if err == nil {
				t.Fatalf("accepted: %+v", ss.Step)
			}
			want := manifest.ErrMalformed
			if tc.tooBig {
				want = manifest.ErrTooLarge
			}
			if !errors.Is(err, want) {
				t.Fatalf("error %v does not wrap %v", err, want)
			}
			var de *manifest.DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("error %T is not a *DecodeError", err)
			}
		})
	}
	// The control: the canonical payload under the same header parses.
	if _, err := manifest.ParseSignedStep(signRaw(t, key, stepHeader(kid, manifest.StepContentType), nil, canon)); err != nil {
		t.Fatalf("control: %v", err)
	}
}

func TestParseChainRefuses(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	c := f.build(goodSpecs[:3])
	enc, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	big := make([]byte, manifest.MaxChainSize+1)
	for _, tc := range []struct {
		name string
		data []byte
		want error
	}{
		{"truncated", enc[:len(enc)-1], manifest.ErrMalformed},
		{"empty array", []byte{0x80}, manifest.ErrMalformed},
		{"not an array", []byte{0xa0}, manifest.ErrMalformed},
		{"element not a step", []byte{0x81, 0x41, 0x00}, manifest.ErrMalformed},
		{"element not a bstr", []byte{0x81, 0x01}, manifest.ErrMalformed},
		{"indefinite length", append(append([]byte{0x9f}, enc[1:]...), 0xff), manifest.ErrMalformed},
		{"oversize", big, manifest.ErrTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := manifest.ParseChain(tc.data); !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
		})
	}
}

func TestPolicyRoundTripAndRefusals(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	js, err := json.Marshal(f.policy)
	if err != nil {
		t.Fatal(err)
	}
	p, err := manifest.ParsePolicyJSON(js)
	if err != nil {
		t.Fatal(err)
	}
	b1, _ := f.policy.Marshal()
	b2, err := p.Marshal()
	if err != nil || !bytes.Equal(b1, b2) {
		t.Fatalf("JSON round trip changed the policy: %v", err)
	}
	// Signed form.
	oem := mustKey(t)
	signed, err := manifest.SignPolicy(rand.Reader, p, oem, manifest.SignOptions{Issuer: "ACME"})
	if err != nil {
		t.Fatal(err)
	}
	p2, err := manifest.VerifyPolicy(signed, oem.Public())
	if err != nil {
		t.Fatal(err)
	}
	if b3, _ := p2.Marshal(); !bytes.Equal(b1, b3) {
		t.Fatal("signed round trip changed the policy")
	}
	if err := verify(f, f.build(goodSpecs), p2, nil).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := manifest.VerifyPolicy(signed, mustKey(t).Public()); !errors.Is(err, manifest.ErrVerification) {
		t.Fatalf("other key: %v", err)
	}
	tampered := bytes.Clone(signed)
	i := bytes.Index(tampered, []byte("acme-widget-line"))
	tampered[i+1] ^= 0x20
	if _, err := manifest.VerifyPolicy(tampered, oem.Public()); !errors.Is(err, manifest.ErrVerification) {
		t.Fatalf("tampered: %v", err)
	}
	if _, err := manifest.VerifyPolicy(signed[:len(signed)-2], oem.Public()); !errors.Is(err, manifest.ErrMalformed) {
		t.Fatalf("truncated: %v", err)
	}
	// A step signature is not a policy signature.
	if _, err := manifest.VerifyPolicy(f.build(goodSpecs[:1])[0].Raw, oem.Public()); !errors.Is(err, manifest.ErrMalformed) {
		t.Fatalf("step as policy: %v", err)
	}

	s := string(js)
	for _, tc := range []struct {
		name, json string
		want       error
	}{
		{"unknown field", strings.Replace(s, `"name"`, `"nmae": 1, "name"`, 1), manifest.ErrMalformed},
		{"trailing data", s + "{}", manifest.ErrMalformed},
		{"not json", "name: x", manifest.ErrMalformed},
		{"bad PEM", strings.Replace(s, "BEGIN PUBLIC KEY", "BEGIN PRIVATE KEY", 1), manifest.ErrMalformed},
		{"unknown signer", strings.Replace(s, `"chipco"`, `"chipc0"`, 1), manifest.ErrInvalidPolicy},
		{"threshold above signers", strings.Replace(s, `"threshold":2`, `"threshold":4`, 1), manifest.ErrInvalidPolicy},
		{"no steps", `{"name":"x","version":1,"steps":[]}`, manifest.ErrInvalidPolicy},
		{"oversize", `{"name":"` + strings.Repeat("x", manifest.MaxPolicySize) + `"}`, manifest.ErrTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := manifest.ParsePolicyJSON([]byte(tc.json)); !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
		})
	}
	// CBOR: duplicate key, truncated.
	if _, err := manifest.ParsePolicy(append([]byte{b1[0] + 1, 0x01, 0x61, 'x'}, b1[1:]...)); !errors.Is(err, manifest.ErrMalformed) {
		t.Fatalf("duplicate key: %v", err)
	}
	if _, err := manifest.ParsePolicy(b1[:len(b1)-1]); !errors.Is(err, manifest.ErrMalformed) {
		t.Fatalf("truncated: %v", err)
	}
}
