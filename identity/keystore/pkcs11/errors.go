package pkcs11

import (
	"errors"
	"fmt"

	p11 "github.com/miekg/pkcs11"

	"github.com/ztmkit/ztm/identity/keystore"
	"github.com/ztmkit/ztm/internal/errfmt"
)

// ErrCgoRequired is returned by [Open], and so by keystore.Open for
// "pkcs11:" URIs, in a program built without cgo (CGO_ENABLED=0): a
// PKCS#11 module is a C shared library, which only a cgo build can load.
var ErrCgoRequired = errors.New("pkcs11: this program was built without cgo (CGO_ENABLED=0), and a PKCS#11 module is a C library only a cgo build can load: rebuild with CGO_ENABLED=1 and a C compiler")

// ErrNotExportable is returned by [Exporter.ExportKey] for a key it
// cannot export: a key of another token, or one made without
// [keystore.CreateRequest.Exportable] (CKR_KEY_UNEXTRACTABLE).
var ErrNotExportable = errors.New("pkcs11: key is not exportable")

// ErrNoWrappingKey is returned by [Exporter.ExportKey] when the token has
// no trusted wrapping key with the configured label (see
// [InstallWrappingKey]).
var ErrNoWrappingKey = errors.New("pkcs11: no trusted wrapping key")

// ErrTokenNotFound is returned by [Open] when no token, or more than one,
// matches the configured selectors.
var ErrTokenNotFound = errors.New("pkcs11: token not found")

// ModuleError describes a PKCS#11 module that cannot be used: a missing
// file, a file that is not a PKCS#11 library, or a failed C_Initialize.
type ModuleError struct {
	Path   string // the module's file name, as configured
	Reason string // what is wrong
	Err    error  // the underlying error, if any
}

func (e *ModuleError) Error() string {
	msg := fmt.Sprintf("pkcs11: module %q: %s", e.Path, e.Reason)
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return onePrefix(msg)
}

// Unwrap returns the underlying error.
func (e *ModuleError) Unwrap() error { return e.Err }

// Error is a PKCS#11 function that returned a failure code. It wraps the
// code as a github.com/miekg/pkcs11 Error, and also the keystore sentinel
// the code means, if any: [keystore.ErrAuth] for a refused PIN (incorrect,
// locked, expired or of the wrong length) and [keystore.ErrNotFound] for a
// key handle that no longer names an object.
type Error struct {
	Op   string // the PKCS#11 function, such as "C_Sign"
	Code uint   // the CK_RV return value
}

func (e *Error) Error() string {
	return fmt.Sprintf("pkcs11: %s: %s", e.Op, codeName(e.Code))
}

// Unwrap returns the miekg/pkcs11 Error for Code, and the sentinel Code
// means, if any.
func (e *Error) Unwrap() []error {
	var errs []error
	if c := codeError(e.Code); c != nil {
		errs = append(errs, c)
	}
	switch e.Code {
	case p11.CKR_PIN_INCORRECT, p11.CKR_PIN_INVALID, p11.CKR_PIN_LEN_RANGE, p11.CKR_PIN_LOCKED, p11.CKR_PIN_EXPIRED:
		errs = append(errs, keystore.ErrAuth)
	case p11.CKR_KEY_HANDLE_INVALID, p11.CKR_OBJECT_HANDLE_INVALID:
		errs = append(errs, keystore.ErrNotFound)
	}
	return errs
}

// prefix starts every error message of the package, once.
const prefix = "pkcs11: "

// onePrefix removes from msg the package prefix of the errors it wraps,
// leaving the leading one.
func onePrefix(msg string) string { return errfmt.OnePrefix(prefix, msg) }

// errorf is fmt.Errorf for the package's messages: it keeps the "pkcs11:"
// prefix once, removing the prefixes of the package's errors it wraps
// ("pkcs11: key \"k\": C_Sign: …", not "pkcs11: key \"k\": pkcs11:
// C_Sign: …"); errors.Is and errors.As still see every wrapped error.
func errorf(format string, args ...any) error { return errfmt.Errorf(prefix, format, args...) }
