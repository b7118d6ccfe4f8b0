package ca

import (
	"crypto/x509"
	"encoding/asn1"
	"fmt"
	"net/url"
	"strings"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/ztmkit/ztm/identity"
)

// OIDHardwareModuleName returns id-on-hardwareModuleName
// (1.3.6.1.5.5.7.8.4), the otherName type of an IEEE 802.1AR device
// identifier in subjectAltName. Reference: RFC 4108 §5.
func OIDHardwareModuleName() asn1.ObjectIdentifier { return identity.OIDHardwareModuleName() }

var (
	oidHardwareModuleName = identity.OIDHardwareModuleName()
	oidSubjectAltName     = asn1.ObjectIdentifier{2, 5, 29, 17}
)

// HardwareModuleName identifies a device's hardware module: its type (an
// OID the manufacturer assigns) and its serial number, the otherName of an
// IDevID's subjectAltName. It is [identity.HardwareModuleName]: the CA
// validates and encodes it with the same code a device's request was made
// with. Reference: RFC 4108 §5; IEEE 802.1AR-2018 §8.10.4.
type HardwareModuleName = identity.HardwareModuleName

// subjectAltName is the part of a subjectAltName ztm issues: hardware
// module names, DNS names and URIs.
type subjectAltName struct {
	HardwareModules []HardwareModuleName
	DNSNames        []string
	URIs            []string
}

func (s *subjectAltName) empty() bool {
	return len(s.HardwareModules) == 0 && len(s.DNSNames) == 0 && len(s.URIs) == 0
}

// GeneralName tags (RFC 5280 §4.2.1.6).
const (
	gnOtherName = 0
	gnDNSName   = 2
	gnURI       = 6
)

// marshal encodes the GeneralNames SEQUENCE.
func (s *subjectAltName) marshal() ([]byte, error) {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		for _, h := range s.HardwareModules {
			v, err := h.Marshal() // validates h
			if err != nil {
				b.SetError(err)
				return
			}
			b.AddASN1(cbasn1.Tag(gnOtherName).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
				b.AddASN1ObjectIdentifier(oidHardwareModuleName)
				b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
					b.AddBytes(v)
				})
			})
		}
		for _, d := range s.DNSNames {
			b.AddASN1(cbasn1.Tag(gnDNSName).ContextSpecific(), func(b *cryptobyte.Builder) { b.AddBytes([]byte(d)) })
		}
		for _, u := range s.URIs {
			b.AddASN1(cbasn1.Tag(gnURI).ContextSpecific(), func(b *cryptobyte.Builder) { b.AddBytes([]byte(u)) })
		}
	})
	return b.Bytes()
}

// parseSubjectAltName parses a subjectAltName extension value with
// [identity.ParseSubjectAltName] and accepts only otherName
// hardwareModuleName, dNSName and uniformResourceIdentifier entries, each
// validated. Anything else is an *ExtensionError.
func parseSubjectAltName(der []byte) (*subjectAltName, error) {
	n, err := identity.ParseSubjectAltName(der)
	if err != nil {
		return nil, &ExtensionError{Extension: "subjectAltName", Detail: err.Error()}
	}
	return issuableNames(n)
}

// issuableNames checks that n holds only names the CA issues: no
// GeneralName of another kind, valid DNS names and URIs.
func issuableNames(n identity.SubjectAltName) (*subjectAltName, error) {
	bad := func(format string, a ...any) error {
		return &ExtensionError{Extension: "subjectAltName", Detail: fmt.Sprintf(format, a...)}
	}
	if n.Others > 0 {
		return nil, bad("%d GeneralNames other than hardwareModuleName, dNSName and URI not allowed", n.Others)
	}
	for _, name := range n.DNSNames {
		if err := validDNSName(name); err != nil {
			return nil, bad("dNSName %q: %v", name, err)
		}
	}
	for _, uri := range n.URIs {
		if err := validURI(uri); err != nil {
			return nil, bad("URI %q: %v", uri, err)
		}
	}
	return &subjectAltName{HardwareModules: n.HardwareModules, DNSNames: n.DNSNames, URIs: n.URIs}, nil
}

func validDNSName(name string) error {
	if len(name) == 0 || len(name) > 253 {
		return fmt.Errorf("length %d out of range", len(name))
	}
	for _, label := range strings.Split(name, ".") {
		if len(label) == 0 || len(label) > 63 {
			return fmt.Errorf("empty or oversize label")
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("label starts or ends with '-'")
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return fmt.Errorf("character %q not allowed (lowercase letters, digits and '-' only)", c)
			}
		}
	}
	return nil
}

func validURI(s string) error {
	if len(s) == 0 || len(s) > 1024 {
		return fmt.Errorf("length %d out of range", len(s))
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= 0x20 || s[i] >= 0x7f {
			return fmt.Errorf("non-printable or non-ASCII character")
		}
	}
	u, err := url.Parse(s)
	if err != nil {
		return err
	}
	if u.Scheme == "" || (u.Host == "" && u.Opaque == "") {
		return fmt.Errorf("not an absolute URI with an authority or opaque part")
	}
	return nil
}

// HardwareModuleNames returns the hardwareModuleName entries of cert's
// subjectAltName (none if it has no such extension); other names are
// skipped. A malformed subjectAltName or hardwareModuleName gives an
// *ExtensionError wrapping ErrBadExtension.
func HardwareModuleNames(cert *x509.Certificate) ([]HardwareModuleName, error) {
	for _, ext := range cert.Extensions {
		if ext.Id.Equal(oidSubjectAltName) {
			return parseHardwareModuleNames(ext.Value)
		}
	}
	return nil, nil
}

func parseHardwareModuleNames(der []byte) ([]HardwareModuleName, error) {
	n, err := identity.ParseSubjectAltName(der)
	if err != nil {
		return nil, &ExtensionError{Extension: "subjectAltName", Detail: err.Error()}
	}
	return n.HardwareModules, nil
}

// OIDSubjectAltName returns id-ce-subjectAltName (2.5.29.17).
func OIDSubjectAltName() asn1.ObjectIdentifier {
	return append(asn1.ObjectIdentifier(nil), oidSubjectAltName...)
}

// DeviceID returns the identifier of the device a certificate names: the
// DER of its one hardwareModuleName (RFC 4108: SEQUENCE { hwType OBJECT
// IDENTIFIER, hwSerialNum OCTET STRING }), which IEEE 802.1AR makes the
// device's identity in an IDevID. It is what [Record.Device] holds, by
// which a ledger keeps one live IDevID per device. A certificate without
// exactly one hardwareModuleName has no DeviceID: an error wrapping
// ErrBadExtension.
func DeviceID(cert *x509.Certificate) ([]byte, error) {
	hms, err := HardwareModuleNames(cert)
	if err != nil {
		return nil, err
	}
	return deviceID(hms)
}

// deviceID is the DeviceID of the one hardwareModuleName in hms.
func deviceID(hms []HardwareModuleName) ([]byte, error) {
	if len(hms) != 1 {
		return nil, &ExtensionError{Extension: "subjectAltName", Detail: fmt.Sprintf("%d hardwareModuleNames, want 1", len(hms))}
	}
	return hms[0].Marshal()
}
