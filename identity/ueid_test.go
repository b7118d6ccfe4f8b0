package identity

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/ztmkit/ztm/internal/detcbor"
)

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestNewRandomUEID(t *testing.T) {
	t.Parallel()
	for _, n := range []int{16, 24, 32} {
		src := bytes.NewReader(bytes.Repeat([]byte{0xab}, 64))
		u, err := NewRandomUEID(src, n)
		if err != nil {
			t.Fatalf("n=%d: %v", n, err)
		}
		want := append([]byte{0x01}, bytes.Repeat([]byte{0xab}, n)...)
		if !bytes.Equal(u.Bytes(), want) || u.Type() != UEIDTypeRAND || u.Len() != n+1 {
			t.Errorf("n=%d: got %x type %v", n, u.Bytes(), u.Type())
		}
	}
	// crypto/rand by default, and two draws differ.
	a, err := NewRandomUEID(nil, 16)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewRandomUEID(nil, 16)
	if a == b {
		t.Error("two random UEIDs are equal")
	}
	for _, n := range []int{0, 8, 15, 17, 33, -1} {
		_, err := NewRandomUEID(nil, n)
		var ue *UEIDError
		if !errors.As(err, &ue) || !errors.Is(err, ErrInvalidUEID) {
			t.Errorf("n=%d: err = %v, want *UEIDError", n, err)
		}
	}
	// A short read is the reader's error, not a UEID.
	if _, err := NewRandomUEID(bytes.NewReader(make([]byte, 10)), 16); err == nil {
		t.Error("short random source accepted")
	}
	if _, err := NewRandomUEID(iotest.ErrReader(errors.New("boom")), 16); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Errorf("reader error lost: %v", err)
	}
}

func TestEUIUEID(t *testing.T) {
	t.Parallel()
	u := NewEUI64UEID([8]byte{0x00, 0x1b, 0x63, 0xff, 0xfe, 0x84, 0x45, 0xe6})
	if got := u.String(); got != "02001b63fffe8445e6" {
		t.Errorf("EUI-64 = %s", got)
	}
	if u.Type() != UEIDTypeEUI || u.Type().String() != "IEEE EUI" {
		t.Errorf("type %v", u.Type())
	}
	v := NewEUI48UEID([6]byte{0x00, 0x1b, 0x63, 0x84, 0x45, 0xe6})
	if got := v.String(); got != "02001b638445e6" {
		t.Errorf("EUI-48 = %s", got)
	}
	if _, ok := v.IMEI(); ok {
		t.Error("IMEI() true for an EUI UEID")
	}
}

func TestNewIMEIUEID(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    string // hex, "" for an error
		digits  string
		comment string
	}{
		{"49015420323751", "030409000105040200030203070501", "49015420323751", "14 digits"},
		{"490154203237518", "030409000105040200030203070501", "49015420323751", "15 digits, check digit 8 right"},
		{"356938035643809", "030305060903080003050604030800", "35693803564380", "15 digits, check digit 9 right"},
		{"000000000000000", "030000000000000000000000000000", "00000000000000", "all zero, check 0"},
		{"490154203237517", "", "", "wrong check digit"},
		{"4901542032375", "", "", "13 digits"},
		{"4901542032375189", "", "", "IMEISV, 16 digits"},
		{"4901542032375a", "", "", "letter"},
		{"49-015420-323751", "", "", "separators"},
		{"", "", "", "empty"},
		{"４9015420323751", "", "", "non-ASCII digit"},
	}
	for _, tt := range tests {
		u, err := NewIMEIUEID(tt.in)
		if tt.want == "" {
			if !errors.Is(err, ErrInvalidUEID) {
				t.Errorf("%s (%q): err = %v, want ErrInvalidUEID", tt.comment, tt.in, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s (%q): %v", tt.comment, tt.in, err)
			continue
		}
		if u.String() != tt.want {
			t.Errorf("%s: got %s, want %s", tt.comment, u, tt.want)
		}
		if d, ok := u.IMEI(); !ok || d != tt.digits {
			t.Errorf("%s: IMEI() = %q, %v", tt.comment, d, ok)
		}
	}
}

func TestUEIDFromBytes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		hex string
		ok  bool
	}{
		{"01" + strings.Repeat("00", 16), true},
		{"01" + strings.Repeat("ff", 24), true},
		{"01" + strings.Repeat("5a", 32), true},
		{"01" + strings.Repeat("00", 15), false},
		{"01" + strings.Repeat("00", 17), false},
		{"01" + strings.Repeat("00", 33), false},
		{"02001b638445e6", true},
		{"02001b63fffe8445e6", true},
		{"02001b638445", false},
		{"02001b638445e6ff", false},
		{"030409000105040200030203070501", true},
		{"030409000105040200030203070531", false}, // 0x31 is ASCII '1', not a digit value
		{"03040900010504020003020307050109", false},
		{"04" + strings.Repeat("00", 16), false},
		{"00" + strings.Repeat("00", 16), false},
		{"ff" + strings.Repeat("00", 8), false},
		{"", false},
		{"01", false},
	}
	for _, tt := range tests {
		b := mustHex(t, tt.hex)
		u, err := UEIDFromBytes(b)
		if tt.ok != (err == nil) {
			t.Errorf("%s: err = %v, want ok=%v", tt.hex, err, tt.ok)
			continue
		}
		if err != nil {
			var ue *UEIDError
			if !errors.As(err, &ue) || !errors.Is(err, ErrInvalidUEID) || !strings.HasPrefix(err.Error(), "identity: invalid UEID") {
				t.Errorf("%s: error %v is not a *UEIDError", tt.hex, err)
			}
			continue
		}
		if !bytes.Equal(u.Bytes(), b) {
			t.Errorf("%s: Bytes = %x", tt.hex, u.Bytes())
		}
		// Bytes is a copy.
		u.Bytes()[0] = 0xff
		if u.Bytes()[0] == 0xff {
			t.Error("Bytes exposes internal storage")
		}
		// Input is copied.
		c := append([]byte(nil), b...)
		u2, _ := UEIDFromBytes(c)
		c[1] ^= 0xff
		if !u2.Equal(u) {
			t.Error("UEIDFromBytes keeps a reference to its input")
		}
	}
}

func TestParseUEID(t *testing.T) {
	t.Parallel()
	good := []string{
		"02001b638445e6",
		"02001B638445E6",
		"030409000105040200030203070501",
		"01" + strings.Repeat("a5", 32),
	}
	for _, s := range good {
		u, err := ParseUEID(s)
		if err != nil {
			t.Errorf("%s: %v", s, err)
			continue
		}
		if u.String() != strings.ToLower(s) {
			t.Errorf("%s: String = %s", s, u)
		}
		v, err := ParseUEID(u.String())
		if err != nil || v != u {
			t.Errorf("%s: round trip gave %v, %v", s, v, err)
		}
	}
	bad := []string{"", "0", "02001b638445e", "0x02001b638445e6", "02:00:1b:63:84:45:e6", " 02001b638445e6", "02001b638445e6\n", "zz001b638445e6", strings.Repeat("01", 40)}
	for _, s := range bad {
		if _, err := ParseUEID(s); !errors.Is(err, ErrInvalidUEID) {
			t.Errorf("%q: err = %v, want ErrInvalidUEID", s, err)
		}
	}
}

func TestUEIDZero(t *testing.T) {
	t.Parallel()
	var u UEID
	if !u.IsZero() || u.String() != "" || u.Bytes() != nil || u.Type() != 0 || u.Len() != 0 {
		t.Errorf("zero UEID: %v %q %x %v", u.IsZero(), u.String(), u.Bytes(), u.Type())
	}
	if _, err := u.MarshalCBOR(); !errors.Is(err, ErrInvalidUEID) {
		t.Errorf("MarshalCBOR of zero UEID: %v", err)
	}
	if got := UEIDType(0x07).String(); got != "UEIDType(0x07)" {
		t.Errorf("unknown type String = %q", got)
	}
}

func TestUEIDCBOR(t *testing.T) {
	t.Parallel()
	u := NewEUI48UEID([6]byte{0x00, 0x1b, 0x63, 0x84, 0x45, 0xe6})
	enc, err := u.MarshalCBOR()
	if err != nil {
		t.Fatal(err)
	}
	if want := "4702001b638445e6"; hex.EncodeToString(enc) != want {
		t.Errorf("CBOR = %x, want %s", enc, want)
	}
	// Inside a claims map, through the shared deterministic mode.
	claims := map[int]any{256: u}
	enc2, err := detcbor.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	if want := "a1190100" + "4702001b638445e6"; hex.EncodeToString(enc2) != want {
		t.Errorf("claims CBOR = %x, want %s", enc2, want)
	}
	var back struct {
		UEID UEID `cbor:"256,keyasint"`
	}
	if err := detcbor.Unmarshal(enc2, &back, 0); err != nil {
		t.Fatal(err)
	}
	if back.UEID != u {
		t.Errorf("decoded %v, want %v", back.UEID, u)
	}

	bad := []string{
		"",
		"46001b638445e6",                   // 6 bytes: no valid type+len
		"6702001b638445e6",                 // text string
		"d8404702001b638445e6",             // tagged
		"5f4702001b638445e6ff",             // indefinite length
		"4702001b638445e600",               // trailing byte
		"47",                               // truncated
		"4704001b638445e6",                 // unknown type
		"1a00010000",                       // integer
		"58ff" + strings.Repeat("00", 255), // too long
	}
	for _, h := range bad {
		v := NewEUI48UEID([6]byte{1, 2, 3, 4, 5, 6})
		before := v
		if err := v.UnmarshalCBOR(mustHex(t, h)); !errors.Is(err, ErrInvalidUEID) {
			t.Errorf("%s: err = %v, want ErrInvalidUEID", h, err)
		}
		if v != before {
			t.Errorf("%s: failed decode changed the UEID", h)
		}
	}
}

func TestLuhn(t *testing.T) {
	t.Parallel()
	// Vectors from 3GPP TS 23.003 Annex B and published IMEIs.
	for digits, want := range map[string]byte{
		"49015420323751": '8',
		"35693803564380": '9',
		"26053179311383": '7',
		"00000000000000": '0',
	} {
		if got := luhnDigit(digits); got != want {
			t.Errorf("luhn(%s) = %c, want %c", digits, got, want)
		}
	}
}

func FuzzParseUEID(f *testing.F) {
	for _, s := range []string{
		"02001b638445e6", "02001b63fffe8445e6", "030409000105040200030203070501",
		"01" + strings.Repeat("00", 16), "01" + strings.Repeat("ff", 32), "", "zz", "0304",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := ParseUEID(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidUEID) {
				t.Fatalf("error %v does not wrap ErrInvalidUEID", err)
			}
		} else {
			checkUEIDRoundTrip(t, u)
		}
		// The same input as raw bytes.
		v, err := UEIDFromBytes([]byte(s))
		if err != nil {
			if !errors.Is(err, ErrInvalidUEID) {
				t.Fatalf("error %v does not wrap ErrInvalidUEID", err)
			}
		} else {
			checkUEIDRoundTrip(t, v)
		}
		// And as CBOR.
		var w UEID
		if err := w.UnmarshalCBOR([]byte(s)); err == nil {
			checkUEIDRoundTrip(t, w)
			enc, _ := w.MarshalCBOR()
			if !bytes.Equal(enc, []byte(s)) {
				t.Fatalf("CBOR %x decoded and re-encoded as %x", s, enc)
			}
		}
	})
}

func checkUEIDRoundTrip(t *testing.T, u UEID) {
	t.Helper()
	p, err := ParseUEID(u.String())
	if err != nil || p != u {
		t.Fatalf("text round trip of %s: %v, %v", u, p, err)
	}
	b, err := UEIDFromBytes(u.Bytes())
	if err != nil || b != u {
		t.Fatalf("bytes round trip of %s: %v, %v", u, b, err)
	}
	enc, err := u.MarshalCBOR()
	if err != nil {
		t.Fatal(err)
	}
	var c UEID
	if err := c.UnmarshalCBOR(enc); err != nil || c != u {
		t.Fatalf("CBOR round trip of %s: %v, %v", u, c, err)
	}
}
