package keystore

import "errors"

// Sentinel errors. Every [Store] and [Key] returns errors that wrap one of
// these for the refusals a caller may handle; match them with [errors.Is].
var (
	// ErrNotFound is returned when no key has the label asked for, and by
	// Sign on a key that was deleted since it was fetched.
	ErrNotFound = errors.New("keystore: key not found")
	// ErrExists is returned by Create when the label is already taken.
	ErrExists = errors.New("keystore: key already exists")
	// ErrUnsupportedAlgorithm is returned for an algorithm the store (or
	// ztm) does not offer, and for keys ztm will not use (RSA below 3072
	// bits, curves other than P-256 and P-384).
	ErrUnsupportedAlgorithm = errors.New("keystore: unsupported algorithm")
	// ErrInvalidLabel is returned, wrapped in a [*LabelError], for a label
	// that [ValidateLabel] refuses.
	ErrInvalidLabel = errors.New("keystore: invalid label")
	// ErrClosed is returned by every method of a Store, and of its keys,
	// after Close.
	ErrClosed = errors.New("keystore: store is closed")
	// ErrAuth is returned when the store refuses the credential it was
	// opened with: a wrong passphrase, key-encryption key or PIN.
	ErrAuth = errors.New("keystore: authentication failed")
	// ErrInvalidURI is returned, wrapped in a [*URIError], by [Open] and the
	// backends' openers for a URI they cannot use.
	ErrInvalidURI = errors.New("keystore: invalid URI")
)

// LabelError describes a label that [ValidateLabel] refused. It wraps
// [ErrInvalidLabel].
type LabelError struct {
	Label  string // the label as given
	Reason string // what is wrong with it
}

func (e *LabelError) Error() string {
	return "keystore: invalid label " + quote(e.Label) + ": " + e.Reason
}

// Unwrap returns [ErrInvalidLabel].
func (e *LabelError) Unwrap() error { return ErrInvalidLabel }

// URIError describes a key store URI that cannot be used. It wraps
// [ErrInvalidURI], and Err when that is set.
type URIError struct {
	URI    string // the URI, with any secret (PIN, passphrase) removed
	Part   string // the part that is wrong: "scheme", "path", or an attribute name such as "module-path"
	Reason string // what is wrong with it
	Err    error  // the underlying error, if any
}

func (e *URIError) Error() string {
	msg := "keystore: invalid URI " + quote(e.URI)
	if e.Part != "" {
		msg += ": " + e.Part
	}
	if e.Reason != "" {
		msg += ": " + e.Reason
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap returns [ErrInvalidURI] and the underlying error.
func (e *URIError) Unwrap() []error {
	if e.Err != nil {
		return []error{ErrInvalidURI, e.Err}
	}
	return []error{ErrInvalidURI}
}
