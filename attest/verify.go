package attest

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/veraison/go-cose"

	"github.com/ztmkit/ztm/identity"
	"github.com/ztmkit/ztm/identity/keystore"
	"github.com/ztmkit/ztm/internal/detcbor"
	"github.com/ztmkit/ztm/internal/errfmt"
	"github.com/ztmkit/ztm/internal/sign1"
)

// DefaultMaxSize is the size limit on a token when [Config.MaxSize] is zero.
const DefaultMaxSize = 64 << 10

// DefaultClockSkew is the allowance for clock differences between a
// token's signer and its reader when [Config.ClockSkew] or
// [ResultOptions.ClockSkew] is zero: a token is accepted until its exp plus
// one minute, and from its nbf less one minute.
const DefaultClockSkew = time.Minute

// checkValidity refuses a token whose exp (if set) is not after
// now - skew, or whose nbf (if set) is after now + skew (RFC 7519 §4.1.4:
// "on or after" exp is refused). skew 0 is [DefaultClockSkew], a negative
// skew none.
func checkValidity(exp, nbf, now time.Time, skew time.Duration) *VerificationError {
	switch {
	case skew == 0:
		skew = DefaultClockSkew
	case skew < 0:
		skew = 0
	}
	if !exp.IsZero() && !now.Add(-skew).Before(exp) {
		return verr(ReasonExpired, nil, "exp %s, now %s (allowing %s)", exp.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339), skew)
	}
	if !nbf.IsZero() && now.Add(skew).Before(nbf) {
		return verr(ReasonNotYetValid, nil, "nbf %s, now %s (allowing %s)", nbf.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339), skew)
	}
	return nil
}

// Verifier appraises attestation evidence. Implementations are safe for
// concurrent use. [NewVerifier] returns one for EAT evidence (CWT and JWT);
// package [github.com/ztmkit/ztm/attest/tpm] has one for TPM 2.0 quotes.
type Verifier interface {
	// Verify checks the evidence's form, signature, signer, freshness and
	// claims, and appraises it against reference values.
	//
	// It returns a Result for every evidence it could examine, accepted or
	// not. A refusal returns an error wrapping [ErrVerification] (with a
	// [*VerificationError] that names the reason) together with a Result
	// whose status is contraindicated and whose reasons say why. Evidence
	// that appraises as affirming or warning returns a nil error; callers
	// that accept only affirming evidence check [Result.Status]. Only a
	// done ctx gives a nil Result.
	Verify(ctx context.Context, evidence []byte) (*Result, error)
}

// Format is the form of a piece of evidence.
type Format int

// The evidence forms ztm reads.
const (
	// FormatCWT is a tagged COSE_Sign1 (RFC 9052) carrying a CBOR claims
	// set, optionally inside the CWT tag 61 (RFC 8392).
	FormatCWT Format = iota + 1
	// FormatJWT is a JWS compact serialization (RFC 7515) carrying a JSON
	// claims set.
	FormatJWT
	// FormatTPM is a TPM 2.0 quote (package attest/tpm); its Claims are
	// what the quote and its AK certificate establish: the nonce, the ueid
	// an AK certificate's hardwareModuleName names, and the cnf of a key
	// the AK certified (TPM2_Certify).
	FormatTPM
)

// String returns "CWT", "JWT" or "TPM".
func (f Format) String() string {
	switch f {
	case FormatCWT:
		return "CWT"
	case FormatJWT:
		return "JWT"
	case FormatTPM:
		return "TPM"
	}
	return fmt.Sprintf("Format(%d)", int(f))
}

// Config configures an EAT [Verifier]. Its zero value works and trusts no
// signer; set Roots or Keys.
type Config struct {
	// Roots are the trust anchors (chip vendors' attestation CAs) that an
	// x5chain / x5c must lead to. If nil, no chain is trusted: the system
	// roots are never used.
	Roots *x509.CertPool
	// Keys are the registered attestation keys by key ID (the kid header,
	// compared as bytes), copied when the verifier is made: a convenience
	// for a fixed set. Set KeyLookup instead to register keys while the
	// verifier runs; setting both is an error.
	Keys map[string]crypto.PublicKey
	// KeyLookup finds a registered attestation key by key ID each time
	// evidence names one, so that keys registered later (a new chip lot's
	// attestation keys) are accepted without making a new verifier:
	// (*KeySet).Lookup, or a lookup in the line's own registry. If nil,
	// Keys is used.
	KeyLookup KeyLookup
	// Nonces issues and consumes the challenges. If nil, the nonce claim is
	// neither required nor checked.
	//
	// WARNING: without Nonces, replayed evidence is accepted.
	Nonces *Nonces
	// ReferenceValues are the reference values per (oemid, hwmodel).
	// Evidence from a device with none is contraindicated.
	ReferenceValues []ReferenceValues
	// MaxSize is the largest token, in bytes, that is parsed at all. If
	// zero, DefaultMaxSize (64 KiB) is used.
	MaxSize int
	// Time returns the current time, for certificate validity, the
	// evidence's exp and nbf, and the result's iat. If nil, time.Now is
	// used.
	Time func() time.Time
	// ClockSkew is the allowance for the device's clock when checking the
	// evidence's exp and nbf (RFC 7519 §4.1.4–5, RFC 8392 §3.1.4–5). If
	// zero, [DefaultClockSkew] is used; a negative value allows none.
	ClockSkew time.Duration
	// VerifierID names this verifier in results (ear.verifier-id).
	VerifierID VerifierID
	// PolicyID is ear.appraisal-policy-id in results. If empty,
	// "ztm/attest/default" is used.
	PolicyID string
	// Submod names the appraisal in the result's submods. If empty,
	// "device" is used.
	Submod string
}

// Clone returns a copy of c that shares no maps or slices with it (the
// public keys, the pool, KeyLookup and Nonces are shared).
func (c *Config) Clone() *Config {
	n := *c
	if c.Keys != nil {
		n.Keys = make(map[string]crypto.PublicKey, len(c.Keys))
		for k, v := range c.Keys {
			n.Keys[k] = v
		}
	}
	if c.ReferenceValues != nil {
		n.ReferenceValues = make([]ReferenceValues, len(c.ReferenceValues))
		for i := range c.ReferenceValues {
			n.ReferenceValues[i] = *c.ReferenceValues[i].clone(0)
		}
	}
	return &n
}

// Evidence is evidence whose signature and signer have been checked, before
// appraisal.
type Evidence struct {
	// Format is the evidence form.
	Format Format
	// Claims are the signed claims.
	Claims *Claims
	// Algorithm is the signature algorithm, from the protected header.
	Algorithm keystore.Algorithm
	// KeyID is the kid that named a registered key, or nil.
	KeyID []byte
	// PublicKey is the key the signature verified with: the registered
	// key KeyID named, or the leaf of Chain.
	PublicKey crypto.PublicKey
	// Chain is the verified chain, leaf first, ending at a trust anchor,
	// when the signer was named by x5chain / x5c; otherwise nil.
	// Its certificates may be shared with other Evidence (an
	// EATVerifier remembers the x5chains it verified); do not modify them.
	Chain []*x509.Certificate
	// Digest is the SHA-256 of the exact evidence bytes.
	Digest []byte
}

// EATVerifier verifies EAT evidence in CWT and JWT form. It is safe for
// concurrent use.
//
// It remembers the last 256 CWT x5chains it verified to its Roots, by
// their exact bytes, and up to 64 of the intermediates (or roots) the
// chains carried, parsed: the same chain is served without a parse and a
// path build while every certificate of it is valid, and the evidence's
// own signature, nonce and claims are checked every time.
type EATVerifier struct {
	cfg    Config
	keys   *keyCache
	refs   map[refKey]*reference
	chains *chainCache // verified x5chains; see verifyChain
}

var _ Verifier = (*EATVerifier)(nil)

// NewVerifier returns a verifier for cfg, which it copies. It returns an
// error for reference values that repeat an (oemid, hwmodel) pair or are
// malformed, and one wrapping [ErrInvalidConfig] for a Config that sets both
// Keys and KeyLookup; a registered key of an unsupported type is reported
// when used.
func NewVerifier(cfg Config) (*EATVerifier, error) {
	if cfg.Keys != nil && cfg.KeyLookup != nil {
		return nil, fmt.Errorf("%w: set Config.Keys or Config.KeyLookup, not both", ErrInvalidConfig)
	}
	v := &EATVerifier{cfg: *cfg.Clone(), chains: newChainCache(0, 0)}
	lookup := v.cfg.KeyLookup
	if lookup == nil {
		lookup = mapLookup(v.cfg.Keys)
	}
	v.keys = &keyCache{lookup: lookup}
	if v.cfg.MaxSize <= 0 {
		v.cfg.MaxSize = DefaultMaxSize
	}
	if v.cfg.Time == nil {
		v.cfg.Time = time.Now
	}
	if v.cfg.PolicyID == "" {
		v.cfg.PolicyID = "ztm/attest/default"
	}
	if v.cfg.Submod == "" {
		v.cfg.Submod = "device"
	}
	refs, err := indexReferenceValues(v.cfg.ReferenceValues)
	if err != nil {
		return nil, err
	}
	v.refs = refs
	return v, nil
}

// Verify implements [Verifier] for CWT and JWT evidence: it detects the form
// by the first byte (a CBOR tag or a base64url JOSE header), checks it like
// [EATVerifier.Decode], requires ueid, oemid and hwmodel (and eat_nonce when
// Config.Nonces is set), consumes the nonce, and appraises the claims
// against the reference values for their (oemid, hwmodel).
func (v *EATVerifier) Verify(ctx context.Context, evidence []byte) (*Result, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := v.made(); err != nil {
		return nil, err
	}
	now := v.cfg.Time()
	ev, verr := v.decode(evidence, now)
	if verr != nil {
		return v.refusal(now, evidence, nil, verr), verr
	}
	return v.appraise(now, ev)
}

// Nonces returns the nonce issuer of the verifier's configuration (nil if
// none): a jig asks it for the challenge it sends the device.
func (v *EATVerifier) Nonces() *Nonces {
	if v == nil {
		return nil
	}
	return v.cfg.Nonces
}

// WithoutNonces returns a verifier that checks evidence as v does (the
// same trust anchors, key lookup, reference values and clock) but neither
// requires nor consumes a nonce, for a party that compares the evidence's
// nonce with the one it asked for while the nonces' issuer consumes it
// later: a station (package ztm) appraising evidence before its CA does.
// One verifier configured once thus serves both; ztm.NewStation calls this
// itself. A v not made by NewVerifier is returned as it is (it refuses
// everything).
//
// WARNING: the returned verifier accepts replayed evidence unless its
// caller checks the nonce claim.
func (v *EATVerifier) WithoutNonces() *EATVerifier {
	if v.made() != nil {
		return v
	}
	n := *v
	n.cfg.Nonces = nil
	return &n
}

// made returns an error, wrapping ErrInvalidConfig and ErrVerification, for
// a verifier not made by NewVerifier (a zero EATVerifier), which refuses
// everything.
func (v *EATVerifier) made() error {
	if v == nil || v.cfg.Time == nil {
		return errfmt.Errorf("attest: ", "%w: EATVerifier not made by NewVerifier: %w", ErrInvalidConfig, ErrVerification)
	}
	return nil
}

// Decode checks evidence without appraising it or consuming its nonce: size,
// strict encoding, algorithm, signer trust and signature. It returns an
// error wrapping [ErrVerification] on any failure.
func (v *EATVerifier) Decode(evidence []byte) (*Evidence, error) {
	if err := v.made(); err != nil {
		return nil, err
	}
	ev, err := v.decode(evidence, v.cfg.Time())
	if err != nil {
		return nil, err
	}
	return ev, nil
}

func (v *EATVerifier) decode(evidence []byte, now time.Time) (*Evidence, *VerificationError) {
	if len(evidence) > v.cfg.MaxSize {
		return nil, verr(ReasonTooLarge, nil, "%d bytes, limit %d", len(evidence), v.cfg.MaxSize)
	}
	if len(evidence) == 0 {
		return nil, verr(ReasonMalformed, nil, "empty token")
	}
	var ev *Evidence
	var e *VerificationError
	switch evidence[0] {
	case 0xd2, 0xd8:
		ev, e = v.decodeCWT(evidence, now)
	case 'e':
		ev, e = v.decodeJWT(evidence, now)
	default:
		return nil, verr(ReasonMalformed, nil, "neither a tagged COSE_Sign1 nor a JWS compact serialization")
	}
	if e != nil {
		return nil, e
	}
	if e := checkValidity(ev.Claims.Expiry, ev.Claims.NotBefore, now, v.cfg.ClockSkew); e != nil {
		return nil, e
	}
	if e := signerNamesDevice(ev); e != nil {
		return nil, e
	}
	d := sha256.Sum256(evidence)
	ev.Digest = d[:]
	return ev, nil
}

// signerNamesDevice binds an attestation key to its device when its
// certificate says which: a leaf with a hardwareModuleName (as ztm's CA
// issues under the "ak" profile, the serial being the device's UEID) signs
// only evidence whose ueid is that serial, so that one extracted key
// cannot speak for every device. A leaf without one binds nothing here.
func signerNamesDevice(ev *Evidence) *VerificationError {
	if len(ev.Chain) == 0 {
		return nil
	}
	hw, ok, err := identity.HardwareModuleNameFromExtensions(ev.Chain[0].Extensions)
	switch {
	case err != nil:
		return verr(ReasonUntrustedSigner, err, "attestation-key certificate's hardwareModuleName")
	case ok && !bytes.Equal(hw.SerialNumber, ev.Claims.UEID):
		return verr(ReasonUntrustedSigner, nil, "attestation-key certificate is for device %x, the evidence's ueid is %x", hw.SerialNumber, ev.Claims.UEID)
	}
	return nil
}

// coseAlgorithm maps a COSE algorithm value to a ztm algorithm.
func coseAlgorithm(a int64) (keystore.Algorithm, bool) {
	for _, alg := range keystore.Algorithms() {
		if alg.COSE() == a {
			return alg, true
		}
	}
	return 0, false
}

// coseHeader is what ztm reads of a COSE header map.
type coseHeader struct {
	hasAlg  bool
	alg     cbor.RawMessage
	hasCrit bool
	hasKid  bool
	kid     cbor.RawMessage
	x5chain cbor.RawMessage
}

// headerFast is the common header map (alg, kid, x5chain) decoded in one
// pass; any other label sends decoding to the general path.
type headerFast struct {
	Alg     cbor.RawMessage `cbor:"1,keyasint"`
	Kid     cbor.RawMessage `cbor:"4,keyasint"`
	X5Chain cbor.RawMessage `cbor:"33,keyasint"`
}

// decodeProtected strictly decodes a protected header map (duplicate
// labels are errors), whose labels may be integers or text.
func decodeProtected(raw []byte) (coseHeader, error) {
	var h coseHeader
	if len(raw) == 0 || (len(raw) == 1 && raw[0] == 0xa0) {
		return h, nil
	}
	if raw[0]>>5 != 5 {
		return h, errors.New("header is not a map")
	}
	var f headerFast
	err := detcbor.Unmarshal(raw, &f, len(raw))
	if err == nil {
		h.hasAlg, h.alg = f.Alg != nil, f.Alg
		h.hasKid, h.kid = f.Kid != nil, f.Kid
		h.x5chain = f.X5Chain
		return h, nil
	}
	var uf *cbor.UnknownFieldError
	if !errors.As(err, &uf) {
		return h, err
	}
	var m map[any]cbor.RawMessage
	if err := detcbor.Unmarshal(raw, &m, len(raw)); err != nil {
		return h, err
	}
	h.alg, h.hasAlg = sign1.Label(m, sign1.HeaderAlg)
	_, h.hasCrit = sign1.Label(m, sign1.HeaderCrit)
	h.kid, h.hasKid = sign1.Label(m, sign1.HeaderKid)
	h.x5chain, _ = sign1.Label(m, sign1.HeaderX5Chain)
	return h, nil
}

// bstr returns the contents of raw, one byte string item.
func bstr(raw cbor.RawMessage) ([]byte, bool) {
	r := cborReader(raw)
	b, ok := r.bytes(2)
	return b, ok && len(r) == 0
}

// parseSign1 strictly decodes a tagged COSE_Sign1 (optionally inside the CWT
// tag) into its protected header bytes and map, unprotected map, payload and
// signature. Only kid may be unprotected: it is a hint that the signature
// check confirms (alg there is refused by protectedAlgorithm, with
// ReasonAlgorithmUnprotected).
func parseSign1(data []byte, maxSize int) (protRaw []byte, prot, unprot coseHeader, payload, sig []byte, e *VerificationError) {
	env, err := sign1.Decode(data, sign1.DecodeOptions{CWTTag: true, MaxSize: maxSize})
	if err != nil {
		e = verr(ReasonMalformed, err, "COSE_Sign1 (the payload must be attached, the signature non-empty)")
		return
	}
	u, bad, err := sign1.CheckUnprotected(env.Unprotected, sign1.HeaderAlg, sign1.HeaderKid)
	if err != nil {
		e = verr(ReasonMalformed, err, "unprotected header")
		return
	}
	if bad != "" {
		e = verr(ReasonMalformed, nil, "unprotected header label %s not allowed: the signature does not cover it (only kid may be unprotected)", bad)
		return
	}
	unprot.alg, unprot.hasAlg = sign1.Label(u, sign1.HeaderAlg)
	unprot.kid, unprot.hasKid = sign1.Label(u, sign1.HeaderKid)
	if prot, err = decodeProtected(env.Protected); err != nil {
		e = verr(ReasonMalformed, err, "protected header")
		return
	}
	return env.Protected, prot, unprot, env.Payload, env.Signature, nil
}

// protectedAlgorithm reads alg, which must be in the protected header only.
func protectedAlgorithm(prot, unprot coseHeader) (keystore.Algorithm, *VerificationError) {
	if unprot.hasAlg {
		return 0, verr(ReasonAlgorithmUnprotected, nil, "alg in the unprotected header")
	}
	if prot.hasCrit {
		return 0, verr(ReasonMalformed, nil, "critical header parameters are not understood")
	}
	if !prot.hasAlg {
		return 0, verr(ReasonUnsupportedAlgorithm, nil, "no alg in the protected header")
	}
	var a int64
	if err := detcbor.DecMode().Unmarshal(prot.alg, &a); err != nil {
		return 0, verr(ReasonUnsupportedAlgorithm, err, "alg is not an integer")
	}
	alg, ok := coseAlgorithm(a)
	if !ok {
		return 0, verr(ReasonUnsupportedAlgorithm, nil, "COSE algorithm %d", a)
	}
	return alg, nil
}

func (v *EATVerifier) decodeCWT(data []byte, now time.Time) (*Evidence, *VerificationError) {
	protRaw, prot, unprot, payload, sig, e := parseSign1(data, v.cfg.MaxSize)
	if e != nil {
		return nil, e
	}
	alg, e := protectedAlgorithm(prot, unprot)
	if e != nil {
		return nil, e
	}
	ev := &Evidence{Format: FormatCWT, Algorithm: alg}
	var pub crypto.PublicKey
	var cv cose.Verifier
	if prot.x5chain != nil {
		ders, err := sign1.ParseX5Chain(prot.x5chain)
		if err != nil {
			return nil, verr(ReasonMalformed, err, "x5chain")
		}
		chain, e := v.verifyChain(ders, now)
		if e != nil {
			return nil, e
		}
		ev.Chain = chain
		pub = chain[0].PublicKey
	} else {
		kidRaw, ok := prot.kid, prot.hasKid
		if !ok {
			// kid is only a hint: the key it names must verify the
			// signature, so it may be unprotected (RFC 9052 §3.1).
			kidRaw, ok = unprot.kid, unprot.hasKid
		}
		if !ok {
			return nil, verr(ReasonUntrustedSigner, nil, "neither x5chain nor kid names the signer")
		}
		kid, ok := bstr(kidRaw)
		if !ok {
			return nil, verr(ReasonMalformed, nil, "kid is not a byte string")
		}
		rk, e := v.registered(kid)
		if e != nil {
			return nil, e
		}
		ev.KeyID = kid
		pub, cv = rk.pub, rk.cose
	}
	if e := checkAlgorithm(alg, pub); e != nil {
		return nil, e
	}
	ev.PublicKey = pub
	if cv == nil {
		var err error
		if cv, err = cose.NewVerifier(coseAlg(alg), pub); err != nil {
			return nil, verr(ReasonUntrustedSigner, err, "signer key")
		}
	}
	if err := sign1.Verify(cv, protRaw, payload, sig); err != nil {
		return nil, verr(ReasonBadSignature, err, "COSE_Sign1")
	}
	var c Claims
	if err := c.decodeCBOR(payload, 0); err != nil {
		return nil, verr(ReasonMalformed, err, "claims")
	}
	ev.Claims = &c
	return ev, nil
}

func (v *EATVerifier) registered(kid []byte) (*registeredKey, *VerificationError) {
	rk := v.keys.get(kid)
	if rk == nil {
		return nil, verr(ReasonUntrustedSigner, nil, "kid %q is not registered", kid)
	}
	if rk.err != nil {
		return nil, verr(ReasonUntrustedSigner, rk.err, "registered key %q", kid)
	}
	return rk, nil
}

func checkAlgorithm(alg keystore.Algorithm, pub crypto.PublicKey) *VerificationError {
	keyAlg, err := keystore.AlgorithmOf(pub)
	if err != nil {
		return verr(ReasonUntrustedSigner, err, "signer key")
	}
	if keyAlg != alg {
		return verr(ReasonAlgorithmMismatch, nil, "header says %v, key is %v", alg, keyAlg)
	}
	return nil
}

// verifyChain parses a chain (leaf first) and verifies it to the roots at
// now; the leaf must carry the digitalSignature key usage. A chain with
// the same bytes verified before to the same roots is taken from the
// verifier's cache while every certificate of it is valid at now (see
// chainCache); the signature over the evidence is checked every
// time.
func (v *EATVerifier) verifyChain(ders [][]byte, now time.Time) ([]*x509.Certificate, *VerificationError) {
	chain, err := v.chains.Verify(ders, v.cfg.Roots, now, verifyChainErr)
	return chainResult(chain, err)
}

// verifyChainErr is verifyChain as a chainVerifyFunc.
func verifyChainErr(certs []*x509.Certificate, roots *x509.CertPool, now time.Time) ([]*x509.Certificate, error) {
	chain, e := verifyChain(certs, roots, now)
	if e != nil {
		return nil, e
	}
	return chain, nil
}

// chainResult turns a chainCache's answer into verifyChain's.
func chainResult(chain []*x509.Certificate, err error) ([]*x509.Certificate, *VerificationError) {
	if err == nil {
		return chain, nil
	}
	var pe *chainParseError
	if errors.As(err, &pe) {
		return nil, verr(ReasonMalformed, pe.err, "certificate %d of the chain", pe.index)
	}
	var ve *VerificationError
	if errors.As(err, &ve) {
		return nil, ve
	}
	return nil, verr(ReasonUntrustedSigner, err, "attestation key certificate")
}

// VerifyChain verifies certs (leaf first, then intermediates) to roots at
// now and checks that the leaf may sign (key usage digitalSignature). It
// returns the verified chain, leaf first, ending at a root. A nil roots
// trusts nothing. Errors are [*VerificationError]s with
// [ReasonUntrustedSigner], wrapping [ErrVerification] and
// [ErrUntrustedSigner].
func VerifyChain(certs []*x509.Certificate, roots *x509.CertPool, now time.Time) ([]*x509.Certificate, error) {
	chain, e := verifyChain(certs, roots, now)
	if e != nil {
		return nil, e
	}
	return chain, nil
}

func verifyChain(certs []*x509.Certificate, roots *x509.CertPool, now time.Time) ([]*x509.Certificate, *VerificationError) {
	if len(certs) == 0 {
		return nil, verr(ReasonUntrustedSigner, nil, "empty certificate chain")
	}
	if roots == nil {
		return nil, verr(ReasonUntrustedSigner, nil, "no trust anchors configured")
	}
	leaf := certs[0]
	opts := x509.VerifyOptions{
		Roots:       roots,
		CurrentTime: now,
		KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	}
	// First the leaf against the anchors alone: a leaf a root issued needs
	// one signature check, where the pool of the chain's other certificates
	// would add one more for a chain that carries its root (x5chain often
	// does, and crypto/x509 tries that copy as an intermediate as well).
	// Only a success is taken: more intermediates can only add chains, and
	// crypto/x509 tries the roots first, so the chain found is the one the
	// full verification returns first. Any failure, or a chain through
	// intermediates, is decided by the full verification below.
	chains, err := leaf.Verify(opts)
	if err != nil && len(certs) > 1 {
		inter := x509.NewCertPool()
		for _, c := range certs[1:] {
			inter.AddCert(c)
		}
		opts.Intermediates = inter
		chains, err = leaf.Verify(opts)
	}
	if err != nil {
		return nil, verr(ReasonUntrustedSigner, err, "attestation key certificate")
	}
	if leaf.KeyUsage&x509.KeyUsageDigitalSignature == 0 {
		return nil, verr(ReasonUntrustedSigner, nil, "attestation key certificate lacks the digitalSignature key usage")
	}
	return chains[0], nil
}

func (v *EATVerifier) decodeJWT(data []byte, now time.Time) (*Evidence, *VerificationError) {
	j, e := parseJWS(data)
	if e != nil {
		return nil, e
	}
	ev := &Evidence{Format: FormatJWT, Algorithm: j.alg}
	var pub crypto.PublicKey
	var cv cose.Verifier
	switch {
	case j.x5c != nil:
		certs, e := j.certificates()
		if e != nil {
			return nil, e
		}
		chain, e := verifyChain(certs, v.cfg.Roots, now)
		if e != nil {
			return nil, e
		}
		ev.Chain = chain
		pub = chain[0].PublicKey
	case len(j.kid) > 0:
		rk, e := v.registered(j.kid)
		if e != nil {
			return nil, e
		}
		ev.KeyID = j.kid
		pub, cv = rk.pub, rk.cose
	default:
		return nil, verr(ReasonUntrustedSigner, nil, "neither x5c nor kid names the signer")
	}
	if e := checkAlgorithm(j.alg, pub); e != nil {
		return nil, e
	}
	ev.PublicKey = pub
	if e := j.verify(cv, pub, "JWS"); e != nil {
		return nil, e
	}
	var c Claims
	if err := c.decodeJSON(j.payload, 0); err != nil {
		return nil, verr(ReasonMalformed, err, "claims")
	}
	ev.Claims = &c
	return ev, nil
}
