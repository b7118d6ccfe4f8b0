package keystore

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"fmt"
	"strings"
)

// Algorithm names a signature algorithm together with the key type that
// produces it. The zero value is [ES256], the default everywhere in ztm.
//
// The names are those of the IANA COSE Algorithms registry (RFC 9053), which
// the JOSE registry (RFC 7518) shares for these four.
type Algorithm int

const (
	// ES256 is ECDSA on P-256 with SHA-256. It is the default.
	ES256 Algorithm = iota
	// ES384 is ECDSA on P-384 with SHA-384.
	ES384
	// EdDSA is Ed25519 (pure, RFC 8032).
	EdDSA
	// PS256 is RSASSA-PSS with SHA-256 and a 3072-bit RSA key.
	PS256

	maxAlgorithm // sentinel for valid()
)

// RSABits is the size of the RSA keys that stores create for [PS256].
const RSABits = 3072

// Algorithms returns every algorithm ztm defines, default first.
func Algorithms() []Algorithm { return []Algorithm{ES256, ES384, EdDSA, PS256} }

// Valid reports whether a is one of the algorithms ztm defines.
func (a Algorithm) Valid() bool { return a >= 0 && a < maxAlgorithm }

// String returns the registered name ("ES256", "ES384", "EdDSA", "PS256").
func (a Algorithm) String() string {
	switch a {
	case ES256:
		return "ES256"
	case ES384:
		return "ES384"
	case EdDSA:
		return "EdDSA"
	case PS256:
		return "PS256"
	}
	return fmt.Sprintf("Algorithm(%d)", int(a))
}

// ParseAlgorithm returns the algorithm with the given registered name; the
// match ignores case. It returns an error wrapping [ErrUnsupportedAlgorithm]
// for any other name.
func ParseAlgorithm(name string) (Algorithm, error) {
	for _, a := range Algorithms() {
		if strings.EqualFold(name, a.String()) {
			return a, nil
		}
	}
	return 0, fmt.Errorf("%w: %q", ErrUnsupportedAlgorithm, name)
}

// COSE returns the algorithm's value in the IANA COSE Algorithms registry
// (ES256 -7, ES384 -35, EdDSA -8, PS256 -37). Reference: RFC 9053 §2.
func (a Algorithm) COSE() int64 {
	switch a {
	case ES256:
		return -7
	case ES384:
		return -35
	case EdDSA:
		return -8
	case PS256:
		return -37
	}
	return 0
}

// Hash returns the digest a caller computes before calling Sign, or 0 for
// EdDSA, which signs the whole message.
func (a Algorithm) Hash() crypto.Hash {
	switch a {
	case ES256, PS256:
		return crypto.SHA256
	case ES384:
		return crypto.SHA384
	}
	return 0
}

// SignerOpts returns the options to pass to [crypto.Signer.Sign] for a: the
// hash for ECDSA, PSS options with a salt as long as the hash for PS256, and
// crypto.Hash(0) for EdDSA.
func (a Algorithm) SignerOpts() crypto.SignerOpts {
	if a == PS256 {
		return &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA256}
	}
	return a.Hash()
}

// PublicKeysEqual reports whether a and b are the same public key, by
// a's Equal method, which every public key type of the standard library
// has (*ecdsa.PublicKey, ed25519.PublicKey, *rsa.PublicKey, *ecdh.PublicKey).
// It is false when either is nil or a has no Equal method. It is the one
// comparison of public keys in ztm.
func PublicKeysEqual(a, b crypto.PublicKey) bool {
	k, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && b != nil && k.Equal(b)
}

// AlgorithmOf returns the algorithm a public key signs with: P-256 and P-384
// ECDSA keys, Ed25519 keys, and RSA keys of at least 3072 bits (as PS256).
// Any other key gives an error wrapping [ErrUnsupportedAlgorithm].
func AlgorithmOf(pub crypto.PublicKey) (Algorithm, error) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return ES256, nil
		case elliptic.P384():
			return ES384, nil
		}
		return 0, fmt.Errorf("%w: ECDSA on %s", ErrUnsupportedAlgorithm, k.Curve.Params().Name)
	case ed25519.PublicKey:
		if len(k) == ed25519.PublicKeySize {
			return EdDSA, nil
		}
		return 0, fmt.Errorf("%w: Ed25519 key of %d bytes", ErrUnsupportedAlgorithm, len(k))
	case *rsa.PublicKey:
		if k.N != nil && k.N.BitLen() >= RSABits {
			return PS256, nil
		}
		bits := 0
		if k.N != nil {
			bits = k.N.BitLen()
		}
		return 0, fmt.Errorf("%w: RSA-%d is below the minimum of %d bits", ErrUnsupportedAlgorithm, bits, RSABits)
	}
	return 0, fmt.Errorf("%w: public key of type %T", ErrUnsupportedAlgorithm, pub)
}

// CheckSign checks that a Sign call on a key of algorithm a is well formed:
// opts names a's hash (PSS options with a salt as long as the hash, or
// rsa.PSSSaltLengthAuto on verification-compatible signers, for PS256; 0 for
// EdDSA) and the digest has that hash's length. A key signs only with its own
// algorithm: a PS256 key refuses PKCS#1 v1.5 options, an ES256 key a SHA-384
// digest. Backends call it at the top of Sign; the error wraps
// [ErrUnsupportedAlgorithm].
func (a Algorithm) CheckSign(digest []byte, opts crypto.SignerOpts) error {
	if !a.Valid() {
		return fmt.Errorf("%w: %v", ErrUnsupportedAlgorithm, a)
	}
	if opts == nil {
		return fmt.Errorf("%w: %v signing needs SignerOpts", ErrUnsupportedAlgorithm, a)
	}
	h := opts.HashFunc()
	if h != a.Hash() {
		return fmt.Errorf("%w: %v key asked to sign with hash %v", ErrUnsupportedAlgorithm, a, h)
	}
	if a == PS256 {
		pss, ok := opts.(*rsa.PSSOptions)
		if !ok {
			return fmt.Errorf("%w: PS256 key asked to sign without *rsa.PSSOptions (PKCS#1 v1.5 is refused)", ErrUnsupportedAlgorithm)
		}
		if pss.SaltLength != rsa.PSSSaltLengthEqualsHash && pss.SaltLength != rsa.PSSSaltLengthAuto && pss.SaltLength != h.Size() {
			return fmt.Errorf("%w: PS256 salt length %d (want the hash length)", ErrUnsupportedAlgorithm, pss.SaltLength)
		}
	}
	if h != 0 && len(digest) != h.Size() {
		return fmt.Errorf("%w: %v digest of %d bytes, want %d", ErrUnsupportedAlgorithm, a, len(digest), h.Size())
	}
	return nil
}
