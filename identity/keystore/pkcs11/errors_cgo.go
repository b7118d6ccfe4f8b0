//go:build cgo

package pkcs11

import (
	"errors"
	"fmt"
	"strings"

	p11 "github.com/miekg/pkcs11"
)

// codeName returns the name of a CK_RV, such as "CKR_PIN_INCORRECT".
func codeName(code uint) string {
	return strings.TrimPrefix(p11.Error(code).Error(), "pkcs11: ")
}

// codeError returns the github.com/miekg/pkcs11 Error for a CK_RV.
func codeError(code uint) error { return p11.Error(code) }

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
