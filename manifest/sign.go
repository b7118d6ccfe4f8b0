package manifest

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/veraison/go-cose"

	"github.com/ztmkit/ztm/identity/keystore"
	"github.com/ztmkit/ztm/internal/detcbor"
	"github.com/ztmkit/ztm/internal/sign1"
)

// Content types of the protected header (label 3), as CoAP
// Content-Format numbers (RFC 9052 §3.1 allows a uint in place of a media
// type string). They lie in the experimental range of the CoAP
// Content-Formats registry (65000–65535, RFC 7252 §12.3), beside
// attest.MeasurementContentFormat (65090), until registered. A number
// rather than a media type string ("application/vnd.ztm.step+cbor") keeps
// 29 bytes out of every signed step.
const (
	// StepContentType is the content type of a signed step's payload.
	StepContentType uint64 = 65091
	// PolicyContentType is the content type of a signed policy's payload.
	PolicyContentType uint64 = 65092
)

// cwtWire is the CWT claims header (RFC 9597): iss 1, sub 2, iat 6.
type cwtWire struct {
	Iss string `cbor:"1,keyasint,omitempty"`
	Sub string `cbor:"2,keyasint,omitempty"`
	Iat uint64 `cbor:"6,keyasint,omitempty"`
}

// protectedWire is the protected header we write. Field order does not
// matter: the encoder sorts keys canonically.
type protectedWire struct {
	Alg         int64   `cbor:"1,keyasint"`
	ContentType uint64  `cbor:"3,keyasint"`
	KID         []byte  `cbor:"4,keyasint,omitempty"`
	CWT         cwtWire `cbor:"15,keyasint"`
	X5Chain     any     `cbor:"33,keyasint,omitempty"`
	X5T         *Digest `cbor:"34,keyasint,omitempty"`
}

// protectedIn is the protected header as read: unknown labels are refused.
type protectedIn struct {
	Alg         cbor.RawMessage `cbor:"1,keyasint"`
	ContentType cbor.RawMessage `cbor:"3,keyasint"`
	KID         []byte          `cbor:"4,keyasint"`
	CWT         *cwtWire        `cbor:"15,keyasint"`
	X5Chain     cbor.RawMessage `cbor:"33,keyasint"`
	X5T         *Digest         `cbor:"34,keyasint"`
}

// SignOptions says how a [StepSigner] identifies its key. The zero value
// gives a kid equal to the key's [KeyThumbprint] value.
type SignOptions struct {
	// Issuer is the CWT iss claim: who signs (a partner or station name).
	// Required.
	Issuer string
	// KeyID is the kid (label 4). If nil and CertChain is empty, the
	// 32-byte SHA-256 [KeyThumbprint] of the key is used. Ignored if
	// CertChain is set.
	KeyID []byte
	// CertChain, if set, is the signer's certificate chain, leaf first,
	// sent as x5chain (label 33, RFC 9360) instead of a kid. The leaf must
	// certify the signing key. (A [Chain] is a device's chain of steps.)
	CertChain []*x509.Certificate
	// CertChainByDigest, with CertChain, names the leaf certificate by
	// its SHA-256 digest (x5t, label 34, RFC 9360 §2) instead of sending
	// the chain: about 40 bytes instead of 400 to 800 a step. Verifiers
	// must then already hold the chain ([VerifyOptions.Certificates]).
	CertChainByDigest bool
}

// StepSigner signs steps with one key. Build it once with [NewStepSigner]
// and reuse it; it is safe for concurrent use if its key is. Its Sign is
// the one way a step is signed: [SignStep] and ztm.Station.Record call it.
type StepSigner struct {
	alg     keystore.Algorithm
	signer  cose.Signer
	issuer  string
	kid     []byte
	x5chain any
	x5t     *Digest
	chain   []*x509.Certificate
	thumb   Digest
}

// NewStepSigner returns a signer for key (a [keystore.Key] or any
// crypto.Signer of an algorithm [keystore.AlgorithmOf] accepts).
func NewStepSigner(key crypto.Signer, opts SignOptions) (*StepSigner, error) {
	if key == nil {
		return nil, errors.New("manifest: nil signing key")
	}
	if opts.Issuer == "" || len(opts.Issuer) > MaxNameLen {
		return nil, fmt.Errorf("manifest: issuer must be 1 to %d bytes", MaxNameLen)
	}
	alg, err := keystore.AlgorithmOf(key.Public())
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnsupportedAlgorithm, err)
	}
	cs, err := sign1.NewSigner(key, alg)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnsupportedAlgorithm, err)
	}
	thumb, err := KeyThumbprint(key.Public())
	if err != nil {
		return nil, err
	}
	s := &StepSigner{alg: alg, signer: cs, issuer: opts.Issuer, thumb: thumb}
	switch {
	case len(opts.CertChain) > 0:
		lt, err := KeyThumbprint(opts.CertChain[0].PublicKey)
		if err != nil || !lt.Equal(thumb) {
			return nil, errors.New("manifest: the chain's leaf certificate does not certify the signing key")
		}
		if opts.CertChainByDigest {
			d := Sum(SHA256, opts.CertChain[0].Raw)
			s.x5t = &d
			break
		}
		s.chain = slices.Clone(opts.CertChain)
		s.x5chain = sign1.X5Chain(opts.CertChain)
	case opts.KeyID != nil:
		s.kid = bytes.Clone(opts.KeyID)
	default:
		s.kid = thumb.Value
	}
	return s, nil
}

// Thumbprint returns the [KeyThumbprint] of the signer's key: what a step's
// NextCustodian names to hand custody to this signer.
func (s *StepSigner) Thumbprint() Digest { return s.thumb }

// Algorithm returns the signer's algorithm.
func (s *StepSigner) Algorithm() keystore.Algorithm { return s.alg }

func (s *StepSigner) protected(contentType uint64, sub string, iat uint64) ([]byte, error) {
	h := protectedWire{
		Alg:         s.alg.COSE(),
		ContentType: contentType,
		KID:         s.kid,
		CWT:         cwtWire{Iss: s.issuer, Sub: sub, Iat: iat},
		X5Chain:     s.x5chain,
		X5T:         s.x5t,
	}
	return detcbor.Marshal(&h)
}

// sign1 signs payload under a protected header it builds, and returns the
// tagged COSE_Sign1.
func (s *StepSigner) sign1(rand io.Reader, contentType uint64, sub string, iat uint64, payload []byte) ([]byte, error) {
	raw, _, err := s.sign1msg(rand, contentType, sub, iat, payload)
	return raw, err
}

// sign1msg is sign1, also returning the signed parts.
func (s *StepSigner) sign1msg(rand io.Reader, contentType uint64, sub string, iat uint64, payload []byte) ([]byte, *sign1.Message, error) {
	if s == nil || s.signer == nil {
		return nil, nil, errors.New("manifest: StepSigner not made by NewStepSigner")
	}
	prot, err := s.protected(contentType, sub, iat)
	if err != nil {
		return nil, nil, fmt.Errorf("manifest: failed to encode protected header: %w", err)
	}
	raw, sig, err := sign1.Sign(rand, s.signer, prot, payload)
	if err != nil {
		return nil, nil, fmt.Errorf("manifest: failed to sign: %w", err)
	}
	return raw, &sign1.Message{Protected: prot, Payload: payload, Signature: sig}, nil
}

// SubjectClaim returns the CWT sub claim for a subject: its bytes in
// lowercase hexadecimal.
func SubjectClaim(subject []byte) string { return hex.EncodeToString(subject) }

// Sign signs step as a tagged COSE_Sign1 (RFC 9052 §4.2) whose protected
// header carries alg, content type [StepContentType], kid or x5chain, and
// the CWT claims iss (the signer's issuer), sub ([SubjectClaim] of the step's
// subject) and iat (the step's time). rand is passed to the key; if nil,
// crypto/rand is used.
func (s *StepSigner) Sign(rand io.Reader, step *Step) (*SignedStep, error) {
	payload, err := step.Marshal()
	if err != nil {
		return nil, err
	}
	sub, iat := SubjectClaim(step.Subject), uint64(step.Time.Unix())
	raw, msg, err := s.sign1msg(rand, StepContentType, sub, iat, payload)
	if err != nil {
		return nil, err
	}
	// The result is what ParseSignedStep(raw) would give, without decoding
	// again what was just encoded.
	st := step.Clone()
	st.Time = time.Unix(step.Time.Unix(), 0).UTC()
	return &SignedStep{Raw: raw, Step: st, Alg: s.alg.COSE(), KeyID: s.kid, CertChain: s.chain, CertDigest: s.x5t,
		Issuer: s.issuer, SubjectClaim: sub, IssuedAt: iat, msg: *msg}, nil
}

// SignStep is a thin wrapper: [NewStepSigner] then [StepSigner.Sign], for
// signing a single step. [StepSigner.Sign] is the one signing primitive;
// a party that signs more than one step builds its StepSigner once (that
// checks the key and its certificate chain and computes its thumbprint),
// and a station records steps with ztm.Station.Record, which signs with
// its StepSigner and also chains the step to the device's last one and
// stores it.
func SignStep(rand io.Reader, step *Step, key crypto.Signer, opts SignOptions) (*SignedStep, error) {
	s, err := NewStepSigner(key, opts)
	if err != nil {
		return nil, err
	}
	return s.Sign(rand, step)
}

// SignedStep is a signed step as received: the exact bytes of its
// COSE_Sign1 and what they decode to. Parsing does not verify the
// signature: [Verify] does. A SignedStep must not be modified.
type SignedStep struct {
	// Raw is the exact COSE_Sign1_Tagged bytes, which the next step's Prev
	// digest covers.
	Raw []byte
	// Step is the decoded payload.
	Step *Step
	// Alg is the protected alg, as a COSE algorithm value.
	Alg int64
	// KeyID is the protected kid, if any.
	KeyID []byte
	// CertChain is the protected x5chain, leaf first, if any: the
	// signer's certificate chain.
	CertChain []*x509.Certificate
	// CertDigest is the protected x5t, if any: the digest of the signer's
	// leaf certificate, which the verifier must already hold.
	CertDigest *Digest
	// Issuer, SubjectClaim and IssuedAt are the protected CWT claims.
	Issuer       string
	SubjectClaim string
	IssuedAt     uint64

	msg sign1.Message
}

// ParseSignedStep decodes a signed step, keeping raw as its exact bytes. It
// refuses, with an error wrapping [ErrMalformed] (or [ErrTooLarge] above
// [MaxStepSize]), anything but a tagged COSE_Sign1 with an attached
// canonical step payload, a protected header with an integer alg, the
// content type [StepContentType], a kid, an x5chain or an x5t, and CWT
// claims, and an empty unprotected header, with its byte string heads in
// shortest form. Labels the format does not define, in either header, are
// refused and named.
func ParseSignedStep(raw []byte) (*SignedStep, error) {
	return parseSignedStep(raw, nil)
}

// parseSignedStep is ParseSignedStep, taking x5chain certificates from
// certs when it holds them (certs may be nil).
func parseSignedStep(raw []byte, certs *certCache) (*SignedStep, error) {
	if len(raw) > MaxStepSize {
		return nil, tooLargeErr("signed step", len(raw), MaxStepSize)
	}
	ss := &SignedStep{Raw: raw}
	hdr, err := parseSign1(raw, &ss.msg, "signed step", StepContentType, certs)
	if err != nil {
		return nil, err
	}
	ss.Alg, ss.KeyID, ss.CertChain, ss.CertDigest = hdr.alg, hdr.kid, hdr.chain, hdr.x5t
	if hdr.cwt == nil {
		return nil, decodeErr("signed step", errors.New("protected header without CWT claims (label 15)"))
	}
	ss.Issuer, ss.SubjectClaim, ss.IssuedAt = hdr.cwt.Iss, hdr.cwt.Sub, hdr.cwt.Iat
	if ss.KeyID == nil && ss.CertChain == nil && ss.CertDigest == nil {
		return nil, decodeErr("signed step", errors.New("protected header names no key: neither kid, x5chain nor x5t"))
	}
	step, err := ParseStep(ss.msg.Payload)
	if err != nil {
		return nil, err
	}
	ss.Step = step
	return ss, nil
}

type sign1Header struct {
	alg   int64
	kid   []byte
	chain []*x509.Certificate
	x5t   *Digest
	cwt   *cwtWire
}

// protectedErr explains a protected header that did not decode: when the
// decoder met a label the format does not define, it names the labels
// (but those in known); otherwise it wraps err.
func protectedErr(prot []byte, err error, known ...int64) error {
	var uf *cbor.UnknownFieldError
	if errors.As(err, &uf) {
		var m map[any]cbor.RawMessage
		if detcbor.Unmarshal(prot, &m, len(prot)) == nil {
			var labels []string
			for k := range m {
				if n, ok := labelInt(k); ok && slices.Contains(known, n) {
					continue
				}
				labels = append(labels, fmt.Sprint(k))
			}
			slices.Sort(labels)
			return fmt.Errorf("protected header label %s not defined by the format: %w", strings.Join(labels, ", "), err)
		}
	}
	return fmt.Errorf("protected header: %w", err)
}

// labelInt returns a decoded integer map key as an int64.
func labelInt(k any) (int64, bool) {
	switch v := k.(type) {
	case int64:
		return v, true
	case uint64:
		return int64(v), v <= 1<<62
	}
	return 0, false
}

// checkUnprotected refuses an unprotected header with any label but those
// allowed (see [sign1.CheckUnprotected]), naming every offending label. It
// returns the decoded header (nil if empty).
func checkUnprotected(raw []byte, what string, allowed ...int64) (map[any]cbor.RawMessage, error) {
	u, bad, err := sign1.CheckUnprotected(raw, allowed...)
	if err != nil {
		return nil, decodeErr(what, err)
	}
	if bad != "" {
		return nil, decodeErr(what, fmt.Errorf("unprotected header label %s not allowed: the signature does not cover it", bad))
	}
	return u, nil
}

// parseSign1 decodes a tagged COSE_Sign1 with an attached payload and our
// protected header, strictly, into msg (ready for msg.Verify: its
// RawProtected is the received protected bstr). The unprotected header must
// be empty.
func parseSign1(raw []byte, msg *sign1.Message, what string, contentType uint64, certs *certCache) (*sign1Header, error) {
	env, err := sign1.Decode(raw, sign1.DecodeOptions{Shortest: true})
	if err != nil {
		return nil, decodeErr(what, err)
	}
	if _, err := checkUnprotected(env.Unprotected, what); err != nil {
		return nil, err
	}
	hdr, _, err := parseProtected(env.RawProtected, what, contentType, certs)
	if err != nil {
		return nil, err
	}
	*msg = env.Message
	return hdr, nil
}

// parseProtected decodes the protected header (the bstr rawProt) and
// returns it with the header map's bytes.
func parseProtected(rawProt cbor.RawMessage, what string, contentType uint64, certs *certCache) (*sign1Header, []byte, error) {
	var prot []byte
	if err := detcbor.Unmarshal(rawProt, &prot, MaxStepSize); err != nil {
		return nil, nil, decodeErr(what, fmt.Errorf("protected header: %w", err))
	}
	var in protectedIn
	if err := detcbor.Unmarshal(prot, &in, MaxStepSize); err != nil {
		return nil, nil, decodeErr(what, protectedErr(prot, err, 1, 3, 4, 15, 33, 34))
	}
	h := &sign1Header{kid: in.KID, cwt: in.CWT}
	var alg int64
	if len(in.Alg) == 0 {
		return nil, nil, decodeErr(what, errors.New("protected header without alg"))
	}
	if err := detcbor.Unmarshal(in.Alg, &alg, 0); err != nil {
		return nil, nil, decodeErr(what, fmt.Errorf("alg is not an integer: %w", err))
	}
	h.alg = alg
	var ct uint64
	if len(in.ContentType) == 0 || in.ContentType[0]>>5 != 0 || detcbor.Unmarshal(in.ContentType, &ct, 0) != nil || ct != contentType {
		return nil, nil, decodeErr(what, fmt.Errorf("content type %s, want %d", diagnose(in.ContentType), contentType))
	}
	if len(in.X5Chain) > 0 {
		chain, err := parseX5Chain(in.X5Chain, certs)
		if err != nil {
			return nil, nil, decodeErr(what, err)
		}
		h.chain = chain
	}
	if in.X5T != nil {
		if h.chain != nil {
			return nil, nil, decodeErr(what, errors.New("protected header has both x5chain and x5t"))
		}
		if err := in.X5T.valid(); err != nil {
			return nil, nil, decodeErr(what, fmt.Errorf("x5t: %w", err))
		}
		h.x5t = in.X5T
	}
	return h, prot, nil
}

// diagnose renders a short CBOR item for an error message.
func diagnose(item []byte) string {
	if len(item) == 0 {
		return "absent"
	}
	d, err := cbor.Diagnose(item)
	if err != nil || len(d) > 64 {
		return fmt.Sprintf("of %d bytes", len(item))
	}
	return d
}

// parseX5Chain decodes an x5chain value with [sign1.ParseX5Chain].
// Certificates certs holds are not parsed again.
func parseX5Chain(raw cbor.RawMessage, certs *certCache) ([]*x509.Certificate, error) {
	ders, err := sign1.ParseX5Chain(raw)
	if err != nil {
		return nil, err
	}
	chain := make([]*x509.Certificate, len(ders))
	for i, der := range ders {
		c, err := certs.parse(der)
		if err != nil {
			return nil, fmt.Errorf("x5chain certificate %d: %w", i, err)
		}
		chain[i] = c
	}
	return chain, nil
}

// Chain is a device's steps in order, first step first.
type Chain []*SignedStep

// Limits of the chain format.
const (
	// MaxChainSize bounds an encoded chain.
	MaxChainSize = 1 << 20
	// MaxChainLen bounds the number of steps in a chain.
	MaxChainLen = 1024
)

// Marshal encodes c as a CBOR array of byte strings, each holding the exact
// bytes of one step's COSE_Sign1.
func (c Chain) Marshal() ([]byte, error) {
	raws := make([][]byte, len(c))
	for i, s := range c {
		if s == nil {
			return nil, fmt.Errorf("manifest: nil step %d in chain", i)
		}
		raws[i] = s.Raw
	}
	return detcbor.Marshal(raws)
}

// ParseChain decodes a chain that [Chain.Marshal] encoded, parsing each step
// with [ParseSignedStep]. It does not verify anything: see [Verify].
func ParseChain(data []byte) (Chain, error) {
	return parseChain(data, nil)
}

// parseChain is ParseChain, taking x5chain certificates from certs when
// it holds them (certs may be nil).
func parseChain(data []byte, certs *certCache) (Chain, error) {
	if len(data) > MaxChainSize {
		return nil, tooLargeErr("chain", len(data), MaxChainSize)
	}
	var raws [][]byte
	if err := detcbor.Unmarshal(data, &raws, MaxChainSize); err != nil {
		return nil, decodeErr("chain", err)
	}
	if len(raws) == 0 || len(raws) > MaxChainLen {
		return nil, decodeErr("chain", fmt.Errorf("%d steps, want 1 to %d", len(raws), MaxChainLen))
	}
	c := make(Chain, len(raws))
	for i, raw := range raws {
		s, err := parseSignedStep(raw, certs)
		if err != nil {
			return nil, fmt.Errorf("manifest: chain step %d: %w", i, err)
		}
		c[i] = s
	}
	return c, nil
}
