package identity

import (
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"slices"
	"strconv"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/ztmkit/ztm/identity/keystore"
)

// MaxCSRSize is the largest certificate request [ParseCSR] reads, in
// bytes. An IDevID request with an RSA-3072 key is about 1 KiB; anything
// near the bound is refused before parsing.
const MaxCSRSize = 16 << 10

// CSR is a PKCS#10 certificate request that [ParseCSR] has checked: its
// signature verifies under its own key, the key and signature algorithm are
// ones ztm accepts, and it asks for nothing an IDevID does not carry. Its
// fields are read from the request; compare them with what you expect with
// [CSR.Check].
type CSR struct {
	// Raw is the request exactly as received (DER).
	Raw []byte
	// Request is the request as crypto/x509 parses it.
	Request *x509.CertificateRequest
	// PublicKey is the device's public key.
	PublicKey crypto.PublicKey
	// Algorithm is the algorithm of PublicKey.
	Algorithm Algorithm
	// Subject is the request's subject.
	Subject pkix.Name
	// SerialNumber is the subject serialNumber, the device serial number.
	SerialNumber string
	// HardwareModule is the hardwareModuleName of the subject alternative
	// name, or the zero value if the request has none.
	HardwareModule HardwareModuleName
}

// Device returns the device information the request carries: serial
// number, hardware module name, common name and organization. The other
// fields of [DeviceInfo] have no place in a request and are zero.
func (c *CSR) Device() DeviceInfo {
	d := DeviceInfo{
		SerialNumber:   c.SerialNumber,
		HardwareModule: c.HardwareModule,
		CommonName:     c.Subject.CommonName,
	}
	if len(c.Subject.Organization) > 0 {
		d.Organization = c.Subject.Organization[0]
	}
	return d
}

// ParseCSR parses and checks a DER-encoded PKCS#10 certificate request
// that a device made for its IDevID certificate. It refuses, with a
// [*CSRError] wrapping [ErrInvalidCSR]:
//   - input over [MaxCSRSize] bytes, before parsing ([CSRTooLarge]);
//   - anything but exactly one well-formed version 1 request
//     ([CSRMalformed]);
//   - a public key other than ECDSA P-256 or P-384, Ed25519, or RSA of at
//     least 3072 bits ([CSRWeakKey], also wrapping
//     [keystore.ErrUnsupportedAlgorithm]);
//   - a signature algorithm other than the one ztm pairs with the key
//     ([CSRSignatureAlgorithm]);
//   - a signature that does not verify ([CSRBadSignature], also wrapping
//     [ErrBadSignature]);
//   - PKCS#9 attributes other than one extensionRequest
//     ([CSRUnexpectedAttribute]);
//   - extensions other than subjectAltName (holding exactly one
//     hardwareModuleName and nothing else), basicConstraints without cA,
//     and keyUsage without keyCertSign and cRLSign
//     ([CSRUnexpectedExtension]);
//   - a subject without exactly one serialNumber of at most 64
//     PrintableString characters ([CSRMissingField], [CSRMalformed]).
//
// ParseCSR never panics, whatever the input. The returned CSR keeps der.
func ParseCSR(der []byte) (*CSR, error) {
	if len(der) > MaxCSRSize {
		return nil, &CSRError{Reason: CSRTooLarge, Detail: strconv.Itoa(len(der)) + " bytes, limit " + strconv.Itoa(MaxCSRSize)}
	}
	req, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return nil, &CSRError{Reason: CSRMalformed, Detail: "not a DER PKCS#10 request", Err: err}
	}
	if req.Version != 0 {
		return nil, &CSRError{Reason: CSRMalformed, Detail: "version " + strconv.Itoa(req.Version+1) + " (PKCS#10 defines version 1 only)"}
	}
	alg, err := keystore.AlgorithmOf(req.PublicKey)
	if err != nil {
		return nil, &CSRError{Reason: CSRWeakKey, Err: err}
	}
	if want := signatureAlgorithm(alg); req.SignatureAlgorithm != want {
		return nil, &CSRError{Reason: CSRSignatureAlgorithm, Detail: fmt.Sprintf("%v key signed with %v, want %v", alg, req.SignatureAlgorithm, want)}
	}
	if err := req.CheckSignature(); err != nil {
		return nil, &CSRError{Reason: CSRBadSignature, Err: err}
	}
	if err := checkAttributes(req.RawTBSCertificateRequest); err != nil {
		return nil, err
	}
	hw, err := checkExtensions(req.Extensions)
	if err != nil {
		return nil, err
	}
	serial, err := subjectSerialNumber(req.Subject)
	if err != nil {
		return nil, err
	}
	return &CSR{
		Raw:            der,
		Request:        req,
		PublicKey:      req.PublicKey,
		Algorithm:      alg,
		Subject:        req.Subject,
		SerialNumber:   serial,
		HardwareModule: hw,
	}, nil
}

// checkAttributes allows only one extensionRequest attribute in the
// request's attributes (PKCS#10 §4.1, RFC 2986).
func checkAttributes(tbs []byte) error {
	malformed := &CSRError{Reason: CSRMalformed, Detail: "bad CertificationRequestInfo"}
	in := cryptobyte.String(tbs)
	var info, attrs cryptobyte.String
	var hasAttrs bool
	if !in.ReadASN1(&info, cbasn1.SEQUENCE) || !in.Empty() ||
		!info.SkipASN1(cbasn1.INTEGER) || // version
		!info.SkipASN1(cbasn1.SEQUENCE) || // subject
		!info.SkipASN1(cbasn1.SEQUENCE) || // subjectPKInfo
		!info.ReadOptionalASN1(&attrs, &hasAttrs, cbasn1.Tag(0).ContextSpecific().Constructed()) ||
		!info.Empty() {
		return malformed
	}
	seen := false
	for !attrs.Empty() {
		var attr, values cryptobyte.String
		var oid asn1.ObjectIdentifier
		if !attrs.ReadASN1(&attr, cbasn1.SEQUENCE) ||
			!attr.ReadASN1ObjectIdentifier(&oid) ||
			!attr.ReadASN1(&values, cbasn1.SET) || !attr.Empty() {
			return malformed
		}
		if !oid.Equal(oidExtensionRequest) {
			return &CSRError{Reason: CSRUnexpectedAttribute, Detail: "attribute " + oid.String()}
		}
		if seen {
			return &CSRError{Reason: CSRMalformed, Detail: "more than one extensionRequest attribute"}
		}
		seen = true
		var exts cryptobyte.String
		if !values.ReadASN1(&exts, cbasn1.SEQUENCE) || !values.Empty() {
			return &CSRError{Reason: CSRMalformed, Detail: "extensionRequest does not hold exactly one Extensions value"}
		}
	}
	return nil
}

// checkExtensions allows what an IDevID carries and returns the
// hardwareModuleName, if any.
func checkExtensions(exts []pkix.Extension) (HardwareModuleName, error) {
	var hw HardwareModuleName
	seen := make([]asn1.ObjectIdentifier, 0, len(exts))
	for _, ext := range exts {
		if slices.ContainsFunc(seen, ext.Id.Equal) {
			return HardwareModuleName{}, &CSRError{Reason: CSRMalformed, Detail: "extension " + ext.Id.String() + " appears twice"}
		}
		seen = append(seen, ext.Id)
		switch {
		case ext.Id.Equal(oidSubjectAltName):
			names, others, err := parseGeneralNames(ext.Value)
			if err != nil {
				return HardwareModuleName{}, &CSRError{Reason: CSRMalformed, Detail: "subject alternative name", Err: err}
			}
			if others > 0 || len(names) != 1 {
				return HardwareModuleName{}, &CSRError{Reason: CSRUnexpectedExtension, Detail: fmt.Sprintf("subject alternative name with %d hardwareModuleNames and %d other names (an IDevID carries one hardwareModuleName only)", len(names), others)}
			}
			hw = names[0]
		case ext.Id.Equal(oidBasicConstraints):
			var bc struct {
				IsCA       bool `asn1:"optional"`
				MaxPathLen int  `asn1:"optional,default:-1"`
			}
			rest, err := asn1.Unmarshal(ext.Value, &bc)
			if err != nil || len(rest) != 0 {
				return HardwareModuleName{}, &CSRError{Reason: CSRMalformed, Detail: "basic constraints", Err: err}
			}
			if bc.IsCA {
				return HardwareModuleName{}, &CSRError{Reason: CSRUnexpectedExtension, Detail: "the request asks for a CA certificate"}
			}
		case ext.Id.Equal(oidKeyUsage):
			var bits asn1.BitString
			rest, err := asn1.Unmarshal(ext.Value, &bits)
			if err != nil || len(rest) != 0 {
				return HardwareModuleName{}, &CSRError{Reason: CSRMalformed, Detail: "key usage", Err: err}
			}
			if bits.At(5) != 0 || bits.At(6) != 0 { // keyCertSign, cRLSign
				return HardwareModuleName{}, &CSRError{Reason: CSRUnexpectedExtension, Detail: "the request asks for certificate or CRL signing"}
			}
		default:
			return HardwareModuleName{}, &CSRError{Reason: CSRUnexpectedExtension, Detail: "extension " + ext.Id.String()}
		}
	}
	return hw, nil
}

// subjectSerialNumber returns the one serialNumber attribute of subject.
func subjectSerialNumber(subject pkix.Name) (string, error) {
	var serial string
	n := 0
	for _, atv := range subject.Names {
		if !atv.Type.Equal(oidSerialNumber) {
			continue
		}
		n++
		s, ok := atv.Value.(string)
		if !ok {
			return "", &CSRError{Reason: CSRMalformed, Detail: "subject serialNumber is not a string"}
		}
		serial = s
	}
	switch n {
	case 0:
		return "", &CSRError{Reason: CSRMissingField, Detail: "subject serialNumber (OID 2.5.4.5)"}
	case 1:
	default:
		return "", &CSRError{Reason: CSRMalformed, Detail: strconv.Itoa(n) + " subject serialNumber attributes"}
	}
	if err := validateSerialNumber(serial); err != nil {
		return "", &CSRError{Reason: CSRMalformed, Detail: "subject serialNumber", Err: err}
	}
	return serial, nil
}

// CSRPolicy says what a station or CA expects of a device's certificate
// request, beyond what [ParseCSR] always checks. The zero value expects
// nothing more.
type CSRPolicy struct {
	// SerialNumber, if set, is the subject serialNumber the request must
	// carry.
	SerialNumber string
	// HardwareModule, if not zero, is the hardwareModuleName the request
	// must carry.
	HardwareModule HardwareModuleName
	// RequireHardwareModule refuses a request without a
	// hardwareModuleName.
	RequireHardwareModule bool
	// Algorithms, if not empty, lists the key algorithms allowed. If
	// empty, every algorithm ztm offers is.
	Algorithms []Algorithm
}

// Check compares the request with what p expects. A difference gives a
// [*CSRError] wrapping [ErrInvalidCSR], with reason [CSRMissingField],
// [CSRFieldMismatch] or [CSRWeakKey].
func (c *CSR) Check(p CSRPolicy) error {
	if len(p.Algorithms) > 0 && !slices.Contains(p.Algorithms, c.Algorithm) {
		return &CSRError{Reason: CSRWeakKey, Detail: fmt.Sprintf("%v keys are not allowed by the policy (allowed: %v)", c.Algorithm, p.Algorithms), Err: keystore.ErrUnsupportedAlgorithm}
	}
	if p.SerialNumber != "" && c.SerialNumber != p.SerialNumber {
		return &CSRError{Reason: CSRFieldMismatch, Detail: fmt.Sprintf("subject serialNumber %q, want %q", c.SerialNumber, p.SerialNumber)}
	}
	if (p.RequireHardwareModule || !p.HardwareModule.IsZero()) && c.HardwareModule.IsZero() {
		return &CSRError{Reason: CSRMissingField, Detail: "hardwareModuleName in the subject alternative name"}
	}
	if !p.HardwareModule.IsZero() && !c.HardwareModule.Equal(p.HardwareModule) {
		return &CSRError{Reason: CSRFieldMismatch, Detail: fmt.Sprintf("hardwareModuleName {%v, %x}, want {%v, %x}", c.HardwareModule.Type, c.HardwareModule.SerialNumber, p.HardwareModule.Type, p.HardwareModule.SerialNumber)}
	}
	return nil
}

// CheckCSR parses der with [ParseCSR] and checks it against p with
// [CSR.Check]: the one call a station or CA makes on a request a device
// sent. Every refusal is a [*CSRError] wrapping [ErrInvalidCSR].
func CheckCSR(der []byte, p CSRPolicy) (*CSR, error) {
	c, err := ParseCSR(der)
	if err != nil {
		return nil, err
	}
	if err := c.Check(p); err != nil {
		return nil, err
	}
	return c, nil
}
