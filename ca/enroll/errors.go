package enroll

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/ztmkit/ztm/attest"
	"github.com/ztmkit/ztm/ca"
	"github.com/ztmkit/ztm/identity"
)

// Sentinel errors. Match them with errors.Is.
var (
	// ErrRefused is wrapped, through a [*RefusalError], by every refusal
	// of an enrollment or a nonce: the registration authority decided
	// against the request. Whether a retry of the same request may
	// succeed is [Retryable]'s answer.
	ErrRefused = errors.New("enroll: refused")
	// ErrInvalidConfig is returned by the constructors for a configuration
	// they cannot use.
	ErrInvalidConfig = errors.New("enroll: invalid configuration")
)

// Reason says which check refused a request. Its String form is what
// package transport/est sends in the ZTM-Refusal header, so a station
// over EST reads the same Reason as one in process.
type Reason int

// The reasons a [*RefusalError] carries.
const (
	// ReasonBadRequest: the request is malformed: no or unparsable
	// certificate request, a bad signature on it (Check names the
	// identity.CSRErrorReason), a malformed challengePassword.
	ReasonBadRequest Reason = iota + 1
	// ReasonUnauthenticated: no credential, or one that does not verify
	// (a station certificate not of this CA, not for clientAuth, expired).
	ReasonUnauthenticated
	// ReasonNotAuthorized: the requester may not use the profile (its
	// station authorization does not list it), or the CA refused it.
	ReasonNotAuthorized
	// ReasonRequesterRevoked: the station's certificate is revoked.
	ReasonRequesterRevoked
	// ReasonChannelBinding: the request's tls-exporter value is missing
	// where required, or does not match the connection.
	ReasonChannelBinding
	// ReasonEvidenceRequired: the profile needs evidence and none came.
	ReasonEvidenceRequired
	// ReasonEvidence: the verifier refused the evidence; Check names the
	// attest.Reason ("untrusted-signer", "nonce-reused", "debug-enabled"…)
	// and Err wraps the *attest.VerificationError.
	ReasonEvidence
	// ReasonAppraisal: the evidence verified but its appraisal is not
	// affirming (or warning, where accepted); Check names the first
	// failing attest.Reason.
	ReasonAppraisal
	// ReasonEvidenceBinding: the evidence does not name the request's
	// device (its UEID is not the hardwareModuleName's serial).
	ReasonEvidenceBinding
	// ReasonUnknownProfile: the CA has no such profile.
	ReasonUnknownProfile
	// ReasonPolicy: the CA's PolicyFunc refused the request.
	ReasonPolicy
	// ReasonConflict: the same request was enrolled by another requester
	// or under another profile.
	ReasonConflict
	// ReasonRepeatRevoked: a repeat of a request whose certificate has
	// been revoked since; the certificate is not delivered again.
	ReasonRepeatRevoked
	// ReasonRenewal: a re-enrollment the profile does not allow (an
	// IDevID never renews) or that does not match the current
	// certificate.
	ReasonRenewal
	// ReasonQuota: the requester used up its certificate quota. A later
	// retry may succeed.
	ReasonQuota
	// ReasonNonceLimit: the requester has too many nonces outstanding, or
	// the pool is full. A later retry may succeed.
	ReasonNonceLimit
	// ReasonAlreadyProvisioned: the device already holds a live IDevID and
	// the request does not ask to re-provision it (Request.Reprovision).
	ReasonAlreadyProvisioned
	// ReasonKeyBinding: the evidence does not confirm the request's key:
	// its cnf names another key (Check "key-not-confirmed": a station
	// asking a certificate for a key of its own with a genuine device's
	// evidence), or it names none where the profile requires a
	// device-attested key (Check "missing-claim").
	ReasonKeyBinding

	maxReason
)

var reasonNames = [...]string{
	ReasonBadRequest:         "bad-request",
	ReasonUnauthenticated:    "unauthenticated",
	ReasonNotAuthorized:      "not-authorized",
	ReasonRequesterRevoked:   "requester-revoked",
	ReasonChannelBinding:     "channel-binding",
	ReasonEvidenceRequired:   "evidence-required",
	ReasonEvidence:           "evidence",
	ReasonAppraisal:          "appraisal",
	ReasonEvidenceBinding:    "evidence-binding",
	ReasonUnknownProfile:     "unknown-profile",
	ReasonPolicy:             "policy",
	ReasonConflict:           "conflict",
	ReasonRepeatRevoked:      "repeat-revoked",
	ReasonRenewal:            "renewal",
	ReasonQuota:              "quota",
	ReasonNonceLimit:         "nonce-limit",
	ReasonAlreadyProvisioned: "already-provisioned",
	ReasonKeyBinding:         "key-binding",
}

// String returns the reason's short name ("evidence", "quota", …).
func (r Reason) String() string {
	if r > 0 && r < maxReason {
		return reasonNames[r]
	}
	return fmt.Sprintf("Reason(%d)", int(r))
}

// ParseReason returns the Reason whose String is s.
func ParseReason(s string) (Reason, bool) {
	for r := Reason(1); r < maxReason; r++ {
		if reasonNames[r] == s {
			return r, true
		}
	}
	return 0, false
}

// Retryable reports whether a retry of the same request may succeed
// later.
func (r Reason) Retryable() bool { return r == ReasonQuota || r == ReasonNonceLimit }

// RefusalError is the error of every refusal. It wraps [ErrRefused] and
// the underlying error (an *attest.VerificationError, a *identity.CSRError, a
// *ca.AuthorizationError, a ca sentinel…), so errors.Is finds the same
// sentinels in process and, through package transport/est, over EST.
type RefusalError struct {
	// Reason is the check that refused.
	Reason Reason
	// Check refines Reason where one check has several outcomes: the
	// attest.Reason of refused evidence ("debug-enabled"), the
	// identity.CSRErrorReason of a refused request ("weak or unsupported key"). Empty otherwise.
	Check string
	// Detail says what was found, for a person; it holds no secret.
	Detail string
	// Err is the underlying error, if any.
	Err error
}

// Error returns "enroll: refused: <reason>[/<check>]: <detail>: <err>".
func (e *RefusalError) Error() string {
	var b strings.Builder
	b.WriteString("enroll: refused: ")
	b.WriteString(e.Code())
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

// Code returns the reason and, when set, the check: "evidence/debug-enabled".
func (e *RefusalError) Code() string {
	if e.Check == "" {
		return e.Reason.String()
	}
	return e.Reason.String() + "/" + e.Check
}

// Unwrap returns ErrRefused and Err.
func (e *RefusalError) Unwrap() []error {
	if e.Err == nil {
		return []error{ErrRefused}
	}
	return []error{ErrRefused, e.Err}
}

// Retryable reports whether a retry of the same request (the same CSR and
// evidence) may succeed later. A refusal may not, except for a quota or a
// nonce limit; a failure that is not a refusal (the CA's ledger, the
// network, a deadline) may, unless it is a configuration error or the
// caller cancelled.
func Retryable(err error) bool {
	if err == nil || errors.Is(err, ErrInvalidConfig) || errors.Is(err, context.Canceled) {
		return false
	}
	var re *RefusalError
	if errors.As(err, &re) {
		return re.Reason.Retryable()
	}
	return true
}

func refuse(r Reason, err error, format string, args ...any) *RefusalError {
	return &RefusalError{Reason: r, Detail: fmt.Sprintf(format, args...), Err: err}
}

// fromCA turns an error of ca.Authority into a refusal when it is one;
// anything else (the ledger failing) is returned as is.
func fromCA(err error) error {
	var (
		ce *identity.CSRError
		ae *ca.AuthorizationError
		pe *ca.PolicyError
	)
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ce):
		return &RefusalError{Reason: ReasonBadRequest, Check: ce.Reason.String(), Err: err}
	case errors.Is(err, ca.ErrRequesterRevoked):
		return &RefusalError{Reason: ReasonRequesterRevoked, Err: err}
	case errors.As(err, &ae):
		return &RefusalError{Reason: ReasonNotAuthorized, Err: err}
	case errors.As(err, &pe), errors.Is(err, ca.ErrPolicy):
		return &RefusalError{Reason: ReasonPolicy, Err: err}
	case errors.Is(err, ca.ErrUnknownProfile):
		return &RefusalError{Reason: ReasonUnknownProfile, Err: err}
	case errors.Is(err, ca.ErrRepeatRevoked):
		return &RefusalError{Reason: ReasonRepeatRevoked, Err: err}
	case errors.Is(err, ca.ErrDeviceProvisioned):
		return &RefusalError{Reason: ReasonAlreadyProvisioned, Err: err}
	case errors.Is(err, ca.ErrRequestExists):
		return &RefusalError{Reason: ReasonConflict, Err: err}
	case errors.Is(err, ca.ErrQuotaExceeded):
		return &RefusalError{Reason: ReasonQuota, Err: err}
	case errors.Is(err, ca.ErrInvalidRequest), errors.Is(err, identity.ErrInvalidCSR):
		return &RefusalError{Reason: ReasonBadRequest, Err: err}
	case errors.Is(err, ca.ErrNotAuthorized):
		return &RefusalError{Reason: ReasonNotAuthorized, Err: err}
	}
	return err
}

// fromEvidence turns the verifier's error into a refusal naming the
// attest check.
func fromEvidence(err error) *RefusalError {
	r := &RefusalError{Reason: ReasonEvidence, Err: err}
	var ve *attest.VerificationError
	if errors.As(err, &ve) {
		r.Check = ve.Reason.String()
	}
	return r
}

// Reported rebuilds a refusal that a transport received as text: code is
// a [RefusalError.Code] ("evidence/debug-enabled", "quota") and detail the
// message that came with it. Err then wraps the sentinel the refusal
// wraps in process — the *attest.VerificationError of its check, a
// *identity.CSRError, ca.ErrQuotaExceeded… — so that errors.Is and errors.As
// give the same answers on both sides. It reports false for a code it
// does not know.
func Reported(code, detail string) (*RefusalError, bool) {
	name, check, _ := strings.Cut(code, "/")
	r, ok := ParseReason(name)
	if !ok {
		return nil, false
	}
	e := &RefusalError{Reason: r, Check: check, Detail: detail}
	switch r {
	case ReasonEvidence, ReasonAppraisal, ReasonKeyBinding:
		if ar, ok := attestReason(check); ok {
			e.Err = &attest.VerificationError{Reason: ar, Detail: "reported by the CA"}
		} else {
			e.Err = attest.ErrVerification
		}
	case ReasonBadRequest:
		if cr, ok := csrReason(check); ok {
			e.Err = &identity.CSRError{Reason: cr, Detail: "reported by the CA"}
		}
	default:
		e.Err = reasonSentinel[r]
	}
	return e, true
}

// reasonSentinel is the sentinel a reported refusal of each reason wraps,
// as the refusal wraps it in process (see fromCA).
var reasonSentinel = map[Reason]error{
	ReasonRequesterRevoked:   ca.ErrRequesterRevoked,
	ReasonNotAuthorized:      ca.ErrNotAuthorized,
	ReasonPolicy:             ca.ErrPolicy,
	ReasonUnknownProfile:     ca.ErrUnknownProfile,
	ReasonConflict:           ca.ErrRequestExists,
	ReasonRepeatRevoked:      ca.ErrRepeatRevoked,
	ReasonQuota:              ca.ErrQuotaExceeded,
	ReasonNonceLimit:         attest.ErrNoncesFull,
	ReasonAlreadyProvisioned: ca.ErrDeviceProvisioned,
}

// reasonNamed returns the value of an enum (attest.Reason, identity.CSRErrorReason)
// whose String is s, trying from first up while String names a value,
// that is, until it falls back to its unknown form "<unknown>(n)".
func reasonNamed[R ~int](s string, first R, unknown string) (R, bool) {
	for r := first; r < first+64; r++ {
		n := fmt.Sprint(r)
		if n == s {
			return r, true
		}
		if strings.HasPrefix(n, unknown+"(") {
			break
		}
	}
	return 0, false
}

func attestReason(s string) (attest.Reason, bool) { return reasonNamed(s, attest.Reason(0), "Reason") }

func csrReason(s string) (identity.CSRErrorReason, bool) {
	return reasonNamed(s, identity.CSRErrorReason(1), "CSRErrorReason")
}
