package manifest_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"testing"

	"github.com/veraison/go-cose"

	"github.com/ztmkit/ztm/manifest"
)

// BenchmarkSignStep signs a typical step (ES256, kid) with a StepSigner:
// encoding the step and its protected header, signing, and returning the
// parsed SignedStep.
func BenchmarkSignStep(b *testing.B) {
	f := newFixture(b)
	s := f.parties["chipco"].signer
	step := typicalStep(f)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Sign(rand.Reader, step); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSignStepRaw is go-cose's one-shot Sign1 over the same payload and
// an equivalent protected header.
func BenchmarkSignStepRaw(b *testing.B) {
	f := newFixture(b)
	p := f.parties["chipco"]
	step := typicalStep(f)
	payload, err := step.Marshal()
	if err != nil {
		b.Fatal(err)
	}
	signer, err := cose.NewSigner(cose.AlgorithmES256, p.key)
	if err != nil {
		b.Fatal(err)
	}
	hdr := cose.Headers{Protected: stepHeader(p.signer.Thumbprint().Value, manifest.StepContentType)}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := cose.Sign1(rand.Reader, signer, hdr, payload, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// tenSteps is a 10-step chain, all kid-signed (ES256), and its policy.
func tenSteps(b *testing.B) (*fixture, manifest.Chain, *manifest.Policy) {
	f := newFixture(b)
	specs := []stepSpec{
		{manifest.StepDieSort, "chipco"}, {manifest.StepKeyGeneration, "chipco"},
		{manifest.StepFirmwareLoad, "cm"}, {"final-test", "cm"}, {"burn-in", "cm"},
		{"release", "qa"}, {"release", "plant"}, {"release", "security"},
		{manifest.StepPack, "cm"}, {manifest.StepShip, "cm"},
	}
	pol := &manifest.Policy{Name: "bench", Keys: f.policy.Keys, Steps: []manifest.StepRule{
		{Name: manifest.StepDieSort, Signers: []string{"chipco"}},
		{Name: manifest.StepKeyGeneration, Signers: []string{"chipco"}},
		{Name: manifest.StepFirmwareLoad, Signers: []string{"cm"}},
		{Name: "final-test", Signers: []string{"cm"}},
		{Name: "burn-in", Signers: []string{"cm"}},
		{Name: "release", Signers: []string{"qa", "plant", "security"}, Threshold: 2},
		{Name: manifest.StepPack, Signers: []string{"cm"}},
		{Name: manifest.StepShip, Signers: []string{"cm"}},
	}}
	c := f.build(specs)
	if err := manifest.Verify(context.Background(), c, pol, &manifest.VerifyOptions{CurrentTime: t0}).Err(); err != nil {
		b.Fatal(err)
	}
	return f, c, pol
}

// BenchmarkVerifyChain parses and verifies a 10-step chain against a
// policy; ns/op is per step.
func BenchmarkVerifyChain(b *testing.B) {
	_, c, pol := tenSteps(b)
	raws := make([][]byte, len(c))
	for i, s := range c {
		raws[i] = s.Raw
	}
	opts := &manifest.VerifyOptions{CurrentTime: t0}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += len(raws) {
		chain := make(manifest.Chain, len(raws))
		for j, raw := range raws {
			s, err := manifest.ParseSignedStep(raw)
			if err != nil {
				b.Fatal(err)
			}
			chain[j] = s
		}
		if err := manifest.Verify(ctx, chain, pol, opts).Err(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyChainRaw decodes and verifies each step's COSE_Sign1 with
// go-cose alone (verifiers made beforehand); ns/op is per step.
func BenchmarkVerifyChainRaw(b *testing.B) {
	f, c, _ := tenSteps(b)
	specs := []string{"chipco", "chipco", "cm", "cm", "cm", "qa", "plant", "security", "cm", "cm"}
	verifiers := make([]cose.Verifier, len(c))
	raws := make([][]byte, len(c))
	for i, s := range c {
		v, err := cose.NewVerifier(cose.AlgorithmES256, f.parties[specs[i]].key.Public())
		if err != nil {
			b.Fatal(err)
		}
		verifiers[i], raws[i] = v, s.Raw
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += len(raws) {
		for j, raw := range raws {
			var m cose.Sign1Message
			if err := m.UnmarshalCBOR(raw); err != nil {
				b.Fatal(err)
			}
			if err := m.Verify(nil, verifiers[j]); err != nil {
				b.Fatal(fmt.Errorf("step %d: %w", j, err))
			}
		}
	}
}
