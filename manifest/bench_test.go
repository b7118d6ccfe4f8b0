package manifest_test

import (
	"context"
	"crypto"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/veraison/go-cose"

	"github.com/ztmkit/ztm/internal/benchcpu"
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

// lotSize is the number of devices of the bulk verification benchmarks.
const lotSize = 10_000

// benchLot is a lot of lotSize devices, each with a five-step chain: die
// sort and key generation by chipco (which hands custody to cm), firmware
// load by cm, final test by the test house's station (x5chain, trusted
// through the policy's root and its role), and ship by cm.
type benchLot struct {
	policy *manifest.Policy
	chains [][]byte   // each chain as Chain.Marshal encodes it
	steps  [][][]byte // each chain's steps' COSE_Sign1 bytes
	by     []string   // who signs each of the five steps
	keys   map[string]crypto.PublicKey
}

var lotSpecs = []stepSpec{
	{manifest.StepDieSort, "chipco"}, {manifest.StepKeyGeneration, "chipco"},
	{manifest.StepFirmwareLoad, "cm"}, {manifest.StepFinalTest, "testhouse"},
	{manifest.StepShip, "cm"},
}

// The bench lot is built once per test binary: signing 50,000 steps takes
// a few seconds, on every core.
var (
	benchLotOnce sync.Once
	theBenchLot  *benchLot
	errBenchLot  = errors.New("bench lot: setup failed")
)

func newBenchLot(b *testing.B) (*benchLot, error) {
	f := newFixture(b)
	l := &benchLot{keys: map[string]crypto.PublicKey{}}
	for _, sp := range lotSpecs {
		l.by = append(l.by, sp.by)
		l.keys[sp.by] = f.parties[sp.by].key.Public()
	}
	l.policy = &manifest.Policy{Name: "bench-lot", Keys: f.policy.Keys, Roots: f.policy.Roots,
		Expires: f.policy.Expires, Steps: []manifest.StepRule{
			{Name: manifest.StepDieSort, Signers: []string{"chipco"}},
			{Name: manifest.StepKeyGeneration, Signers: []string{"chipco"}},
			{Name: manifest.StepFirmwareLoad, Signers: []string{"cm"}},
			{Name: manifest.StepFinalTest, Roles: []string{"test-station"}},
			{Name: manifest.StepShip, Signers: []string{"cm"}},
		}}
	l.chains, l.steps = make([][]byte, lotSize), make([][][]byte, lotSize)
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, runtime.GOMAXPROCS(0))
	for w := range errs {
		wg.Go(func() {
			for d := int(next.Add(1) - 1); d < lotSize && errs[w] == nil; d = int(next.Add(1) - 1) {
				l.chains[d], l.steps[d], errs[w] = benchChain(f, d)
			}
		})
	}
	wg.Wait()
	return l, errors.Join(errs...)
}

// benchChain signs device d's chain.
func benchChain(f *fixture, d int) ([]byte, [][]byte, error) {
	subject := make([]byte, 17)
	subject[0] = 0x01 // UEID type RAND
	binary.BigEndian.PutUint64(subject[9:], uint64(d))
	var c manifest.Chain
	var raws [][]byte
	var prev *manifest.SignedStep
	for i, sp := range lotSpecs {
		s := &manifest.Step{Name: sp.name, Subject: subject, Sequence: uint64(i),
			Time: t0.Add(time.Duration(i) * time.Hour), Lot: "LOT-2026-03-A",
			Predicate: manifest.Claims{1: "pass"}}
		if prev != nil {
			p := manifest.Sum(manifest.SHA256, prev.Raw)
			s.Prev = &p
		}
		if sp.name == manifest.StepKeyGeneration {
			t := f.parties["cm"].signer.Thumbprint()
			s.NextCustodian = &t
		}
		ss, err := f.parties[sp.by].signer.Sign(rand.Reader, s)
		if err != nil {
			return nil, nil, err
		}
		c, raws, prev = append(c, ss), append(raws, ss.Raw), ss
	}
	enc, err := c.Marshal()
	return enc, raws, err
}

func loadBenchLot(b *testing.B) *benchLot {
	b.Helper()
	benchLotOnce.Do(func() { theBenchLot, errBenchLot = newBenchLot(b) })
	if errBenchLot != nil {
		b.Fatal(errBenchLot)
	}
	return theBenchLot
}

// BenchmarkVerifyAll verifies a lot of 10,000 five-step chains, from their
// encodings, against one policy on all cores; ns/op is per lot.
func BenchmarkVerifyAll(b *testing.B) {
	l := loadBenchLot(b)
	opts := &manifest.BulkOptions{VerifyOptions: manifest.VerifyOptions{CurrentTime: t0}}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	defer benchcpu.Start(b)()
	for b.Loop() {
		sum, err := manifest.VerifyAll(ctx, func(yield func(manifest.ChainInput) bool) {
			for _, raw := range l.chains {
				if !yield(manifest.ChainInput{Raw: raw}) {
					return
				}
			}
		}, l.policy, opts)
		if err != nil || sum.Passed != lotSize {
			b.Fatalf("%v: %+v", err, sum)
		}
	}
	b.ReportMetric(float64(lotSize*b.N)/b.Elapsed().Seconds(), "chains/s")
}

// BenchmarkVerifyAllRaw is the COSE signature checks BenchmarkVerifyAll must
// do, with go-cose alone on as many goroutines as cores: each step's
// COSE_Sign1 decoded and verified (verifiers made beforehand); ns/op is
// per lot.
func BenchmarkVerifyAllRaw(b *testing.B) {
	l := loadBenchLot(b)
	verifiers := map[string]cose.Verifier{}
	for name, pub := range l.keys {
		v, err := cose.NewVerifier(cose.AlgorithmES256, pub)
		if err != nil {
			b.Fatal(err)
		}
		verifiers[name] = v
	}
	workers := runtime.GOMAXPROCS(0)
	b.ReportAllocs()
	b.ResetTimer()
	defer benchcpu.Start(b)()
	for b.Loop() {
		var next atomic.Int64
		var failed atomic.Value
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				for d := int(next.Add(1) - 1); d < lotSize; d = int(next.Add(1) - 1) {
					for j, raw := range l.steps[d] {
						var m cose.Sign1Message
						if err := m.UnmarshalCBOR(raw); err != nil {
							failed.Store(err)
						} else if err := m.Verify(nil, verifiers[l.by[j]]); err != nil {
							failed.Store(err)
						}
					}
				}
			})
		}
		wg.Wait()
		if err := failed.Load(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(lotSize*b.N)/b.Elapsed().Seconds(), "chains/s")
}
