package manifest

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors. Match them with [errors.Is].
var (
	// ErrVerification is wrapped by every failed security check: by the
	// errors of [Report.Err], [VerifyPolicy], [VerifyReceipt] and
	// [VerifyLotManifest]. The reason is in a [*VerificationError].
	ErrVerification = errors.New("manifest: verification failed")
	// ErrMalformed is wrapped by every decoding error: truncated or
	// trailing data, duplicate map keys, unknown fields, indefinite lengths,
	// non-canonical encodings and values out of range. It is returned,
	// wrapped in a [*DecodeError], by [ParseSignedStep], [ParseChain],
	// [ParsePolicy], [ParseReceipt] and their kin.
	ErrMalformed = errors.New("manifest: malformed input")
	// ErrTooLarge is returned, wrapped in a [*DecodeError], for input over
	// the size bound of its kind ([MaxStepSize], [MaxChainSize],
	// [MaxPolicySize], [MaxReceiptSize]), before any decoding.
	ErrTooLarge = errors.New("manifest: input too large")
	// ErrUnsupportedAlgorithm is returned by signing functions for a key
	// whose algorithm ztm does not use, and wrapped in verification errors
	// with [ReasonAlgorithm].
	ErrUnsupportedAlgorithm = errors.New("manifest: unsupported algorithm")
	// ErrInvalidStep is returned, wrapped, by [StepSigner.Sign] and
	// [Step.Marshal] for a step that breaks the rules of the format (see the
	// package documentation), such as an empty name or a first step with a
	// previous-step digest.
	ErrInvalidStep = errors.New("manifest: invalid step")
	// ErrInvalidPolicy is returned, wrapped, by [ParsePolicyJSON],
	// [ParsePolicy] and [SignPolicy] for a policy that breaks its rules,
	// such as a step rule naming an unknown signer.
	ErrInvalidPolicy = errors.New("manifest: invalid policy")
	// ErrNoSteps is returned by a store of steps (package chainstore,
	// package memchain, or any ztm.StepStore) for a subject it holds no
	// step of.
	ErrNoSteps = errors.New("manifest: no steps for this subject")
	// ErrFork is wrapped, in an [*AppendError], by [CheckAppend] (and so
	// by every step store's append) for a step whose sequence number is
	// already stored for its device: a second step 1, say, or the same step
	// appended twice.
	ErrFork = errors.New("manifest: a step with this sequence number is already stored (fork)")
	// ErrOutOfOrder is wrapped, in an [*AppendError], by [CheckAppend] for
	// a step that does not follow its device's last stored step: a first
	// step with a sequence number other than 0, or a gap.
	ErrOutOfOrder = errors.New("manifest: step out of order")
	// ErrBrokenLink is wrapped, in an [*AppendError], by [CheckAppend] for
	// a step whose previous-step digest is not the digest of the exact
	// bytes of its stored predecessor.
	ErrBrokenLink = errors.New("manifest: previous-step digest does not match the stored step")
	// ErrSingleLeafLot is returned by [LotManifest.Receipt] for a lot of
	// one device: its inclusion path would be empty, which neither the
	// receipt format (RFC 9942: inclusion-path [+ bstr]) nor RFC 9162's
	// own inclusion proof (inclusion_path<1..2^16-1>) can carry. The
	// signed lot manifest is that device's proof: see
	// [LotManifest.IsSoleLeaf].
	ErrSingleLeafLot = errors.New("manifest: a one-device lot has no receipt; its lot manifest is the proof")
)

// DecodeError reports input that could not be decoded. It wraps
// [ErrMalformed] or [ErrTooLarge], and the underlying decoder error.
type DecodeError struct {
	// What names what was being decoded ("step", "chain", "policy", …).
	What string
	// Err is the underlying error.
	Err error
	// tooLarge selects ErrTooLarge instead of ErrMalformed.
	tooLarge bool
}

func (e *DecodeError) Error() string {
	return fmt.Sprintf("manifest: failed to decode %s: %v", e.What, e.Err)
}

// Unwrap returns ErrMalformed (or ErrTooLarge) and the underlying error.
func (e *DecodeError) Unwrap() []error {
	if e.tooLarge {
		return []error{ErrTooLarge, e.Err}
	}
	return []error{ErrMalformed, e.Err}
}

func decodeErr(what string, err error) error {
	return &DecodeError{What: what, Err: err}
}

func tooLargeErr(what string, n, limit int) error {
	return &DecodeError{What: what, Err: fmt.Errorf("%d bytes, limit %d", n, limit), tooLarge: true}
}

// AppendError says why a step may not be appended to its device's stored
// chain. It wraps one of [ErrFork], [ErrOutOfOrder] or [ErrBrokenLink].
// [CheckAppend] returns it, and so do the step stores (package chainstore,
// package memchain) for a refused append.
type AppendError struct {
	// Subject and Sequence identify the refused step.
	Subject  []byte
	Sequence uint64
	// Stored is the number of steps stored for the device, counting the
	// steps before the refused one in the same append.
	Stored uint64
	// Err is the sentinel.
	Err error
}

func (e *AppendError) Error() string {
	return fmt.Sprintf("%v: device %x, step %d, %d stored", e.Err, e.Subject, e.Sequence, e.Stored)
}

// Unwrap returns the sentinel.
func (e *AppendError) Unwrap() error { return e.Err }

// Reason says why a verification check failed.
type Reason int

// Reasons for a failed check. The zero value is never used for a failure.
const (
	_ Reason = iota
	// ReasonMalformed: a step or header could not be used as it was
	// received (missing step, bad header, content type).
	ReasonMalformed
	// ReasonAlgorithm: the protected alg is missing, unknown, not allowed,
	// or does not match the signer's key.
	ReasonAlgorithm
	// ReasonUntrustedSigner: the kid names no key of the policy, or the
	// x5chain does not chain to a trust anchor of the policy.
	ReasonUntrustedSigner
	// ReasonSignature: the signature does not verify.
	ReasonSignature
	// ReasonSubject: a step names another device than the chain's first
	// step, or its CWT claims disagree with its payload.
	ReasonSubject
	// ReasonSequence: sequence numbers are not 0, 1, 2, … in order.
	ReasonSequence
	// ReasonLink: a step's previous-step digest is not the digest of the
	// exact bytes of the step before it.
	ReasonLink
	// ReasonFork: two steps claim the same sequence number or the same
	// predecessor.
	ReasonFork
	// ReasonCustodian: a step was not signed by the next custodian its
	// predecessor named.
	ReasonCustodian
	// ReasonLayout: the chain's steps are not the policy's steps in order:
	// a required step is missing, or an unexpected step is present.
	ReasonLayout
	// ReasonUnauthorizedSigner: the signer is trusted but the policy does
	// not let it sign a step of this name.
	ReasonUnauthorizedSigner
	// ReasonThreshold: fewer distinct authorized signers signed a step
	// than the policy's threshold.
	ReasonThreshold
	// ReasonPolicyExpired: the policy is past its expiry.
	ReasonPolicyExpired
	// ReasonReceipt: a receipt's inclusion proof does not lead to the
	// root its signature covers, or does not fit its leaf.
	ReasonReceipt
	// ReasonAborted: the context was cancelled before every check ran.
	ReasonAborted
	maxReason
)

var reasonNames = [...]string{
	ReasonMalformed:          "malformed",
	ReasonAlgorithm:          "algorithm",
	ReasonUntrustedSigner:    "untrusted signer",
	ReasonSignature:          "bad signature",
	ReasonSubject:            "subject mismatch",
	ReasonSequence:           "sequence",
	ReasonLink:               "broken link",
	ReasonFork:               "fork",
	ReasonCustodian:          "custodian not honoured",
	ReasonLayout:             "layout",
	ReasonUnauthorizedSigner: "unauthorized signer",
	ReasonThreshold:          "below threshold",
	ReasonPolicyExpired:      "policy expired",
	ReasonReceipt:            "receipt",
	ReasonAborted:            "aborted",
}

// String returns a short lowercase name for r.
func (r Reason) String() string {
	if r > 0 && r < maxReason {
		return reasonNames[r]
	}
	return fmt.Sprintf("Reason(%d)", int(r))
}

// VerificationError is one failed check. It wraps [ErrVerification] and,
// when there is one, the underlying error (for instance the signature
// verifier's).
type VerificationError struct {
	// Check names the check, one of the Check… constants.
	Check string
	// Step is the index in the chain of the step the check is about, or -1
	// for a check on the chain or policy as a whole.
	Step int
	// Reason says why the check failed.
	Reason Reason
	// Detail is a human-readable explanation.
	Detail string
	// Err is the underlying error, if any.
	Err error
}

func (e *VerificationError) Error() string {
	var b strings.Builder
	b.WriteString("manifest: ")
	b.WriteString(e.Check)
	if e.Step >= 0 {
		fmt.Fprintf(&b, " (step %d)", e.Step)
	}
	b.WriteString(": ")
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

// Unwrap returns ErrVerification and the underlying error, if any.
func (e *VerificationError) Unwrap() []error {
	if e.Err != nil {
		return []error{ErrVerification, e.Err}
	}
	return []error{ErrVerification}
}

// ReportError aggregates several failed checks. [Report.Err] returns it when
// more than one check failed; each of Errors is a [*VerificationError].
type ReportError struct {
	Errors []error
}

func (e *ReportError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "manifest: %d checks failed", len(e.Errors))
	for _, err := range e.Errors {
		b.WriteString("\n\t")
		b.WriteString(err.Error())
	}
	return b.String()
}

// Unwrap returns the failed checks' errors.
func (e *ReportError) Unwrap() []error { return e.Errors }
