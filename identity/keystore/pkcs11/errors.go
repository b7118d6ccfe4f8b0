package pkcs11

import (
	"errors"
	"fmt"
	"strings"

	p11 "github.com/miekg/pkcs11"

	"github.com/ztmkit/ztm/identity/keystore"
)

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
	return msg
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
	name := strings.TrimPrefix(p11.Error(e.Code).Error(), "pkcs11: ")
	return fmt.Sprintf("pkcs11: %s: %s", e.Op, name)
}

// Unwrap returns the miekg/pkcs11 Error for Code, and the sentinel Code
// means, if any.
func (e *Error) Unwrap() []error {
	errs := []error{p11.Error(e.Code)}
	switch e.Code {
	case p11.CKR_PIN_INCORRECT, p11.CKR_PIN_INVALID, p11.CKR_PIN_LEN_RANGE, p11.CKR_PIN_LOCKED, p11.CKR_PIN_EXPIRED:
		errs = append(errs, keystore.ErrAuth)
	case p11.CKR_KEY_HANDLE_INVALID, p11.CKR_OBJECT_HANDLE_INVALID:
		errs = append(errs, keystore.ErrNotFound)
	}
	return errs
}

// wrap turns an error from a miekg/pkcs11 call into an [*Error].
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	var code p11.Error
	if errors.As(err, &code) {
		return &Error{Op: op, Code: uint(code)}
	}
	return fmt.Errorf("pkcs11: %s: %w", op, err)
}

// rv returns the CK_RV of err, or 0 when err is not a PKCS#11 failure.
func rv(err error) uint {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	var code p11.Error
	if errors.As(err, &code) {
		return uint(code)
	}
	return 0
}

// sessionLost reports whether err means that the session can no longer be
// used, so that it is discarded and the operation retried on a new one.
func sessionLost(err error) bool {
	switch rv(err) {
	case p11.CKR_SESSION_HANDLE_INVALID, p11.CKR_SESSION_CLOSED, p11.CKR_USER_NOT_LOGGED_IN:
		return true
	}
	return false
}

// handleInvalid reports whether err says an object handle names no object.
func handleInvalid(err error) bool {
	switch rv(err) {
	case p11.CKR_KEY_HANDLE_INVALID, p11.CKR_OBJECT_HANDLE_INVALID:
		return true
	}
	return false
}
