package identity

import (
	"errors"
	"strconv"
)

// Sentinel errors. The functions of this package return errors that wrap
// one of these for every refusal a caller may handle; match them with
// [errors.Is]. The typed errors below carry the details; match them with
// [errors.As].
var (
	// ErrInvalidUEID is returned, wrapped in a [*UEIDError], by the UEID
	// constructors and parsers for a value that is not a UEID of a type
	// RFC 9711 defines.
	ErrInvalidUEID = errors.New("identity: invalid UEID")
	// ErrInvalidOEMID is returned, wrapped in an [*OEMIDError], by the
	// OEMID constructors and parsers.
	ErrInvalidOEMID = errors.New("identity: invalid OEM ID")
	// ErrInvalidDevice is returned, wrapped in a [*DeviceError], by
	// [DeviceInfo.Validate], [HardwareModuleName.Validate], [Create],
	// [CreateCSR] and [DeviceInfoFromUEID] for device information that
	// cannot go into an IDevID request, and by [DeviceInfo.CheckBinding]
	// for device information without a UEID.
	ErrInvalidDevice = errors.New("identity: invalid device info")
	// ErrDeviceMismatch is returned, wrapped in a [*MismatchError], by
	// [DeviceInfo.CheckBinding] and [DeviceInfo.CheckClaims] for device
	// information that disagrees with the device's evidence.
	ErrDeviceMismatch = errors.New("identity: device info disagrees with the evidence")
	// ErrInvalidCSR is returned, wrapped in a [*CSRError], by [ParseCSR],
	// [ParseRequest], [CheckCSR] and [CSR.Check] for every certificate
	// request they refuse, whatever the reason, and by the CA (package ca)
	// and the EST server for a request they refuse. The [CSRError.Reason]
	// says why.
	ErrInvalidCSR = errors.New("identity: certificate request refused")
	// ErrBadSignature is returned, besides [ErrInvalidCSR], for a
	// certificate request whose signature does not verify under its own
	// public key: the request was altered or its signer is broken.
	ErrBadSignature = errors.New("identity: bad signature")
)

// UEIDError describes a value refused as a UEID. It wraps [ErrInvalidUEID].
type UEIDError struct {
	Input  string // the value as given (text), or its hex encoding (bytes), shortened
	Reason string // what is wrong with it
}

func (e *UEIDError) Error() string {
	msg := "identity: invalid UEID"
	if e.Input != "" {
		msg += " " + quote(e.Input)
	}
	return msg + ": " + e.Reason
}

// Unwrap returns [ErrInvalidUEID].
func (e *UEIDError) Unwrap() error { return ErrInvalidUEID }

// OEMIDError describes a value refused as an OEM ID. It wraps
// [ErrInvalidOEMID].
type OEMIDError struct {
	Input  string // the value as given, shortened
	Reason string // what is wrong with it
}

func (e *OEMIDError) Error() string {
	msg := "identity: invalid OEM ID"
	if e.Input != "" {
		msg += " " + quote(e.Input)
	}
	return msg + ": " + e.Reason
}

// Unwrap returns [ErrInvalidOEMID].
func (e *OEMIDError) Unwrap() error { return ErrInvalidOEMID }

// DeviceError describes device information that cannot go into an IDevID
// certificate request. It wraps [ErrInvalidDevice], and Err when that is
// set.
type DeviceError struct {
	Field  string // the offending field, e.g. "SerialNumber" or "HardwareModule.Type"
	Reason string // what is wrong with it
	Err    error  // the underlying error, if any
}

func (e *DeviceError) Error() string {
	msg := "identity: invalid device info: " + e.Field + ": " + e.Reason
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap returns [ErrInvalidDevice] and the underlying error.
func (e *DeviceError) Unwrap() []error {
	if e.Err != nil {
		return []error{ErrInvalidDevice, e.Err}
	}
	return []error{ErrInvalidDevice}
}

// MismatchError says which field of a [DeviceInfo] disagrees with the
// device's evidence (or with the rule that ties its certificate to the
// evidence), both values, and how to fix it. It wraps
// [ErrDeviceMismatch].
type MismatchError struct {
	Field    string // the DeviceInfo field, e.g. "HardwareModule.SerialNumber" or "OEMID"
	Value    string // its value, in its text form ("" if absent)
	Evidence string // the value the evidence (its UEID, oemid or hwmodel) gives ("" if absent)
	Fix      string // what to change
}

func (e *MismatchError) Error() string {
	show := func(s string) string {
		if s == "" {
			return "(none)"
		}
		return s
	}
	return "identity: device info disagrees with the evidence: " + e.Field + " is " + show(e.Value) +
		", the evidence's is " + show(e.Evidence) + ": " + e.Fix
}

// Unwrap returns [ErrDeviceMismatch].
func (e *MismatchError) Unwrap() error { return ErrDeviceMismatch }

// CSRErrorReason says why a certificate request was refused.
type CSRErrorReason int

const (
	// CSRMalformed: the bytes are not a DER PKCS#10 request, or a field
	// this package reads (subject, extension, attribute) is not well formed;
	// for the CA also a subject attribute its profile does not take.
	CSRMalformed CSRErrorReason = iota + 1
	// CSRTooLarge: the request is larger than the policy's size bound; it
	// was refused before parsing.
	CSRTooLarge
	// CSRBadSignature: the signature does not verify under the request's
	// own public key. The error also wraps [ErrBadSignature].
	CSRBadSignature
	// CSRWeakKey: the public key is not one ztm accepts (P-256, P-384,
	// Ed25519, RSA of at least 3072 bits), or not one the policy allows.
	// The error also wraps [keystore.ErrUnsupportedAlgorithm].
	CSRWeakKey
	// CSRSignatureAlgorithm: the request is signed with an algorithm other
	// than the one ztm pairs with its key (ECDSA P-256 with SHA-256, P-384
	// with SHA-384, pure Ed25519, RSASSA-PSS with SHA-256).
	CSRSignatureAlgorithm
	// CSRMissingField: a field an IDevID request must carry is absent
	// (subject serialNumber; hardwareModuleName when the policy asks).
	CSRMissingField
	// CSRFieldMismatch: a field differs from what the policy expects.
	CSRFieldMismatch
	// CSRUnexpectedExtension: the request asks for an extension an IDevID
	// does not carry, a subject alternative name other than one
	// hardwareModuleName, a CA certificate, or certificate or CRL signing;
	// for the CA, an extension or a name its profile does not give, or a
	// name it cannot validate or its name constraints exclude.
	CSRUnexpectedExtension
	// CSRUnexpectedAttribute: the request carries a PKCS#9 attribute other
	// than extensionRequest (for example a challengePassword).
	CSRUnexpectedAttribute

	maxCSRErrorReason // bound for valid()
)

func (r CSRErrorReason) valid() bool { return r > 0 && r < maxCSRErrorReason }

// String returns the reason's name, e.g. "bad signature".
func (r CSRErrorReason) String() string {
	if !r.valid() {
		return "CSRErrorReason(" + strconv.Itoa(int(r)) + ")"
	}
	switch r {
	case CSRMalformed:
		return "malformed"
	case CSRTooLarge:
		return "too large"
	case CSRBadSignature:
		return "bad signature"
	case CSRWeakKey:
		return "weak or unsupported key"
	case CSRSignatureAlgorithm:
		return "signature algorithm"
	case CSRMissingField:
		return "missing field"
	case CSRFieldMismatch:
		return "field mismatch"
	case CSRUnexpectedExtension:
		return "unexpected extension"
	}
	return "unexpected attribute"
}

// CSRError describes a certificate request that [ParseCSR],
// [ParseRequest] or [CSR.Check] refused; it is the one error type of a
// refused request in ztm (the CA's and the EST server's too). It wraps [ErrInvalidCSR]; [ErrBadSignature] when Reason is
// [CSRBadSignature]; and Err when that is set (for [CSRWeakKey] an error
// wrapping [keystore.ErrUnsupportedAlgorithm]).
type CSRError struct {
	Reason CSRErrorReason
	Detail string // what exactly is wrong, for people
	Err    error  // the underlying error, if any
}

func (e *CSRError) Error() string {
	msg := "identity: certificate request refused: " + e.Reason.String()
	if e.Detail != "" {
		msg += ": " + e.Detail
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap returns [ErrInvalidCSR], [ErrBadSignature] for a bad signature,
// and the underlying error.
func (e *CSRError) Unwrap() []error {
	errs := []error{ErrInvalidCSR}
	if e.Reason == CSRBadSignature {
		errs = append(errs, ErrBadSignature)
	}
	if e.Err != nil {
		errs = append(errs, e.Err)
	}
	return errs
}

func quote(s string) string {
	if len(s) > 80 {
		s = s[:80] + "…"
	}
	return strconv.Quote(s)
}
