package manifest

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ztmkit/ztm/internal/stationauth"
)

// Names of the checks a [Report] lists.
const (
	CheckPolicy          = "policy"            // the policy is usable
	CheckPolicyExpiry    = "policy-expiry"     // the policy has not expired
	CheckPolicySignature = "policy-signature"  // VerifyPolicy only
	CheckSignerTrust     = "signer-trust"      // kid known, or x5chain to an anchor
	CheckAlgorithm       = "algorithm"         // alg known, allowed, the key's
	CheckSignature       = "signature"         // COSE_Sign1 signature
	CheckSubject         = "subject"           // same device; CWT claims match payload
	CheckSequence        = "sequence"          // 0, 1, 2, … in order
	CheckLink            = "link"              // prev digest = digest of predecessor's bytes
	CheckFork            = "fork"              // no two steps share a sequence or predecessor
	CheckCustodian       = "custodian"         // signed by the named next custodian
	CheckSignerAllowed   = "signer-authorized" // the policy lets this signer sign this step
	CheckThreshold       = "threshold"         // enough distinct signers
	CheckLayout          = "layout"            // required steps, in order, nothing else
	CheckContext         = "context"           // the context was not cancelled
	CheckReceipt         = "receipt"           // VerifyReceipt only
)

// VerifyOptions tunes [Verify]. The zero value checks a complete chain at
// the current time.
type VerifyOptions struct {
	// CurrentTime is the time the policy's expiry is checked against. If
	// zero, time.Now() is used.
	CurrentTime time.Time
	// Partial accepts a chain that stops before the policy's last required
	// steps: a device still on the line. Every step present is still
	// checked, and must follow the policy's order.
	Partial bool
	// Certificates are station certificates the verifier already holds:
	// the leaves that steps name by digest (x5t, [SignOptions.CertChainByDigest])
	// and their intermediates. They are not trust anchors: a leaf must
	// still chain to the policy's Roots.
	Certificates []*x509.Certificate
}

// CheckResult is the outcome of one check.
type CheckResult struct {
	// Check is the check's name, one of the Check… constants.
	Check string
	// Step is the index of the step in the chain, or -1 for the chain.
	Step int
	// OK reports whether the check passed.
	OK bool
	// Err is a [*VerificationError] if the check failed.
	Err error
	// Detail says what was checked, for a passed check.
	Detail string
}

// Report lists every check [Verify] ran and its outcome. Checks that could
// not run (the signature of a step whose signer is unknown) are absent;
// the failure that prevented them is listed.
type Report struct {
	// Policy is the name of the policy the chain was checked against.
	Policy string
	// Subject is the device, as the first step names it.
	Subject []byte
	// Signers names the signer of each step as the policy knows it: a
	// PolicyKey name, or "cert:" and the leaf's subject common name; ""
	// if unknown.
	Signers []string
	// Checks lists every check run, in order.
	Checks []CheckResult
}

// OK reports whether every check passed.
func (r *Report) OK() bool {
	for _, c := range r.Checks {
		if !c.OK {
			return false
		}
	}
	return len(r.Checks) > 0
}

// Err returns nil if every check passed; the [*VerificationError] of the
// failed check if one did; a [*ReportError] holding each failed check's
// error if several did. All wrap [ErrVerification].
func (r *Report) Err() error {
	var errs []error
	for _, c := range r.Checks {
		if !c.OK {
			errs = append(errs, c.Err)
		}
	}
	switch len(errs) {
	case 0:
		if len(r.Checks) == 0 {
			return &VerificationError{Check: CheckPolicy, Step: -1, Reason: ReasonMalformed, Detail: "no check ran"}
		}
		return nil
	case 1:
		return errs[0]
	}
	return &ReportError{Errors: errs}
}

// Failed returns the failed checks.
func (r *Report) Failed() []CheckResult {
	var out []CheckResult
	for _, c := range r.Checks {
		if !c.OK {
			out = append(out, c)
		}
	}
	return out
}

// String renders the report as one line per check, for people:
//
//	ok   signature        step 2  cm
//	FAIL link             step 3  manifest: link (step 3): broken link: …
func (r *Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "policy %q, device %x\n", r.Policy, r.Subject)
	for _, c := range r.Checks {
		status, text := "ok  ", c.Detail
		if !c.OK {
			status, text = "FAIL", fmt.Sprint(c.Err)
		}
		where := "chain  "
		if c.Step >= 0 {
			where = fmt.Sprintf("step %-2d", c.Step)
		}
		fmt.Fprintf(&b, "%s %-17s %s %s\n", status, c.Check, where, text)
	}
	return b.String()
}

func (r *Report) pass(check string, step int, detail string) {
	r.Checks = append(r.Checks, CheckResult{Check: check, Step: step, OK: true, Detail: detail})
}

func (r *Report) fail(check string, step int, reason Reason, err error, format string, a ...any) {
	r.Checks = append(r.Checks, CheckResult{Check: check, Step: step, Err: &VerificationError{
		Check: check, Step: step, Reason: reason, Detail: fmt.Sprintf(format, a...), Err: err}})
}

// compiledPolicy indexes a policy for verification.
type compiledPolicy struct {
	p     *Policy
	byKID map[string]*signer // templates: copied for each step
	roots *x509.CertPool
}

func compile(p *Policy) (*compiledPolicy, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	c := &compiledPolicy{p: p, byKID: make(map[string]*signer, len(p.Keys))}
	for i := range p.Keys {
		k := &p.Keys[i]
		t, err := KeyThumbprint(k.Public)
		if err != nil {
			return nil, err
		}
		kid := k.KeyID
		if kid == nil {
			kid = t.Value
		}
		if prev := c.byKID[string(kid)]; prev != nil {
			return nil, fmt.Errorf("%w: keys %q and %q have the same kid", ErrInvalidPolicy, prev.name, k.Name)
		}
		c.byKID[string(kid)] = &signer{name: k.Name, keyName: k.Name, pub: k.Public, thumb: t}
	}
	if len(p.Roots) > 0 {
		c.roots = x509.NewCertPool()
		for _, r := range p.Roots {
			c.roots.AddCert(r)
		}
	}
	return c, nil
}

// signer is what verification learned about one step's signer.
type signer struct {
	name    string // PolicyKey name or "cert:CN"
	keyName string // PolicyKey name, if a raw key
	roles   []string
	pub     crypto.PublicKey
	thumb   Digest
	valid   bool // trusted and signature verified
	// bounded: the signer's certificate carries a station authorization,
	// and may sign only the steps it lists.
	bounded bool
	steps   []string
}

// resolve finds and trusts the signer of a step: a kid naming a policy
// key, or a certificate (sent as x5chain, or named by x5t among
// VerifyOptions.Certificates).
func (v *verifier) resolve(ss *SignedStep) (*signer, Reason, error) {
	if ss.CertChain != nil {
		if slices.Contains(ss.CertChain, nil) || len(ss.CertChain) == 0 {
			return nil, ReasonMalformed, fmt.Errorf("x5chain is empty or holds a nil certificate")
		}
		return v.resolveCert(ss, ss.CertChain[0], ss.CertChain[1:])
	}
	if ss.CertDigest != nil {
		held := v.opts.Certificates
		i := -1
		if d := ss.CertDigest; d.Alg == SHA256 && len(d.Value) == sha256.Size {
			if j, ok := v.held[[sha256.Size]byte(d.Value)]; ok {
				i = j
			}
		} else {
			i = slices.IndexFunc(held, func(c *x509.Certificate) bool { return c != nil && d.Matches(c.Raw) })
		}
		if i >= 0 {
			others := slices.DeleteFunc(slices.Concat(held[:i], held[i+1:]), func(c *x509.Certificate) bool { return c == nil })
			return v.resolveCert(ss, held[i], others)
		}
		return nil, ReasonUntrustedSigner, fmt.Errorf("x5t %x names a certificate the verifier does not hold (VerifyOptions.Certificates)", ss.CertDigest.Value)
	}
	return v.cp.resolveKID(ss)
}

// resolveCert trusts a certificate signer: leaf must chain, through
// intermediates, to the policy's roots at the step's time. A chain that
// verified before, at a time at which every certificate of the path found
// then is valid, is trusted again without building the path anew.
func (v *verifier) resolveCert(ss *SignedStep, leaf *x509.Certificate, intermediates []*x509.Certificate) (*signer, Reason, error) {
	c := v.cp
	if c.roots == nil {
		return nil, ReasonUntrustedSigner, fmt.Errorf("a certificate signer, but the policy has no trust anchors")
	}
	key := trustKey(leaf, intermediates)
	if sg := v.trust.get(key, ss.Step.Time); sg != nil {
		return sg, 0, nil
	}
	inter := x509.NewCertPool()
	for _, ic := range intermediates {
		inter.AddCert(ic)
	}
	// The certificate must have been valid when the step was signed.
	paths, err := leaf.Verify(x509.VerifyOptions{Roots: c.roots, Intermediates: inter,
		CurrentTime: ss.Step.Time, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	if err != nil {
		return nil, ReasonUntrustedSigner, err
	}
	if leaf.KeyUsage != 0 && leaf.KeyUsage&x509.KeyUsageDigitalSignature == 0 {
		return nil, ReasonUntrustedSigner, fmt.Errorf("leaf certificate %q is not for digital signatures", leaf.Subject.CommonName)
	}
	t, err := KeyThumbprint(leaf.PublicKey)
	if err != nil {
		return nil, ReasonAlgorithm, err
	}
	sg := &signer{name: "cert:" + leaf.Subject.CommonName, roles: leaf.Subject.OrganizationalUnit,
		pub: leaf.PublicKey, thumb: t}
	// A station authorization (issued by ztm's CA) bounds the steps the
	// certificate may sign, whatever its roles say.
	der, ok, err := stationauth.Extension(leaf)
	if err == nil && ok {
		sg.bounded = true
		sg.steps, _, err = stationauth.Parse(der)
	}
	if err != nil {
		return nil, ReasonUntrustedSigner, fmt.Errorf("leaf certificate %q: station authorization: %w", leaf.Subject.CommonName, err)
	}
	v.trust.put(key, sg, paths)
	return sg, 0, nil
}

func (c *compiledPolicy) resolveKID(ss *SignedStep) (*signer, Reason, error) {
	k := c.byKID[string(ss.KeyID)]
	if k == nil {
		return nil, ReasonUntrustedSigner, fmt.Errorf("kid %x names no key of the policy", ss.KeyID)
	}
	sg := *k
	return &sg, 0, nil
}

// authorizes reports whether the signer's station authorization, if it
// has one, lists step.
func (s *signer) authorizes(step string) bool {
	return !s.bounded || slices.Contains(s.steps, step)
}

func (s *signer) allowedBy(r *StepRule) bool {
	if s == nil || !s.valid || !s.authorizes(r.Name) {
		return false
	}
	if s.keyName != "" && slices.Contains(r.Signers, s.keyName) {
		return true
	}
	for _, role := range s.roles {
		if slices.Contains(r.Roles, role) {
			return true
		}
	}
	return false
}

// Verify checks a device's chain against a policy and returns a report of
// every check: the policy's expiry; for each step, that its signer is
// trusted (a kid naming a policy key, or an x5chain valid at the step's
// time under the policy's roots, whose station authorization, if the leaf
// has one, is well formed), that the protected alg is the key's, the
// signature, that it names the same device as the first step (and that its
// CWT sub and iat match its payload), its sequence number, its link to the
// exact bytes of its predecessor, that no two steps fork, that it was
// signed by the next custodian its predecessor named, and that the policy
// lets its signer sign it (and, for a certificate with a station
// authorization, that the authorization lists the step); and for the
// chain, the policy's thresholds and layout. [Report.Err] is nil if and
// only if every check passed.
//
// Verify does no I/O; ctx is checked between steps so that a long chain can
// be abandoned. opts may be nil.
func Verify(ctx context.Context, chain Chain, policy *Policy, opts *VerifyOptions) *Report {
	if policy == nil {
		rep := &Report{}
		rep.fail(CheckPolicy, -1, ReasonMalformed, nil, "no policy")
		return rep
	}
	v, err := newVerifier(policy, opts)
	if err != nil {
		rep := &Report{Policy: policy.Name}
		rep.fail(CheckPolicy, -1, ReasonMalformed, err, "unusable policy")
		return rep
	}
	return v.verify(ctx, chain)
}

// verifier is a compiled policy with the options and caches that one
// [Verify] or [VerifyAll] call shares among its chains. It is safe for
// concurrent use: everything but the caches is read only, and they lock.
type verifier struct {
	cp   *compiledPolicy
	opts VerifyOptions
	now  time.Time
	// trust remembers the certificate chains that verified, with the span
	// of time in which every certificate of the path is valid.
	trust *trustCache
	// held indexes opts.Certificates by their SHA-256 digest, the x5t
	// steps name them by.
	held map[[sha256.Size]byte]int
}

// newVerifier compiles policy (not nil); opts may be nil.
func newVerifier(policy *Policy, opts *VerifyOptions) (*verifier, error) {
	if opts == nil {
		opts = &VerifyOptions{}
	}
	cp, err := compile(policy)
	if err != nil {
		return nil, err
	}
	v := &verifier{cp: cp, opts: *opts, now: opts.CurrentTime, trust: newTrustCache()}
	if len(opts.Certificates) > 0 {
		v.held = make(map[[sha256.Size]byte]int, len(opts.Certificates))
		for i, c := range opts.Certificates {
			if c == nil {
				continue // holds nothing
			}
			if _, dup := v.held[sha256.Sum256(c.Raw)]; !dup {
				v.held[sha256.Sum256(c.Raw)] = i
			}
		}
	}
	if v.now.IsZero() {
		v.now = time.Now()
	}
	return v, nil
}

// verify checks one chain: the single path behind [Verify] and [VerifyAll].
func (v *verifier) verify(ctx context.Context, chain Chain) *Report {
	policy := v.cp.p
	rep := &Report{Policy: policy.Name, Checks: make([]CheckResult, 0, 10*len(chain)+4)}
	if !policy.Expires.IsZero() && v.now.After(policy.Expires) {
		rep.fail(CheckPolicyExpiry, -1, ReasonPolicyExpired, nil, "policy %q expired at %s", policy.Name, policy.Expires.Format(time.RFC3339))
	} else {
		rep.pass(CheckPolicyExpiry, -1, "")
	}
	if len(chain) == 0 || slices.ContainsFunc(chain, func(s *SignedStep) bool { return s == nil || s.Step == nil }) {
		rep.fail(CheckLayout, -1, ReasonMalformed, nil, "empty chain or nil step")
		return rep
	}
	rep.Subject = chain[0].Step.Subject
	rep.Signers = make([]string, len(chain))
	signers := make([]*signer, len(chain))
	seqs := make(map[uint64]int, len(chain))
	prevs := make(map[string]int, len(chain))
	for i, ss := range chain {
		if err := ctx.Err(); err != nil {
			rep.fail(CheckContext, i, ReasonAborted, err, "verification abandoned")
			return rep
		}
		signers[i] = v.checkSigner(rep, i, ss)
		checkSubject(rep, i, chain)
		checkFork(rep, i, ss.Step, seqs, prevs)
		checkOrder(rep, i, chain, signers[i])
	}
	checkLayout(rep, chain, signers, policy, v.opts.Partial)
	return rep
}

// checkSigner checks step i's signer trust, algorithm and signature, and
// returns its signer (nil if untrusted).
func (v *verifier) checkSigner(rep *Report, i int, ss *SignedStep) *signer {
	sg, reason, err := v.resolve(ss)
	if err != nil {
		rep.fail(CheckSignerTrust, i, reason, err, "signer of %q", ss.Step.Name)
		return nil
	}
	rep.pass(CheckSignerTrust, i, sg.name)
	rep.Signers[i] = sg.name
	vf, err := verifierFor(ss.Alg, sg.pub)
	if err != nil {
		rep.fail(CheckAlgorithm, i, ReasonAlgorithm, err, "alg %d", ss.Alg)
		return sg
	}
	rep.pass(CheckAlgorithm, i, "")
	if err := ss.msg.Verify(vf); err != nil {
		rep.fail(CheckSignature, i, ReasonSignature, err, "")
		return sg
	}
	rep.pass(CheckSignature, i, "")
	sg.valid = true
	return sg
}

// checkSubject checks that step i names the chain's device, and that its
// CWT claims match its payload.
func checkSubject(rep *Report, i int, chain Chain) {
	var subBuf [2 * MaxSubjectLen]byte
	ss, st := chain[i], chain[i].Step
	switch {
	case !bytes.Equal(st.Subject, chain[0].Step.Subject):
		rep.fail(CheckSubject, i, ReasonSubject, nil, "step is about %x, chain about %x", st.Subject, chain[0].Step.Subject)
	case ss.SubjectClaim != string(hex.AppendEncode(subBuf[:0], st.Subject)):
		rep.fail(CheckSubject, i, ReasonSubject, nil, "CWT sub %q does not match the payload's subject", ss.SubjectClaim)
	case ss.IssuedAt != uint64(st.Time.Unix()):
		rep.fail(CheckSubject, i, ReasonSubject, nil, "CWT iat %d does not match the payload's time %d", ss.IssuedAt, st.Time.Unix())
	default:
		rep.pass(CheckSubject, i, "")
	}
}

// checkFork refuses a second step with the same sequence or predecessor.
func checkFork(rep *Report, i int, st *Step, seqs map[uint64]int, prevs map[string]int) {
	forked := false
	if j, dup := seqs[st.Sequence]; dup {
		rep.fail(CheckFork, i, ReasonFork, nil, "sequence %d already used by step %d", st.Sequence, j)
		forked = true
	} else {
		seqs[st.Sequence] = i
	}
	if st.Prev != nil {
		key := string(rune(-st.Prev.Alg)) + string(st.Prev.Value)
		if j, dup := prevs[key]; dup {
			rep.fail(CheckFork, i, ReasonFork, nil, "predecessor already claimed by step %d", j)
			forked = true
		} else {
			prevs[key] = i
		}
	}
	if !forked {
		rep.pass(CheckFork, i, "")
	}
}

// checkOrder checks step i's sequence number, its link to its
// predecessor's bytes, and the custody its predecessor handed on.
func checkOrder(rep *Report, i int, chain Chain, sg *signer) {
	st := chain[i].Step
	if st.Sequence != uint64(i) {
		rep.fail(CheckSequence, i, ReasonSequence, nil, "sequence %d at position %d", st.Sequence, i)
	} else {
		rep.pass(CheckSequence, i, "")
	}
	switch {
	case i == 0 && st.Prev == nil:
		rep.pass(CheckLink, i, "first step")
	case i == 0:
		rep.fail(CheckLink, i, ReasonLink, nil, "first step of the chain names a predecessor")
	case st.Prev == nil || !st.Prev.Matches(chain[i-1].Raw):
		rep.fail(CheckLink, i, ReasonLink, nil, "previous-step digest is not the digest of step %d's bytes", i-1)
	default:
		rep.pass(CheckLink, i, "")
	}
	if i > 0 && chain[i-1].Step.NextCustodian != nil {
		want := *chain[i-1].Step.NextCustodian
		if sg == nil || !sg.valid || !want.Equal(sg.thumb) {
			rep.fail(CheckCustodian, i, ReasonCustodian, nil, "step %d handed custody to key %x", i-1, want.Value)
		} else {
			rep.pass(CheckCustodian, i, "")
		}
	}
}

// checkLayout matches runs of same-name steps to the policy's rules, in
// order, and checks who signed each step and the thresholds.
func checkLayout(rep *Report, chain Chain, signers []*signer, p *Policy, partial bool) {
	layoutOK := true
	r := 0
	for i := 0; i < len(chain); {
		name := chain[i].Step.Name
		j := i
		for j < len(chain) && chain[j].Step.Name == name {
			j++
		}
		// Steps i..j-1 form a run.
		// The run matches the next rule of its name, if there is one; the
		// required rules skipped to reach it are missing.
		k := slices.IndexFunc(p.Steps[r:], func(sr StepRule) bool { return sr.Name == name })
		if k >= 0 {
			k += r
		}
		switch {
		case k >= 0:
			for _, skipped := range p.Steps[r:k] {
				if !skipped.Optional {
					rep.fail(CheckLayout, i, ReasonLayout, nil, "required step %q is missing before %q", skipped.Name, name)
					layoutOK = false
				}
			}
			rule := &p.Steps[k]
			r = k + 1
			distinct := map[string]bool{}
			for s := i; s < j; s++ {
				sg := signers[s]
				if sg.allowedBy(rule) {
					rep.pass(CheckSignerAllowed, s, sg.name)
					distinct[string(sg.thumb.Value)] = true
				} else {
					switch {
					case sg == nil:
						rep.fail(CheckSignerAllowed, s, ReasonUnauthorizedSigner, nil, "untrusted signer for %q", name)
					case !sg.valid:
						rep.fail(CheckSignerAllowed, s, ReasonUnauthorizedSigner, nil, "%s: signature or algorithm refused", sg.name)
					case !sg.authorizes(name):
						rep.fail(CheckSignerAllowed, s, ReasonUnauthorizedSigner, nil, "%s may not sign %q: its certificate's station authorization does not list it", sg.name, name)
					default:
						rep.fail(CheckSignerAllowed, s, ReasonUnauthorizedSigner, nil, "%s may not sign %q", sg.name, name)
					}
				}
			}
			if len(distinct) < rule.threshold() {
				rep.fail(CheckThreshold, j-1, ReasonThreshold, nil, "%q signed by %d distinct allowed signers, policy needs %d", name, len(distinct), rule.threshold())
			} else {
				rep.pass(CheckThreshold, j-1, name+": "+strconv.Itoa(len(distinct))+" of "+strconv.Itoa(rule.threshold()))
			}
		case p.AllowExtraSteps:
			for s := i; s < j; s++ {
				switch sg := signers[s]; {
				case sg == nil || !sg.valid:
					rep.fail(CheckSignerAllowed, s, ReasonUnauthorizedSigner, nil, "extra step %q by an untrusted signer", name)
				case !sg.authorizes(name):
					rep.fail(CheckSignerAllowed, s, ReasonUnauthorizedSigner, nil, "%s may not sign extra step %q: its certificate's station authorization does not list it", sg.name, name)
				default:
					rep.pass(CheckSignerAllowed, s, sg.name+" (extra step)")
				}
			}
		default:
			want := "the end of the chain"
			if r < len(p.Steps) {
				want = fmt.Sprintf("%q", p.Steps[r].Name)
			}
			rep.fail(CheckLayout, i, ReasonLayout, nil, "unexpected step %q, expected %s", name, want)
			layoutOK = false
		}
		i = j
	}
	if !partial {
		for ; r < len(p.Steps); r++ {
			if !p.Steps[r].Optional {
				rep.fail(CheckLayout, -1, ReasonLayout, nil, "required step %q is missing", p.Steps[r].Name)
				layoutOK = false
			}
		}
	}
	if layoutOK {
		rep.pass(CheckLayout, -1, "")
	}
}
