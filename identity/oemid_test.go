package identity

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

func TestOEMID(t *testing.T) {
	t.Parallel()
	rnd, err := NewRandomOEMID(bytes.NewReader(bytes.Repeat([]byte{0x11}, 16)))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		o    OEMID
		kind OEMIDKind
		text string
		cbor string
	}{
		{NewPENOEMID(32473), OEMIDPEN, "pen:32473", "197ed9"},
		{NewPENOEMID(0), OEMIDPEN, "pen:0", "00"},
		{NewPENOEMID(1<<32 - 1), OEMIDPEN, "pen:4294967295", "1affffffff"},
		{NewIEEEOEMID([3]byte{0x00, 0x1b, 0x63}), OEMIDIEEE, "ieee:001b63", "43001b63"},
		{rnd, OEMIDRandom, "random:" + strings.Repeat("11", 16), "50" + strings.Repeat("11", 16)},
	}
	for _, tt := range tests {
		if tt.o.Kind() != tt.kind || tt.o.String() != tt.text || tt.o.IsZero() {
			t.Errorf("%s: kind %v text %q", tt.text, tt.o.Kind(), tt.o.String())
		}
		p, err := ParseOEMID(tt.text)
		if err != nil || p != tt.o {
			t.Errorf("ParseOEMID(%q) = %v, %v", tt.text, p, err)
		}
		enc, err := tt.o.MarshalCBOR()
		if err != nil || hex.EncodeToString(enc) != tt.cbor {
			t.Errorf("%s: CBOR %x, %v; want %s", tt.text, enc, err, tt.cbor)
		}
		var back OEMID
		if err := back.UnmarshalCBOR(enc); err != nil || back != tt.o {
			t.Errorf("%s: CBOR round trip %v, %v", tt.text, back, err)
		}
	}
	if pen, ok := NewIEEEOEMID([3]byte{}).PEN(); ok || pen != 0 {
		t.Error("PEN() of an IEEE OEM ID")
	}
	if b := NewPENOEMID(5).Bytes(); b != nil {
		t.Error("Bytes() of a PEN")
	}
	var zero OEMID
	if !zero.IsZero() || zero.String() != "" {
		t.Error("zero OEMID")
	}
	if _, err := zero.MarshalCBOR(); !errors.Is(err, ErrInvalidOEMID) {
		t.Errorf("zero MarshalCBOR: %v", err)
	}
	if _, err := NewRandomOEMID(bytes.NewReader(make([]byte, 3))); err == nil {
		t.Error("short random source accepted")
	}
	if _, err := NewRandomOEMID(nil); err != nil {
		t.Error(err)
	}
}

func TestParseOEMIDRefusals(t *testing.T) {
	t.Parallel()
	for _, s := range []string{
		"", "32473", "pen:", "pen:-1", "pen:+5", "pen:007", "pen:4294967296", "pen:0x10", "PEN:1",
		"ieee:001b6", "ieee:001b6300", "ieee:zz1b63", "random:00", "random:" + strings.Repeat("g", 32), "oui:001b63",
	} {
		if _, err := ParseOEMID(s); !errors.Is(err, ErrInvalidOEMID) {
			t.Errorf("%q: err = %v", s, err)
		}
	}
	for _, h := range []string{
		"", "20" /* -1 */, "1b0000000100000000" /* 2^32 */, "4400000000", "6161", "f6", "c243001b63", "43001b6300", "42001b", "1800" /* 0, not shortest */, "5803001b63", /* length not shortest */
	} {
		var o OEMID
		if err := o.UnmarshalCBOR(mustHex(t, h)); !errors.Is(err, ErrInvalidOEMID) {
			t.Errorf("CBOR %s: err = %v", h, err)
		}
		if !o.IsZero() {
			t.Errorf("CBOR %s: failed decode changed the value", h)
		}
	}
}

func FuzzParseOEMID(f *testing.F) {
	for _, s := range []string{"pen:32473", "ieee:001b63", "random:" + strings.Repeat("ab", 16), "pen:0", "", "197ed9"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if o, err := ParseOEMID(s); err == nil {
			// Hex digits may be given in either case; String prints
			// lowercase.
			if o.String() != strings.ToLower(s) {
				t.Fatalf("%q parses but prints as %q", s, o)
			}
			if p, err := ParseOEMID(o.String()); err != nil || p != o {
				t.Fatalf("%q does not round-trip: %v, %v", o, p, err)
			}
		} else if !errors.Is(err, ErrInvalidOEMID) {
			t.Fatalf("error %v does not wrap ErrInvalidOEMID", err)
		}
		var o OEMID
		if err := o.UnmarshalCBOR([]byte(s)); err == nil {
			enc, err := o.MarshalCBOR()
			if err != nil || !bytes.Equal(enc, []byte(s)) {
				t.Fatalf("CBOR %x decodes but re-encodes as %x (%v)", s, enc, err)
			}
		}
	})
}
