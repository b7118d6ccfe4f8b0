package est

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
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
	// ErrEvidence is wrapped, in an [*EvidenceError], when the device's
	// attestation evidence is missing, refused by the verifier (bad
	// signature, replayed or unknown nonce, appraisal failed) or does not
	// name the device of the request. The server answers 403.
	ErrEvidence = errors.New("est: attestation evidence refused")
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

// EvidenceError reports why the device's evidence was refused. It wraps
// [ErrEvidence] and the verifier's error (which wraps
// attest.ErrVerification and, for a replay, attest.ErrNonceReused).
type EvidenceError struct {
	// Reason is a short description.
	Reason string
	// Err is the verifier's or the binding check's error, if any.
	Err error
}

// Error describes the failure.
func (e *EvidenceError) Error() string {
	if e.Err != nil {
		return "est: evidence refused: " + e.Reason + ": " + e.Err.Error()
	}
	return "est: evidence refused: " + e.Reason
}

// Unwrap returns ErrEvidence and the underlying error.
func (e *EvidenceError) Unwrap() []error { return []error{ErrEvidence, e.Err} }

// StatusError is the Client's error for an HTTP answer other than success:
// the status code and the start of the body (at most 1 KiB). It wraps the
// sentinel of its code: 400 ErrBadRequest, 401 ErrUnauthenticated, 403
// ErrForbidden, 409 ErrConflict, 429 ErrQuotaExceeded, 202 and 503
// ErrRetryLater.
type StatusError struct {
	// Code is the HTTP status code.
	Code int
	// Body is the start of the answer's body.
	Body string
}

// Error describes the failure.
func (e *StatusError) Error() string {
	b := strings.TrimSpace(e.Body)
	if b == "" {
		return fmt.Sprintf("est: server answered %d %s", e.Code, http.StatusText(e.Code))
	}
	return fmt.Sprintf("est: server answered %d %s: %s", e.Code, http.StatusText(e.Code), b)
}

// Unwrap returns the sentinel of the status code, if any.
func (e *StatusError) Unwrap() error {
	switch e.Code {
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType:
		return ErrBadRequest
	case http.StatusUnauthorized:
		return ErrUnauthenticated
	case http.StatusForbidden:
		return ErrForbidden
	case http.StatusConflict:
		return ErrConflict
	case http.StatusTooManyRequests:
		return ErrQuotaExceeded
	case http.StatusAccepted, http.StatusServiceUnavailable:
		return ErrRetryLater
	}
	return nil
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
