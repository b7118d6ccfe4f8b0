package manifest

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"crypto/x509"
	"errors"
	"fmt"
	"maps"
	"math"
	"time"

	"github.com/ztmkit/ztm/internal/detcbor"
)

// Well-known step names. Any name that [ValidateStepName] accepts may be
// used; these are the ones the ztm pipeline writes.
const (
	StepDieSort       = "die-sort"
	StepKeyGeneration = "key-generation"
	StepFirmwareLoad  = "firmware-load"
	StepFinalTest     = "final-test"
	StepPack          = "pack"
	StepShip          = "ship"
	StepKeyDestroyed  = "key-destroyed"
)

// Limits of the step format.
const (
	// MaxStepSize bounds one encoded, signed step (a COSE_Sign1, with its
	// certificate chain if it carries one).
	MaxStepSize = 32 << 10
	// MaxNameLen bounds a step name, a lot identifier, an artifact name and
	// an issuer.
	MaxNameLen = 128
	// MaxSubjectLen bounds a subject: a UEID is at most 33 bytes (RFC 9711
	// §4.2.1), a lot identifier at most this.
	MaxSubjectLen = 64
	// MaxArtifacts bounds the number of artifacts of one step.
	MaxArtifacts = 64
)

// HashAlg is a hash algorithm by its value in the IANA COSE Algorithms
// registry, as SUIT digests name it (RFC 9019, RFC 9124).
type HashAlg int64

// Hash algorithms a [Digest] may use.
const (
	SHA256 HashAlg = -16
	SHA384 HashAlg = -43
	SHA512 HashAlg = -44
)

// Size returns the digest length of h, or 0 if ztm does not know h.
func (h HashAlg) Size() int {
	switch h {
	case SHA256:
		return 32
	case SHA384:
		return 48
	case SHA512:
		return 64
	}
	return 0
}

// String returns the algorithm's name ("SHA-256", …).
func (h HashAlg) String() string {
	switch h {
	case SHA256:
		return "SHA-256"
	case SHA384:
		return "SHA-384"
	case SHA512:
		return "SHA-512"
	}
	return fmt.Sprintf("HashAlg(%d)", int64(h))
}

// Digest is a hash value together with its algorithm, encoded as the
// CBOR array [alg, bytes] (the SUIT_Digest form).
type Digest struct {
	_     struct{} `cbor:",toarray"`
	Alg   HashAlg
	Value []byte
}

// Sum returns the digest of data under h. It panics if h is not SHA256,
// SHA384 or SHA512.
func Sum(h HashAlg, data []byte) Digest {
	switch h {
	case SHA256:
		s := sha256.Sum256(data)
		return Digest{Alg: h, Value: s[:]}
	case SHA384:
		s := sha512.Sum384(data)
		return Digest{Alg: h, Value: s[:]}
	case SHA512:
		s := sha512.Sum512(data)
		return Digest{Alg: h, Value: s[:]}
	}
	panic("manifest: Sum with unknown hash algorithm " + h.String())
}

// Matches reports whether d is the digest of data, in constant time over the
// digest value.
func (d Digest) Matches(data []byte) bool {
	if d.Alg.Size() == 0 || len(d.Value) != d.Alg.Size() {
		return false
	}
	return subtle.ConstantTimeCompare(Sum(d.Alg, data).Value, d.Value) == 1
}

// Equal reports whether d and o are the same digest.
func (d Digest) Equal(o Digest) bool {
	return d.Alg == o.Alg && bytes.Equal(d.Value, o.Value)
}

func (d Digest) valid() error {
	n := d.Alg.Size()
	if n == 0 {
		return fmt.Errorf("unknown hash algorithm %d", int64(d.Alg))
	}
	if len(d.Value) != n {
		return fmt.Errorf("%v digest of %d bytes", d.Alg, len(d.Value))
	}
	return nil
}

// DER prefixes of SubjectPublicKeyInfo, up to the key bytes.
var (
	spkiP256    = []byte{0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00}
	spkiP384    = []byte{0x30, 0x76, 0x30, 0x10, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22, 0x03, 0x62, 0x00}
	spkiEd25519 = []byte{0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00}
)

// KeyThumbprint returns the SHA-256 digest of pub's DER SubjectPublicKeyInfo.
// It names a key in a step's next custodian, and is the default kid.
func KeyThumbprint(pub crypto.PublicKey) (Digest, error) {
	// Fast paths: the DER SubjectPublicKeyInfo of P-256, P-384 and Ed25519
	// keys is a fixed prefix and the key bytes (RFC 5480, RFC 8410).
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		var prefix []byte
		switch k.Curve {
		case elliptic.P256():
			prefix = spkiP256
		case elliptic.P384():
			prefix = spkiP384
		}
		if b, err := k.Bytes(); prefix != nil && err == nil {
			h := sha256.New()
			h.Write(prefix)
			h.Write(b)
			return Digest{Alg: SHA256, Value: h.Sum(nil)}, nil
		}
	case ed25519.PublicKey:
		if len(k) == ed25519.PublicKeySize {
			h := sha256.New()
			h.Write(spkiEd25519)
			h.Write(k)
			return Digest{Alg: SHA256, Value: h.Sum(nil)}, nil
		}
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return Digest{}, fmt.Errorf("manifest: failed to encode public key: %w", err)
	}
	return Sum(SHA256, der), nil
}

// Claims are the step-specific claims of a step (its predicate): test
// results, the digest of an attestation result, a station's settings.
// Keys are integers (int, int64, uint64, …) or text strings; values are
// anything CBOR can carry (numbers, strings, byte strings, booleans,
// arrays, maps). Decoded claims have int64 or uint64 integer keys and
// values as the CBOR decoder gives them ([]any, map[any]any, …).
type Claims map[any]any

// Step is one thing a partner did to a device: the signed statement of a
// supply-chain step. See the package documentation for its CDDL.
type Step struct {
	// Name is what was done ("final-test"). See [ValidateStepName].
	Name string
	// Subject is the device the step is about, as its UEID bytes (or
	// another opaque identifier of 1 to MaxSubjectLen bytes, such as a lot
	// identifier for a step on a whole lot).
	Subject []byte
	// Sequence is the step's place in the device's chain: 0 for the first.
	Sequence uint64
	// Prev is the digest of the exact bytes of the previous step's
	// COSE_Sign1. It must be nil for sequence 0 and set otherwise.
	Prev *Digest
	// Artifacts maps an artifact's name ("firmware", "test-log", "csr",
	// "certificate") to its digest.
	Artifacts map[string]Digest
	// Predicate holds the step-specific claims.
	Predicate Claims
	// Time is when the step was done, at second precision (UTC).
	Time time.Time
	// NextCustodian, if set, is the [KeyThumbprint] of the only key allowed
	// to sign the next step of this device.
	NextCustodian *Digest
	// Lot is the lot the device belongs to, if any.
	Lot string
}

// stepWire is the CBOR form of Step; keys are those of the CDDL.
type stepWire struct {
	Name      string            `cbor:"1,keyasint"`
	Subject   []byte            `cbor:"2,keyasint"`
	Sequence  uint64            `cbor:"3,keyasint"`
	Prev      *Digest           `cbor:"4,keyasint,omitempty"`
	Artifacts map[string]Digest `cbor:"5,keyasint,omitempty"`
	Predicate map[any]any       `cbor:"6,keyasint,omitempty"`
	Time      uint64            `cbor:"7,keyasint"`
	Next      *Digest           `cbor:"8,keyasint,omitempty"`
	Lot       string            `cbor:"9,keyasint,omitempty"`
}

// ValidateStepName checks a step name: 1 to MaxNameLen bytes of lowercase
// ASCII letters, digits and '-', starting with a letter.
func ValidateStepName(name string) error {
	if name == "" || len(name) > MaxNameLen {
		return fmt.Errorf("%w: step name of %d bytes", ErrInvalidStep, len(name))
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		ok := c >= 'a' && c <= 'z' || i > 0 && (c >= '0' && c <= '9' || c == '-')
		if !ok {
			return fmt.Errorf("%w: step name %q: only a-z, 0-9 and '-', starting with a letter", ErrInvalidStep, name)
		}
	}
	return nil
}

// Validate checks s against the rules of the format.
func (s *Step) Validate() error {
	if err := ValidateStepName(s.Name); err != nil {
		return err
	}
	if len(s.Subject) == 0 || len(s.Subject) > MaxSubjectLen {
		return fmt.Errorf("%w: subject of %d bytes", ErrInvalidStep, len(s.Subject))
	}
	if s.Sequence == 0 && s.Prev != nil {
		return fmt.Errorf("%w: first step (sequence 0) with a previous-step digest", ErrInvalidStep)
	}
	if s.Sequence > 0 && s.Prev == nil {
		return fmt.Errorf("%w: step %d without a previous-step digest", ErrInvalidStep, s.Sequence)
	}
	if s.Sequence > math.MaxInt32 {
		return fmt.Errorf("%w: sequence %d out of range", ErrInvalidStep, s.Sequence)
	}
	if s.Prev != nil {
		if err := s.Prev.valid(); err != nil {
			return fmt.Errorf("%w: previous step: %v", ErrInvalidStep, err)
		}
	}
	if s.NextCustodian != nil {
		if err := s.NextCustodian.valid(); err != nil {
			return fmt.Errorf("%w: next custodian: %v", ErrInvalidStep, err)
		}
	}
	if len(s.Artifacts) > MaxArtifacts {
		return fmt.Errorf("%w: %d artifacts, limit %d", ErrInvalidStep, len(s.Artifacts), MaxArtifacts)
	}
	for name, d := range s.Artifacts {
		if name == "" || len(name) > MaxNameLen {
			return fmt.Errorf("%w: artifact name of %d bytes", ErrInvalidStep, len(name))
		}
		if err := d.valid(); err != nil {
			return fmt.Errorf("%w: artifact %q: %v", ErrInvalidStep, name, err)
		}
	}
	for k := range s.Predicate {
		switch k.(type) {
		case int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64, string:
		default:
			return fmt.Errorf("%w: predicate key of type %T (want integer or text)", ErrInvalidStep, k)
		}
	}
	if len(s.Lot) > MaxNameLen {
		return fmt.Errorf("%w: lot of %d bytes", ErrInvalidStep, len(s.Lot))
	}
	if s.Time.Unix() < 0 {
		return fmt.Errorf("%w: time %v before 1970", ErrInvalidStep, s.Time)
	}
	return nil
}

// Marshal returns the deterministic CBOR encoding of s (the payload of its
// COSE_Sign1), after [Step.Validate].
func (s *Step) Marshal() ([]byte, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	w := stepWire{
		Name:      s.Name,
		Subject:   s.Subject,
		Sequence:  s.Sequence,
		Prev:      s.Prev,
		Artifacts: s.Artifacts,
		Predicate: s.Predicate,
		Time:      uint64(s.Time.Unix()),
		Next:      s.NextCustodian,
		Lot:       s.Lot,
	}
	b, err := detcbor.Marshal(&w)
	if err != nil {
		return nil, fmt.Errorf("%w: failed to encode: %v", ErrInvalidStep, err)
	}
	return b, nil
}

// ParseStep decodes a step payload (not its COSE_Sign1: see
// [ParseSignedStep]). It refuses, with an error wrapping [ErrMalformed],
// anything but the canonical encoding [Step.Marshal] gives: duplicate or
// unknown keys, non-shortest forms, unsorted maps, trailing data.
func ParseStep(payload []byte) (*Step, error) {
	if len(payload) > MaxStepSize {
		return nil, tooLargeErr("step", len(payload), MaxStepSize)
	}
	var w stepWire
	if err := detcbor.Unmarshal(payload, &w, MaxStepSize); err != nil {
		return nil, decodeErr("step", err)
	}
	if w.Time > math.MaxInt64 {
		return nil, decodeErr("step", errors.New("time out of range"))
	}
	s := &Step{
		Name:          w.Name,
		Subject:       w.Subject,
		Sequence:      w.Sequence,
		Prev:          w.Prev,
		Artifacts:     w.Artifacts,
		Predicate:     Claims(w.Predicate),
		Time:          time.Unix(int64(w.Time), 0).UTC(),
		NextCustodian: w.Next,
		Lot:           w.Lot,
	}
	if err := s.Validate(); err != nil {
		return nil, decodeErr("step", err)
	}
	// Canonical form only: the exact bytes are what links and signatures
	// cover, so one step has one encoding.
	again, err := detcbor.Marshal(&w)
	if err != nil || !bytes.Equal(again, payload) {
		return nil, decodeErr("step", errors.New("not in canonical (core deterministic) encoding"))
	}
	return s, nil
}

// Clone returns a deep copy of s (predicate values are copied one level deep).
func (s *Step) Clone() *Step {
	c := *s
	c.Subject = bytes.Clone(s.Subject)
	if s.Prev != nil {
		p := Digest{Alg: s.Prev.Alg, Value: bytes.Clone(s.Prev.Value)}
		c.Prev = &p
	}
	if s.NextCustodian != nil {
		n := Digest{Alg: s.NextCustodian.Alg, Value: bytes.Clone(s.NextCustodian.Value)}
		c.NextCustodian = &n
	}
	c.Artifacts = maps.Clone(s.Artifacts)
	c.Predicate = maps.Clone(s.Predicate)
	return &c
}
