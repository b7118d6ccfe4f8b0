package manifest_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ztmkit/ztm/internal/stationauth"
	"github.com/ztmkit/ztm/manifest"
)

func verify(f *fixture, c manifest.Chain, p *manifest.Policy, opts *manifest.VerifyOptions) *manifest.Report {
	if opts == nil {
		opts = &manifest.VerifyOptions{CurrentTime: t0}
	}
	return manifest.Verify(context.Background(), c, p, opts)
}

// reasons returns the distinct reasons of a report's failed checks.
func reasons(t *testing.T, rep *manifest.Report) []manifest.Reason {
	t.Helper()
	seen := map[manifest.Reason]bool{}
	for _, c := range rep.Failed() {
		var ve *manifest.VerificationError
		if !errors.As(c.Err, &ve) {
			t.Fatalf("failed check %s without a *VerificationError: %v", c.Check, c.Err)
		}
		seen[ve.Reason] = true
	}
	var out []manifest.Reason
	for r := range seen {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

func mustParse(t testing.TB, raw []byte) *manifest.SignedStep {
	t.Helper()
	ss, err := manifest.ParseSignedStep(raw)
	if err != nil {
		t.Fatal(err)
	}
	return ss
}

// replaceAlg rewrites the protected alg of a kid-signed step (the header
// starts a4 01 26 …) to v, a one-byte CBOR integer.
func replaceAlg(t *testing.T, raw []byte, v byte) []byte {
	t.Helper()
	i := bytes.Index(raw, []byte{0x01, 0x26, 0x03})
	if i < 0 {
		t.Fatal("alg not found")
	}
	out := bytes.Clone(raw)
	out[i+1] = v
	return out
}

func TestVerifyGoodChain(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	c := f.build(goodSpecs)
	rep := verify(f, c, f.policy, nil)
	if err := rep.Err(); err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || !bytes.Equal(rep.Subject, f.subject) || rep.Policy != f.policy.Name {
		t.Fatalf("report: %+v", rep)
	}
	want := []string{"chipco", "chipco", "cm", "cert:testhouse-line2", "qa", "plant", "cm"}
	if !slices.Equal(rep.Signers, want) {
		t.Fatalf("signers %v, want %v", rep.Signers, want)
	}
	// Every check of every step is named.
	names := map[string]bool{}
	for _, ch := range rep.Checks {
		names[ch.Check] = true
	}
	for _, n := range []string{manifest.CheckPolicyExpiry, manifest.CheckSignerTrust, manifest.CheckAlgorithm,
		manifest.CheckSignature, manifest.CheckSubject, manifest.CheckSequence, manifest.CheckLink,
		manifest.CheckFork, manifest.CheckCustodian, manifest.CheckSignerAllowed, manifest.CheckThreshold,
		manifest.CheckLayout} {
		if !names[n] {
			t.Errorf("report lacks check %q", n)
		}
	}
	// The chain round-trips through its encoding, byte for byte.
	enc, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	c2, err := manifest.ParseChain(enc)
	if err != nil {
		t.Fatal(err)
	}
	for i := range c {
		if !bytes.Equal(c[i].Raw, c2[i].Raw) {
			t.Fatalf("step %d changed through the chain encoding", i)
		}
	}
	if err := verify(f, c2, f.policy, nil).Err(); err != nil {
		t.Fatal(err)
	}
}

func TestVerifyRefuses(t *testing.T) {
	t.Parallel()
	R := func(rs ...manifest.Reason) []manifest.Reason { return rs }
	type tcase struct {
		name  string
		chain func(f *fixture, c manifest.Chain) manifest.Chain
		// policy, if set, changes the fixture's policy before the chain is built.
		policy func(f *fixture)
		opts   *manifest.VerifyOptions
		want   []manifest.Reason
	}
	cases := []tcase{
		{name: "tampered payload", chain: func(f *fixture, c manifest.Chain) manifest.Chain {
			raw := bytes.Clone(c[2].Raw)
			d := c[2].Step.Artifacts["log"].Value
			i := bytes.Index(raw, d)
			raw[i] ^= 0x01
			c[2] = mustParse(f.tb.(*testing.T), raw)
			return c
			// The bad signature also voids the step's signer: custody, authorization and threshold fail with it.
		}, want: R(manifest.ReasonSignature, manifest.ReasonLink, manifest.ReasonCustodian, manifest.ReasonUnauthorizedSigner, manifest.ReasonThreshold)},
		{name: "re-signed step (same claims, new signature)", chain: func(f *fixture, c manifest.Chain) manifest.Chain {
			// ECDSA signatures are randomized: same payload, other bytes.
			c[1] = f.sign(c[1].Step, "chipco")
			return c
		}, want: R(manifest.ReasonLink)},
		{name: "reordered", chain: func(f *fixture, c manifest.Chain) manifest.Chain {
			c[2], c[3] = c[3], c[2]
			return c
		}, want: R(manifest.ReasonSequence, manifest.ReasonLink, manifest.ReasonLayout, manifest.ReasonCustodian)},
		{name: "missing middle step", chain: func(f *fixture, c manifest.Chain) manifest.Chain {
			return slices.Delete(c, 3, 4)
		}, want: R(manifest.ReasonSequence, manifest.ReasonLink, manifest.ReasonLayout)},
		{name: "missing last step", chain: func(f *fixture, c manifest.Chain) manifest.Chain {
			return c[:len(c)-1]
		}, want: R(manifest.ReasonLayout)},
		{name: "duplicated step", chain: func(f *fixture, c manifest.Chain) manifest.Chain {
			return slices.Insert(c, 3, c[2])
		}, want: R(manifest.ReasonSequence, manifest.ReasonLink, manifest.ReasonFork)},
		{name: "fork", chain: func(f *fixture, c manifest.Chain) manifest.Chain {
			alt := f.newStep(manifest.StepFinalTest, 3, c[2])
			alt.Predicate = manifest.Claims{1: "fail"}
			return slices.Insert(c, 4, f.sign(alt, "testhouse"))
		}, want: R(manifest.ReasonFork, manifest.ReasonSequence, manifest.ReasonLink)},
		{name: "wrong signer for a step", chain: func(f *fixture, c manifest.Chain) manifest.Chain {
			s := c[3].Step.Clone()
			c[3] = f.sign(s, "cm")
			c[4] = f.sign(f.newStep("release", 4, c[3]), "qa")
			c[5] = f.sign(f.newStep("release", 5, c[4]), "plant")
			c[6] = f.sign(f.newStep(manifest.StepShip, 6, c[5]), "cm")
			return c
		}, want: R(manifest.ReasonUnauthorizedSigner, manifest.ReasonThreshold)},
		{name: "custodian not honoured", policy: func(f *fixture) {
			f.policy.Steps[2].Signers = []string{"cm", "chipco"}
		}, chain: func(f *fixture, c manifest.Chain) manifest.Chain {
			return f.build(slices.Replace(slices.Clone(goodSpecs), 2, 3, stepSpec{manifest.StepFirmwareLoad, "chipco"}))
		}, want: R(manifest.ReasonCustodian)},
		{name: "untrusted certificate chain", chain: func(f *fixture, c manifest.Chain) manifest.Chain {
			t := f.tb.(*testing.T)
			other, otherKey := newCA(t, "Rogue Root")
			k := mustKey(t)
			leaf := issue(t, other, otherKey, "rogue-station", "test-station", k.Public())
			s, err := manifest.NewStepSigner(k, manifest.SignOptions{Issuer: "rogue", CertChain: []*x509.Certificate{leaf}})
			if err != nil {
				t.Fatal(err)
			}
			f.parties["rogue"] = &party{name: "rogue", key: k, signer: s}
			return f.build(slices.Replace(slices.Clone(goodSpecs), 3, 4, stepSpec{manifest.StepFinalTest, "rogue"}))
		}, want: R(manifest.ReasonUntrustedSigner, manifest.ReasonUnauthorizedSigner, manifest.ReasonThreshold)},
		{name: "certificate not valid at the step's time", opts: &manifest.VerifyOptions{CurrentTime: t0, Partial: true},
			chain: func(f *fixture, c manifest.Chain) manifest.Chain {
				s := c[3].Step.Clone()
				s.Time = t0.Add(2 * 365 * 24 * time.Hour) // the station's certificate expired after one year
				c[3] = f.sign(s, "testhouse")
				return c[:4]
			}, want: R(manifest.ReasonUntrustedSigner, manifest.ReasonUnauthorizedSigner, manifest.ReasonThreshold)},
		{name: "unknown kid", chain: func(f *fixture, c manifest.Chain) manifest.Chain {
			t := f.tb.(*testing.T)
			k := mustKey(t)
			s, _ := manifest.NewStepSigner(k, manifest.SignOptions{Issuer: "stranger"})
			f.parties["stranger"] = &party{name: "stranger", key: k, signer: s}
			return f.build(slices.Replace(slices.Clone(goodSpecs), 0, 1, stepSpec{manifest.StepDieSort, "stranger"}))
		}, want: R(manifest.ReasonUntrustedSigner, manifest.ReasonUnauthorizedSigner, manifest.ReasonThreshold)},
		{name: "below threshold: one release", chain: func(f *fixture, c manifest.Chain) manifest.Chain {
			return f.build(slices.Delete(slices.Clone(goodSpecs), 5, 6))
		}, want: R(manifest.ReasonThreshold)},
		{name: "below threshold: same signer twice", chain: func(f *fixture, c manifest.Chain) manifest.Chain {
			return f.build(slices.Replace(slices.Clone(goodSpecs), 5, 6, stepSpec{"release", "qa"}))
		}, want: R(manifest.ReasonThreshold)},
		{name: "expired policy", opts: &manifest.VerifyOptions{CurrentTime: t0.Add(2 * 365 * 24 * time.Hour)},
			want: R(manifest.ReasonPolicyExpired)},
		{name: "alg of another key type", chain: func(f *fixture, c manifest.Chain) manifest.Chain {
			c[0] = mustParse(f.tb, replaceAlg(f.tb.(*testing.T), c[0].Raw, 0x27)) // EdDSA
			return c
		}, want: R(manifest.ReasonAlgorithm, manifest.ReasonLink, manifest.ReasonUnauthorizedSigner, manifest.ReasonThreshold)},
		{name: "unknown alg", chain: func(f *fixture, c manifest.Chain) manifest.Chain {
			c[6] = mustParse(f.tb, replaceAlg(f.tb.(*testing.T), c[6].Raw, 0x20)) // -1
			return c
		}, want: R(manifest.ReasonAlgorithm, manifest.ReasonUnauthorizedSigner, manifest.ReasonThreshold)},
		{name: "alg 0 (none)", chain: func(f *fixture, c manifest.Chain) manifest.Chain {
			c[6] = mustParse(f.tb, replaceAlg(f.tb.(*testing.T), c[6].Raw, 0x00))
			return c
		}, want: R(manifest.ReasonAlgorithm, manifest.ReasonUnauthorizedSigner, manifest.ReasonThreshold)},
		{name: "step about another device", chain: func(f *fixture, c manifest.Chain) manifest.Chain {
			s := c[6].Step.Clone()
			s.Subject = []byte{0x01, 0xde, 0xad}
			c[6] = f.sign(s, "cm")
			return c
		}, want: R(manifest.ReasonSubject)},
		{name: "unexpected step", chain: func(f *fixture, c manifest.Chain) manifest.Chain {
			return f.build(slices.Insert(slices.Clone(goodSpecs), 3, stepSpec{"rework", "cm"}))
		}, want: R(manifest.ReasonLayout)},
		{name: "empty chain", chain: func(f *fixture, c manifest.Chain) manifest.Chain { return nil },
			want: R(manifest.ReasonMalformed)},
		{name: "hand-made step without payload", chain: func(f *fixture, c manifest.Chain) manifest.Chain {
			return append(c, &manifest.SignedStep{Raw: c[0].Raw})
		}, want: R(manifest.ReasonMalformed)},
		{name: "hand-made step without signature", chain: func(f *fixture, c manifest.Chain) manifest.Chain {
			c[6] = &manifest.SignedStep{Raw: c[6].Raw, Step: c[6].Step, Alg: c[6].Alg, KeyID: c[6].KeyID,
				SubjectClaim: c[6].SubjectClaim, IssuedAt: c[6].IssuedAt}
			return c
		}, want: R(manifest.ReasonSignature, manifest.ReasonUnauthorizedSigner, manifest.ReasonThreshold)},
		{name: "invalid policy", policy: func(f *fixture) { f.policy.Steps[0].Signers = []string{"nobody"} },
			want: R(manifest.ReasonMalformed)},
		{name: "policy naming one key twice", policy: func(f *fixture) {
			f.policy.Keys = append(f.policy.Keys, manifest.PolicyKey{Name: "chipco-again", Public: f.policy.Keys[0].Public})
		}, want: R(manifest.ReasonMalformed)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			if tc.policy != nil {
				tc.policy(f)
			}
			c := f.build(goodSpecs)
			if tc.chain != nil {
				c = tc.chain(f, c)
			}
			rep := verify(f, c, f.policy, tc.opts)
			err := rep.Err()
			if err == nil || rep.OK() {
				t.Fatal("accepted")
			}
			if !errors.Is(err, manifest.ErrVerification) {
				t.Fatalf("error does not wrap ErrVerification: %v", err)
			}
			var ve *manifest.VerificationError
			if !errors.As(err, &ve) {
				t.Fatalf("no *VerificationError in %v", err)
			}
			got := reasons(t, rep)
			slices.Sort(tc.want)
			if !slices.Equal(got, tc.want) {
				t.Fatalf("reasons %v, want %v\n%v", got, tc.want, err)
			}
		})
	}
}

func TestVerifyOptions(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	// A device still on the line: partial chains verify with Partial.
	c := f.build(goodSpecs[:4])
	if err := verify(f, c, f.policy, &manifest.VerifyOptions{CurrentTime: t0, Partial: true}).Err(); err != nil {
		t.Fatal(err)
	}
	if err := verify(f, c, f.policy, nil).Err(); err == nil {
		t.Fatal("partial chain accepted as complete")
	}
	// Optional step at the end.
	c = f.build(append(slices.Clone(goodSpecs), stepSpec{manifest.StepKeyDestroyed, "chipco"}))
	if err := verify(f, c, f.policy, nil).Err(); err != nil {
		t.Fatal(err)
	}
	// Extra steps when the policy allows them.
	c = f.build(slices.Insert(slices.Clone(goodSpecs), 3, stepSpec{"rework", "cm"}))
	f.policy.AllowExtraSteps = true
	if err := verify(f, c, f.policy, nil).Err(); err != nil {
		t.Fatal(err)
	}
	// Three of three signers also meet a 2-of-3 threshold.
	c = f.build(slices.Insert(slices.Clone(goodSpecs), 6, stepSpec{"release", "security"}))
	if err := verify(f, c, f.policy, nil).Err(); err != nil {
		t.Fatal(err)
	}
	// A cancelled context stops verification with a failed check.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	rep := manifest.Verify(ctx, c, f.policy, nil)
	if err := rep.Err(); !errors.Is(err, context.Canceled) || !errors.Is(err, manifest.ErrVerification) {
		t.Fatalf("cancelled: %v", err)
	}
	// Nil policy.
	if err := manifest.Verify(context.Background(), c, nil, nil).Err(); !errors.Is(err, manifest.ErrVerification) {
		t.Fatalf("nil policy: %v", err)
	}
}

func TestReportErrAggregate(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	c := f.build(goodSpecs)
	c[2], c[3] = c[3], c[2]
	err := verify(f, c, f.policy, nil).Err()
	var agg *manifest.ReportError
	if !errors.As(err, &agg) || len(agg.Errors) < 2 {
		t.Fatalf("want a *ReportError with several errors, got %T %v", err, err)
	}
	if !errors.Is(err, manifest.ErrVerification) {
		t.Fatal("aggregate does not wrap ErrVerification")
	}
	text := verify(f, c, f.policy, nil).String()
	for _, want := range []string{`policy "acme-widget-line"`, "ok   signature", "FAIL link              step 3"} {
		if !strings.Contains(text, want) {
			t.Errorf("report text lacks %q:\n%s", want, text)
		}
	}
	_ = rand.Reader
}

// TestCustodyToCertificate hands custody to a certificate signer: only the
// station whose leaf key was named may sign the next step, not another
// station with the same role.
func TestCustodyToCertificate(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	other := mustKey(t)
	leaf := issue(t, f.root, f.rootKey, "testhouse-line3", "test-station", other.Public())
	line3, err := manifest.NewStepSigner(other, manifest.SignOptions{Issuer: "testhouse", CertChain: []*x509.Certificate{leaf}})
	if err != nil {
		t.Fatal(err)
	}
	f.parties["line3"] = &party{name: "line3", key: other, signer: line3}

	build := func(finalBy string) manifest.Chain {
		c := f.build(goodSpecs[:3])
		// Re-sign the firmware step naming the line-2 test station.
		s := c[2].Step.Clone()
		next := f.parties["testhouse"].signer.Thumbprint()
		s.NextCustodian = &next
		c[2] = f.sign(s, "cm")
		return append(c, f.sign(f.newStep(manifest.StepFinalTest, 3, c[2]), finalBy))
	}
	opts := &manifest.VerifyOptions{CurrentTime: t0, Partial: true}
	if err := verify(f, build("testhouse"), f.policy, opts).Err(); err != nil {
		t.Fatal(err)
	}
	rep := verify(f, build("line3"), f.policy, opts)
	if got := reasons(t, rep); !slices.Equal(got, []manifest.Reason{manifest.ReasonCustodian}) {
		t.Fatalf("reasons %v: %v", got, rep.Err())
	}
}

// TestVerifyStationAuthorization: a certificate that carries a station
// authorization (as ztm's CA issues them) may sign only the steps it
// lists, whatever role its OU claims; a malformed one is not trusted.
func TestVerifyStationAuthorization(t *testing.T) {
	t.Parallel()
	auth := func(steps ...string) pkix.Extension {
		der, err := stationauth.Marshal(steps, []string{"idevid"})
		if err != nil {
			t.Fatal(err)
		}
		return pkix.Extension{Id: stationauth.OID, Value: der}
	}
	for _, tc := range []struct {
		name   string
		ext    pkix.Extension
		check  string
		reason manifest.Reason
		detail string
	}{
		{name: "lists the step", ext: auth(manifest.StepFinalTest, manifest.StepPack)},
		{name: "does not list the step", ext: auth(manifest.StepPack),
			check: manifest.CheckSignerAllowed, reason: manifest.ReasonUnauthorizedSigner, detail: "station authorization does not list it"},
		{name: "lists no step", ext: auth(),
			check: manifest.CheckSignerAllowed, reason: manifest.ReasonUnauthorizedSigner, detail: "station authorization does not list it"},
		{name: "malformed", ext: pkix.Extension{Id: stationauth.OID, Value: []byte{0x30, 0x03, 0x02, 0x01, 0x02}},
			check: manifest.CheckSignerTrust, reason: manifest.ReasonUntrustedSigner, detail: "unsupported version 2"},
		{name: "empty", ext: pkix.Extension{Id: stationauth.OID, Value: []byte{}},
			check: manifest.CheckSignerTrust, reason: manifest.ReasonUntrustedSigner, detail: "not a DER SEQUENCE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			// The test station keeps its role ("test-station", which the
			// policy lets sign final-test) and gains an authorization.
			k := mustKey(t)
			leaf := issue(t, f.root, f.rootKey, "testhouse-line3", "test-station", k.Public(), tc.ext)
			s, err := manifest.NewStepSigner(k, manifest.SignOptions{Issuer: "testhouse", CertChain: []*x509.Certificate{leaf}})
			if err != nil {
				t.Fatal(err)
			}
			f.parties["testhouse"] = &party{name: "testhouse", key: k, signer: s}
			rep := verify(f, f.build(goodSpecs), f.policy, nil)
			if tc.check == "" {
				if err := rep.Err(); err != nil {
					t.Fatal(err)
				}
				return
			}
			failed := rep.Failed()
			if len(failed) == 0 {
				t.Fatal("chain verified")
			}
			found := false
			for _, c := range failed {
				var ve *manifest.VerificationError
				if c.Check == tc.check && c.Step == 3 && errors.As(c.Err, &ve) && ve.Reason == tc.reason &&
					strings.Contains(c.Err.Error(), tc.detail) {
					found = true
				}
			}
			if !found {
				t.Fatalf("want %s of step 3 failing with %v (%q); got %v", tc.check, tc.reason, tc.detail, rep)
			}
		})
	}
}

// TestVerifyStationAuthorizationExtraStep: with AllowExtraSteps, a step no
// rule names still needs the signer's station authorization to list it.
func TestVerifyStationAuthorizationExtraStep(t *testing.T) {
	t.Parallel()
	specs := slices.Insert(slices.Clone(goodSpecs), 4, stepSpec{"burn-in", "testhouse"})
	for _, steps := range [][]string{{manifest.StepFinalTest}, {manifest.StepFinalTest, "burn-in"}} {
		f := newFixture(t)
		f.policy.AllowExtraSteps = true
		der, err := stationauth.Marshal(steps, nil)
		if err != nil {
			t.Fatal(err)
		}
		k := mustKey(t)
		leaf := issue(t, f.root, f.rootKey, "testhouse-line3", "test-station", k.Public(), pkix.Extension{Id: stationauth.OID, Value: der})
		s, err := manifest.NewStepSigner(k, manifest.SignOptions{Issuer: "testhouse", CertChain: []*x509.Certificate{leaf}})
		if err != nil {
			t.Fatal(err)
		}
		f.parties["testhouse"] = &party{name: "testhouse", key: k, signer: s}
		rep := verify(f, f.build(specs), f.policy, nil)
		listed := slices.Contains(steps, "burn-in")
		if err := rep.Err(); (err == nil) != listed {
			t.Fatalf("authorization %v: %v", steps, err)
		}
		if !listed {
			failed := rep.Failed()
			if len(failed) != 1 || failed[0].Check != manifest.CheckSignerAllowed || failed[0].Step != 4 ||
				!strings.Contains(failed[0].Err.Error(), "extra step") {
				t.Fatalf("authorization %v: %v", steps, rep)
			}
		}
	}
}
