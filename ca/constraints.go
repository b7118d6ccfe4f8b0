package ca

import (
	"crypto/x509"
	"net/url"
	"strings"

	"github.com/ztmkit/ztm/identity"
)

// checkNameConstraints refuses names that a CA certificate of the chain
// does not permit (RFC 5280 §4.2.1.10): a certificate the chain cannot
// validate is not issued. DNS names and URI hosts are matched as RFC 5280
// says: a constraint "example.com" covers example.com and its subdomains,
// ".example.com" only the subdomains.
func checkNameConstraints(chain []*x509.Certificate, san *subjectAltName) error {
	for _, c := range chain {
		for _, d := range san.DNSNames {
			if !permitted(d, c.PermittedDNSDomains, c.ExcludedDNSDomains) {
				return &identity.CSRError{Reason: identity.CSRUnexpectedExtension, Detail: "DNS name " + d + " outside the name constraints of " + c.Subject.CommonName}
			}
		}
		for _, u := range san.URIs {
			parsed, err := url.Parse(u)
			if err != nil {
				return &identity.CSRError{Reason: identity.CSRUnexpectedExtension, Err: err}
			}
			host := parsed.Hostname()
			if host == "" && (len(c.PermittedURIDomains) > 0 || len(c.ExcludedURIDomains) > 0) {
				return &identity.CSRError{Reason: identity.CSRUnexpectedExtension, Detail: "URI " + u + " has no host to check against the name constraints"}
			}
			if host != "" && !permitted(strings.ToLower(host), c.PermittedURIDomains, c.ExcludedURIDomains) {
				return &identity.CSRError{Reason: identity.CSRUnexpectedExtension, Detail: "URI " + u + " outside the name constraints of " + c.Subject.CommonName}
			}
		}
	}
	return nil
}

func permitted(name string, permit, exclude []string) bool {
	for _, e := range exclude {
		if domainMatch(name, e) {
			return false
		}
	}
	if len(permit) == 0 {
		return true
	}
	for _, p := range permit {
		if domainMatch(name, p) {
			return true
		}
	}
	return false
}

func domainMatch(name, constraint string) bool {
	constraint = strings.ToLower(constraint)
	if strings.HasPrefix(constraint, ".") {
		return strings.HasSuffix(name, constraint)
	}
	return name == constraint || strings.HasSuffix(name, "."+constraint)
}
