package tpm

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"errors"
	"fmt"
	"hash"
	"math/big"
	"sort"
	"strings"
	"time"

	"github.com/ztmkit/ztm/attest"
	"github.com/ztmkit/ztm/identity"
	"github.com/ztmkit/ztm/identity/keystore"
	"github.com/ztmkit/ztm/internal/detcbor"
	"github.com/ztmkit/ztm/internal/errfmt"
)

// NumPCRs is the number of PCRs in a bank of a PC-client TPM.
const NumPCRs = 24

// Evidence is a TPM quote as sent to a verifier: exactly what the TPM
// signed, its signature, the PCR values it quoted, and how to find the AK.
// On the wire it is a deterministic CBOR map:
//
//	tpm-evidence = {
//	  1: bstr,              ; TPMS_ATTEST, as signed
//	  2: bstr,              ; TPMT_SIGNATURE
//	  3: { uint => bstr },  ; quoted PCR index => SHA-256 bank value
//	  ? 4: [+ bstr],        ; AK certificate chain, DER, leaf first
//	  ? 5: bstr,            ; AK key ID, registered with the verifier
//	  ? 6: { uint => { uint => bstr } },  ; other quoted banks: TPM_ALG_ID => PCR index => value
//	}
//
// From a [github.com/ztmkit/ztm/identity/keystore/tpm.Quote] q: Attest is
// q.Attest, Signature q.Signature, and PCRs holds q.PCRs by index.
//
// Many platforms quote the SHA-1 bank beside SHA-256. The values of such
// other banks (SHA-1, SHA-384 or SHA-512) go in OtherBanks: they are needed
// to recompute the quote's PCR digest, and are never appraised. Reference
// values are compared with the SHA-256 bank only.
type Evidence struct {
	Attest     []byte                    `cbor:"1,keyasint"`           // TPMS_ATTEST as signed
	Signature  []byte                    `cbor:"2,keyasint"`           // TPMT_SIGNATURE
	PCRs       map[int][]byte            `cbor:"3,keyasint"`           // quoted SHA-256 PCR values
	AKChain    [][]byte                  `cbor:"4,keyasint,omitempty"` // AK certificate chain, DER, leaf first
	AKKeyID    []byte                    `cbor:"5,keyasint,omitempty"` // registered AK key ID
	OtherBanks map[uint16]map[int][]byte `cbor:"6,keyasint,omitempty"` // other quoted banks, by TPM_ALG_ID
	// The device's identity key, certified by the AK over the quote's
	// nonce (TPM2_Certify; identity/keystore/tpm's Store.Certify): the
	// TPMS_ATTEST, its TPMT_SIGNATURE and the key's TPMT_PUBLIC. All three
	// or none.
	Certification          []byte `cbor:"7,keyasint,omitempty"` // TPMS_ATTEST of TPM2_Certify, as signed
	CertificationSignature []byte `cbor:"8,keyasint,omitempty"` // its TPMT_SIGNATURE by the AK
	CertifiedPublic        []byte `cbor:"9,keyasint,omitempty"` // the certified key's TPMT_PUBLIC
}

// bankSize returns the digest size of a PCR bank ztm can hash into a quote
// digest, or 0.
func bankSize(alg uint16) int {
	switch alg {
	case algSHA1:
		return 20
	case algSHA256:
		return 32
	case algSHA384:
		return 48
	case algSHA512:
		return 64
	}
	return 0
}

// Marshal encodes e deterministically.
func (e *Evidence) Marshal() ([]byte, error) {
	if err := e.check(); err != nil {
		return nil, err
	}
	return detcbor.Marshal(e)
}

func (e *Evidence) check() error {
	if len(e.Attest) == 0 || len(e.Signature) == 0 {
		return fmt.Errorf("%w: evidence without quote or signature", ErrMalformed)
	}
	for i, v := range e.PCRs {
		if i < 0 || i >= NumPCRs || len(v) != sha256.Size {
			return fmt.Errorf("%w: PCR %d with a %d-byte value", ErrMalformed, i, len(v))
		}
	}
	for bank, vals := range e.OtherBanks {
		n := bankSize(bank)
		if n == 0 || bank == algSHA256 || len(vals) == 0 {
			return fmt.Errorf("%w: other PCR bank %#x (want SHA-1, SHA-384 or SHA-512, with values)", ErrMalformed, bank)
		}
		for i, v := range vals {
			if i < 0 || i >= NumPCRs || len(v) != n {
				return fmt.Errorf("%w: bank %#x PCR %d with a %d-byte value", ErrMalformed, bank, i, len(v))
			}
		}
	}
	if len(e.AKChain) == 0 && len(e.AKKeyID) == 0 {
		return fmt.Errorf("%w: evidence names no attestation key", ErrMalformed)
	}
	n := 0
	for _, f := range [][]byte{e.Certification, e.CertificationSignature, e.CertifiedPublic} {
		if len(f) > 0 {
			n++
		}
	}
	if n != 0 && n != 3 {
		return fmt.Errorf("%w: a key certification needs its TPMS_ATTEST, signature and public area", ErrMalformed)
	}
	return nil
}

// ParseEvidence decodes evidence strictly (no duplicate keys, indefinite
// lengths, unknown keys or trailing data; at most maxSize bytes, or
// attest.DefaultMaxSize if maxSize <= 0). Errors wrap [ErrMalformed].
func ParseEvidence(b []byte, maxSize int) (*Evidence, error) {
	if maxSize <= 0 {
		maxSize = attest.DefaultMaxSize
	}
	var e Evidence
	if err := detcbor.Unmarshal(b, &e, maxSize); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if err := e.check(); err != nil {
		return nil, err
	}
	return &e, nil
}

// ReferenceValues is one acceptable platform state: the expected SHA-256
// bank value of each listed PCR (for instance, the PCRs of one approved
// firmware release). Every listed PCR must be quoted and equal.
type ReferenceValues struct {
	// Name names the state in results, e.g. "firmware 2.3.1".
	Name string
	// PCRs are the expected values by PCR index.
	PCRs map[int][]byte
}

// Config configures a TPM quote [Verifier]. Its zero value trusts no AK.
type Config struct {
	// Roots are the trust anchors an AK certificate chain must lead to.
	// If nil, no chain is trusted (system roots are never used).
	Roots *x509.CertPool
	// Keys are registered AK public keys by key ID, copied when the
	// verifier is made: a convenience for a fixed set. Set KeyLookup
	// instead to register AKs while the verifier runs; setting both is an
	// error.
	Keys map[string]crypto.PublicKey
	// KeyLookup finds a registered AK public key by key ID each time a
	// quote names one, so that AKs registered later are accepted without
	// making a new verifier: (*attest.KeySet).Lookup, or a lookup in the
	// line's own registry. If nil, Keys is used.
	KeyLookup attest.KeyLookup
	// Nonces issues and consumes the quote nonces (extraData). If nil,
	// the nonce is not checked.
	//
	// WARNING: without Nonces, a replayed quote is accepted.
	Nonces *attest.Nonces
	// ReferenceValues are the acceptable platform states; a quote must
	// match one. With none, every quote is contraindicated.
	ReferenceValues []ReferenceValues
	// MaxSize bounds the evidence size; if zero attest.DefaultMaxSize.
	MaxSize int
	// Time returns the current time; if nil, time.Now.
	Time func() time.Time
	// VerifierID names this verifier in results.
	VerifierID attest.VerifierID
	// PolicyID is ear.appraisal-policy-id; if empty "ztm/attest/tpm".
	PolicyID string
	// Submod names the appraisal in results; if empty "tpm".
	Submod string
	// RequireSafeClock refuses a quote whose clockInfo.safe is NO
	// ([attest.ReasonClockUnsafe]): the TPM says its clock may have gone
	// back, so its Clock may repeat one reported before. A TPM powered off
	// without TPM2_Shutdown reports NO until it next saves its clock, so
	// this is off by default; the value is always in [Quote].
	RequireSafeClock bool
}

// Quote is an authenticated TPM quote: its evidence, the parsed
// TPMS_ATTEST (with the TPM's clock, reset and restart counts) and the AK
// whose signature verified. [Verifier.Decode] and [Verifier.VerifyQuote]
// return it.
type Quote struct {
	// Evidence is the evidence as decoded.
	Evidence *Evidence
	// Attest is the signed TPMS_ATTEST. Attest.ClockInfo holds resetCount
	// (TPM resets, i.e. reboots), restartCount (restarts and resumes since
	// the last reset) and safe. For an AK outside the endorsement and
	// platform hierarchies the TPM obfuscates resetCount, restartCount and
	// firmwareVersion with a mask fixed per key: compare them only between
	// quotes of one AK.
	Attest *Attest
	// AK is the attestation key that signed the quote.
	AK crypto.PublicKey
	// AKChain is the AK's verified certificate chain, leaf first, or nil
	// for a registered AK.
	AKChain []*x509.Certificate
	// CertifiedKey is the device key the AK certified over the quote's
	// nonce (Evidence.Certification), checked as [CertifiedKey] does; nil
	// when the evidence carries no certification.
	CertifiedKey *Public
}

// VerifyOptions are per-quote appraisal options for
// [Verifier.VerifyQuote]. The zero value adds no check.
type VerifyOptions struct {
	// Since is an earlier quote of the same device (same AK). When set,
	// the quote is refused ([attest.ReasonReboot]) if it comes from
	// another AK, if the TPM was reset or restarted since (resetCount or
	// restartCount differ), or if its Clock is behind Since's: a device
	// rebooted between two quotes may run other code than the first one
	// attested.
	Since *Quote
}

// Verifier verifies TPM quotes. It is safe for concurrent use.
type Verifier struct {
	cfg Config
}

var _ attest.Verifier = (*Verifier)(nil)

// made returns an error, wrapping attest.ErrInvalidConfig and
// attest.ErrVerification, for a Verifier not made by NewVerifier (a zero
// Verifier), which refuses everything.
func (v *Verifier) made() error {
	if v == nil || v.cfg.Time == nil {
		return errfmt.Errorf("attest: ", "tpm: %w: Verifier not made by NewVerifier: %w", attest.ErrInvalidConfig, attest.ErrVerification)
	}
	return nil
}

// Nonces returns the nonce issuer of the verifier's configuration (nil if
// none), so that an enroll.Service hands out the nonces it consumes and a
// station refuses a verifier that would consume the CA's nonces.
func (v *Verifier) Nonces() *attest.Nonces {
	if v == nil {
		return nil
	}
	return v.cfg.Nonces
}

// WithoutNonces returns a verifier that checks quotes as v does but
// neither requires nor consumes a nonce, for a party that compares the
// quote's extraData with the nonce it asked for while the nonces' issuer
// consumes it later (a station appraising before its CA). A v not made by
// NewVerifier is returned as it is.
//
// WARNING: the returned verifier accepts replayed quotes unless its caller
// checks the nonce.
func (v *Verifier) WithoutNonces() *Verifier {
	if v.made() != nil {
		return v
	}
	n := *v
	n.cfg.Nonces = nil
	return &n
}

// NewVerifier returns a verifier for cfg. It returns an error for reference
// values with a PCR index out of range or a value that is not 32 bytes, and
// one wrapping attest.ErrInvalidConfig for a Config that sets both Keys and
// KeyLookup.
func NewVerifier(cfg Config) (*Verifier, error) {
	v := &Verifier{cfg: cfg}
	if v.cfg.MaxSize <= 0 {
		v.cfg.MaxSize = attest.DefaultMaxSize
	}
	if v.cfg.Time == nil {
		v.cfg.Time = time.Now
	}
	if v.cfg.PolicyID == "" {
		v.cfg.PolicyID = "ztm/attest/tpm"
	}
	if v.cfg.Submod == "" {
		v.cfg.Submod = "tpm"
	}
	if cfg.Keys != nil && cfg.KeyLookup != nil {
		return nil, fmt.Errorf("tpm: %w: set Config.Keys or Config.KeyLookup, not both", attest.ErrInvalidConfig)
	}
	if v.cfg.KeyLookup == nil {
		keys := make(map[string]crypto.PublicKey, len(cfg.Keys))
		for k, p := range cfg.Keys {
			keys[k] = p
		}
		v.cfg.Keys = keys
		v.cfg.KeyLookup = func(kid []byte) (crypto.PublicKey, bool) {
			pub, ok := keys[string(kid)]
			return pub, ok
		}
	}
	v.cfg.ReferenceValues = append([]ReferenceValues(nil), cfg.ReferenceValues...)
	for i, rv := range v.cfg.ReferenceValues {
		if len(rv.PCRs) == 0 {
			return nil, fmt.Errorf("tpm: reference values %d list no PCR", i)
		}
		for idx, val := range rv.PCRs {
			if idx < 0 || idx >= NumPCRs || len(val) != sha256.Size {
				return nil, fmt.Errorf("tpm: reference values %d: PCR %d with a %d-byte value", i, idx, len(val))
			}
		}
	}
	return v, nil
}

func refuse(r attest.Reason, err error, format string, args ...any) *attest.VerificationError {
	return &attest.VerificationError{Reason: r, Detail: fmt.Sprintf(format, args...), Err: err}
}

// Verify implements [attest.Verifier] for TPM quote evidence (see
// [Evidence]): it checks the AK (chain or key ID), that the signature
// scheme matches the AK, the signature over TPMS_ATTEST, the quote's
// structure, the nonce in extraData (consumed), that the supplied PCR
// values hash to the quoted digest, the clock if Config.RequireSafeClock,
// and that the SHA-256 values match a reference state. Refusals return a
// [*attest.VerificationError] and a contraindicated Result.
func (v *Verifier) Verify(ctx context.Context, evidence []byte) (*attest.Result, error) {
	r, _, err := v.VerifyQuote(ctx, evidence, VerifyOptions{})
	return r, err
}

// Decode authenticates a quote without appraising it or consuming its
// nonce: size, structure, AK, signature and PCR values. Errors are
// [*attest.VerificationError]s.
func (v *Verifier) Decode(evidence []byte) (*Quote, error) {
	if err := v.made(); err != nil {
		return nil, err
	}
	if len(evidence) > v.cfg.MaxSize {
		return nil, refuse(attest.ReasonTooLarge, nil, "%d bytes, limit %d", len(evidence), v.cfg.MaxSize)
	}
	q, e := v.authenticate(evidence, v.cfg.Time())
	if e != nil {
		return nil, e
	}
	return q, nil
}

// VerifyQuote is [Verifier.Verify] with per-quote options, returning the
// authenticated [Quote] too (nil if the quote was not authentic), for the
// caller to keep as the next quote's [VerifyOptions.Since].
func (v *Verifier) VerifyQuote(ctx context.Context, evidence []byte, opts VerifyOptions) (*attest.Result, *Quote, error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	if err := v.made(); err != nil {
		return nil, nil, err
	}
	now := v.cfg.Time()
	r := v.newResult(now)
	a := r.Submods[v.cfg.Submod]
	if len(evidence) > v.cfg.MaxSize {
		e := refuse(attest.ReasonTooLarge, nil, "%d bytes, limit %d", len(evidence), v.cfg.MaxSize)
		return v.refusal(r, e), nil, e
	}
	d := sha256.Sum256(evidence)
	a.EvidenceDigest = d[:]
	q, e := v.authenticate(evidence, now)
	if e != nil {
		return v.refusal(r, e), nil, e
	}
	if r.Evidence, e = q.attestEvidence(d[:]); e != nil {
		return v.refusal(r, e), q, e
	}
	r.Nonce = q.Attest.ExtraData
	if v.cfg.Nonces != nil {
		if err := v.cfg.Nonces.Consume(q.Attest.ExtraData); err != nil {
			var ve *attest.VerificationError
			if !errors.As(err, &ve) {
				ve = refuse(attest.ReasonNonceUnknown, err, "nonce")
			}
			return v.refusal(r, ve), q, ve
		}
	}
	if e := v.checkClock(q, opts); e != nil {
		return v.refusal(r, e), q, e
	}
	if len(v.cfg.ReferenceValues) == 0 {
		e := refuse(attest.ReasonNoReferenceValues, nil, "no reference PCR values configured")
		return v.refusal(r, e), q, e
	}
	var misses []string
	for _, rv := range v.cfg.ReferenceValues {
		miss := comparePCRs(q.Evidence.PCRs, rv)
		if miss == "" {
			a.TrustVector = attest.TrustVector{
				InstanceIdentity: attest.TrustRecognizedInstance,
				Hardware:         attest.TrustGenuineHardware,
				Executables:      attest.TrustApprovedRuntime,
			}
			a.Status = attest.StatusAffirming
			a.Reasons = nil
			return r, q, nil
		}
		misses = append(misses, miss)
	}
	e = refuse(attest.ReasonMeasurementMismatch, nil, "%s", strings.Join(misses, "; "))
	r = v.refusal(r, e)
	a.TrustVector = attest.TrustVector{
		InstanceIdentity: attest.TrustRecognizedInstance,
		Hardware:         attest.TrustGenuineHardware,
		Executables:      attest.TrustContraindicatedRuntime,
	}
	return r, q, e
}

// attestEvidence is what the authenticated quote establishes, as
// attest.Evidence (FormatTPM) for a relying party such as ca/enroll: the
// nonce; the ueid, when the AK certificate names its device in a
// hardwareModuleName (as ztm's "ak" profile issues it, its serial being
// the UEID); and, when the AK certified a key, that key as cnf.
func (q *Quote) attestEvidence(digest []byte) (*attest.Evidence, *attest.VerificationError) {
	c := &attest.Claims{Nonce: q.Attest.ExtraData}
	if len(q.AKChain) > 0 {
		hw, ok, err := identity.HardwareModuleNameFromExtensions(q.AKChain[0].Extensions)
		if err != nil {
			return nil, refuse(attest.ReasonUntrustedSigner, err, "AK certificate's hardwareModuleName")
		}
		if ok {
			c.UEID = hw.SerialNumber
		}
	}
	if q.CertifiedKey != nil {
		c.Confirmation = &attest.Confirmation{Key: q.CertifiedKey.Key}
	}
	return &attest.Evidence{Format: attest.FormatTPM, Claims: c, PublicKey: q.AK, Chain: q.AKChain, Digest: digest}, nil
}

// checkClock applies Config.RequireSafeClock and opts.Since.
func (v *Verifier) checkClock(q *Quote, opts VerifyOptions) *attest.VerificationError {
	ci := q.Attest.ClockInfo
	if v.cfg.RequireSafeClock && !ci.Safe {
		return refuse(attest.ReasonClockUnsafe, nil, "clockInfo.safe is NO: the TPM clock may have gone back")
	}
	prev := opts.Since
	if prev == nil {
		return nil
	}
	if prev.Attest == nil || !keystore.PublicKeysEqual(prev.AK, q.AK) {
		return refuse(attest.ReasonReboot, nil, "the earlier quote is from another attestation key")
	}
	pc := prev.Attest.ClockInfo
	switch {
	case ci.ResetCount != pc.ResetCount:
		return refuse(attest.ReasonReboot, nil, "TPM reset (reboot) since the earlier quote: resetCount %d, was %d", ci.ResetCount, pc.ResetCount)
	case ci.RestartCount != pc.RestartCount:
		return refuse(attest.ReasonReboot, nil, "TPM restart or resume since the earlier quote: restartCount %d, was %d", ci.RestartCount, pc.RestartCount)
	case ci.Clock < pc.Clock:
		return refuse(attest.ReasonReboot, nil, "TPM clock went back since the earlier quote: %d ms, was %d ms", ci.Clock, pc.Clock)
	}
	return nil
}

func comparePCRs(got map[int][]byte, rv ReferenceValues) string {
	idx := make([]int, 0, len(rv.PCRs))
	for i := range rv.PCRs {
		idx = append(idx, i)
	}
	sort.Ints(idx)
	for _, i := range idx {
		g, ok := got[i]
		switch {
		case !ok:
			return fmt.Sprintf("%s: PCR %d not quoted", rv.Name, i)
		case !bytes.Equal(g, rv.PCRs[i]):
			return fmt.Sprintf("%s: PCR %d is %x, want %x", rv.Name, i, g, rv.PCRs[i])
		}
	}
	return ""
}

func (v *Verifier) newResult(now time.Time) *attest.Result {
	return &attest.Result{
		Profile:    attest.EARProfile,
		IssuedAt:   now.Truncate(time.Second),
		VerifierID: v.cfg.VerifierID,
		Submods:    map[string]*attest.Appraisal{v.cfg.Submod: {PolicyID: v.cfg.PolicyID}},
	}
}

func (v *Verifier) refusal(r *attest.Result, e *attest.VerificationError) *attest.Result {
	a := r.Submods[v.cfg.Submod]
	a.Status = attest.StatusContraindicated
	a.Reasons = []string{e.Reason.String() + ": " + e.Detail}
	switch e.Reason {
	case attest.ReasonNonceUnknown, attest.ReasonNonceReused, attest.ReasonNonceExpired:
		a.TrustVector = attest.TrustVector{InstanceIdentity: attest.TrustUntrustworthyInstance}
	case attest.ReasonNoReferenceValues:
		a.TrustVector = attest.TrustVector{InstanceIdentity: attest.TrustRecognizedInstance, Hardware: attest.TrustUnrecognizedHardware}
	case attest.ReasonReboot, attest.ReasonClockUnsafe:
		// Authentic, but the runtime may not be the one attested before.
		a.TrustVector = attest.TrustVector{InstanceIdentity: attest.TrustRecognizedInstance, Hardware: attest.TrustGenuineHardware, Executables: attest.TrustUnrecognizedRuntime}
	default:
		a.TrustVector.SetAll(attest.TrustCryptoValidationFailed)
	}
	return r
}

// authenticate parses the evidence, finds and checks the AK, verifies the
// signature, parses the quote and checks the PCR values against its digest.
func (v *Verifier) authenticate(evidence []byte, now time.Time) (*Quote, *attest.VerificationError) {
	q, err := ParseEvidence(evidence, v.cfg.MaxSize)
	if err != nil {
		return nil, refuse(attest.ReasonMalformed, err, "TPM evidence")
	}
	var pub crypto.PublicKey
	var chain []*x509.Certificate
	if len(q.AKChain) > 0 {
		certs := make([]*x509.Certificate, len(q.AKChain))
		for i, der := range q.AKChain {
			if certs[i], err = x509.ParseCertificate(der); err != nil {
				return nil, refuse(attest.ReasonMalformed, err, "AK certificate %d", i)
			}
		}
		if _, err := attest.VerifyChain(certs, v.cfg.Roots, now); err != nil {
			var ve *attest.VerificationError
			if !errors.As(err, &ve) {
				ve = refuse(attest.ReasonUntrustedSigner, err, "AK certificate chain")
			}
			return nil, ve
		}
		pub, chain = certs[0].PublicKey, certs
	} else {
		var ok bool
		if pub, ok = v.cfg.KeyLookup(q.AKKeyID); !ok || pub == nil {
			return nil, refuse(attest.ReasonUntrustedSigner, nil, "AK key ID %q is not registered", q.AKKeyID)
		}
	}
	sig, err := ParseSignature(q.Signature)
	if err != nil {
		return nil, refuse(attest.ReasonMalformed, err, "TPMT_SIGNATURE")
	}
	h, e := checkScheme(sig, pub)
	if e != nil {
		return nil, e
	}
	h.Write(q.Attest)
	digest := h.Sum(nil)
	if e := verifySignature(sig, pub, digest); e != nil {
		return nil, e
	}
	att, err := ParseAttest(q.Attest)
	if err != nil {
		return nil, refuse(attest.ReasonMalformed, err, "TPMS_ATTEST")
	}
	if e := checkPCRValues(q, att, newHash(sig.Hash)); e != nil {
		return nil, e
	}
	out := &Quote{Evidence: q, Attest: att, AK: pub, AKChain: chain}
	if len(q.Certification) > 0 {
		p, err := CertifiedKey(q.Certification, q.CertificationSignature, pub, att.ExtraData, q.CertifiedPublic)
		if err != nil {
			return nil, err.(*attest.VerificationError)
		}
		out.CertifiedKey = p
	}
	return out, nil
}

// checkPCRValues checks that the evidence's PCR values are exactly the
// quoted ones: that they hash, bank by bank in selection order, to the
// signed digest. The values travel unsigned. A bank or PCR selected twice
// would let the counts match while the evidence carries a value no
// selection covers: refused.
func checkPCRValues(q *Evidence, att *Attest, ph hash.Hash) *attest.VerificationError {
	banks := make(map[uint16]bool, len(att.PCRSelection))
	for _, sel := range att.PCRSelection {
		if bankSize(sel.Hash) == 0 {
			return refuse(attest.ReasonMalformed, nil, "quote selects PCRs of bank %#x, which ztm cannot hash", sel.Hash)
		}
		if banks[sel.Hash] {
			return refuse(attest.ReasonMalformed, nil, "quote selects bank %#x twice", sel.Hash)
		}
		banks[sel.Hash] = true
	}
	for _, sel := range att.PCRSelection {
		vals := q.PCRs
		if sel.Hash != algSHA256 {
			vals = q.OtherBanks[sel.Hash]
		}
		for _, i := range sel.PCRs {
			val, ok := vals[i]
			if !ok {
				return refuse(attest.ReasonBadSignature, nil, "quoted PCR %d of bank %#x has no value in the evidence", i, sel.Hash)
			}
			ph.Write(val)
		}
		if len(sel.PCRs) != len(vals) {
			return refuse(attest.ReasonBadSignature, nil, "evidence carries %d PCR values of bank %#x, the quote covers %d", len(vals), sel.Hash, len(sel.PCRs))
		}
	}
	// Banks the evidence carries but the quote does not select.
	if !banks[algSHA256] && len(q.PCRs) > 0 {
		return refuse(attest.ReasonBadSignature, nil, "evidence carries SHA-256 PCR values the quote does not cover")
	}
	for bank := range q.OtherBanks {
		if !banks[bank] {
			return refuse(attest.ReasonBadSignature, nil, "evidence carries PCR values of bank %#x the quote does not cover", bank)
		}
	}
	if !bytes.Equal(ph.Sum(nil), att.PCRDigest) {
		return refuse(attest.ReasonBadSignature, nil, "PCR values do not match the quoted PCR digest")
	}
	return nil
}

func newHash(alg uint16) hash.Hash {
	switch alg {
	case algSHA384:
		return sha512.New384()
	case algSHA512:
		return sha512.New()
	}
	return sha256.New()
}

// checkScheme checks that the signature scheme is one the AK's key type
// makes, with an acceptable hash, and returns that hash.
func checkScheme(sig *Signature, pub crypto.PublicKey) (hash.Hash, *attest.VerificationError) {
	switch sig.Hash {
	case algSHA256, algSHA384, algSHA512:
	case algSHA1:
		return nil, refuse(attest.ReasonUnsupportedAlgorithm, nil, "SHA-1 signatures are refused")
	default:
		return nil, refuse(attest.ReasonUnsupportedAlgorithm, nil, "signature hash %#x", sig.Hash)
	}
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if sig.Alg != algECDSA {
			return nil, refuse(attest.ReasonAlgorithmMismatch, nil, "signature scheme %#x from an ECDSA AK", sig.Alg)
		}
		want := map[elliptic.Curve]uint16{elliptic.P256(): algSHA256, elliptic.P384(): algSHA384}[k.Curve]
		if want == 0 {
			return nil, refuse(attest.ReasonUnsupportedAlgorithm, nil, "AK on curve %s", k.Curve.Params().Name)
		}
		if sig.Hash != want {
			return nil, refuse(attest.ReasonAlgorithmMismatch, nil, "hash %#x with a %s AK", sig.Hash, k.Curve.Params().Name)
		}
	case *rsa.PublicKey:
		if sig.Alg != algRSASSA && sig.Alg != algRSAPSS {
			return nil, refuse(attest.ReasonAlgorithmMismatch, nil, "signature scheme %#x from an RSA AK", sig.Alg)
		}
		if k.N.BitLen() < 2048 {
			return nil, refuse(attest.ReasonUnsupportedAlgorithm, nil, "RSA-%d AK", k.N.BitLen())
		}
	default:
		return nil, refuse(attest.ReasonUnsupportedAlgorithm, nil, "AK of type %T", pub)
	}
	return newHash(sig.Hash), nil
}

func cryptoHash(alg uint16) crypto.Hash {
	switch alg {
	case algSHA384:
		return crypto.SHA384
	case algSHA512:
		return crypto.SHA512
	}
	return crypto.SHA256
}

func verifySignature(sig *Signature, pub crypto.PublicKey, digest []byte) *attest.VerificationError {
	ok := false
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		r, s := new(big.Int).SetBytes(sig.R), new(big.Int).SetBytes(sig.S)
		ok = ecdsa.Verify(k, digest, r, s)
	case *rsa.PublicKey:
		var err error
		if sig.Alg == algRSASSA {
			err = rsa.VerifyPKCS1v15(k, cryptoHash(sig.Hash), digest, sig.RSA)
		} else {
			err = rsa.VerifyPSS(k, cryptoHash(sig.Hash), digest, sig.RSA, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto})
		}
		ok = err == nil
	}
	if !ok {
		return refuse(attest.ReasonBadSignature, nil, "signature does not verify with the AK")
	}
	return nil
}
