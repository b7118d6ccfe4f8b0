package keystore

import (
	"context"
	"crypto"
	"strconv"
)

// Key is a private key held in a [Store]. It signs through the standard
// [crypto.Signer] interface; its private part never leaves the store.
//
// Sign follows the crypto.Signer contract for the key's algorithm: for ES256
// and ES384 the digest is the SHA-256 or SHA-384 hash of the message and the
// result is an ASN.1 DER ECDSA signature; for EdDSA the "digest" is the whole
// message and opts.HashFunc() is 0; for PS256 the digest is a SHA-256 hash and
// opts is a *rsa.PSSOptions. [Algorithm.SignerOpts] gives the right opts.
// Sign returns an error wrapping [ErrNotFound] once the key has been deleted
// and [ErrClosed] once its store is closed.
//
// Keys are safe for concurrent use.
type Key interface {
	crypto.Signer
	// Label returns the name the key was created under.
	Label() string
	// Algorithm returns the algorithm the key signs with.
	Algorithm() Algorithm
}

// CreateRequest says what key [Store.Create] makes. The zero value, with a
// Label, asks for a non-exportable ES256 key.
type CreateRequest struct {
	// Label names the key in its store; see [ValidateLabel]. Required.
	Label string
	// Algorithm is the key's signature algorithm. The zero value is ES256.
	Algorithm Algorithm
	// Exportable asks for a key whose private part may later be exported,
	// sealed to a device, for key injection. Hardware stores create keys
	// non-extractable unless this is set; software stores ignore it.
	//
	// WARNING: an exportable key is only as safe as the process and the
	// channel it is exported through. Set it only for keys made to be
	// injected into a device.
	Exportable bool
}

// Store holds keys under labels. Implementations are safe for concurrent
// use.
//
// Every method returns an error wrapping [ErrClosed] after Close, and the
// label-taking methods one wrapping [ErrInvalidLabel] for a label that
// [ValidateLabel] refuses.
type Store interface {
	// Create makes a new key inside the store. It returns an error wrapping
	// [ErrExists] if the label is taken and [ErrUnsupportedAlgorithm] if the
	// store cannot make keys of the requested algorithm. On error, no key
	// is left behind.
	Create(ctx context.Context, req CreateRequest) (Key, error)
	// Get returns the key with the given label, or an error wrapping
	// [ErrNotFound].
	Get(ctx context.Context, label string) (Key, error)
	// List returns the labels of all keys in the store, sorted.
	List(ctx context.Context) ([]string, error)
	// Delete destroys the key with the given label: the key's end of life.
	// It returns an error wrapping [ErrNotFound] if there is no such key.
	// Keys already fetched stop signing.
	Delete(ctx context.Context, label string) error
	// Close releases the store's resources. Keys fetched from it stop
	// signing. Close is idempotent.
	Close() error
}

// maxLabelLen bounds labels so that they fit a file name with suffixes, a
// PKCS#11 CKA_LABEL and a TPM index entry on every platform.
const maxLabelLen = 64

// MaxLabelLen is the longest label, in bytes, that [ValidateLabel] accepts.
const MaxLabelLen = maxLabelLen

// ValidateLabel checks that label can name a key in every store: 1 to
// [MaxLabelLen] bytes of ASCII letters, digits, '.', '_' and '-', starting
// with a letter or digit, and no "..". Labels become file names and token
// object labels, so path separators, spaces and control characters are
// refused. The error is a [*LabelError] wrapping [ErrInvalidLabel].
func ValidateLabel(label string) error {
	fail := func(reason string) error { return &LabelError{Label: label, Reason: reason} }
	switch {
	case label == "":
		return fail("empty")
	case len(label) > maxLabelLen:
		return fail("longer than " + strconv.Itoa(maxLabelLen) + " bytes")
	}
	for i := 0; i < len(label); i++ {
		c := label[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '.' || c == '_' || c == '-':
			if i == 0 {
				return fail("must start with a letter or digit")
			}
			if c == '.' && label[i-1] == '.' {
				return fail(`contains ".."`)
			}
		default:
			return fail("byte " + strconv.Quote(string(c)) + " at offset " + strconv.Itoa(i) + " is not a letter, digit, '.', '_' or '-'")
		}
	}
	return nil
}

func quote(s string) string {
	if len(s) > 80 {
		s = s[:80] + "…"
	}
	return strconv.Quote(s)
}
