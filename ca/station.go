package ca

import (
	"crypto/x509"
	"encoding/asn1"
	"fmt"
	"slices"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
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
var oidStationAuthorization = asn1.ObjectIdentifier{2, 25, 1868605989, 1, 1}

// OIDStationAuthorization returns the OID of the station authorization
// extension, 2.25.1868605989.1.1.
func OIDStationAuthorization() asn1.ObjectIdentifier {
	return append(asn1.ObjectIdentifier(nil), oidStationAuthorization...)
}

// Bounds on a station authorization, so that one fits a certificate.
const (
	maxAuthNames   = 64
	maxAuthNameLen = 64
)

// StationAuthorization is what an authorized workstation may do: the
// manifest steps it may sign and the CA profiles it may request
// certificates under. It travels in a non-critical extension of the
// station's certificate:
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

func validAuthName(s string) bool {
	if len(s) == 0 || len(s) > maxAuthNameLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '.' || c == '_' || c == '-' || c == ':' || c == '/') {
			return false
		}
	}
	return true
}

func canonicalNames(field string, names []string) ([]string, error) {
	if len(names) > maxAuthNames {
		return nil, fmt.Errorf("%d %s, at most %d allowed", len(names), field, maxAuthNames)
	}
	out := slices.Clone(names)
	slices.Sort(out)
	out = slices.Compact(out)
	for _, n := range out {
		if !validAuthName(n) {
			return nil, fmt.Errorf("invalid name %q in %s", n, field)
		}
	}
	return out, nil
}

// Marshal returns the DER extension value. Names are sorted and
// de-duplicated; an invalid name is an error wrapping ErrInvalidRequest.
func (a *StationAuthorization) Marshal() ([]byte, error) {
	steps, err := canonicalNames("steps", a.Steps)
	if err != nil {
		return nil, fmt.Errorf("ca: station authorization: %w: %v", ErrInvalidRequest, err)
	}
	profiles, err := canonicalNames("profiles", a.Profiles)
	if err != nil {
		return nil, fmt.Errorf("ca: station authorization: %w: %v", ErrInvalidRequest, err)
	}
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1Int64(1)
		for _, list := range [][]string{steps, profiles} {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				for _, n := range list {
					b.AddASN1(cbasn1.UTF8String, func(b *cryptobyte.Builder) { b.AddBytes([]byte(n)) })
				}
			})
		}
	})
	return b.Bytes()
}

// ParseStationAuthorizationExtension parses the DER value of a station
// authorization extension. It is strict: the version must be 1, names
// valid, lists sorted without duplicates, and no trailing data. Errors are
// *ExtensionError wrapping ErrBadExtension.
func ParseStationAuthorizationExtension(der []byte) (*StationAuthorization, error) {
	bad := func(d string) error { return &ExtensionError{Extension: "station authorization", Detail: d} }
	in := cryptobyte.String(der)
	var seq cryptobyte.String
	var version int64
	if !in.ReadASN1(&seq, cbasn1.SEQUENCE) || !in.Empty() {
		return nil, bad("not a DER SEQUENCE")
	}
	if !seq.ReadASN1Integer(&version) {
		return nil, bad("missing version")
	}
	if version != 1 {
		return nil, bad(fmt.Sprintf("unsupported version %d", version))
	}
	var lists [2][]string
	for i, field := range []string{"steps", "profiles"} {
		var list cryptobyte.String
		if !seq.ReadASN1(&list, cbasn1.SEQUENCE) {
			return nil, bad("missing " + field)
		}
		for !list.Empty() {
			var s cryptobyte.String
			if !list.ReadASN1(&s, cbasn1.UTF8String) {
				return nil, bad("malformed name in " + field)
			}
			name := string(s)
			if !validAuthName(name) {
				return nil, bad(fmt.Sprintf("invalid name %q in %s", name, field))
			}
			if n := len(lists[i]); n > 0 && lists[i][n-1] >= name {
				return nil, bad(field + " not sorted or has duplicates")
			}
			if len(lists[i]) == maxAuthNames {
				return nil, bad("too many " + field)
			}
			lists[i] = append(lists[i], name)
		}
	}
	if !seq.Empty() {
		return nil, bad("trailing data")
	}
	return &StationAuthorization{Steps: lists[0], Profiles: lists[1]}, nil
}

// ParseStationAuthorization returns the station authorization of cert. It
// returns ErrNoStationAuthorization when cert has none, and an
// *ExtensionError (wrapping ErrBadExtension) when it is malformed or
// present twice. It does not verify cert; callers verify the chain first.
func ParseStationAuthorization(cert *x509.Certificate) (*StationAuthorization, error) {
	var found []byte
	for _, ext := range cert.Extensions {
		if ext.Id.Equal(oidStationAuthorization) {
			if found != nil {
				return nil, &ExtensionError{Extension: "station authorization", Detail: "extension present twice"}
			}
			found = ext.Value
		}
	}
	if found == nil {
		return nil, ErrNoStationAuthorization
	}
	return ParseStationAuthorizationExtension(found)
}
