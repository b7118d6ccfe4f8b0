package manifest_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/fxamacker/cbor/v2"
	"github.com/veraison/go-cose"

	"github.com/ztmkit/ztm/manifest"
)

// withUnprotected re-encodes a tagged COSE_Sign1 with the given unprotected
// header: same protected header, payload and signature, which still verify.
func withUnprotected(t *testing.T, raw []byte, u cose.UnprotectedHeader) []byte {
	t.Helper()
	var m cose.Sign1Message
	if err := m.UnmarshalCBOR(raw); err != nil {
		t.Fatal(err)
	}
	m.Headers.RawUnprotected = nil
	m.Headers.Unprotected = u
	out, err := m.MarshalCBOR()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// sign1Items re-encodes a tagged COSE_Sign1 as an array of the given items.
func sign1Items(t *testing.T, raw []byte, edit func([]cbor.RawMessage) []cbor.RawMessage) []byte {
	t.Helper()
	var items []cbor.RawMessage
	if err := cbor.Unmarshal(raw[1:], &items); err != nil {
		t.Fatal(err)
	}
	b, err := cbor.Marshal(edit(items))
	if err != nil {
		t.Fatal(err)
	}
	return append([]byte{0xd2}, b...)
}

// TestUnprotectedHeaderRefused: a step, policy, lot manifest or receipt
// whose unprotected header carries a label its format does not define is
// refused, and the error names the label. Before, a kid, alg, x5chain or
// private label added to a step verified, attributed to the same signer,
// with another digest.
func TestUnprotectedHeaderRefused(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	c := f.build(goodSpecs)
	last := c[len(c)-1]
	for _, tc := range []struct {
		name  string
		u     cose.UnprotectedHeader
		label string
	}{
		{"kid", cose.UnprotectedHeader{cose.HeaderLabelKeyID: []byte("qa")}, "4 (kid)"},
		{"alg", cose.UnprotectedHeader{cose.HeaderLabelAlgorithm: cose.AlgorithmES256}, "1 (alg)"},
		{"x5chain", cose.UnprotectedHeader{cose.HeaderLabelX5Chain: [][]byte{{1}, {2}}}, "33 (x5chain)"},
		{"private label", cose.UnprotectedHeader{int64(-70000): "note"}, "-70000"},
		{"text label", cose.UnprotectedHeader{"note": "x"}, `"note"`},
		{"two labels", cose.UnprotectedHeader{int64(-70000): 1, cose.HeaderLabelKeyID: []byte("a")}, "-70000, 4 (kid)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := withUnprotected(t, last.Raw, tc.u)
			// The signature itself still holds over the changed bytes.
			var m cose.Sign1Message
			if err := m.UnmarshalCBOR(raw); err != nil {
				t.Fatal(err)
			}
			_, err := manifest.ParseSignedStep(raw)
			if !errors.Is(err, manifest.ErrMalformed) || !strings.Contains(err.Error(), "unprotected header label "+tc.label+" not allowed") {
				t.Fatalf("step: %v", err)
			}
			mod := append(manifest.Chain{}, c[:len(c)-1]...)
			b, err := append(mod, last).Marshal()
			if err != nil {
				t.Fatal(err)
			}
			b = bytes.Replace(b, last.Raw, raw, 1)
			if _, err := manifest.ParseChain(b); !errors.Is(err, manifest.ErrMalformed) {
				t.Fatalf("chain: %v", err)
			}
		})
	}

	// A signed policy and a lot manifest: the same.
	oem := mustKey(t)
	pol, err := manifest.SignPolicy(rand.Reader, f.policy, oem, manifest.SignOptions{Issuer: "ACME"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := manifest.VerifyPolicy(pol, oem.Public()); err != nil {
		t.Fatal(err)
	}
	if _, err := manifest.VerifyPolicy(withUnprotected(t, pol, cose.UnprotectedHeader{cose.HeaderLabelKeyID: []byte("x")}), oem.Public()); !errors.Is(err, manifest.ErrMalformed) || !strings.Contains(err.Error(), "4 (kid)") {
		t.Errorf("policy: %v", err)
	}
	lf, _, lm := lotFixture(t, 3)
	lotPub := lf.parties["cm"].key.Public()
	if _, err := manifest.VerifyLotManifest(withUnprotected(t, lm.Raw, cose.UnprotectedHeader{int64(-65537): int64(9)}), lotPub); !errors.Is(err, manifest.ErrMalformed) || !strings.Contains(err.Error(), "-65537") {
		t.Errorf("lot manifest: %v", err)
	}
	// A receipt keeps its vdp (396) and nothing else.
	rc, err := lm.Receipt(1)
	if err != nil {
		t.Fatal(err)
	}
	var rm cose.Sign1Message
	if err := rm.UnmarshalCBOR(rc); err != nil {
		t.Fatal(err)
	}
	u := rm.Headers.Unprotected
	u[cose.HeaderLabelKeyID] = []byte("x")
	if _, err := manifest.ParseReceipt(withUnprotected(t, rc, u)); !errors.Is(err, manifest.ErrMalformed) || !strings.Contains(err.Error(), "4 (kid)") {
		t.Errorf("receipt with a kid: %v", err)
	}
}

// TestSign1ShapeRefused: a step whose COSE_Sign1 lacks an item, or has one
// more, or whose heads are not in shortest form, is refused with a message
// that says so.
func TestSign1ShapeRefused(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	good := f.build(goodSpecs[:2])[1].Raw
	if _, err := manifest.ParseSignedStep(good); err != nil {
		t.Fatal(err)
	}
	stripped := sign1Items(t, good, func(it []cbor.RawMessage) []cbor.RawMessage { return append(it[:1:1], it[2:]...) })
	extra := sign1Items(t, good, func(it []cbor.RawMessage) []cbor.RawMessage { return append(it, cbor.RawMessage{0xa0}) })
	// The signature's head (0x58 0x40: 64 bytes) in a longer form.
	i := bytes.LastIndex(good, []byte{0x58, 0x40})
	if i < 0 || len(good)-i != 66 {
		t.Fatal("signature head not found")
	}
	long := append(append(bytes.Clone(good[:i]), 0x59, 0x00, 0x40), good[i+2:]...)
	for name, tc := range map[string]struct {
		raw  []byte
		want string
	}{
		"unprotected header stripped": {stripped, "COSE_Sign1 of 3 items, want 4"},
		"fifth item":                  {extra, "COSE_Sign1 of 5 items, want 4"},
		"long signature head":         {long, "signature length is not in its shortest form"},
	} {
		_, err := manifest.ParseSignedStep(tc.raw)
		if !errors.Is(err, manifest.ErrMalformed) || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "sign1Wire") {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestCertificateByDigest: a station with a certificate may name it by
// digest (x5t) instead of sending it; a verifier that holds the
// certificate trusts the step as if the chain had come with it, one that
// does not refuses it, and the step is a fraction of the size.
func TestCertificateByDigest(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	specs := slices.Clone(goodSpecs)
	for i := range specs {
		if specs[i].by == "testhouse" {
			specs[i].by = "testhouse-x5t"
		}
	}
	c := f.build(specs)
	i := slices.IndexFunc(c, func(s *manifest.SignedStep) bool { return s.Step.Name == manifest.StepFinalTest })
	st := c[i]
	if st.CertChain != nil || st.CertDigest == nil || !st.CertDigest.Matches(f.testhouseLeaf.Raw) {
		t.Fatalf("step names its certificate by %v / %v", st.CertChain, st.CertDigest)
	}
	back, err := manifest.ParseSignedStep(st.Raw)
	if err != nil || back.CertDigest == nil || !back.CertDigest.Equal(*st.CertDigest) {
		t.Fatalf("parsed: %v %v", back, err)
	}
	full := f.sign(st.Step, "testhouse")
	if len(st.Raw) >= 400 || len(full.Raw)-len(st.Raw) < 300 {
		t.Errorf("x5t step %d bytes, x5chain step %d", len(st.Raw), len(full.Raw))
	}

	opts := &manifest.VerifyOptions{CurrentTime: t0, Certificates: []*x509.Certificate{f.testhouseLeaf}}
	rep := manifest.Verify(context.Background(), c, f.policy, opts)
	if err := rep.Err(); err != nil || rep.Signers[i] != "cert:testhouse-line2" {
		t.Fatalf("held certificate: %v %v", err, rep.Signers)
	}
	// Not held: the signer is unknown, and the reason says so.
	rep = manifest.Verify(context.Background(), c, f.policy, &manifest.VerifyOptions{CurrentTime: t0})
	var ve *manifest.VerificationError
	failed := rep.Failed()
	if rep.OK() || len(failed) == 0 || !errors.As(failed[0].Err, &ve) || ve.Reason != manifest.ReasonUntrustedSigner || !strings.Contains(failed[0].Err.Error(), "does not hold") {
		t.Fatalf("certificate not held: %v", rep.Err())
	}
	// A held certificate that is not the one named: refused too.
	other := issue(t, f.root, f.rootKey, "testhouse-line3", "test-station", mustKey(t).Public())
	rep = manifest.Verify(context.Background(), c, f.policy, &manifest.VerifyOptions{CurrentTime: t0, Certificates: []*x509.Certificate{other}})
	if rep.OK() {
		t.Fatal("another certificate accepted")
	}
	// A certificate held but not chaining to the policy's roots: refused.
	strayCA, strayKey := newCA(t, "Stray CA")
	stray := issue(t, strayCA, strayKey, "testhouse-line2", "test-station", f.parties["testhouse"].key.Public())
	ss, err := manifest.NewStepSigner(f.parties["testhouse"].key, manifest.SignOptions{Issuer: "testhouse", CertChain: []*x509.Certificate{stray}, CertChainByDigest: true})
	if err != nil {
		t.Fatal(err)
	}
	c2 := slices.Clone(c)
	c2[i] = must(t, ss, st.Step)
	rep = manifest.Verify(context.Background(), c2, f.policy, &manifest.VerifyOptions{CurrentTime: t0, Certificates: []*x509.Certificate{stray}})
	if rep.OK() {
		t.Fatal("a certificate outside the policy's roots accepted")
	}
}

func must(t *testing.T, s *manifest.StepSigner, st *manifest.Step) *manifest.SignedStep {
	t.Helper()
	ss, err := s.Sign(rand.Reader, st)
	if err != nil {
		t.Fatal(err)
	}
	return ss
}

// TestProtectedLabelNamed: a protected header label the format does not
// define is refused, and the error names it.
func TestProtectedLabelNamed(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	key := f.parties["chipco"].key
	kid := f.parties["chipco"].signer.Thumbprint().Value
	good := f.build(goodSpecs[:1])[0]
	h := stepHeader(kid, manifest.StepContentType)
	h[int64(-70000)] = "x"
	payload, err := good.Step.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	raw := signRaw(t, key, h, nil, payload)
	if _, err := manifest.ParseSignedStep(raw); !errors.Is(err, manifest.ErrMalformed) || !strings.Contains(err.Error(), "protected header label -70000 not defined") {
		t.Errorf("step: %v", err)
	}
}

// TestReceiptProtectedLabelNamed: the same for a receipt.
func TestReceiptProtectedLabelNamed(t *testing.T) {
	t.Parallel()
	_, _, lm := lotFixture(t, 3)
	rc, err := lm.Receipt(1)
	if err != nil {
		t.Fatal(err)
	}
	var m cose.Sign1Message
	if err := m.UnmarshalCBOR(rc); err != nil {
		t.Fatal(err)
	}
	var protBytes []byte
	if err := cbor.Unmarshal(m.Headers.RawProtected, &protBytes); err != nil {
		t.Fatal(err)
	}
	var prot map[int64]cbor.RawMessage
	if err := cbor.Unmarshal(protBytes, &prot); err != nil {
		t.Fatal(err)
	}
	prot[16] = mustCBOR(t, "application/receipt+cose") // typ
	pb, _ := cbor.Marshal(prot)
	items := []cbor.RawMessage{mustCBOR(t, pb)}
	var arr []cbor.RawMessage
	if err := cbor.Unmarshal(rc[1:], &arr); err != nil {
		t.Fatal(err)
	}
	items = append(items, arr[1:]...)
	b, _ := cbor.Marshal(items)
	_, err = manifest.ParseReceipt(append([]byte{0xd2}, b...))
	if !errors.Is(err, manifest.ErrMalformed) || !strings.Contains(err.Error(), "protected header label 16 not defined") {
		t.Errorf("receipt: %v", err)
	}
}

func mustCBOR(t *testing.T, v any) cbor.RawMessage {
	t.Helper()
	b, err := cbor.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
