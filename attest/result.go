package attest

import (
	"crypto"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/veraison/go-cose"

	"github.com/ztmkit/ztm/internal/detcbor"
	"github.com/ztmkit/ztm/internal/sign1"
)

// EARProfile is the eat_profile of every [Result]: the EAR profile of
// draft-ietf-rats-ear.
const EARProfile = "tag:github.com,2023:veraison/ear"

// EAR claim keys (CBOR) as draft-ietf-rats-ear assigns them, and the keys of
// ztm's extensions, from the CWT private-use range (RFC 8392 §4: below
// -65536), clear of the -70000… keys Veraison's extensions use.
const (
	earKeyStatus         int64 = 1000
	earKeyTrustVector    int64 = 1001
	earKeyPolicyID       int64 = 1003
	earKeyVerifierID     int64 = 1004
	earKeyDeveloper      int64 = 0 // in ear.verifier-id
	earKeyBuild          int64 = 1 // in ear.verifier-id
	ztmKeyEvidenceDigest int64 = -71000
	ztmKeyReasons        int64 = -71001
	ztmKeyUEID           int64 = -71002
)

// Status is an AR4SI trust tier, the ear.status of an appraisal. Reference:
// draft-ietf-rats-ar4si §2.3.
type Status int8

// The trust tiers with their AR4SI numbers.
const (
	StatusNone            Status = 0
	StatusAffirming       Status = 2
	StatusWarning         Status = 32
	StatusContraindicated Status = 96
)

// String returns the tier's EAR name ("affirming", …).
func (s Status) String() string {
	switch s {
	case StatusNone:
		return "none"
	case StatusAffirming:
		return "affirming"
	case StatusWarning:
		return "warning"
	case StatusContraindicated:
		return "contraindicated"
	}
	return fmt.Sprintf("Status(%d)", int(s))
}

func parseStatus(s string) (Status, error) {
	for _, st := range []Status{StatusNone, StatusAffirming, StatusWarning, StatusContraindicated} {
		if s == st.String() {
			return st, nil
		}
	}
	return 0, fmt.Errorf("unknown ear.status %q", s)
}

func (s Status) valid() bool {
	return s == StatusNone || s == StatusAffirming || s == StatusWarning || s == StatusContraindicated
}

// TrustClaim is one entry of the AR4SI trustworthiness vector, -128 to 127.
// Its tier follows from its value: -1 to 1 none, 2 to 31 affirming, 32 to 95
// warning, 96 and above (and below -1) contraindicated.
type TrustClaim int8

// The AR4SI trust claim values ztm uses. Reference: draft-ietf-rats-ar4si
// §2.3.
const (
	TrustNoClaim                TrustClaim = 0
	TrustRecognizedInstance     TrustClaim = 2  // instance-identity
	TrustUntrustworthyInstance  TrustClaim = 96 // instance-identity
	TrustUnrecognizedInstance   TrustClaim = 97 // instance-identity
	TrustApprovedConfig         TrustClaim = 2  // configuration
	TrustUnsupportableConfig    TrustClaim = 96 // configuration
	TrustApprovedRuntime        TrustClaim = 2  // executables
	TrustUnrecognizedRuntime    TrustClaim = 33 // executables
	TrustContraindicatedRuntime TrustClaim = 96 // executables
	TrustGenuineHardware        TrustClaim = 2  // hardware
	TrustUnrecognizedHardware   TrustClaim = 97 // hardware
	TrustCryptoValidationFailed TrustClaim = 99 // any
)

// Tier returns the trust tier of c.
func (c TrustClaim) Tier() Status {
	switch {
	case c >= -1 && c <= 1:
		return StatusNone
	case c >= 2 && c <= 31:
		return StatusAffirming
	case c >= 32 && c <= 95:
		return StatusWarning
	}
	return StatusContraindicated
}

// TrustVector is the AR4SI trustworthiness vector
// (ear.trustworthiness-vector); a zero entry is "no claim".
type TrustVector struct {
	InstanceIdentity TrustClaim
	Configuration    TrustClaim
	Executables      TrustClaim
	FileSystem       TrustClaim
	Hardware         TrustClaim
	RuntimeOpaque    TrustClaim
	StorageOpaque    TrustClaim
	SourcedData      TrustClaim
}

var trustNames = [8]string{"instance-identity", "configuration", "executables", "file-system", "hardware", "runtime-opaque", "storage-opaque", "sourced-data"}

func (tv *TrustVector) entries() [8]*TrustClaim {
	return [8]*TrustClaim{&tv.InstanceIdentity, &tv.Configuration, &tv.Executables, &tv.FileSystem, &tv.Hardware, &tv.RuntimeOpaque, &tv.StorageOpaque, &tv.SourcedData}
}

// SetAll sets every entry to c.
func (tv *TrustVector) SetAll(c TrustClaim) {
	for _, p := range tv.entries() {
		*p = c
	}
}

// Status returns the worst tier among the entries (none if all are none).
func (tv TrustVector) Status() Status {
	worst := StatusNone
	for _, p := range tv.entries() {
		if t := p.Tier(); t > worst {
			worst = t
		}
	}
	return worst
}

// VerifierID is ear.verifier-id: who appraised the evidence. In CBOR it
// is the map {0: developer, 1: build}; in JSON {"developer", "build"}.
// Reference: draft-ietf-rats-ar4si §3.3, draft-ietf-rats-ear §3.
type VerifierID struct {
	// Build names the verifier software and its version (CBOR key 1).
	Build string
	// Developer names the verifier's developer, as a URI (CBOR key 0).
	Developer string
}

// Appraisal is one entry of an EAR's submods: the appraisal of one
// attester.
type Appraisal struct {
	// Status is ear.status.
	Status Status
	// TrustVector is ear.trustworthiness-vector.
	TrustVector TrustVector
	// PolicyID is ear.appraisal-policy-id.
	PolicyID string
	// EvidenceDigest is the SHA-256 of the exact evidence appraised (ztm
	// extension "ztm.evidence-digest", CBOR key -71000).
	EvidenceDigest []byte
	// Reasons say why the status is not affirming, one line per finding,
	// "<reason>: <detail>" (ztm extension "ztm.reasons", key -71001).
	Reasons []string
	// UEID is the attester's ueid, when known (ztm extension "ztm.ueid",
	// key -71002).
	UEID []byte
}

// Result is an attestation result shaped as an EAR (draft-ietf-rats-ear):
// profile, issue time, verifier, nonce and one [Appraisal] per submodule.
// It is signed with [Result.SignJWT] or [Result.SignCWT] and read back with
// [ParseResult]. A Result is a plain value, not safe for concurrent
// mutation.
type Result struct {
	// Profile is eat_profile; always [EARProfile].
	Profile string
	// IssuedAt is iat, in whole seconds.
	IssuedAt time.Time
	// Expiry is exp, in whole seconds: the time from which the result
	// must no longer be accepted (RFC 7519 §4.1.4, RFC 8392 §3.1.4). Zero
	// when absent.
	Expiry time.Time
	// NotBefore is nbf, in whole seconds: the time before which the
	// result must not be accepted (RFC 7519 §4.1.5, RFC 8392 §3.1.5). Zero
	// when absent.
	NotBefore time.Time
	// VerifierID is ear.verifier-id.
	VerifierID VerifierID
	// Nonce is eat_nonce: the nonce of the appraised evidence, if any.
	Nonce []byte
	// Submods are the appraisals by submodule name.
	Submods map[string]*Appraisal
	// Evidence is the authenticated evidence the result is about, when
	// the Result came from a verifier and the evidence was authentic. It
	// is not serialized.
	Evidence *Evidence

	signed []byte
}

// Status returns the worst status among the submodules' appraisals.
func (r *Result) Status() Status {
	worst := StatusNone
	for _, a := range r.Submods {
		if a.Status > worst {
			worst = a.Status
		}
	}
	return worst
}

// Reasons returns every submodule's reasons, prefixed by the submodule name
// and sorted.
func (r *Result) Reasons() []string {
	var out []string
	for name, a := range r.Submods {
		for _, s := range a.Reasons {
			out = append(out, name+": "+s)
		}
	}
	sort.Strings(out)
	return out
}

// Digest returns the SHA-256 of the Result's signed serialization (the
// exact bytes [Result.SignJWT], [Result.SignCWT] returned or [ParseResult]
// read), for a CA or ledger to record. It returns nil for a Result that was
// neither signed nor parsed.
func (r *Result) Digest() []byte {
	if r.signed == nil {
		return nil
	}
	d := sha256.Sum256(r.signed)
	return d[:]
}

func (r *Result) check() error {
	if r.Profile != EARProfile {
		return fmt.Errorf("attest: result eat_profile %q, want %q", r.Profile, EARProfile)
	}
	if r.IssuedAt.IsZero() {
		return fmt.Errorf("attest: result without iat")
	}
	if len(r.Submods) == 0 {
		return fmt.Errorf("attest: result without submods")
	}
	for name, a := range r.Submods {
		if a == nil || !a.Status.valid() {
			return fmt.Errorf("attest: result submodule %q has no valid status", name)
		}
	}
	return nil
}

func (r *Result) cborMap() map[int64]any {
	m := map[int64]any{
		KeyProfile:       r.Profile,
		KeyIssuedAt:      r.IssuedAt.Unix(),
		earKeyVerifierID: map[int64]any{earKeyDeveloper: r.VerifierID.Developer, earKeyBuild: r.VerifierID.Build},
	}
	if !r.Expiry.IsZero() {
		m[KeyExpiry] = r.Expiry.Unix()
	}
	if !r.NotBefore.IsZero() {
		m[KeyNotBefore] = r.NotBefore.Unix()
	}
	if r.Nonce != nil {
		m[KeyNonce] = r.Nonce
	}
	subs := make(map[string]any, len(r.Submods))
	for name, a := range r.Submods {
		am := map[int64]any{earKeyStatus: int64(a.Status)}
		tv := map[int64]any{}
		for i, p := range a.TrustVector.entries() {
			if *p != 0 {
				tv[int64(i)] = int64(*p)
			}
		}
		if len(tv) > 0 {
			am[earKeyTrustVector] = tv
		}
		if a.PolicyID != "" {
			am[earKeyPolicyID] = a.PolicyID
		}
		if a.EvidenceDigest != nil {
			am[ztmKeyEvidenceDigest] = a.EvidenceDigest
		}
		if len(a.Reasons) > 0 {
			am[ztmKeyReasons] = a.Reasons
		}
		if a.UEID != nil {
			am[ztmKeyUEID] = a.UEID
		}
		subs[name] = am
	}
	m[KeySubmods] = subs
	return m
}

// MarshalJSON encodes the Result as an EAR JSON claims set.
func (r *Result) MarshalJSON() ([]byte, error) {
	if err := r.check(); err != nil {
		return nil, err
	}
	m := map[string]any{
		"eat_profile":     r.Profile,
		"iat":             r.IssuedAt.Unix(),
		"ear.verifier-id": map[string]string{"build": r.VerifierID.Build, "developer": r.VerifierID.Developer},
	}
	if !r.Expiry.IsZero() {
		m["exp"] = r.Expiry.Unix()
	}
	if !r.NotBefore.IsZero() {
		m["nbf"] = r.NotBefore.Unix()
	}
	if r.Nonce != nil {
		m["eat_nonce"] = b64.EncodeToString(r.Nonce)
	}
	subs := make(map[string]any, len(r.Submods))
	for name, a := range r.Submods {
		am := map[string]any{"ear.status": a.Status.String()}
		tv := map[string]int{}
		for i, p := range a.TrustVector.entries() {
			if *p != 0 {
				tv[trustNames[i]] = int(*p)
			}
		}
		if len(tv) > 0 {
			am["ear.trustworthiness-vector"] = tv
		}
		if a.PolicyID != "" {
			am["ear.appraisal-policy-id"] = a.PolicyID
		}
		if a.EvidenceDigest != nil {
			am["ztm.evidence-digest"] = b64.EncodeToString(a.EvidenceDigest)
		}
		if len(a.Reasons) > 0 {
			am["ztm.reasons"] = a.Reasons
		}
		if a.UEID != nil {
			am["ztm.ueid"] = b64.EncodeToString(a.UEID)
		}
		subs[name] = am
	}
	m["submods"] = subs
	return json.Marshal(m)
}

// SignJWT signs the Result as an EAR JWT (JWS compact serialization, typ
// "JWT") and records the token for [Result.Digest]. rand may be nil.
func (r *Result) SignJWT(rand io.Reader, signer crypto.Signer, opts *SignOptions) ([]byte, error) {
	payload, err := r.MarshalJSON()
	if err != nil {
		return nil, err
	}
	tok, err := signJOSE(rand, signer, payload, "JWT", opts)
	if err != nil {
		return nil, err
	}
	r.signed = tok
	return tok, nil
}

// SignCWT signs the Result as an EAR CWT (tagged COSE_Sign1 over the EAR
// CBOR claims set) and records the token for [Result.Digest]. rand may be
// nil.
func (r *Result) SignCWT(rand io.Reader, signer crypto.Signer, opts *SignOptions) ([]byte, error) {
	if err := r.check(); err != nil {
		return nil, err
	}
	payload, err := detcbor.Marshal(r.cborMap())
	if err != nil {
		return nil, err
	}
	tok, err := signCOSE(rand, signer, payload, opts)
	if err != nil {
		return nil, err
	}
	r.signed = tok
	return tok, nil
}

// ResultOptions configures [ParseResult]. Its zero value (or nil) works.
type ResultOptions struct {
	// MaxSize is the largest token, in bytes, that is parsed at all. If
	// zero, DefaultMaxSize is used.
	MaxSize int
	// Time returns the current time, against which exp and nbf are
	// checked. If nil, time.Now is used.
	Time func() time.Time
	// ClockSkew is the allowance for the clocks of the verifier that
	// signed the result and of the reader: a result is accepted until
	// exp + ClockSkew and from nbf - ClockSkew. If zero,
	// [DefaultClockSkew] is used; a negative value allows none.
	ClockSkew time.Duration
}

// ParseResult verifies a signed Result (EAR JWT or CWT, detected by its
// first byte) with the verifier's public key and decodes it. The algorithm
// comes from the protected header and must match key. Tokens over
// opts.MaxSize bytes are refused before parsing; a result past its exp or
// before its nbf (RFC 7519 §4.1.4–5, RFC 8392 §3.1.4–5), allowing
// opts.ClockSkew, is refused with [ErrExpired] or [ErrNotYetValid]. opts
// may be nil. Every failure is a [*VerificationError] wrapping
// [ErrVerification].
func ParseResult(token []byte, key crypto.PublicKey, opts *ResultOptions) (*Result, error) {
	var o ResultOptions
	if opts != nil {
		o = *opts
	}
	if o.MaxSize <= 0 {
		o.MaxSize = DefaultMaxSize
	}
	if o.Time == nil {
		o.Time = time.Now
	}
	if len(token) > o.MaxSize {
		return nil, verr(ReasonTooLarge, nil, "%d bytes, limit %d", len(token), o.MaxSize)
	}
	if len(token) == 0 {
		return nil, verr(ReasonMalformed, nil, "empty token")
	}
	var r *Result
	var e *VerificationError
	switch token[0] {
	case 0xd2, 0xd8:
		r, e = parseResultCWT(token, key, o.MaxSize)
	case 'e':
		r, e = parseResultJWT(token, key)
	default:
		return nil, verr(ReasonMalformed, nil, "neither a tagged COSE_Sign1 nor a JWS compact serialization")
	}
	if e != nil {
		return nil, e
	}
	if err := r.check(); err != nil {
		return nil, verr(ReasonMalformed, err, "result")
	}
	if e := checkValidity(r.Expiry, r.NotBefore, o.Time(), o.ClockSkew); e != nil {
		return nil, e
	}
	r.signed = append([]byte(nil), token...)
	return r, nil
}

// policyIDField is ear.appraisal-policy-id (1003): a text string as
// Veraison's EAR profile writes it, or a one-element array of text as
// later revisions of draft-ietf-rats-ear do (ear_appraisal_policy_ids).
// A list of several policies is refused rather than cut to one.
type policyIDField string

func (p *policyIDField) UnmarshalCBOR(b []byte) error {
	if len(b) > 0 && b[0]>>5 == 4 {
		var ids []string
		if err := detcbor.DecMode().Unmarshal(b, &ids); err != nil {
			return err
		}
		if len(ids) != 1 {
			return fmt.Errorf("%d appraisal policy ids (ztm reads exactly one)", len(ids))
		}
		*p = policyIDField(ids[0])
		return nil
	}
	var s string
	if err := detcbor.DecMode().Unmarshal(b, &s); err != nil {
		return err
	}
	*p = policyIDField(s)
	return nil
}

func parseResultCWT(token []byte, key crypto.PublicKey, maxSize int) (*Result, *VerificationError) {
	protRaw, prot, unprot, payload, sig, e := parseSign1(token, maxSize)
	if e != nil {
		return nil, e
	}
	alg, e := protectedAlgorithm(prot, unprot)
	if e != nil {
		return nil, e
	}
	if e := checkAlgorithm(alg, key); e != nil {
		return nil, e
	}
	cv, err := cose.NewVerifier(coseAlg(alg), key)
	if err != nil {
		return nil, verr(ReasonUntrustedSigner, err, "result key")
	}
	if err := sign1.Verify(cv, protRaw, payload, sig); err != nil {
		return nil, verr(ReasonBadSignature, err, "result")
	}
	r, err := decodeResultCBOR(payload)
	if err != nil {
		return nil, verr(ReasonMalformed, err, "result")
	}
	return r, nil
}

type earVerifierIDCBOR struct {
	Developer string `cbor:"0,keyasint"`
	Build     string `cbor:"1,keyasint"`
}

type earAppraisalCBOR struct {
	Status         *int8          `cbor:"1000,keyasint"`
	TrustVector    map[int64]int8 `cbor:"1001,keyasint"`
	PolicyID       policyIDField  `cbor:"1003,keyasint"`
	EvidenceDigest bstrField      `cbor:"-71000,keyasint"`
	Reasons        []string       `cbor:"-71001,keyasint"`
	UEID           bstrField      `cbor:"-71002,keyasint"`
}

type earCBOR struct {
	Profile    string                      `cbor:"265,keyasint"`
	IssuedAt   *int64                      `cbor:"6,keyasint"`
	Expiry     *int64                      `cbor:"4,keyasint"`
	NotBefore  *int64                      `cbor:"5,keyasint"`
	VerifierID earVerifierIDCBOR           `cbor:"1004,keyasint"`
	Nonce      bstrField                   `cbor:"10,keyasint"`
	Submods    map[string]earAppraisalCBOR `cbor:"266,keyasint"`
}

// lenientDecMode is detcbor's strict mode (no duplicate keys, no
// indefinite lengths) that ignores unknown map keys: an EAR may carry other
// verifiers' extensions, which a reader skips.
var lenientDecMode = sync.OnceValue(func() cbor.DecMode {
	opts := detcbor.DecMode().DecOptions()
	opts.ExtraReturnErrors = cbor.ExtraDecErrorNone
	dm, err := opts.DecMode()
	if err != nil {
		panic(err)
	}
	return dm
})

func decodeResultCBOR(b []byte) (*Result, error) {
	var e earCBOR
	rest, err := lenientDecMode().UnmarshalFirst(b, &e)
	if err != nil {
		return nil, err
	}
	if len(rest) != 0 {
		return nil, errors.New("trailing data after the EAR claims")
	}
	r := &Result{
		Profile:    e.Profile,
		VerifierID: VerifierID{Build: e.VerifierID.Build, Developer: e.VerifierID.Developer},
		Nonce:      e.Nonce,
		Submods:    make(map[string]*Appraisal, len(e.Submods)),
	}
	if e.IssuedAt != nil {
		r.IssuedAt = time.Unix(*e.IssuedAt, 0).UTC()
	}
	if e.Expiry != nil {
		r.Expiry = time.Unix(*e.Expiry, 0).UTC()
	}
	if e.NotBefore != nil {
		r.NotBefore = time.Unix(*e.NotBefore, 0).UTC()
	}
	for name, ea := range e.Submods {
		if ea.Status == nil {
			return nil, fmt.Errorf("submodule %q without ear.status", name)
		}
		a := &Appraisal{Status: Status(*ea.Status), PolicyID: string(ea.PolicyID), EvidenceDigest: ea.EvidenceDigest, Reasons: ea.Reasons, UEID: ea.UEID}
		entries := a.TrustVector.entries()
		for k, v := range ea.TrustVector {
			if k < 0 || k >= int64(len(entries)) {
				return nil, fmt.Errorf("submodule %q: unknown trust vector key %d", name, k)
			}
			*entries[k] = TrustClaim(v)
		}
		r.Submods[name] = a
	}
	return r, nil
}

func parseResultJWT(token []byte, key crypto.PublicKey) (*Result, *VerificationError) {
	j, e := parseJWS(token)
	if e != nil {
		return nil, e
	}
	if e := checkAlgorithm(j.alg, key); e != nil {
		return nil, e
	}
	if e := j.verify(nil, key, "result"); e != nil {
		return nil, e
	}
	r, err := decodeResultJSON(j.payload)
	if err != nil {
		return nil, verr(ReasonMalformed, err, "result")
	}
	return r, nil
}

// decodeResultJSON reads EAR claims in JSON, member names exact and
// unrepeated at every level (encoding/json would match names regardless
// of case and keep the last of two); members it does not know are skipped.
func decodeResultJSON(b []byte) (*Result, error) {
	members, err := scanObject(b)
	if err != nil {
		return nil, err
	}
	r := &Result{}
	for _, m := range members {
		switch string(m.name) {
		case "eat_profile":
			r.Profile, err = jsonString(m.value)
		case "iat":
			var t int64
			if t, err = jsonNumericDate(m.value); err == nil {
				r.IssuedAt = time.Unix(t, 0).UTC()
			}
		case "exp":
			var t int64
			if t, err = jsonNumericDate(m.value); err == nil {
				r.Expiry = time.Unix(t, 0).UTC()
			}
		case "nbf":
			var t int64
			if t, err = jsonNumericDate(m.value); err == nil {
				r.NotBefore = time.Unix(t, 0).UTC()
			}
		case "ear.verifier-id":
			err = decodeVerifierIDJSON(m.value, &r.VerifierID)
		case "eat_nonce":
			err = unmarshalB64(m.value, &r.Nonce)
		case "submods":
			r.Submods, err = decodeSubmodsJSON(m.value)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", m.name, err)
		}
	}
	if r.Submods == nil {
		r.Submods = map[string]*Appraisal{}
	}
	return r, nil
}

func decodeVerifierIDJSON(b []byte, id *VerifierID) error {
	members, err := scanObject(b)
	if err != nil {
		return err
	}
	for _, m := range members {
		switch string(m.name) {
		case "build":
			id.Build, err = jsonString(m.value)
		case "developer":
			id.Developer, err = jsonString(m.value)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", m.name, err)
		}
	}
	return nil
}

func decodeSubmodsJSON(b []byte) (map[string]*Appraisal, error) {
	members, err := scanObject(b)
	if err != nil {
		return nil, err
	}
	out := make(map[string]*Appraisal, len(members))
	for _, m := range members {
		a, err := decodeAppraisalJSON(m.value)
		if err != nil {
			return nil, fmt.Errorf("submodule %q: %w", m.name, err)
		}
		out[string(m.name)] = a
	}
	return out, nil
}

func decodeAppraisalJSON(b []byte) (*Appraisal, error) {
	members, err := scanObject(b)
	if err != nil {
		return nil, err
	}
	a := &Appraisal{}
	hasStatus := false
	for _, m := range members {
		switch string(m.name) {
		case "ear.status":
			var s string
			if s, err = jsonString(m.value); err == nil {
				a.Status, err = parseStatus(s)
				hasStatus = true
			}
		case "ear.trustworthiness-vector":
			err = decodeTrustVectorJSON(m.value, &a.TrustVector)
		case "ear.appraisal-policy-id":
			a.PolicyID, err = jsonString(m.value)
		case "ztm.evidence-digest":
			err = unmarshalB64(m.value, &a.EvidenceDigest)
		case "ztm.reasons":
			var items [][]byte
			if items, err = scanArray(m.value); err == nil {
				a.Reasons = make([]string, len(items))
				for i, it := range items {
					if a.Reasons[i], err = jsonString(it); err != nil {
						break
					}
				}
			}
		case "ztm.ueid":
			err = unmarshalB64(m.value, &a.UEID)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", m.name, err)
		}
	}
	if !hasStatus {
		return nil, errors.New("no ear.status")
	}
	return a, nil
}

func decodeTrustVectorJSON(b []byte, tv *TrustVector) error {
	members, err := scanObject(b)
	if err != nil {
		return err
	}
	entries := tv.entries()
next:
	for _, m := range members {
		v, err := jsonInt(m.value)
		if err != nil || v < -128 || v > 127 {
			return fmt.Errorf("trust claim %q: want an integer from -128 to 127", m.name)
		}
		for i, n := range trustNames {
			if n == string(m.name) {
				*entries[i] = TrustClaim(v)
				continue next
			}
		}
		return fmt.Errorf("unknown trust vector claim %q", m.name)
	}
	return nil
}

var _ cbor.Marshaler = (*Claims)(nil)
