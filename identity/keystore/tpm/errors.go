package tpm

import (
	"errors"
	"strconv"

	"github.com/ztmkit/ztm/internal/errfmt"
)

// Sentinel errors of this package, besides the [keystore] sentinels
// (ErrNotFound, ErrExists, ErrUnsupportedAlgorithm, ErrInvalidLabel,
// ErrClosed, ErrInvalidURI) that every method returns as the
// [keystore.Store] contract says. Match them with [errors.Is].
var (
	// ErrNotExportable is returned by Create for a request with
	// Exportable set: keys are created fixedTPM and fixedParent, and this
	// store has no duplication (export) support.
	ErrNotExportable = errors.New("tpm: exportable keys are not supported (keys are fixedTPM)")
	// ErrWrongTPM is returned when a key file in the index was made under
	// another storage root key: another TPM, or this TPM after its owner
	// hierarchy was cleared. Such a key can never be loaded here.
	ErrWrongTPM = errors.New("tpm: key was made under another TPM or storage root key")
	// ErrRestricted is returned by Sign on an attestation key: a restricted
	// key signs only what the TPM itself produced (quotes), never a
	// caller's digest.
	ErrRestricted = errors.New("tpm: restricted attestation key cannot sign external digests")
	// ErrNotAttestationKey is returned by [Store.Quote] for a label that
	// names an ordinary signing key rather than one made by
	// [Store.CreateAttestationKey].
	ErrNotAttestationKey = errors.New("tpm: not an attestation key")
	// ErrNoEKCertificate is returned by [Store.EndorsementCertificate] when
	// the TPM's NV holds no EK certificate for the EK type in use.
	ErrNoEKCertificate = errors.New("tpm: no EK certificate in NV")
	// ErrInvalidNonce is returned, wrapped in a [*NonceError], by
	// [Store.Quote] for an empty or too long nonce.
	ErrInvalidNonce = errors.New("tpm: invalid quote nonce")
	// ErrInvalidPCR is returned by [Store.Quote] for an empty PCR list, a
	// PCR index out of range or a repeated index.
	ErrInvalidPCR = errors.New("tpm: invalid PCR selection")
	// ErrCorruptKeyFile is returned, wrapped in a [*KeyFileError], for a
	// file in the key index that cannot be parsed.
	ErrCorruptKeyFile = errors.New("tpm: corrupt key file")
)

// NonceError describes a quote nonce that [Store.Quote] refused. It wraps
// [ErrInvalidNonce].
type NonceError struct {
	Size int // the nonce's length in bytes
	Max  int // the longest nonce accepted ([MaxNonceSize])
}

// Error describes the nonce's problem.
func (e *NonceError) Error() string {
	if e.Size == 0 {
		return "tpm: invalid quote nonce: empty (a quote without a nonce proves no freshness)"
	}
	return "tpm: invalid quote nonce: " + strconv.Itoa(e.Size) + " bytes, longer than the " + strconv.Itoa(e.Max) + "-byte maximum (pass a SHA-256 of a longer nonce)"
}

// Unwrap returns [ErrInvalidNonce].
func (e *NonceError) Unwrap() error { return ErrInvalidNonce }

// KeyFileError describes a key file in the index that cannot be used. It
// wraps [ErrCorruptKeyFile] or [ErrWrongTPM].
type KeyFileError struct {
	Label  string // the label the file is stored under
	Reason string // what is wrong with it
	Err    error  // ErrCorruptKeyFile or ErrWrongTPM
}

// Error names the label and what is wrong with its file.
func (e *KeyFileError) Error() string {
	return "tpm: key file for " + strconv.Quote(e.Label) + ": " + e.Reason
}

// Unwrap returns the sentinel the error stands for.
func (e *KeyFileError) Unwrap() error { return e.Err }

// errorf is fmt.Errorf for the package's messages: it keeps the "tpm:"
// prefix once, removing the prefixes of the package's errors it wraps
// ("tpm: failed to sign with \"k\": read from TCP TPM: EOF"); errors.Is
// and errors.As still see every wrapped error.
func errorf(format string, args ...any) error { return errfmt.Errorf("tpm: ", format, args...) }
