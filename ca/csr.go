package ca

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"slices"
	"unicode/utf8"

	"github.com/ztmkit/ztm/identity"
	"github.com/ztmkit/ztm/internal/testhook"
)

var (
	oidCommonName         = asn1.ObjectIdentifier{2, 5, 4, 3}
	oidSerialNumber       = asn1.ObjectIdentifier{2, 5, 4, 5}
	oidCountry            = asn1.ObjectIdentifier{2, 5, 4, 6}
	oidOrganization       = asn1.ObjectIdentifier{2, 5, 4, 10}
	oidOrganizationalUnit = asn1.ObjectIdentifier{2, 5, 4, 11}
)

// checkedCSR is what the CA takes from a request: the verified public key
// and validated subject and names. Nothing else of the request reaches a
// certificate.
type checkedCSR struct {
	csr     *x509.CertificateRequest
	subject pkix.Name
	san     subjectAltName
}

// requestRules are what the CA takes of any request, whatever the
// profile: requests made by other tools (any SHA-2 signature) and over
// EST (a challengePassword attribute).
var requestRules = identity.RequestRules{AnySHA2Signature: true, AnyAttribute: true}

// checkCSR checks a DER PKCS#10 request with identity.ParseRequest, the
// one check of a request, then against profile p: which names and subject
// attributes it may carry, and which it must.
func checkCSR(der []byte, p *Profile) (*checkedCSR, error) {
	testhook.CSRParsed.Add(1)
	req, err := identity.ParseRequest(der, requestRules)
	if err != nil {
		return nil, err
	}
	out := &checkedCSR{csr: req.Request}
	if err := out.checkNames(req, p); err != nil {
		return nil, err
	}
	if err := out.checkSubject(p); err != nil {
		return nil, err
	}
	if p.Kind == IDevID && len(out.san.HardwareModules) == 0 {
		return nil, &identity.CSRError{Reason: identity.CSRMissingField, Detail: "hardwareModuleName"}
	}
	return out, nil
}

// checkNames takes the request's subject alternative name if profile p
// allows each of its names.
func (c *checkedCSR) checkNames(req *identity.CSR, p *Profile) error {
	if !slices.ContainsFunc(req.Request.Extensions, func(e pkix.Extension) bool { return e.Id.Equal(oidSubjectAltName) }) {
		return nil
	}
	allowHW, allowDNSURI := p.allowsNames()
	if !allowHW && !allowDNSURI {
		return &identity.CSRError{Reason: identity.CSRUnexpectedExtension, Detail: "subjectAltName (profile " + p.Kind.String() + " takes none)"}
	}
	san, err := issuableNames(req.Names)
	if err != nil {
		return &identity.CSRError{Reason: identity.CSRUnexpectedExtension, Err: err}
	}
	if !allowDNSURI && (len(san.DNSNames) > 0 || len(san.URIs) > 0) {
		return &identity.CSRError{Reason: identity.CSRUnexpectedExtension, Detail: "DNS names and URIs not allowed in " + p.Kind.String()}
	}
	if len(san.HardwareModules) > 1 {
		return &identity.CSRError{Reason: identity.CSRUnexpectedExtension, Detail: "more than one hardwareModuleName"}
	}
	c.san = *san
	return nil
}

// checkSubject copies the allowed subject attributes: commonName,
// serialNumber, organizationName, organizationalUnitName and countryName,
// each at most once, with validated values.
func (c *checkedCSR) checkSubject(p *Profile) error {
	seen := map[string]bool{}
	for _, atv := range c.csr.Subject.Names {
		val, ok := atv.Value.(string)
		if !ok {
			return &identity.CSRError{Reason: identity.CSRMalformed, Detail: atv.Type.String() + " is not a string"}
		}
		key := atv.Type.String()
		if seen[key] {
			return &identity.CSRError{Reason: identity.CSRMalformed, Detail: key + " appears twice"}
		}
		seen[key] = true
		switch {
		case atv.Type.Equal(oidCommonName):
			if err := validText(val, 64); err != nil {
				return &identity.CSRError{Reason: identity.CSRMalformed, Detail: "commonName: " + err.Error()}
			}
			c.subject.CommonName = val
		case atv.Type.Equal(oidSerialNumber):
			// identity.ParseRequest validated it.
			c.subject.SerialNumber = val
		case atv.Type.Equal(oidOrganization):
			if err := validText(val, 64); err != nil {
				return &identity.CSRError{Reason: identity.CSRMalformed, Detail: "organizationName: " + err.Error()}
			}
			c.subject.Organization = []string{val}
		case atv.Type.Equal(oidOrganizationalUnit):
			if err := validText(val, 64); err != nil {
				return &identity.CSRError{Reason: identity.CSRMalformed, Detail: "organizationalUnitName: " + err.Error()}
			}
			c.subject.OrganizationalUnit = []string{val}
		case atv.Type.Equal(oidCountry):
			if len(val) != 2 || val[0] < 'A' || val[0] > 'Z' || val[1] < 'A' || val[1] > 'Z' {
				return &identity.CSRError{Reason: identity.CSRMalformed, Detail: "countryName must be two capital letters"}
			}
			c.subject.Country = []string{val}
		default:
			return &identity.CSRError{Reason: identity.CSRMalformed, Detail: "attribute " + key + " not allowed"}
		}
	}
	switch p.Kind {
	case IDevID:
		if c.subject.SerialNumber == "" {
			return &identity.CSRError{Reason: identity.CSRMissingField, Detail: "subject serialNumber"}
		}
	case Station:
		if c.subject.CommonName == "" {
			return &identity.CSRError{Reason: identity.CSRMissingField, Detail: "subject commonName"}
		}
	default:
		if c.subject.CommonName == "" && c.subject.SerialNumber == "" {
			return &identity.CSRError{Reason: identity.CSRMissingField, Detail: "subject commonName or serialNumber"}
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
