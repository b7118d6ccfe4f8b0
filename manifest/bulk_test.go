package manifest_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"iter"
	"runtime"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ztmkit/ztm/manifest"
)

// inputs yields ins in order.
func inputs(ins ...manifest.ChainInput) iter.Seq[manifest.ChainInput] {
	return slices.Values(ins)
}

func encode(t *testing.T, c manifest.Chain) []byte {
	t.Helper()
	b, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestVerifyAllMatchesVerify checks that every chain of a mixed lot gets
// the report Verify gives it, and that the summary counts the refused
// devices by reason.
func TestVerifyAllMatchesVerify(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	good := f.build(goodSpecs)
	other := f.build(goodSpecs)
	tampered := bytes.Clone(encode(t, good))
	at := bytes.Index(tampered, good[3].Raw)
	i := at + bytes.Index(good[3].Raw, []byte("line-2"))
	tampered[i+5] = '3' // in step 3's signed payload
	reordered := slices.Clone(good)
	reordered[2], reordered[3] = reordered[3], reordered[2]
	ins := []manifest.ChainInput{
		{ID: "good", Raw: encode(t, good)},
		{ID: "tampered", Raw: tampered},
		{ID: "other", Chain: other},
		{ID: "reordered", Raw: encode(t, reordered)},
		{ID: "short", Chain: good[:4]},
		{ID: "garbage", Raw: []byte{0x82, 0x41, 0x00, 0x40}},
		{ID: "empty"},
		{ID: "nil step", Chain: manifest.Chain{good[0], nil}},
	}
	for range 5 {
		ins = append(ins, manifest.ChainInput{ID: "good", Raw: encode(t, good)})
	}
	byDigest := slices.Replace(slices.Clone(goodSpecs), 3, 4, stepSpec{manifest.StepFinalTest, "testhouse-x5t"})
	ins = append(ins, manifest.ChainInput{ID: "x5t", Raw: encode(t, f.build(byDigest))})
	opts := &manifest.BulkOptions{VerifyOptions: manifest.VerifyOptions{CurrentTime: t0,
		Certificates: []*x509.Certificate{nil, f.root, f.testhouseLeaf}}, Workers: 3}
	got := map[int]*manifest.ChainResult{}
	var inCallback atomic.Int32
	opts.Result = func(r *manifest.ChainResult) {
		if inCallback.Add(1) != 1 {
			t.Error("Result called concurrently")
		}
		got[r.Index] = r
		inCallback.Add(-1)
	}
	sum, err := manifest.VerifyAll(t.Context(), inputs(ins...), f.policy, opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(ins) {
		t.Fatalf("%d results for %d chains", len(got), len(ins))
	}
	wantReasons := map[manifest.Reason]int{}
	for n, in := range ins {
		r := got[n]
		if r == nil || r.ID != in.ID {
			t.Fatalf("result %d: %+v", n, r)
		}
		c, err := in.Chain, error(nil)
		if c == nil {
			c, err = manifest.ParseChain(in.Raw)
		}
		if err != nil {
			if r.Chain != nil || r.Report.OK() || !errors.Is(r.Report.Err(), manifest.ErrMalformed) ||
				r.Report.Checks[0].Check != manifest.CheckDecode {
				t.Errorf("%s: undecodable chain: %s", in.ID, r.Report)
			}
			wantReasons[manifest.ReasonMalformed]++
			continue
		}
		want := manifest.Verify(context.Background(), c, f.policy, &opts.VerifyOptions)
		if r.Report.String() != want.String() {
			t.Errorf("%s: VerifyAll's report:\n%s\nVerify's:\n%s", in.ID, r.Report, want)
		}
		seen := map[manifest.Reason]bool{}
		for _, fc := range want.Failed() {
			var ve *manifest.VerificationError
			if errors.As(fc.Err, &ve) && !seen[ve.Reason] {
				seen[ve.Reason] = true
				wantReasons[ve.Reason]++
			}
		}
	}
	if sum.Chains != len(ins) || sum.Passed != 8 || sum.Refused != 6 || sum.Policy != f.policy.Name {
		t.Errorf("summary %+v", sum)
	}
	if !mapsEqual(sum.Reasons, wantReasons) {
		t.Errorf("reasons %v, want %v", sum.Reasons, wantReasons)
	}
	if sum.Reasons[manifest.ReasonSignature] != 1 || sum.Reasons[manifest.ReasonMalformed] != 3 {
		t.Errorf("reasons %v: want 1 bad signature (tampered) and 3 malformed (garbage, empty, nil step)", sum.Reasons)
	}
}

func mapsEqual[K comparable, V comparable](a, b map[K]V) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// TestVerifyAllCertificateTrustByTime checks that a station certificate
// trusted for one step is not trusted, from the shared cache, for a step
// signed outside the certificate's validity.
func TestVerifyAllCertificateTrustByTime(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	at := func(when time.Time) manifest.Chain {
		var c manifest.Chain
		var prev *manifest.SignedStep
		for i, sp := range goodSpecs {
			s := f.newStep(sp.name, uint64(i), prev)
			if sp.name == manifest.StepKeyGeneration {
				th := f.parties["cm"].signer.Thumbprint()
				s.NextCustodian = &th
			}
			if sp.by == "testhouse" {
				s.Time = when
			}
			prev = f.sign(s, sp.by)
			c = append(c, prev)
		}
		return c
	}
	leaf := f.testhouseLeaf
	ins := []manifest.ChainInput{
		{ID: "valid", Chain: at(t0.Add(3 * time.Hour))},
		{ID: "after expiry", Chain: at(leaf.NotAfter.Add(time.Second))},
		{ID: "before issue", Chain: at(leaf.NotBefore.Add(-time.Second))},
		{ID: "valid again", Chain: at(leaf.NotAfter)},
	}
	results := map[string]*manifest.Report{}
	opts := &manifest.BulkOptions{VerifyOptions: manifest.VerifyOptions{CurrentTime: t0}, Workers: 1,
		Result: func(r *manifest.ChainResult) { results[r.ID] = r.Report }}
	sum, err := manifest.VerifyAll(t.Context(), inputs(ins...), f.policy, opts)
	if err != nil {
		t.Fatal(err)
	}
	if !results["valid"].OK() || !results["valid again"].OK() {
		t.Fatalf("valid chains refused:\n%s\n%s", results["valid"], results["valid again"])
	}
	for _, id := range []string{"after expiry", "before issue"} {
		var ve *manifest.VerificationError
		if !errors.As(results[id].Err(), &ve) || ve.Check != manifest.CheckSignerTrust || ve.Step != 3 {
			t.Errorf("%s: %v\n%s", id, results[id].Err(), results[id])
		}
	}
	if sum.Passed != 2 || sum.Refused != 2 || sum.Reasons[manifest.ReasonUntrustedSigner] != 2 {
		t.Errorf("summary %+v", sum)
	}
}

// TestVerifyAllCancel checks that VerifyAll stops reading an endless input
// when its context is cancelled, returns the context's error and leaves no
// goroutine behind.
func TestVerifyAllCancel(t *testing.T) {
	f := newFixture(t)
	raw := encode(t, f.build(goodSpecs))
	before := runtime.NumGoroutine()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var fed atomic.Int64
	endless := func(yield func(manifest.ChainInput) bool) {
		for yield(manifest.ChainInput{Raw: raw}) {
			fed.Add(1)
		}
	}
	var results int
	opts := &manifest.BulkOptions{VerifyOptions: manifest.VerifyOptions{CurrentTime: t0}, Workers: 4,
		Result: func(r *manifest.ChainResult) {
			if !r.Report.OK() {
				t.Errorf("refused:\n%s", r.Report)
			}
			if results++; results == 20 {
				cancel()
			}
		}}
	sum, err := manifest.VerifyAll(ctx, endless, f.policy, opts)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	if sum == nil || sum.Chains != results || sum.Passed != results || results < 20 || sum.Refused != 0 {
		t.Errorf("summary %+v after %d results", sum, results)
	}
	if n := fed.Load(); n > int64(results)+2*4+1 {
		t.Errorf("%d chains read for %d verified: the input was not stopped", n, results)
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Errorf("%d goroutines after VerifyAll, %d before", n, before)
	}

	// A context done before the call: nothing is verified.
	sum, err = manifest.VerifyAll(ctx, endless, f.policy, opts)
	if !errors.Is(err, context.Canceled) || sum.Chains != 0 {
		t.Errorf("cancelled context: %+v, %v", sum, err)
	}
}

func TestVerifyAllUnusablePolicy(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	read := false
	never := func(yield func(manifest.ChainInput) bool) { read = true }
	bad := *f.policy
	bad.Steps = append(slices.Clone(bad.Steps), manifest.StepRule{Name: "x", Signers: []string{"nobody"}})
	for name, p := range map[string]*manifest.Policy{"nil": nil, "unknown signer": &bad} {
		sum, err := manifest.VerifyAll(t.Context(), never, p, nil)
		if !errors.Is(err, manifest.ErrInvalidPolicy) || sum != nil {
			t.Errorf("%s policy: %+v, %v", name, sum, err)
		}
	}
	if read {
		t.Error("chains read for an unusable policy")
	}
	if sum, err := manifest.VerifyAll(t.Context(), nil, f.policy, nil); err != nil || sum.Chains != 0 {
		t.Errorf("nil iterator: %+v, %v", sum, err)
	}
}

// TestVerifyNilCertificates: a hand-built step whose x5chain is empty or
// holds nil, and a nil among VerifyOptions.Certificates, are refused or
// skipped, not a panic.
func TestVerifyNilCertificates(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	c := f.build(goodSpecs)
	for name, chain := range map[string][]*x509.Certificate{"nil leaf": {nil}, "nil intermediate": {f.testhouseLeaf, nil}, "empty": {}} {
		bad := slices.Clone(c)
		ss := *c[3]
		ss.CertChain = chain
		bad[3] = &ss
		rep := manifest.Verify(t.Context(), bad, f.policy, &manifest.VerifyOptions{CurrentTime: t0})
		var ve *manifest.VerificationError
		if !errors.As(rep.Err(), &ve) || ve.Check != manifest.CheckSignerTrust || ve.Step != 3 {
			t.Errorf("%s: %v", name, rep.Err())
		}
	}
	byDigest := f.build(slices.Replace(slices.Clone(goodSpecs), 3, 4, stepSpec{manifest.StepFinalTest, "testhouse-x5t"}))
	for _, held := range [][]*x509.Certificate{{nil, f.testhouseLeaf}, {f.testhouseLeaf, nil}} {
		opts := &manifest.VerifyOptions{CurrentTime: t0, Certificates: held}
		if err := manifest.Verify(t.Context(), byDigest, f.policy, opts).Err(); err != nil {
			t.Errorf("held %v: %v", held, err)
		}
	}
}
