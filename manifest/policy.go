package manifest

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/veraison/go-cose"

	"github.com/ztmkit/ztm/identity/keystore"
	"github.com/ztmkit/ztm/internal/detcbor"
	"github.com/ztmkit/ztm/internal/sign1"
)

// MaxPolicySize bounds an encoded policy, signed or not, CBOR or JSON.
const MaxPolicySize = 256 << 10

// Policy says which chains a verifier accepts: whom it trusts (trust
// anchors for certificate signers, raw keys by name), which steps a device
// must go through in which order, who may sign each, and how many distinct
// signers each needs. The OEM writes it as JSON ([ParsePolicyJSON]), signs
// it ([SignPolicy]) and publishes the signed form; verifiers load that
// with [VerifyPolicy].
//
// A Policy must not be modified while [Verify] uses it.
type Policy struct {
	// Name identifies the policy ("acme-widget-line").
	Name string
	// Version orders revisions of the policy with the same name.
	Version uint64
	// Issuer is who wrote and signs the policy (the OEM).
	Issuer string
	// Issued is when the policy was written; it becomes the iat claim of
	// the signed policy. Optional.
	Issued time.Time
	// Expires is when the policy stops being valid. [Verify] refuses
	// chains under an expired policy. The zero value means no expiry.
	Expires time.Time
	// Roots are the trust anchors for signers that send an x5chain. A
	// certificate signer is known by the organizational units (OU) of its
	// leaf certificate's subject: they are its roles.
	Roots []*x509.Certificate
	// Keys are signers known by their raw public key.
	Keys []PolicyKey
	// Steps are the steps a chain must have, in order.
	Steps []StepRule
	// AllowExtraSteps lets a chain hold steps whose name no rule uses
	// (between the required ones), signed by any signer the policy
	// trusts. By default they are layout errors.
	AllowExtraSteps bool
}

var _ json.Marshaler = (*Policy)(nil)

// PolicyKey is a signer known by its public key.
type PolicyKey struct {
	// Name is the name rules use for this signer ("chipco-fab3").
	Name string
	// Public is the signer's public key.
	Public crypto.PublicKey
	// KeyID is the kid the signer puts in its steps. If nil, the value of
	// the key's [KeyThumbprint] (what a [StepSigner] sends by default).
	KeyID []byte
}

// StepRule says who may sign the steps of one name.
type StepRule struct {
	// Name is the step name.
	Name string
	// Signers are names of [PolicyKey] entries allowed to sign the step.
	Signers []string
	// Roles are certificate roles (leaf subject OU values) allowed to sign
	// the step, for signers that send an x5chain chaining to Roots. A leaf
	// with a station authorization must also list the step there.
	Roles []string
	// Threshold is the number of distinct allowed signers that must each
	// sign a step of this name, as consecutive steps in the chain (k of n).
	// 0 means 1.
	Threshold int
	// Optional lets a chain lack the step.
	Optional bool
}

func (r *StepRule) threshold() int { return max(r.Threshold, 1) }

// Validate checks p: names are valid, rules name known keys, thresholds can
// be met, keys are of a supported algorithm. The error wraps
// [ErrInvalidPolicy].
func (p *Policy) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidPolicy, fmt.Sprintf(format, a...))
	}
	if p.Name == "" || len(p.Name) > MaxNameLen {
		return bad("name of %d bytes", len(p.Name))
	}
	if len(p.Issuer) > MaxNameLen {
		return bad("issuer of %d bytes", len(p.Issuer))
	}
	if len(p.Steps) == 0 {
		return bad("no step rules")
	}
	names := make(map[string]bool, len(p.Keys))
	for i, k := range p.Keys {
		if k.Name == "" || len(k.Name) > MaxNameLen {
			return bad("key %d: name of %d bytes", i, len(k.Name))
		}
		if names[k.Name] {
			return bad("key name %q used twice", k.Name)
		}
		names[k.Name] = true
		if _, err := keystore.AlgorithmOf(k.Public); err != nil {
			return bad("key %q: %v", k.Name, err)
		}
		if k.KeyID != nil && (len(k.KeyID) == 0 || len(k.KeyID) > MaxNameLen) {
			return bad("key %q: kid of %d bytes", k.Name, len(k.KeyID))
		}
	}
	for i, r := range p.Steps {
		if err := ValidateStepName(r.Name); err != nil {
			return bad("rule %d: %v", i, err)
		}
		if i > 0 && p.Steps[i-1].Name == r.Name {
			return bad("rule %d: step %q twice in a row (use a threshold)", i, r.Name)
		}
		if len(r.Signers)+len(r.Roles) == 0 {
			return bad("rule %q: nobody may sign it", r.Name)
		}
		for _, s := range r.Signers {
			if !names[s] {
				return bad("rule %q: unknown signer %q", r.Name, s)
			}
		}
		if len(r.Roles) > 0 && len(p.Roots) == 0 {
			return bad("rule %q: roles without trust anchors", r.Name)
		}
		if r.Threshold < 0 || r.Threshold > math.MaxInt16 {
			return bad("rule %q: threshold %d", r.Name, r.Threshold)
		}
		if len(r.Roles) == 0 && r.threshold() > len(r.Signers) {
			return bad("rule %q: threshold %d with %d signers", r.Name, r.threshold(), len(r.Signers))
		}
	}
	return nil
}

// policyWire is the CBOR form of a policy (see the package documentation).
type policyWire struct {
	Name       string     `cbor:"1,keyasint"`
	Version    uint64     `cbor:"2,keyasint"`
	Issuer     string     `cbor:"3,keyasint,omitempty"`
	Issued     uint64     `cbor:"4,keyasint,omitempty"`
	Expires    uint64     `cbor:"5,keyasint,omitempty"`
	Roots      [][]byte   `cbor:"6,keyasint,omitempty"`
	Keys       []keyWire  `cbor:"7,keyasint,omitempty"`
	Steps      []ruleWire `cbor:"8,keyasint"`
	AllowExtra bool       `cbor:"9,keyasint,omitempty"`
}

type keyWire struct {
	Name  string `cbor:"1,keyasint"`
	SPKI  []byte `cbor:"2,keyasint"`
	KeyID []byte `cbor:"3,keyasint,omitempty"`
}

type ruleWire struct {
	Name      string   `cbor:"1,keyasint"`
	Signers   []string `cbor:"2,keyasint,omitempty"`
	Roles     []string `cbor:"3,keyasint,omitempty"`
	Threshold uint64   `cbor:"4,keyasint,omitempty"`
	Optional  bool     `cbor:"5,keyasint,omitempty"`
}

func unixOrZero(t time.Time) uint64 {
	if t.IsZero() || t.Unix() < 0 {
		return 0
	}
	return uint64(t.Unix())
}

func timeOrZero(u uint64) time.Time {
	if u == 0 {
		return time.Time{}
	}
	return time.Unix(int64(u), 0).UTC()
}

// Marshal returns the deterministic CBOR encoding of p (the payload of a
// signed policy), after [Policy.Validate]. Times are kept to the second.
func (p *Policy) Marshal() ([]byte, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	w := policyWire{
		Name: p.Name, Version: p.Version, Issuer: p.Issuer,
		Issued: unixOrZero(p.Issued), Expires: unixOrZero(p.Expires),
		AllowExtra: p.AllowExtraSteps,
	}
	for _, c := range p.Roots {
		w.Roots = append(w.Roots, c.Raw)
	}
	for _, k := range p.Keys {
		der, err := x509.MarshalPKIXPublicKey(k.Public)
		if err != nil {
			return nil, fmt.Errorf("%w: key %q: %v", ErrInvalidPolicy, k.Name, err)
		}
		w.Keys = append(w.Keys, keyWire{Name: k.Name, SPKI: der, KeyID: k.KeyID})
	}
	for _, r := range p.Steps {
		w.Steps = append(w.Steps, ruleWire{Name: r.Name, Signers: r.Signers, Roles: r.Roles,
			Threshold: uint64(r.Threshold), Optional: r.Optional})
	}
	return detcbor.Marshal(&w)
}

// ParsePolicy decodes a policy that [Policy.Marshal] encoded (the payload of
// a signed policy; to check the signature use [VerifyPolicy]). Errors wrap
// [ErrMalformed] (or [ErrTooLarge]) for bad CBOR and [ErrInvalidPolicy] for
// a policy that fails [Policy.Validate].
func ParsePolicy(data []byte) (*Policy, error) {
	if len(data) > MaxPolicySize {
		return nil, tooLargeErr("policy", len(data), MaxPolicySize)
	}
	var w policyWire
	if err := detcbor.Unmarshal(data, &w, MaxPolicySize); err != nil {
		return nil, decodeErr("policy", err)
	}
	if w.Issued > math.MaxInt64 || w.Expires > math.MaxInt64 {
		return nil, decodeErr("policy", errors.New("time out of range"))
	}
	p := &Policy{Name: w.Name, Version: w.Version, Issuer: w.Issuer,
		Issued: timeOrZero(w.Issued), Expires: timeOrZero(w.Expires), AllowExtraSteps: w.AllowExtra}
	for i, der := range w.Roots {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, decodeErr("policy", fmt.Errorf("root %d: %w", i, err))
		}
		p.Roots = append(p.Roots, c)
	}
	for _, k := range w.Keys {
		pub, err := x509.ParsePKIXPublicKey(k.SPKI)
		if err != nil {
			return nil, decodeErr("policy", fmt.Errorf("key %q: %w", k.Name, err))
		}
		p.Keys = append(p.Keys, PolicyKey{Name: k.Name, Public: pub, KeyID: k.KeyID})
	}
	for _, r := range w.Steps {
		if r.Threshold > math.MaxInt16 {
			return nil, decodeErr("policy", fmt.Errorf("rule %q: threshold %d", r.Name, r.Threshold))
		}
		p.Steps = append(p.Steps, StepRule{Name: r.Name, Signers: r.Signers, Roles: r.Roles,
			Threshold: int(r.Threshold), Optional: r.Optional})
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return p, nil
}

// policyJSON is the human-friendly form of a policy.
type policyJSON struct {
	Name            string         `json:"name"`
	Version         uint64         `json:"version"`
	Issuer          string         `json:"issuer,omitempty"`
	Issued          *time.Time     `json:"issued,omitempty"`
	Expires         *time.Time     `json:"expires,omitempty"`
	Roots           []string       `json:"roots,omitempty"`
	Keys            []keyJSON      `json:"keys,omitempty"`
	Steps           []stepRuleJSON `json:"steps"`
	AllowExtraSteps bool           `json:"allowExtraSteps,omitempty"`
}

type keyJSON struct {
	Name      string `json:"name"`
	PublicKey string `json:"publicKey"`
	KeyID     string `json:"kid,omitempty"`
}

type stepRuleJSON struct {
	Name      string   `json:"name"`
	Signers   []string `json:"signers,omitempty"`
	Roles     []string `json:"roles,omitempty"`
	Threshold int      `json:"threshold,omitempty"`
	Optional  bool     `json:"optional,omitempty"`
}

// ParsePolicyJSON reads a policy from its human-friendly JSON form:
//
//	{
//	  "name": "acme-widget-line", "version": 3, "issuer": "ACME",
//	  "expires": "2027-01-01T00:00:00Z",
//	  "roots": ["-----BEGIN CERTIFICATE-----\n…"],
//	  "keys": [{"name": "chipco", "publicKey": "-----BEGIN PUBLIC KEY-----\n…", "kid": "optional hex"}],
//	  "steps": [
//	    {"name": "die-sort", "signers": ["chipco"]},
//	    {"name": "final-test", "roles": ["test-station"]},
//	    {"name": "release", "signers": ["qa", "plant", "security"], "threshold": 2},
//	    {"name": "key-destroyed", "signers": ["oem"], "optional": true}
//	  ],
//	  "allowExtraSteps": false
//	}
//
// Decoding is strict: unknown fields, trailing data and input over
// [MaxPolicySize] are refused with errors wrapping [ErrMalformed] (or
// [ErrTooLarge]); a policy that fails [Policy.Validate] with one wrapping
// [ErrInvalidPolicy].
func ParsePolicyJSON(data []byte) (*Policy, error) {
	if len(data) > MaxPolicySize {
		return nil, tooLargeErr("policy", len(data), MaxPolicySize)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var j policyJSON
	if err := dec.Decode(&j); err != nil {
		return nil, decodeErr("policy JSON", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, decodeErr("policy JSON", errors.New("trailing data after the policy object"))
	}
	p := &Policy{Name: j.Name, Version: j.Version, Issuer: j.Issuer, AllowExtraSteps: j.AllowExtraSteps}
	if j.Issued != nil {
		p.Issued = j.Issued.UTC().Truncate(time.Second)
	}
	if j.Expires != nil {
		p.Expires = j.Expires.UTC().Truncate(time.Second)
	}
	for i, s := range j.Roots {
		blk, rest := pem.Decode([]byte(s))
		if blk == nil || blk.Type != "CERTIFICATE" || len(bytes.TrimSpace(rest)) != 0 {
			return nil, decodeErr("policy JSON", fmt.Errorf("root %d is not one PEM certificate", i))
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, decodeErr("policy JSON", fmt.Errorf("root %d: %w", i, err))
		}
		p.Roots = append(p.Roots, c)
	}
	for _, k := range j.Keys {
		blk, rest := pem.Decode([]byte(k.PublicKey))
		if blk == nil || blk.Type != "PUBLIC KEY" || len(bytes.TrimSpace(rest)) != 0 {
			return nil, decodeErr("policy JSON", fmt.Errorf("key %q: publicKey is not one PEM PUBLIC KEY", k.Name))
		}
		pub, err := x509.ParsePKIXPublicKey(blk.Bytes)
		if err != nil {
			return nil, decodeErr("policy JSON", fmt.Errorf("key %q: %w", k.Name, err))
		}
		pk := PolicyKey{Name: k.Name, Public: pub}
		if k.KeyID != "" {
			if pk.KeyID, err = hex.DecodeString(k.KeyID); err != nil {
				return nil, decodeErr("policy JSON", fmt.Errorf("key %q: kid: %w", k.Name, err))
			}
		}
		p.Keys = append(p.Keys, pk)
	}
	for _, r := range j.Steps {
		p.Steps = append(p.Steps, StepRule(r))
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return p, nil
}

// MarshalJSON returns p in the form [ParsePolicyJSON] reads.
func (p *Policy) MarshalJSON() ([]byte, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	j := policyJSON{Name: p.Name, Version: p.Version, Issuer: p.Issuer, AllowExtraSteps: p.AllowExtraSteps}
	if !p.Issued.IsZero() {
		t := p.Issued.UTC()
		j.Issued = &t
	}
	if !p.Expires.IsZero() {
		t := p.Expires.UTC()
		j.Expires = &t
	}
	for _, c := range p.Roots {
		j.Roots = append(j.Roots, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})))
	}
	for _, k := range p.Keys {
		der, err := x509.MarshalPKIXPublicKey(k.Public)
		if err != nil {
			return nil, fmt.Errorf("%w: key %q: %v", ErrInvalidPolicy, k.Name, err)
		}
		j.Keys = append(j.Keys, keyJSON{Name: k.Name, KeyID: hex.EncodeToString(k.KeyID),
			PublicKey: string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))})
	}
	for _, r := range p.Steps {
		j.Steps = append(j.Steps, stepRuleJSON(r))
	}
	return json.MarshalIndent(&j, "", "  ")
}

// SignPolicy signs p as a tagged COSE_Sign1 with content type
// [PolicyContentType] and CWT claims iss (opts.Issuer), sub (the policy
// name) and iat (p.Issued, if set). rand is passed to the key; if nil,
// crypto/rand is used.
func SignPolicy(rand io.Reader, p *Policy, key crypto.Signer, opts SignOptions) ([]byte, error) {
	payload, err := p.Marshal()
	if err != nil {
		return nil, err
	}
	s, err := NewStepSigner(key, opts)
	if err != nil {
		return nil, err
	}
	return s.sign1(rand, PolicyContentType, p.Name, unixOrZero(p.Issued), payload)
}

// VerifyPolicy checks a policy signed by [SignPolicy] against the OEM's
// public key and returns the policy. A signature that does not verify, an
// algorithm that is not the key's, or CWT claims that disagree with the
// policy give an error wrapping [ErrVerification]; undecodable input one
// wrapping [ErrMalformed] or [ErrTooLarge].
func VerifyPolicy(signed []byte, oem crypto.PublicKey) (*Policy, error) {
	if len(signed) > MaxPolicySize {
		return nil, tooLargeErr("signed policy", len(signed), MaxPolicySize)
	}
	var msg sign1.Message
	hdr, err := parseSign1(signed, &msg, "signed policy", PolicyContentType, nil)
	if err != nil {
		return nil, err
	}
	vfail := func(r Reason, detail string, err error) error {
		return &VerificationError{Check: CheckPolicySignature, Step: -1, Reason: r, Detail: detail, Err: err}
	}
	verifier, err := verifierFor(hdr.alg, oem)
	if err != nil {
		return nil, vfail(ReasonAlgorithm, "", err)
	}
	if err := msg.Verify(verifier); err != nil {
		return nil, vfail(ReasonSignature, "", err)
	}
	p, err := ParsePolicy(msg.Payload)
	if err != nil {
		return nil, err
	}
	if hdr.cwt == nil || hdr.cwt.Sub != p.Name {
		return nil, vfail(ReasonSubject, "CWT sub is not the policy name", nil)
	}
	return p, nil
}

// verifierFor returns a verifier for a protected alg and a key, refusing an
// alg that is not one ztm uses or not the key's.
func verifierFor(alg int64, pub crypto.PublicKey) (cose.Verifier, error) {
	ka, err := keystore.AlgorithmOf(pub)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnsupportedAlgorithm, err)
	}
	if ka.COSE() != alg {
		return nil, fmt.Errorf("%w: protected alg %d, key is %v (%d)", ErrUnsupportedAlgorithm, alg, ka, ka.COSE())
	}
	return cose.NewVerifier(cose.Algorithm(alg), pub)
}
