// Package errfmt formats error messages that carry their package's prefix
// once ("pkcs11: key \"k\": C_Sign: …", not "pkcs11: key \"k\": pkcs11:
// C_Sign: …") while wrapping, with %w, errors that carry it too, so that
// errors.Is and errors.As still see every wrapped error.
package errfmt

import (
	"fmt"
	"strings"
)

// OnePrefix returns msg with every occurrence of prefix (such as
// "pkcs11: ") after the first removed.
func OnePrefix(prefix, msg string) string {
	i := strings.Index(msg, prefix)
	if i < 0 {
		return msg
	}
	head := msg[:i+len(prefix)]
	return head + strings.ReplaceAll(msg[len(head):], prefix, "")
}

// Errorf is fmt.Errorf(format, args...) whose message keeps prefix once
// (see [OnePrefix]). The error unwraps to the fmt.Errorf error.
func Errorf(prefix, format string, args ...any) error {
	err := fmt.Errorf(format, args...)
	msg := OnePrefix(prefix, err.Error())
	if msg == err.Error() {
		return err
	}
	return &prefixed{msg: msg, err: err}
}

// prefixed is an error with a rewritten message.
type prefixed struct {
	msg string
	err error
}

func (e *prefixed) Error() string { return e.msg }
func (e *prefixed) Unwrap() error { return e.err }
