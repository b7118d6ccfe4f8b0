package ca

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/ztmkit/ztm/identity/keystore"
	"github.com/ztmkit/ztm/internal/testhook"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// maxCSRSize bounds the DER request accepted.
const maxCSRSize = 64 << 10

var (
	oidCommonName         = asn1.ObjectIdentifier{2, 5, 4, 3}
	oidSerialNumber       = asn1.ObjectIdentifier{2, 5, 4, 5}
	oidCountry            = asn1.ObjectIdentifier{2, 5, 4, 6}
	oidOrganization       = asn1.ObjectIdentifier{2, 5, 4, 10}
	oidOrganizationalUnit = asn1.ObjectIdentifier{2, 5, 4, 11}
	oidBasicConstraints   = asn1.ObjectIdentifier{2, 5, 29, 19}
	oidKeyUsage           = asn1.ObjectIdentifier{2, 5, 29, 15}
)

// checkedCSR is what the CA takes from a request: the verified public key
// and validated subject and names. Nothing else of the request reaches a
// certificate.
type checkedCSR struct {
	csr     *x509.CertificateRequest
	subject pkix.Name
	san     subjectAltName
}

// parseCSR parses der and checks its key and its signature.
func parseCSR(der []byte) (*x509.CertificateRequest, error) {
	testhook.CSRParsed.Add(1)
	if len(der) == 0 || len(der) > maxCSRSize {
		return nil, &CSRError{Reason: CSRMalformed, Detail: fmt.Sprintf("%d bytes", len(der))}
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return nil, &CSRError{Reason: CSRMalformed, Err: err}
	}
	// The key first: a weak key is refused whatever its signature.
	if _, err := keystore.AlgorithmOf(csr.PublicKey); err != nil {
		return nil, &CSRError{Reason: CSRWeakKey, Err: err}
	}
	// Go verifies SHA-1 request signatures (for compatibility); a CA that
	// issues device identities does not take them.
	switch csr.SignatureAlgorithm {
	case x509.SHA1WithRSA, x509.ECDSAWithSHA1, x509.DSAWithSHA1:
		return nil, &CSRError{Reason: CSRBadSignature, Detail: csr.SignatureAlgorithm.String() + ": SHA-1 signatures are not accepted"}
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, &CSRError{Reason: CSRBadSignature, Err: err}
	}
	return csr, nil
}

// checkCSR parses and checks a DER PKCS#10 request against profile p.
func checkCSR(der []byte, p *Profile) (*checkedCSR, error) {
	csr, err := parseCSR(der)
	if err != nil {
		return nil, err
	}
	out := &checkedCSR{csr: csr}
	allowHW, allowDNSURI := p.allowsNames()
	seen := map[string]bool{}
	for _, ext := range csr.Extensions {
		if seen[ext.Id.String()] {
			return nil, &CSRError{Reason: CSRExtensionNotAllowed, Detail: ext.Id.String() + " requested twice"}
		}
		seen[ext.Id.String()] = true
		switch {
		case ext.Id.Equal(oidBasicConstraints):
			// cA false is what the profile gives anyway; ignored.
			if requestsCA(ext.Value) {
				return nil, &CSRError{Reason: CSRRequestsCA, Detail: "basicConstraints cA true"}
			}
		case ext.Id.Equal(oidKeyUsage):
			// The profile fixes keyUsage; a request for CA usages is refused,
			// any other is ignored.
			if requestsCAUsage(ext.Value) {
				return nil, &CSRError{Reason: CSRRequestsCA, Detail: "keyUsage keyCertSign or cRLSign"}
			}
		case ext.Id.Equal(oidSubjectAltName):
			if !allowHW && !allowDNSURI {
				return nil, &CSRError{Reason: CSRExtensionNotAllowed, Detail: "subjectAltName (profile " + p.Kind.String() + " takes none)"}
			}
			san, err := parseSubjectAltName(ext.Value)
			if err != nil {
				return nil, &CSRError{Reason: CSRBadName, Err: err}
			}
			if !allowDNSURI && (len(san.DNSNames) > 0 || len(san.URIs) > 0) {
				return nil, &CSRError{Reason: CSRBadName, Detail: "DNS names and URIs not allowed in " + p.Kind.String()}
			}
			if len(san.HardwareModules) > 1 {
				return nil, &CSRError{Reason: CSRBadName, Detail: "more than one hardwareModuleName"}
			}
			out.san = *san
		default:
			return nil, &CSRError{Reason: CSRExtensionNotAllowed, Detail: ext.Id.String()}
		}
	}
	if err := out.checkSubject(p); err != nil {
		return nil, err
	}
	if p.Kind == IDevID && len(out.san.HardwareModules) == 0 {
		return nil, &CSRError{Reason: CSRMissingField, Detail: "hardwareModuleName"}
	}
	return out, nil
}

// requestsCA reports whether a basicConstraints value says CA:true. A value
// that does not parse counts as asking for CA, to fail closed.
func requestsCA(v []byte) bool {
	in := cryptobyte.String(v)
	var seq cryptobyte.String
	if !in.ReadASN1(&seq, cbasn1.SEQUENCE) {
		return true
	}
	var isCA bool
	if seq.PeekASN1Tag(cbasn1.BOOLEAN) {
		if !seq.ReadASN1Boolean(&isCA) {
			return true
		}
	}
	return isCA
}

// requestsCAUsage reports whether a keyUsage value asks for keyCertSign
// (bit 5) or cRLSign (bit 6). A value that does not parse counts as asking,
// to fail closed.
func requestsCAUsage(v []byte) bool {
	in := cryptobyte.String(v)
	var bits asn1.BitString
	if !in.ReadASN1BitString(&bits) || !in.Empty() {
		return true
	}
	return bits.At(5) == 1 || bits.At(6) == 1
}

// checkSubject copies the allowed subject attributes: commonName,
// serialNumber, organizationName, organizationalUnitName and countryName,
// each at most once, with validated values.
func (c *checkedCSR) checkSubject(p *Profile) error {
	seen := map[string]bool{}
	for _, atv := range c.csr.Subject.Names {
		val, ok := atv.Value.(string)
		if !ok {
			return &CSRError{Reason: CSRBadSubject, Detail: atv.Type.String() + " is not a string"}
		}
		key := atv.Type.String()
		if seen[key] {
			return &CSRError{Reason: CSRBadSubject, Detail: key + " appears twice"}
		}
		seen[key] = true
		switch {
		case atv.Type.Equal(oidCommonName):
			if err := validText(val, 64); err != nil {
				return &CSRError{Reason: CSRBadSubject, Detail: "commonName: " + err.Error()}
			}
			c.subject.CommonName = val
		case atv.Type.Equal(oidSerialNumber):
			if err := validPrintable(val, 64); err != nil {
				return &CSRError{Reason: CSRBadSubject, Detail: "serialNumber: " + err.Error()}
			}
			c.subject.SerialNumber = val
		case atv.Type.Equal(oidOrganization):
			if err := validText(val, 64); err != nil {
				return &CSRError{Reason: CSRBadSubject, Detail: "organizationName: " + err.Error()}
			}
			c.subject.Organization = []string{val}
		case atv.Type.Equal(oidOrganizationalUnit):
			if err := validText(val, 64); err != nil {
				return &CSRError{Reason: CSRBadSubject, Detail: "organizationalUnitName: " + err.Error()}
			}
			c.subject.OrganizationalUnit = []string{val}
		case atv.Type.Equal(oidCountry):
			if len(val) != 2 || val[0] < 'A' || val[0] > 'Z' || val[1] < 'A' || val[1] > 'Z' {
				return &CSRError{Reason: CSRBadSubject, Detail: "countryName must be two capital letters"}
			}
			c.subject.Country = []string{val}
		default:
			return &CSRError{Reason: CSRBadSubject, Detail: "attribute " + key + " not allowed"}
		}
	}
	switch p.Kind {
	case IDevID:
		if c.subject.SerialNumber == "" {
			return &CSRError{Reason: CSRMissingField, Detail: "subject serialNumber"}
		}
	case Station:
		if c.subject.CommonName == "" {
			return &CSRError{Reason: CSRMissingField, Detail: "subject commonName"}
		}
	default:
		if c.subject.CommonName == "" && c.subject.SerialNumber == "" {
			return &CSRError{Reason: CSRMissingField, Detail: "subject commonName or serialNumber"}
		}
	}
	return nil
}

func validText(s string, max int) error {
	if len(s) == 0 || utf8.RuneCountInString(s) > max {
		return fmt.Errorf("length must be 1 to %d characters", max)
	}
	if !utf8.ValidString(s) {
		return errors.New("invalid UTF-8")
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return errors.New("control character")
		}
	}
	return nil
}

// validPrintable checks s against the PrintableString alphabet (X.680
// §41.4), as 802.1AR requires of the subject serialNumber.
func validPrintable(s string, max int) error {
	if len(s) == 0 || len(s) > max {
		return fmt.Errorf("length must be 1 to %d characters", max)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == ' ' || c == '\'' || c == '(' || c == ')' || c == '+' || c == ',' ||
			c == '-' || c == '.' || c == '/' || c == ':' || c == '=' || c == '?') {
			return fmt.Errorf("character %q is not PrintableString", c)
		}
	}
	return nil
}
