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
// integers. Go's X.509 parser accepts only arcs below 2^31, which no
// RFC 9562 UUID is (its version and variant bits alone put it above 2^76),
// so ztm uses a random 31-bit value: it cannot collide with any correctly
// generated UUID OID. It is to be replaced by an IANA Private Enterprise
// Number arc once ztm has one. Under it:
//
//	2.25.1868605989.1      certificate extensions
//	2.25.1868605989.1.1    station authorization
//	2.25.1868605989.2      CRL extensions
//	2.25.1868605989.2.1    ledger checkpoint (see OIDCRLCheckpoint)
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
		return nil, fmt.Errorf("ca: station authorization: %w: %v", ErrInvalidRequest, err)
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
