package ca

import (
	"crypto/x509"
	"encoding/asn1"
	"fmt"
	"slices"

	"github.com/ztmkit/ztm/internal/stationauth"
)

// ztm's private OID arc is 2.25.1868605989. The 2.25 arc (ITU-T X.667 |
// ISO/IEC 9834-8) needs no registration; its arcs are UUIDs read as
// integers, and only a UUID generated as RFC 9562 prescribes keeps an arc
// from colliding with another's. ztm has one, made once from a random
// source: the version 4 UUID fa0ad25f-73f0-4c22-918b-589a5505278e, arc
// 2.25.332363188783387800071829934424400930702. Its certificates cannot
// use it yet: Go's crypto/x509 (through Go 1.26) refuses any certificate
// with an extension whose OID has an arc of 2^31 or more — every UUID arc
// is above 2^121 — with "x509: malformed extension OID field", and
// crypto/tls parses peer certificates with it, so a station certificate
// under the UUID arc could not authenticate to a Go EST server or sign a
// manifest a Go verifier reads. Other parsers that refuse such arcs:
// RustCrypto const-oid (by design), and python cryptography from 38 (which
// refuses arcs above 2^28) until a later release read them again (48.0
// does); openssl and node read them. 2.25.1868605989 is a random 31-bit
// value instead: no correctly generated UUID arc equals it, but nothing
// but chance keeps another party's ad-hoc value from doing so. It is to
// be replaced by an IANA Private Enterprise Number arc (which every parser
// reads), or by the UUID arc once Go reads it; either way the old OID
// will still be read, the new one written. Under it:
//
//	2.25.1868605989.1      certificate extensions
//	2.25.1868605989.1.1    station authorization
//	2.25.1868605989.2      CRL extensions
//	2.25.1868605989.2.1    ledger checkpoint (see OIDCRLCheckpoint)
//	2.25.1868605989.3      evidence statement types (CSR attestation)
//	2.25.1868605989.3.1    EAT (CWT or JWT), see ca/enroll.OIDEvidenceEAT
var oidStationAuthorization = stationauth.OID

// OIDStationAuthorization returns the OID of the station authorization
// extension, 2.25.1868605989.1.1.
func OIDStationAuthorization() asn1.ObjectIdentifier {
	return append(asn1.ObjectIdentifier(nil), oidStationAuthorization...)
}

// StationAuthorization is what an authorized workstation may do: the
// manifest steps it may sign and the CA profiles it may request
// certificates under. The Authority checks Profiles on every request the
// station makes; manifest.Verify lets the station's certificate sign only
// the listed Steps, whatever roles its subject claims. It travels in a
// non-critical extension of the station's certificate:
//
//	StationAuthorization ::= SEQUENCE {
//	    version   INTEGER (1),
//	    steps     SEQUENCE SIZE (0..64) OF UTF8String,
//	    profiles  SEQUENCE SIZE (0..64) OF UTF8String }
//
// Each name is 1 to 64 characters of letters, digits and ". _ - : /";
// each list is sorted and free of duplicates (the DER form is canonical).
type StationAuthorization struct {
	// Steps names the manifest steps the station may sign.
	Steps []string
	// Profiles names the CA profiles the station may request.
	Profiles []string
}

// AllowsProfile reports whether the authorization lists profile.
func (a *StationAuthorization) AllowsProfile(profile string) bool {
	return slices.Contains(a.Profiles, profile)
}

// AllowsStep reports whether the authorization lists step.
func (a *StationAuthorization) AllowsStep(step string) bool {
	return slices.Contains(a.Steps, step)
}

// Marshal returns the DER extension value. Names are sorted and
// de-duplicated; an invalid name is an error wrapping ErrInvalidRequest.
func (a *StationAuthorization) Marshal() ([]byte, error) {
	der, err := stationauth.Marshal(a.Steps, a.Profiles)
	if err != nil {
		return nil, fmt.Errorf("%w: station authorization: %v", ErrInvalidRequest, err)
	}
	return der, nil
}

// ParseStationAuthorizationExtension parses the DER value of a station
// authorization extension. It is strict: the version must be 1, names
// valid, lists sorted without duplicates, and no trailing data. Errors are
// *ExtensionError wrapping ErrBadExtension.
func ParseStationAuthorizationExtension(der []byte) (*StationAuthorization, error) {
	steps, profiles, err := stationauth.Parse(der)
	if err != nil {
		return nil, &ExtensionError{Extension: "station authorization", Detail: err.Error()}
	}
	return &StationAuthorization{Steps: steps, Profiles: profiles}, nil
}

// ParseStationAuthorization returns the station authorization of cert. It
// returns ErrNoStationAuthorization when cert has none, and an
// *ExtensionError (wrapping ErrBadExtension) when it is malformed or
// present twice. It does not verify cert; callers verify the chain first.
func ParseStationAuthorization(cert *x509.Certificate) (*StationAuthorization, error) {
	der, ok, err := stationauth.Extension(cert)
	if err != nil {
		return nil, &ExtensionError{Extension: "station authorization", Detail: err.Error()}
	}
	if !ok {
		return nil, ErrNoStationAuthorization
	}
	return ParseStationAuthorizationExtension(der)
}
