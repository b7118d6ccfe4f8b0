package attest

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors. Every refusal of evidence or of a result wraps
// [ErrVerification] and, through a [*VerificationError], the sentinel of its
// [Reason]; match them with errors.Is.
var (
	// ErrVerification is wrapped by every failed security check: evidence
	// or a result that is malformed, oversize, badly signed, untrusted,
	// stale or refused by policy.
	ErrVerification = errors.New("attest: verification failed")
	// ErrMalformed is wrapped for input that is not a well-formed token:
	// bad CBOR or JSON, duplicate map keys, indefinite lengths, claims of
	// the wrong type.
	ErrMalformed = errors.New("attest: malformed token")
	// ErrTooLarge is wrapped for a token over the configured size limit.
	// It is refused before any parsing.
	ErrTooLarge = errors.New("attest: token too large")
	// ErrUnsupportedAlgorithm is wrapped for a missing, "none", symmetric
	// (HMAC) or unknown signature algorithm, and for an algorithm given
	// outside the protected header.
	ErrUnsupportedAlgorithm = errors.New("attest: unsupported algorithm")
	// ErrAlgorithmMismatch is wrapped when the algorithm in the protected
	// header is not the one the signing key uses.
	ErrAlgorithmMismatch = errors.New("attest: algorithm does not match the key")
	// ErrUntrustedSigner is wrapped when the signing key is not a
	// registered key and its certificate chain does not lead to a trust
	// anchor, is expired, or its leaf may not sign.
	ErrUntrustedSigner = errors.New("attest: untrusted signer")
	// ErrBadSignature is wrapped when the signature does not verify.
	ErrBadSignature = errors.New("attest: bad signature")
	// ErrMissingClaim is wrapped when a required claim is absent.
	ErrMissingClaim = errors.New("attest: missing required claim")
	// ErrNonceUnknown is wrapped for a nonce this verifier never issued,
	// or issued so long ago that it has been reclaimed.
	ErrNonceUnknown = errors.New("attest: unknown nonce")
	// ErrNonceReused is wrapped for a nonce that was already consumed.
	ErrNonceReused = errors.New("attest: nonce reused")
	// ErrNonceExpired is wrapped for a nonce presented after its TTL.
	ErrNonceExpired = errors.New("attest: nonce expired")
	// ErrExpired is wrapped for evidence or a result presented after its
	// exp claim (plus the clock-skew allowance).
	ErrExpired = errors.New("attest: token expired")
	// ErrNotYetValid is wrapped for evidence or a result presented before
	// its nbf claim (less the clock-skew allowance).
	ErrNotYetValid = errors.New("attest: token not yet valid")
	// ErrPolicy is wrapped when signed, fresh evidence fails appraisal:
	// debug enabled, secure boot off, a measurement or software version
	// that does not meet the reference values, or no reference values.
	ErrPolicy = errors.New("attest: evidence refused by appraisal policy")
	// ErrNoncesFull is returned by [Nonces.Issue] when the maximum number
	// of outstanding nonces is reached and none has expired. It is not a
	// verification failure.
	ErrNoncesFull = errors.New("attest: too many outstanding nonces")
	// ErrKeyNotConfirmed is wrapped when the key the evidence confirms
	// (its cnf claim) is not the key it is checked against, the key of
	// the certificate request: see [Evidence.ConfirmKey].
	ErrKeyNotConfirmed = errors.New("attest: key not confirmed by the evidence")
	// ErrInvalidConfig is returned by the methods of an [EATVerifier] not
	// made by [NewVerifier] (wrapped with [ErrVerification]: it fails
	// closed) and of [Nonces] not made by [NewNonces].
	ErrInvalidConfig = errors.New("attest: invalid configuration")
)

// Reason says which check refused evidence or a result.
type Reason int

// The reasons a [*VerificationError] carries.
const (
	// ReasonMalformed: the token does not parse strictly.
	ReasonMalformed Reason = iota
	// ReasonTooLarge: the token is over the size limit.
	ReasonTooLarge
	// ReasonUnsupportedAlgorithm: alg missing, none, HMAC or unknown.
	ReasonUnsupportedAlgorithm
	// ReasonAlgorithmUnprotected: alg present in the unprotected header.
	ReasonAlgorithmUnprotected
	// ReasonAlgorithmMismatch: alg does not match the signer's key.
	ReasonAlgorithmMismatch
	// ReasonUntrustedSigner: no registered key and no valid chain.
	ReasonUntrustedSigner
	// ReasonBadSignature: the signature does not verify.
	ReasonBadSignature
	// ReasonMissingClaim: a required claim is absent.
	ReasonMissingClaim
	// ReasonNonceUnknown: the nonce was never issued (or was reclaimed).
	ReasonNonceUnknown
	// ReasonNonceReused: the nonce was already consumed.
	ReasonNonceReused
	// ReasonNonceExpired: the nonce outlived its TTL.
	ReasonNonceExpired
	// ReasonNoReferenceValues: no reference values for (oemid, hwmodel).
	ReasonNoReferenceValues
	// ReasonDebugEnabled: dbgstat is absent or below the required level.
	ReasonDebugEnabled
	// ReasonSecureBootOff: oemboot (secure boot) is absent or false.
	ReasonSecureBootOff
	// ReasonMeasurementMismatch: a measurement is missing or differs.
	ReasonMeasurementMismatch
	// ReasonSoftwareVersion: swname or swversion do not meet the minimum.
	ReasonSoftwareVersion
	// ReasonExpired: the token's exp has passed.
	ReasonExpired
	// ReasonNotYetValid: the token's nbf is still to come.
	ReasonNotYetValid
	// ReasonReboot: the device was reset or restarted (or its TPM clock
	// went back) since an earlier quote it was required to follow.
	ReasonReboot
	// ReasonClockUnsafe: the TPM reports that its clock may have gone
	// back (clockInfo.safe is NO), and the verifier requires a safe one.
	ReasonClockUnsafe
	// ReasonKeyNotConfirmed: the evidence's cnf names another key than
	// the request's.
	ReasonKeyNotConfirmed

	maxReason
)

var reasonNames = [...]string{
	ReasonMalformed:            "malformed",
	ReasonTooLarge:             "too-large",
	ReasonUnsupportedAlgorithm: "unsupported-algorithm",
	ReasonAlgorithmUnprotected: "algorithm-unprotected",
	ReasonAlgorithmMismatch:    "algorithm-mismatch",
	ReasonUntrustedSigner:      "untrusted-signer",
	ReasonBadSignature:         "bad-signature",
	ReasonMissingClaim:         "missing-claim",
	ReasonNonceUnknown:         "nonce-unknown",
	ReasonNonceReused:          "nonce-reused",
	ReasonNonceExpired:         "nonce-expired",
	ReasonNoReferenceValues:    "no-reference-values",
	ReasonDebugEnabled:         "debug-enabled",
	ReasonSecureBootOff:        "secure-boot-off",
	ReasonMeasurementMismatch:  "measurement-mismatch",
	ReasonSoftwareVersion:      "software-version",
	ReasonExpired:              "expired",
	ReasonNotYetValid:          "not-yet-valid",
	ReasonReboot:               "reboot",
	ReasonClockUnsafe:          "clock-unsafe",
	ReasonKeyNotConfirmed:      "key-not-confirmed",
}

// String returns the reason's short name, as used in a [Result]'s reasons
// ("nonce-reused", "debug-enabled", …).
func (r Reason) String() string {
	if r >= 0 && r < maxReason {
		return reasonNames[r]
	}
	return fmt.Sprintf("Reason(%d)", int(r))
}

// Sentinel returns the sentinel error wrapped by a [*VerificationError] with
// this reason.
func (r Reason) Sentinel() error {
	switch r {
	case ReasonMalformed:
		return ErrMalformed
	case ReasonTooLarge:
		return ErrTooLarge
	case ReasonUnsupportedAlgorithm, ReasonAlgorithmUnprotected:
		return ErrUnsupportedAlgorithm
	case ReasonAlgorithmMismatch:
		return ErrAlgorithmMismatch
	case ReasonUntrustedSigner:
		return ErrUntrustedSigner
	case ReasonBadSignature:
		return ErrBadSignature
	case ReasonMissingClaim:
		return ErrMissingClaim
	case ReasonNonceUnknown:
		return ErrNonceUnknown
	case ReasonNonceReused:
		return ErrNonceReused
	case ReasonNonceExpired:
		return ErrNonceExpired
	case ReasonExpired:
		return ErrExpired
	case ReasonNotYetValid:
		return ErrNotYetValid
	case ReasonKeyNotConfirmed:
		return ErrKeyNotConfirmed
	}
	return ErrPolicy
}

// VerificationError is the error of every refused token. It wraps
// [ErrVerification], the sentinel of its Reason (see [Reason.Sentinel]) and
// the underlying error, if any.
type VerificationError struct {
	// Reason is the check that failed first.
	Reason Reason
	// Detail says what was wrong, for people.
	Detail string
	// Err is the underlying error, or nil.
	Err error
}

// Error returns "attest: verification failed: <reason>: <detail>".
func (e *VerificationError) Error() string {
	var b strings.Builder
	b.WriteString("attest: verification failed: ")
	b.WriteString(e.Reason.String())
	if e.Detail != "" {
		b.WriteString(": ")
		b.WriteString(e.Detail)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns [ErrVerification], the reason's sentinel and Err.
func (e *VerificationError) Unwrap() []error {
	errs := []error{ErrVerification, e.Reason.Sentinel()}
	if e.Err != nil {
		errs = append(errs, e.Err)
	}
	return errs
}

func verr(r Reason, err error, format string, args ...any) *VerificationError {
	return &VerificationError{Reason: r, Detail: fmt.Sprintf(format, args...), Err: err}
}
