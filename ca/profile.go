package ca

import (
	"crypto/x509"
	"encoding/asn1"
	"fmt"
	"time"

	"github.com/ztmkit/ztm/internal/stationauth"
)

// ProfileKind is the kind of certificate a [Profile] issues.
type ProfileKind int

const (
	// IDevID is an IEEE 802.1AR initial device identity: subject
	// serialNumber and a subjectAltName hardwareModuleName, both required;
	// keyUsage digitalSignature; no extended key usage unless the profile
	// sets one; by default no well-defined expiration (notAfter
	// 99991231235959Z, IEEE 802.1AR §8.5 and RFC 5280 §4.1.2.5).
	IDevID ProfileKind = iota + 1
	// LDevID is an operational (locally significant) device identity:
	// short validity (90 days by default), keyUsage digitalSignature,
	// clientAuth and serverAuth by default, and the hardwareModuleName, DNS
	// names and URIs the request carries.
	LDevID
	// Station is an authorized workstation: keyUsage digitalSignature,
	// extended key usage clientAuth, and a [StationAuthorization] extension
	// naming the manifest steps and profiles it may use, which the caller
	// supplies in [Request.Station] (a request cannot grant itself one).
	// One year by default.
	Station
	// AttestationKey is a device's attestation key: keyUsage
	// digitalSignature, extended key usage tcg-kp-AIKCertificate
	// (2.23.133.8.3), an optional hardwareModuleName, and like an IDevID no
	// well-defined expiration by default.
	AttestationKey

	maxProfileKind
)

func (k ProfileKind) valid() bool { return k > 0 && k < maxProfileKind }

// String returns "IDevID", "LDevID", "Station" or "AttestationKey".
func (k ProfileKind) String() string {
	switch k {
	case IDevID:
		return "IDevID"
	case LDevID:
		return "LDevID"
	case Station:
		return "Station"
	case AttestationKey:
		return "AttestationKey"
	}
	return fmt.Sprintf("ProfileKind(%d)", int(k))
}

// oidTCGAIKCertificate is tcg-kp-AIKCertificate (TCG EK Credential
// Profile §3.2.16).
var oidTCGAIKCertificate = asn1.ObjectIdentifier{2, 23, 133, 8, 3}

// noWellDefinedExpiration is 99991231235959Z (RFC 5280 §4.1.2.5).
var noWellDefinedExpiration = time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)

// Profile fixes what a certificate holds. The certificate's content comes
// from the profile; from the request only the public key and the subject
// attributes and names the profile's kind allows are taken, after
// validation. A Profile is a plain value; [New] copies it.
type Profile struct {
	// Name is what requests ask for ("idevid"). Required and unique within
	// an Authority.
	Name string
	// Kind says which rules apply.
	Kind ProfileKind
	// Validity is how long certificates are valid. If zero: no well-defined
	// expiration for IDevID and AttestationKey, 90 days for LDevID, 365
	// days for Station. A negative value is an error. A certificate with a
	// finite validity is cut to the issuing CA's notAfter, so it never
	// outlives its issuer. One without a well-defined expiration
	// (99991231235959Z) cannot be cut: [New] refuses a profile that issues
	// it unless every certificate of the CA's chain has that notAfter too,
	// as IEEE 802.1AR §8.5 permits and [NewRoot] and [NewIntermediate]
	// make by default.
	Validity time.Duration
	// ExtKeyUsage sets the extended key usages of an LDevID profile
	// (default clientAuth and serverAuth) or an IDevID profile (default
	// none, as IEEE 802.1AR devices usually carry). Ignored for Station and
	// AttestationKey, whose usages are fixed.
	ExtKeyUsage []x509.ExtKeyUsage
}

// IDevIDProfile returns the IDevID profile named "idevid".
func IDevIDProfile() Profile { return Profile{Name: "idevid", Kind: IDevID} }

// LDevIDProfile returns the LDevID profile named "ldevid".
func LDevIDProfile() Profile { return Profile{Name: "ldevid", Kind: LDevID} }

// StationProfile returns the Station profile named "station".
func StationProfile() Profile { return Profile{Name: "station", Kind: Station} }

// AttestationKeyProfile returns the AttestationKey profile named "ak".
func AttestationKeyProfile() Profile { return Profile{Name: "ak", Kind: AttestationKey} }

// DefaultProfiles returns the four built-in profiles: "idevid", "ldevid",
// "station" and "ak".
func DefaultProfiles() []Profile {
	return []Profile{IDevIDProfile(), LDevIDProfile(), StationProfile(), AttestationKeyProfile()}
}

func (p *Profile) validate() error {
	if !stationauth.ValidName(p.Name) {
		return fmt.Errorf("profile name %q invalid", p.Name)
	}
	if p.Name == IntermediateProfile {
		return fmt.Errorf("profile name %q is reserved for CA certificates", p.Name)
	}
	if !p.Kind.valid() {
		return fmt.Errorf("profile %q: invalid kind %d", p.Name, int(p.Kind))
	}
	if p.Validity < 0 {
		return fmt.Errorf("profile %q: negative validity", p.Name)
	}
	return nil
}

// notAfter returns the certificate end of validity for one issued at now.
func (p *Profile) notAfter(now time.Time) time.Time {
	v := p.Validity
	if v == 0 {
		switch p.Kind {
		case IDevID, AttestationKey:
			return noWellDefinedExpiration
		case LDevID:
			v = 90 * 24 * time.Hour
		case Station:
			v = 365 * 24 * time.Hour
		}
	}
	end := now.Add(v - time.Second)
	if end.After(noWellDefinedExpiration) {
		return noWellDefinedExpiration
	}
	return end
}

// allowsNames reports which subjectAltName entries a request may carry.
func (p *Profile) allowsNames() (hw, dnsURI bool) {
	switch p.Kind {
	case IDevID, AttestationKey:
		return true, false
	case LDevID:
		return true, true
	}
	return false, false
}

func (p *Profile) extKeyUsage() ([]x509.ExtKeyUsage, []asn1.ObjectIdentifier) {
	switch p.Kind {
	case LDevID:
		if p.ExtKeyUsage != nil {
			return append([]x509.ExtKeyUsage(nil), p.ExtKeyUsage...), nil
		}
		return []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth}, nil
	case IDevID:
		return append([]x509.ExtKeyUsage(nil), p.ExtKeyUsage...), nil
	case Station:
		return []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, nil
	case AttestationKey:
		return nil, []asn1.ObjectIdentifier{oidTCGAIKCertificate}
	}
	return nil, nil
}

// noExpiration reports whether the profile's certificates have no
// well-defined expiration.
func (p *Profile) noExpiration() bool {
	return p.notAfter(time.Unix(0, 0)).Equal(noWellDefinedExpiration)
}

// checkChainValidity reports a chain or profile under which a certificate
// would outlive its issuer: a CA certificate valid after the one that
// issued it, or a profile issuing certificates without a well-defined
// expiration under a chain whose certificates have one.
func checkChainValidity(chain []*x509.Certificate, profiles []Profile) error {
	for i := 0; i+1 < len(chain); i++ {
		if chain[i].NotAfter.After(chain[i+1].NotAfter) {
			return fmt.Errorf("chain[%d] %q is valid until %s, after its issuer chain[%d] %q (until %s)",
				i, chain[i].Subject, chain[i].NotAfter.UTC().Format(time.RFC3339), i+1, chain[i+1].Subject, chain[i+1].NotAfter.UTC().Format(time.RFC3339))
		}
	}
	for i := range profiles {
		if !profiles[i].noExpiration() {
			continue
		}
		for j, c := range chain {
			if c.NotAfter.Before(noWellDefinedExpiration) {
				return fmt.Errorf("profile %q issues certificates without expiration (notAfter 99991231235959Z, IEEE 802.1AR §8.5), "+
					"which would outlive chain[%d] %q, valid until %s: make the CA certificates without expiration too "+
					"(zero Validity in ca.RootRequest and ca.IntermediateRequest), or give the profile a Validity",
					profiles[i].Name, j, c.Subject, c.NotAfter.UTC().Format(time.RFC3339))
			}
		}
	}
	return nil
}
