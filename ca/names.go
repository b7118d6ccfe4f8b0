package ca

import (
	"bytes"
	"encoding/asn1"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// EqualNames reports whether the DER X.501 Names a and b (a certificate's
// RawSubject or RawIssuer, a request's RawSubject) match by RFC 5280 §7.1:
// the same number of RDNs in the same order, each RDN with the same number
// of attributes, and for each attribute of one an attribute of the other
// of the same type whose value matches.
//
// String values (UTF8String, PrintableString, IA5String, BMPString,
// UniversalString, and TeletexString read as ISO 8859-1) match whatever
// their ASN.1 string type, after the string preparation of RFC 4518 that
// RFC 5280 §7.1 asks for caseIgnoreMatch: characters RFC 4518 §2.2 maps
// to nothing removed and those it maps to SPACE replaced, case folded
// (Unicode simple case folding), and insignificant spaces handled (§2.6.1:
// leading and trailing spaces dropped, inner runs of spaces matching one).
// Unicode normalization (NFKC, RFC 4518 §2.3) is not applied: values that
// differ only by it do not match. Values of any other type match only if
// their DER encodings are identical.
//
// Errors wrap [ErrMalformedName]: a Name that is not DER, has trailing
// data, an empty RDN, or a string value invalid for its type.
func EqualNames(a, b []byte) (bool, error) {
	na, err := parseName(a)
	if err != nil {
		return false, err
	}
	nb, err := parseName(b)
	if err != nil {
		return false, err
	}
	if len(na) != len(nb) {
		return false, nil
	}
	for i := range na {
		if !equalRDN(na[i], nb[i]) {
			return false, nil
		}
	}
	return true, nil
}

// atv is one attribute of a parsed name: its type and either its
// prepared string value or, for a value that is not a string, its DER.
type atv struct {
	typ      asn1.ObjectIdentifier
	isString bool
	value    string
}

func equalRDN(a, b []atv) bool {
	if len(a) != len(b) {
		return false
	}
	used := make([]bool, len(b))
	for _, x := range a {
		found := false
		for j, y := range b {
			if !used[j] && x.typ.Equal(y.typ) && x.isString == y.isString && x.value == y.value {
				used[j], found = true, true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// maxNameAttrs bounds the attributes of a name EqualNames reads.
const maxNameAttrs = 64

func parseName(der []byte) ([][]atv, error) {
	bad := func(what string) error { return fmt.Errorf("%w: %s", ErrMalformedName, what) }
	in := cryptobyte.String(der)
	var seq cryptobyte.String
	if !in.ReadASN1(&seq, cbasn1.SEQUENCE) || !in.Empty() {
		return nil, bad("not one DER SEQUENCE")
	}
	var out [][]atv
	n := 0
	for !seq.Empty() {
		var set cryptobyte.String
		if !seq.ReadASN1(&set, cbasn1.SET) || set.Empty() {
			return nil, bad("malformed or empty RDN")
		}
		var rdn []atv
		for !set.Empty() {
			if n++; n > maxNameAttrs {
				return nil, bad("too many attributes")
			}
			var attr, value cryptobyte.String
			var typ asn1.ObjectIdentifier
			var tag cbasn1.Tag
			if !set.ReadASN1(&attr, cbasn1.SEQUENCE) || !attr.ReadASN1ObjectIdentifier(&typ) {
				return nil, bad("malformed attribute")
			}
			full := attr
			if !attr.ReadAnyASN1(&value, &tag) || !attr.Empty() {
				return nil, bad("malformed attribute value")
			}
			a := atv{typ: typ}
			s, isString, err := decodeDirectoryString(tag, value)
			if err != nil {
				return nil, bad(fmt.Sprintf("attribute %v: %v", typ, err))
			}
			if isString {
				a.isString, a.value = true, prepareString(s)
			} else {
				a.value = string(full)
			}
			rdn = append(rdn, a)
		}
		out = append(out, rdn)
	}
	return out, nil
}

// decodeDirectoryString returns the value of a string type as UTF-8, and
// false for a type that is not a string.
func decodeDirectoryString(tag cbasn1.Tag, v []byte) (string, bool, error) {
	switch tag {
	case cbasn1.UTF8String:
		if !utf8.Valid(v) {
			return "", true, fmt.Errorf("invalid UTF8String")
		}
		return string(v), true, nil
	case cbasn1.PrintableString:
		for _, c := range v {
			if !isPrintable(c) {
				return "", true, fmt.Errorf("invalid PrintableString")
			}
		}
		return string(v), true, nil
	case cbasn1.IA5String:
		for _, c := range v {
			if c >= utf8.RuneSelf {
				return "", true, fmt.Errorf("invalid IA5String")
			}
		}
		return string(v), true, nil
	case cbasn1.T61String: // read as ISO 8859-1, as most software does
		var b strings.Builder
		for _, c := range v {
			b.WriteRune(rune(c))
		}
		return b.String(), true, nil
	case cbasn1.Tag(30): // BMPString: UCS-2, big-endian
		if len(v)%2 != 0 {
			return "", true, fmt.Errorf("invalid BMPString")
		}
		u := make([]uint16, len(v)/2)
		for i := range u {
			u[i] = uint16(v[2*i])<<8 | uint16(v[2*i+1])
			if utf16.IsSurrogate(rune(u[i])) {
				return "", true, fmt.Errorf("invalid BMPString")
			}
		}
		return string(utf16.Decode(u)), true, nil
	case cbasn1.Tag(28): // UniversalString: UCS-4, big-endian
		if len(v)%4 != 0 {
			return "", true, fmt.Errorf("invalid UniversalString")
		}
		var b strings.Builder
		for i := 0; i < len(v); i += 4 {
			r := rune(v[i])<<24 | rune(v[i+1])<<16 | rune(v[i+2])<<8 | rune(v[i+3])
			if !utf8.ValidRune(r) {
				return "", true, fmt.Errorf("invalid UniversalString")
			}
			b.WriteRune(r)
		}
		return b.String(), true, nil
	}
	return "", false, nil
}

// isPrintable reports whether c is in PrintableString's alphabet (X.680
// §41.4).
func isPrintable(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		bytes.IndexByte([]byte(" '()+,-./:=?"), c) >= 0
}

// prepareString is the RFC 4518 string preparation of a stored value for
// caseIgnoreMatch, without normalization: map (§2.2, with case folding),
// then insignificant space handling (§2.6.1).
func prepareString(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	space := false // a space is pending: written before the next character
	for _, r := range s {
		switch {
		case mapsToNothing(r):
			continue
		case unicode.IsSpace(r) || unicode.Is(unicode.Zs, r):
			space = b.Len() > 0
			continue
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		b.WriteRune(foldRune(r))
	}
	return b.String()
}

// mapsToNothing reports the characters RFC 4518 §2.2 maps to nothing:
// SOFT HYPHEN, MONGOLIAN TODO SOFT HYPHEN, COMBINING GRAPHEME JOINER,
// the variation selectors, OBJECT REPLACEMENT CHARACTER, zero-width
// characters, and control characters other than the white space ones,
// which map to SPACE.
func mapsToNothing(r rune) bool {
	switch {
	case r == 0x00AD, r == 0x1806, r == 0x034F, r >= 0x180B && r <= 0x180D,
		r >= 0xFE00 && r <= 0xFE0F, r == 0xFFFC, r == 0x200B, r == 0x200C, r == 0x200D, r == 0xFEFF:
		return true
	case r == '\t' || r == '\n' || r == '\v' || r == '\f' || r == '\r' || r == 0x85:
		return false
	}
	return unicode.IsControl(r)
}

// foldRune case folds r: the smallest rune of its simple case folding
// orbit, so that runes that fold together map to one.
func foldRune(r rune) rune {
	min := r
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		if f < min {
			min = f
		}
	}
	return min
}
