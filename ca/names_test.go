package ca_test

import (
	"encoding/asn1"
	"errors"
	"testing"
	"unicode/utf16"

	"github.com/ztmkit/ztm/ca"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

var (
	oidCN     = asn1.ObjectIdentifier{2, 5, 4, 3}
	oidO      = asn1.ObjectIdentifier{2, 5, 4, 10}
	oidOU     = asn1.ObjectIdentifier{2, 5, 4, 11}
	oidSerial = asn1.ObjectIdentifier{2, 5, 4, 5}
)

const (
	tagUTF8      = cbasn1.UTF8String
	tagPrintable = cbasn1.PrintableString
	tagIA5       = cbasn1.IA5String
	tagT61       = cbasn1.T61String
	tagBMP       = cbasn1.Tag(30)
	tagUniversal = cbasn1.Tag(28)
	tagOctets    = cbasn1.OCTET_STRING
)

type nameAttr struct {
	oid   asn1.ObjectIdentifier
	tag   cbasn1.Tag
	value []byte
}

func at(oid asn1.ObjectIdentifier, tag cbasn1.Tag, v string) nameAttr {
	return nameAttr{oid, tag, []byte(v)}
}

func bmp(s string) []byte {
	var b []byte
	for _, u := range utf16.Encode([]rune(s)) {
		b = append(b, byte(u>>8), byte(u))
	}
	return b
}

func universal(s string) []byte {
	var b []byte
	for _, r := range s {
		b = append(b, byte(r>>24), byte(r>>16), byte(r>>8), byte(r))
	}
	return b
}

// dn encodes a Name, one RDN per argument.
func dn(rdns ...[]nameAttr) []byte {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		for _, rdn := range rdns {
			b.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) {
				for _, a := range rdn {
					b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
						b.AddASN1ObjectIdentifier(a.oid)
						b.AddASN1(a.tag, func(b *cryptobyte.Builder) { b.AddBytes(a.value) })
					})
				}
			})
		}
	})
	return b.BytesOrPanic()
}

func rdn(a ...nameAttr) []nameAttr { return a }

func TestEqualNames(t *testing.T) {
	t.Parallel()
	cn := func(tag cbasn1.Tag, v string) []byte { return dn(rdn(at(oidCN, tag, v))) }
	for _, tc := range []struct {
		name string
		a, b []byte
		want bool
	}{
		{"identical", cn(tagPrintable, "Device 1"), cn(tagPrintable, "Device 1"), true},
		{"UTF8String and PrintableString", cn(tagUTF8, "Device 1"), cn(tagPrintable, "Device 1"), true},
		{"IA5String and UTF8String", cn(tagIA5, "dev-1"), cn(tagUTF8, "dev-1"), true},
		{"T61String as Latin-1", dn(rdn(nameAttr{oidCN, tagT61, []byte{'G', 'e', 'r', 0xe4, 't'}})), cn(tagUTF8, "Gerät"), true},
		{"case folded", cn(tagUTF8, "ACME Corp"), cn(tagPrintable, "acme corp"), true},
		{"case folded beyond ASCII", dn(rdn(nameAttr{oidCN, tagBMP, bmp("GERÄT")})), cn(tagUTF8, "gerät"), true},
		{"UniversalString", dn(rdn(nameAttr{oidCN, tagUniversal, universal("Straße 1")})), cn(tagUTF8, "STRAßE 1"), true},
		{"leading and trailing spaces", cn(tagUTF8, "  ACME Corp "), cn(tagUTF8, "ACME Corp"), true},
		{"inner run of spaces", cn(tagUTF8, "ACME   Corp"), cn(tagPrintable, "ACME Corp"), true},
		{"tab and no-break space map to space", cn(tagUTF8, "ACME\t\u00a0Corp"), cn(tagUTF8, "ACME Corp"), true},
		{"soft hyphen and zero-width space map to nothing", cn(tagUTF8, "AC\u00adME\u200b Corp"), cn(tagUTF8, "ACME Corp"), true},
		{"only spaces and empty", cn(tagUTF8, "   "), cn(tagUTF8, ""), true},
		{"a space is significant between characters", cn(tagUTF8, "ACMECorp"), cn(tagUTF8, "ACME Corp"), false},
		{"different value", cn(tagUTF8, "Device 1"), cn(tagUTF8, "Device 2"), false},
		{"not normalized (no NFKC)", cn(tagUTF8, "caf\u00e9"), cn(tagUTF8, "cafe\u0301"), false},
		{"different attribute type", dn(rdn(at(oidO, tagUTF8, "x"))), dn(rdn(at(oidOU, tagUTF8, "x"))), false},
		{"RDNs in another order",
			dn(rdn(at(oidO, tagUTF8, "ACME")), rdn(at(oidCN, tagUTF8, "d"))),
			dn(rdn(at(oidCN, tagUTF8, "d")), rdn(at(oidO, tagUTF8, "ACME"))), false},
		{"multi-valued RDN, attributes in another order",
			dn(rdn(at(oidCN, tagUTF8, "d"), at(oidSerial, tagPrintable, "SN1"))),
			dn(rdn(at(oidSerial, tagUTF8, "sn1"), at(oidCN, tagPrintable, "D"))), true},
		{"multi-valued RDN against two RDNs",
			dn(rdn(at(oidCN, tagUTF8, "d"), at(oidSerial, tagPrintable, "SN1"))),
			dn(rdn(at(oidCN, tagUTF8, "d")), rdn(at(oidSerial, tagPrintable, "SN1"))), false},
		{"same attribute twice against once",
			dn(rdn(at(oidCN, tagUTF8, "d"), at(oidCN, tagUTF8, "d"))),
			dn(rdn(at(oidCN, tagUTF8, "d"), at(oidSerial, tagUTF8, "d"))), false},
		{"fewer RDNs", dn(rdn(at(oidCN, tagUTF8, "d"))), dn(rdn(at(oidCN, tagUTF8, "d")), rdn(at(oidO, tagUTF8, "o"))), false},
		{"empty names", dn(), dn(), true},
		{"non-string values by DER", dn(rdn(at(oidCN, tagOctets, "ab"))), dn(rdn(at(oidCN, tagOctets, "ab"))), true},
		{"non-string values are not case folded", dn(rdn(at(oidCN, tagOctets, "ab"))), dn(rdn(at(oidCN, tagOctets, "AB"))), false},
		{"non-string against string", dn(rdn(at(oidCN, tagOctets, "ab"))), cn(tagUTF8, "ab"), false},
	} {
		for _, swap := range []bool{false, true} {
			a, b := tc.a, tc.b
			if swap {
				a, b = b, a
			}
			got, err := ca.EqualNames(a, b)
			if err != nil || got != tc.want {
				t.Errorf("%s (swapped %v): %v, %v; want %v", tc.name, swap, got, err, tc.want)
			}
		}
	}
}

func TestEqualNamesMalformed(t *testing.T) {
	t.Parallel()
	good := dn(rdn(at(oidCN, tagUTF8, "d")))
	for name, der := range map[string][]byte{
		"empty input":              nil,
		"trailing data":            append(dn(rdn(at(oidCN, tagUTF8, "d"))), 0),
		"not a SEQUENCE":           {0x31, 0x00},
		"empty RDN":                {0x30, 0x02, 0x31, 0x00},
		"invalid UTF8String":       dn(rdn(nameAttr{oidCN, tagUTF8, []byte{0xff, 0xfe}})),
		"PrintableString with '@'": dn(rdn(at(oidCN, tagPrintable, "a@b"))),
		"IA5String over 0x7f":      dn(rdn(nameAttr{oidCN, tagIA5, []byte{0x80}})),
		"odd BMPString":            dn(rdn(nameAttr{oidCN, tagBMP, []byte{0, 'a', 0}})),
		"BMPString surrogate":      dn(rdn(nameAttr{oidCN, tagBMP, []byte{0xd8, 0x00}})),
		"UniversalString too big":  dn(rdn(nameAttr{oidCN, tagUniversal, []byte{0x00, 0x11, 0x00, 0x00}})),
	} {
		for _, pair := range [][2][]byte{{der, good}, {good, der}} {
			if ok, err := ca.EqualNames(pair[0], pair[1]); !errors.Is(err, ca.ErrMalformedName) || ok {
				t.Errorf("%s: %v, %v", name, ok, err)
			}
		}
	}
}

func FuzzEqualNames(f *testing.F) {
	f.Add(dn(rdn(at(oidCN, tagUTF8, " ACME  Corp "))), dn(rdn(at(oidCN, tagPrintable, "acme corp"))))
	f.Add(dn(rdn(at(oidCN, tagUTF8, "d"), at(oidSerial, tagPrintable, "SN1"))), dn(rdn(at(oidSerial, tagPrintable, "sn1"), at(oidCN, tagUTF8, "D"))))
	f.Add(dn(rdn(nameAttr{oidCN, tagBMP, bmp("GERÄT")})), dn(rdn(nameAttr{oidCN, tagUniversal, universal("gerät")})))
	f.Add([]byte{0x30, 0x02, 0x31, 0x00}, []byte{0x30, 0x00})
	f.Fuzz(func(t *testing.T, a, b []byte) {
		ab, errA := ca.EqualNames(a, b)
		ba, errB := ca.EqualNames(b, a)
		if (errA == nil) != (errB == nil) || ab != ba {
			t.Fatalf("not symmetric: %v %v / %v %v", ab, errA, ba, errB)
		}
		if errA != nil && !errors.Is(errA, ca.ErrMalformedName) {
			t.Fatalf("error %v does not wrap ErrMalformedName", errA)
		}
		if ok, err := ca.EqualNames(a, a); err == nil && !ok {
			t.Fatal("a name does not match itself")
		}
	})
}
