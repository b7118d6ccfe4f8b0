package file

import (
	"errors"
	"strconv"
)

// Sentinel errors of the file store, besides those of
// [github.com/ztmkit/ztm/identity/keystore] (ErrNotFound, ErrExists, ErrAuth,
// ErrClosed, ErrInvalidLabel, ErrUnsupportedAlgorithm, ErrInvalidURI), which
// the store returns for the outcomes they name. Match them with [errors.Is].
var (
	// ErrCorrupt is wrapped, in a [*FormatError], by every error about a key
	// file that is not a well-formed encrypted PKCS#8 key: truncated, bad
	// PEM or base64, trailing data, malformed ASN.1, or a decrypted key that
	// is damaged (its first block decrypted correctly, so the passphrase was
	// right, but the rest does not parse or does not match its recorded
	// public key).
	ErrCorrupt = errors.New("file: corrupt key file")
	// ErrUnsupportedFormat is wrapped, in a [*FormatError], by errors about
	// a well-formed key file that uses something the store does not read: an
	// unencrypted key, a cipher other than AES-CBC, a PRF other than
	// HMAC-SHA-1/-256/-384/-512, or an iteration count above
	// [MaxIterations].
	ErrUnsupportedFormat = errors.New("file: unsupported key file format")
	// ErrNoCredential is returned by [Open] for a [Config] that sets neither
	// or both of Passphrase and KEK, or one the store refuses (an empty
	// passphrase, a KEK that is not 32 bytes). There is no default
	// passphrase.
	ErrNoCredential = errors.New("file: no usable credential")
	// ErrInsecureDir is returned, in a [*DirError], by [Open] for a key
	// directory that others could write to or that another user owns.
	ErrInsecureDir = errors.New("file: insecure key directory")
)

// FormatError describes a key file the store cannot read. It wraps Err,
// which is [ErrCorrupt] or [ErrUnsupportedFormat].
type FormatError struct {
	Path   string // the key file, when known
	Reason string // what is wrong with it
	Err    error  // ErrCorrupt or ErrUnsupportedFormat
}

func (e *FormatError) Error() string {
	msg := "file: "
	if errors.Is(e.Err, ErrUnsupportedFormat) {
		msg += "unsupported key file"
	} else {
		msg += "corrupt key file"
	}
	if e.Path != "" {
		msg += " " + strconv.Quote(e.Path)
	}
	return msg + ": " + e.Reason
}

// Unwrap returns Err.
func (e *FormatError) Unwrap() error { return e.Err }

// DirError describes a key directory [Open] refuses to use. It wraps
// [ErrInsecureDir].
type DirError struct {
	Dir    string // the directory
	Reason string // what is wrong with it
}

func (e *DirError) Error() string {
	return "file: refusing key directory " + strconv.Quote(e.Dir) + ": " + e.Reason
}

// Unwrap returns [ErrInsecureDir].
func (e *DirError) Unwrap() error { return ErrInsecureDir }

func corrupt(format string) error {
	return &FormatError{Reason: format, Err: ErrCorrupt}
}

func unsupported(reason string) error {
	return &FormatError{Reason: reason, Err: ErrUnsupportedFormat}
}
