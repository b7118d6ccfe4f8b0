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
	// name, or the zero value if the request has none or more than one.
	HardwareModule HardwareModuleName
	// Names is the request's subject alternative name, parsed by
	// [ParseSubjectAltName]; zero if it has none.
	Names SubjectAltName
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
// It is [ParseRequest] with the zero [RequestRules] and MaxSize
// [MaxCSRSize], and the IDevID's names required. ParseCSR never panics,
// whatever the input. The returned CSR keeps der.
func ParseCSR(der []byte) (*CSR, error) {
	c, err := ParseRequest(der, RequestRules{MaxSize: MaxCSRSize})
	if err != nil {
		return nil, err
	}
	n := c.Names
	if n.Others > 0 || len(n.DNSNames) > 0 || len(n.URIs) > 0 || len(n.HardwareModules) > 1 ||
		(len(n.HardwareModules) == 0 && c.hasSAN()) {
		return nil, &CSRError{Reason: CSRUnexpectedExtension, Detail: fmt.Sprintf("subject alternative name with %d hardwareModuleNames and %d other names (an IDevID carries one hardwareModuleName only)",
			len(n.HardwareModules), n.Others+len(n.DNSNames)+len(n.URIs))}
	}
	if c.SerialNumber == "" {
		return nil, &CSRError{Reason: CSRMissingField, Detail: "subject serialNumber (OID 2.5.4.5)"}
	}
	return c, nil
}

// MaxRequestSize is the largest certificate request [ParseRequest] reads,
// in bytes, when [RequestRules.MaxSize] is zero.
const MaxRequestSize = 64 << 10

// RequestRules says what [ParseRequest] accepts beyond what every request
// must be. The zero value is as strict as [ParseCSR].
type RequestRules struct {
	// MaxSize is the largest request read, in bytes; a larger one is
	// refused before parsing. If zero, [MaxRequestSize].
	MaxSize int
	// AnySHA2Signature accepts a request signed with any SHA-2 signature
	// algorithm crypto/x509 verifies for its key (RSA PKCS#1 v1.5, ECDSA
	// with another SHA-2 digest), not only the one ztm pairs with the key:
	// for a CA that takes requests other tools made. SHA-1 is refused
	// either way, as [CSRBadSignature].
	AnySHA2Signature bool
	// AnyAttribute accepts PKCS#9 attributes besides extensionRequest
	// (the challengePassword of RFC 7030 §3.5), which the caller then
	// reads from the request itself.
	AnyAttribute bool
}

// ParseRequest parses and checks a DER PKCS#10 request for any
// certificate ztm issues (device, station or intermediate). It is the one
// check of a request in ztm: [ParseCSR] and the CA call it, and then
// decide which of the names and subject attributes it returns a
// certificate may carry. It refuses, with a [*CSRError] wrapping
// [ErrInvalidCSR]: input over the size bound ([CSRTooLarge]); anything but
// one well-formed version 1 request ([CSRMalformed]); a key ztm does not
// accept ([CSRWeakKey]); a SHA-1 signature, or one that does not verify
// ([CSRBadSignature]); a signature algorithm r does not accept
// ([CSRSignatureAlgorithm]); attributes r does not accept
// ([CSRUnexpectedAttribute]); an extension other than subjectAltName,
// basicConstraints and keyUsage, an extension twice, basicConstraints with
// cA or keyUsage with keyCertSign or cRLSign ([CSRUnexpectedExtension],
// [CSRMalformed]); a malformed subject alternative name, or more than one
// subject serialNumber or one that is not 1 to 64 PrintableString
// characters ([CSRMalformed]). A request need not carry a serialNumber or
// a subject alternative name. ParseRequest never panics.
func ParseRequest(der []byte, r RequestRules) (*CSR, error) {
	maxSize := r.MaxSize
	if maxSize <= 0 {
		maxSize = MaxRequestSize
	}
	if len(der) > maxSize {
		return nil, &CSRError{Reason: CSRTooLarge, Detail: strconv.Itoa(len(der)) + " bytes, limit " + strconv.Itoa(maxSize)}
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
	if err := checkSignatureAlgorithm(req, alg, r.AnySHA2Signature); err != nil {
		return nil, err
	}
	if err := req.CheckSignature(); err != nil {
		return nil, &CSRError{Reason: CSRBadSignature, Err: err}
	}
	if !r.AnyAttribute {
		if err := checkAttributes(req.RawTBSCertificateRequest); err != nil {
			return nil, err
		}
	}
	names, err := checkExtensions(req.Extensions)
	if err != nil {
		return nil, err
	}
	serial, err := subjectSerialNumber(req.Subject)
	if err != nil {
		return nil, err
	}
	c := &CSR{
		Raw:          der,
		Request:      req,
		PublicKey:    req.PublicKey,
		Algorithm:    alg,
		Subject:      req.Subject,
		SerialNumber: serial,
		Names:        names,
	}
	if len(names.HardwareModules) == 1 {
		c.HardwareModule = names.HardwareModules[0]
	}
	return c, nil
}

// checkSignatureAlgorithm refuses SHA-1, and unless anySHA2 any signature
// algorithm but the one ztm pairs with alg.
func checkSignatureAlgorithm(req *x509.CertificateRequest, alg Algorithm, anySHA2 bool) error {
	switch req.SignatureAlgorithm {
	case x509.SHA1WithRSA, x509.ECDSAWithSHA1, x509.DSAWithSHA1, x509.MD5WithRSA, x509.MD2WithRSA:
		if anySHA2 {
			// Go verifies SHA-1 request signatures (for compatibility);
			// they are no proof of possession.
			return &CSRError{Reason: CSRBadSignature, Detail: req.SignatureAlgorithm.String() + ": SHA-1 signatures are not accepted"}
		}
	}
	if want := signatureAlgorithm(alg); !anySHA2 && req.SignatureAlgorithm != want {
		return &CSRError{Reason: CSRSignatureAlgorithm, Detail: fmt.Sprintf("%v key signed with %v, want %v", alg, req.SignatureAlgorithm, want)}
	}
	return nil
}

// hasSAN reports whether the request carries a subjectAltName extension.
func (c *CSR) hasSAN() bool {
	return slices.ContainsFunc(c.Request.Extensions, func(e pkix.Extension) bool { return e.Id.Equal(oidSubjectAltName) })
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

// checkExtensions allows subjectAltName, basicConstraints without cA and
// keyUsage without keyCertSign and cRLSign, each at most once, and
// returns the subject alternative name, if any.
func checkExtensions(exts []pkix.Extension) (SubjectAltName, error) {
	var names SubjectAltName
	seen := make([]asn1.ObjectIdentifier, 0, len(exts))
	for _, ext := range exts {
		if slices.ContainsFunc(seen, ext.Id.Equal) {
			return SubjectAltName{}, &CSRError{Reason: CSRMalformed, Detail: "extension " + ext.Id.String() + " appears twice"}
		}
		seen = append(seen, ext.Id)
		var err error
		switch {
		case ext.Id.Equal(oidSubjectAltName):
			if names, err = ParseSubjectAltName(ext.Value); err != nil {
				return SubjectAltName{}, &CSRError{Reason: CSRMalformed, Detail: "subject alternative name", Err: err}
			}
		case ext.Id.Equal(oidBasicConstraints):
			err = checkBasicConstraints(ext.Value)
		case ext.Id.Equal(oidKeyUsage):
			err = checkKeyUsage(ext.Value)
		default:
			err = &CSRError{Reason: CSRUnexpectedExtension, Detail: "extension " + ext.Id.String()}
		}
		if err != nil {
			return SubjectAltName{}, err
		}
	}
	return names, nil
}

// checkBasicConstraints refuses a basicConstraints value that asks for a
// CA certificate.
func checkBasicConstraints(v []byte) error {
	var bc struct {
		IsCA       bool `asn1:"optional"`
		MaxPathLen int  `asn1:"optional,default:-1"`
	}
	rest, err := asn1.Unmarshal(v, &bc)
	if err != nil || len(rest) != 0 {
		return &CSRError{Reason: CSRMalformed, Detail: "basic constraints", Err: err}
	}
	if bc.IsCA {
		return &CSRError{Reason: CSRUnexpectedExtension, Detail: "the request asks for a CA certificate"}
	}
	return nil
}

// checkKeyUsage refuses a keyUsage value that asks for keyCertSign (bit
// 5) or cRLSign (bit 6).
func checkKeyUsage(v []byte) error {
	var bits asn1.BitString
	rest, err := asn1.Unmarshal(v, &bits)
	if err != nil || len(rest) != 0 {
		return &CSRError{Reason: CSRMalformed, Detail: "key usage", Err: err}
	}
	if bits.At(5) != 0 || bits.At(6) != 0 {
		return &CSRError{Reason: CSRUnexpectedExtension, Detail: "the request asks for certificate or CRL signing"}
	}
	return nil
}

// subjectSerialNumber returns the one serialNumber attribute of subject,
// or "" if it has none.
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
		return "", nil
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
