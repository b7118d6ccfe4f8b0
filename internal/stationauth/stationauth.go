// Package stationauth encodes and parses the station authorization
// certificate extension that ca issues (ca.StationAuthorization) and
// manifest honours: the manifest steps a station may sign and the CA
// profiles it may request. It is shared so that the two packages read one
// encoding with one parser without importing each other.
//
//	StationAuthorization ::= SEQUENCE {
//	    version   INTEGER (1),
//	    steps     SEQUENCE SIZE (0..64) OF UTF8String,
//	    profiles  SEQUENCE SIZE (0..64) OF UTF8String }
//
// Each name is 1 to 64 characters of letters, digits and ". _ - : /";
// each list is sorted and free of duplicates (the DER form is canonical).
package stationauth

import (
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"slices"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// OID is the extension's identifier, 2.25.1868605989.1.1, under ztm's
// private arc (see ca's documentation of OIDStationAuthorization).
var OID = asn1.ObjectIdentifier{2, 25, 1868605989, 1, 1}

// Bounds on an authorization, so that one fits a certificate.
const (
	MaxNames   = 64
	MaxNameLen = 64
)

// ErrDuplicate is returned by Extension for a certificate that carries
// the extension twice.
var ErrDuplicate = errors.New("extension present twice")

// ValidName reports whether s may name a step or a profile.
func ValidName(s string) bool {
	if len(s) == 0 || len(s) > MaxNameLen {
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

// Canonical returns names sorted, without duplicates, each checked; field
// names the list in errors.
func Canonical(field string, names []string) ([]string, error) {
	if len(names) > MaxNames {
		return nil, fmt.Errorf("%d %s, at most %d allowed", len(names), field, MaxNames)
	}
	out := slices.Clone(names)
	slices.Sort(out)
	out = slices.Compact(out)
	for _, n := range out {
		if !ValidName(n) {
			return nil, fmt.Errorf("invalid name %q in %s", n, field)
		}
	}
	return out, nil
}

// Marshal returns the DER extension value for steps and profiles, which it
// puts in canonical order first.
func Marshal(steps, profiles []string) ([]byte, error) {
	steps, err := Canonical("steps", steps)
	if err != nil {
		return nil, err
	}
	profiles, err = Canonical("profiles", profiles)
	if err != nil {
		return nil, err
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

// Parse parses a DER extension value strictly: version 1, valid names,
// lists sorted without duplicates, no trailing data. Its error says what
// is wrong, in words.
func Parse(der []byte) (steps, profiles []string, err error) {
	in := cryptobyte.String(der)
	var seq cryptobyte.String
	var version int64
	if !in.ReadASN1(&seq, cbasn1.SEQUENCE) || !in.Empty() {
		return nil, nil, errors.New("not a DER SEQUENCE")
	}
	if !seq.ReadASN1Integer(&version) {
		return nil, nil, errors.New("missing version")
	}
	if version != 1 {
		return nil, nil, fmt.Errorf("unsupported version %d", version)
	}
	var lists [2][]string
	for i, field := range []string{"steps", "profiles"} {
		var list cryptobyte.String
		if !seq.ReadASN1(&list, cbasn1.SEQUENCE) {
			return nil, nil, errors.New("missing " + field)
		}
		for !list.Empty() {
			var s cryptobyte.String
			if !list.ReadASN1(&s, cbasn1.UTF8String) {
				return nil, nil, errors.New("malformed name in " + field)
			}
			name := string(s)
			if !ValidName(name) {
				return nil, nil, fmt.Errorf("invalid name %q in %s", name, field)
			}
			if n := len(lists[i]); n > 0 && lists[i][n-1] >= name {
				return nil, nil, errors.New(field + " not sorted or has duplicates")
			}
			if len(lists[i]) == MaxNames {
				return nil, nil, errors.New("too many " + field)
			}
			lists[i] = append(lists[i], name)
		}
	}
	if !seq.Empty() {
		return nil, nil, errors.New("trailing data")
	}
	return lists[0], lists[1], nil
}

// Extension returns the value of cert's station authorization extension
// and whether cert has one (an empty value is still one, and parses as
// malformed); ErrDuplicate when it has two.
func Extension(cert *x509.Certificate) (value []byte, ok bool, err error) {
	for _, ext := range cert.Extensions {
		if ext.Id.Equal(OID) {
			if ok {
				return nil, false, ErrDuplicate
			}
			value, ok = ext.Value, true
		}
	}
	return value, ok, nil
}
