package est

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/ztmkit/ztm/ca/enroll"
)

// Sentinel errors. Match them with errors.Is.
var (
	// ErrBadRequest is wrapped by every refusal of a request's form: a body
	// that is not base64, a certificate request that does not parse or
	// whose signature does not verify, malformed evidence encoding. The
	// server answers 400.
	ErrBadRequest = errors.New("est: bad request")
	// ErrUnauthenticated is returned when the requester presented no
	// credential, or one the server does not accept (a client certificate
	// that does not chain to the CA or is not for clientAuth, a wrong
	// password). The server answers 401 with a Basic challenge when it
	// accepts HTTP Basic, and 403 when it authenticates by TLS client
	// certificate only (see the package documentation, Status codes); the
	// Client then returns ErrForbidden.
	ErrUnauthenticated = errors.New("est: requester not authenticated")
	// ErrForbidden is wrapped when an authenticated requester may not do
	// what it asks: the station's authorization does not list the profile,
	// the channel binding does not match, a re-enrollment does not match
	// the certificate being renewed, or the CA refused the requester. The
	// server answers 403.
	ErrForbidden = errors.New("est: forbidden")
	// ErrConflict is returned when a request repeats a certificate request
	// already enrolled by another requester. The server answers 409.
	ErrConflict = errors.New("est: certificate request already enrolled by another requester")
	// ErrRetryLater is wrapped, in a [*RetryLaterError], when the server
	// answered 202 or 503 with a Retry-After that the Client could not wait
	// for (its retries are used up or the context ends first), and by the
	// server's own refusals that a later retry may cure.
	ErrRetryLater = errors.New("est: server asks to retry later")
	// ErrQuotaExceeded is wrapped when the requester has used up its
	// certificate quota (the CA's QuotaPolicy). The server answers 429.
	ErrQuotaExceeded = errors.New("est: requester quota exceeded")
	// ErrBadResponse is wrapped when a server's answer is not what RFC
	// 7030 prescribes: wrong media type, not base64, not a certs-only
	// SignedData, no certificate for the request's key.
	ErrBadResponse = errors.New("est: malformed server response")
	// ErrFingerprint is returned by [BootstrapCACerts] when no certificate
	// the server sent has the fingerprint the caller expects.
	ErrFingerprint = errors.New("est: CA certificate fingerprint mismatch")
	// ErrInvalidConfig is returned by the constructors for a configuration
	// they cannot use.
	ErrInvalidConfig = errors.New("est: invalid configuration")
)

// RequestError reports a request refused for its form. It wraps
// [ErrBadRequest] and the underlying error.
type RequestError struct {
	// Reason is a short description ("malformed base64").
	Reason string
	// Err is the underlying error, if any.
	Err error
}

// Error describes the failure.
func (e *RequestError) Error() string {
	if e.Err != nil {
		return "est: bad request: " + e.Reason + ": " + e.Err.Error()
	}
	return "est: bad request: " + e.Reason
}

// Unwrap returns ErrBadRequest and the underlying error.
func (e *RequestError) Unwrap() []error { return []error{ErrBadRequest, e.Err} }

// StatusError is the Client's error for an HTTP answer other than success:
// the status code and the start of the body (at most 1 KiB). It wraps the
// sentinel of its code (400 ErrBadRequest, 401 ErrUnauthenticated, 403
// ErrForbidden, 409 ErrConflict, 429 ErrQuotaExceeded, 202 and 503
// ErrRetryLater) and, for a refusal, the *enroll.RefusalError the server
// named in its ZTM-Refusal header — or, from a server that sends none,
// the one its status code implies — so that errors.Is(err,
// enroll.ErrRefused), errors.Is(err, attest.ErrPolicy) and
// enroll.Retryable answer as they do in process.
type StatusError struct {
	// Code is the HTTP status code.
	Code int
	// Body is the start of the answer's body.
	Body string
	// Refusal is the refusal the answer reports, or nil.
	Refusal *enroll.RefusalError
}

// byStatus is the refusal a plain EST server's status code implies.
var byStatus = map[int]enroll.Reason{
	http.StatusBadRequest:      enroll.ReasonBadRequest,
	http.StatusUnauthorized:    enroll.ReasonUnauthenticated,
	http.StatusForbidden:       enroll.ReasonNotAuthorized,
	http.StatusConflict:        enroll.ReasonConflict,
	http.StatusTooManyRequests: enroll.ReasonQuota,
}

func newStatusError(code int, refusal, body string) *StatusError {
	e := &StatusError{Code: code, Body: body}
	detail := strings.TrimSpace(body)
	if refusal != "" {
		if re, ok := enroll.Reported(strings.TrimSpace(refusal), detail); ok {
			e.Refusal = re
			return e
		}
	}
	if r, ok := byStatus[code]; ok {
		e.Refusal, _ = enroll.Reported(r.String(), detail)
	}
	return e
}

// Error describes the failure.
func (e *StatusError) Error() string {
	b := strings.TrimSpace(e.Body)
	if b == "" {
		return fmt.Sprintf("est: server answered %d %s", e.Code, http.StatusText(e.Code))
	}
	return fmt.Sprintf("est: server answered %d %s: %s", e.Code, http.StatusText(e.Code), b)
}

// Unwrap returns the sentinel of the status code, if any, and the
// Refusal, if any.
func (e *StatusError) Unwrap() []error {
	var errs []error
	switch e.Code {
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType:
		errs = append(errs, ErrBadRequest)
	case http.StatusUnauthorized:
		errs = append(errs, ErrUnauthenticated)
	case http.StatusForbidden:
		errs = append(errs, ErrForbidden)
	case http.StatusConflict:
		errs = append(errs, ErrConflict)
	case http.StatusTooManyRequests:
		errs = append(errs, ErrQuotaExceeded)
	case http.StatusAccepted, http.StatusServiceUnavailable:
		errs = append(errs, ErrRetryLater)
	}
	if e.Refusal != nil {
		errs = append(errs, e.Refusal)
	}
	return errs
}

// Temporary reports whether a later retry of the same request may succeed:
// true for 202, 408, 429, 500, 502, 503 and 504.
func (e *StatusError) Temporary() bool {
	switch e.Code {
	case http.StatusAccepted, http.StatusRequestTimeout, http.StatusTooManyRequests,
		http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// RetryLaterError is returned by the Client when the server asked it to
// come back later (202 or 503 with Retry-After, RFC 7030 §4.2.3) and it
// could not: its retries are used up, or the wait would pass the context's
// deadline. It wraps [ErrRetryLater] and the last [*StatusError].
type RetryLaterError struct {
	// After is the server's last Retry-After (zero if it gave none).
	After time.Duration
	// Err is the last *StatusError (joined with the context's error when
	// the context ended during the wait).
	Err error
}

// Error describes the failure.
func (e *RetryLaterError) Error() string {
	return fmt.Sprintf("est: server asks to retry after %v: %v", e.After, e.Err)
}

// Unwrap returns ErrRetryLater and the last status error.
func (e *RetryLaterError) Unwrap() []error { return []error{ErrRetryLater, e.Err} }
