package identity

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"strconv"

	"github.com/fxamacker/cbor/v2"

	"github.com/ztmkit/ztm/internal/detcbor"
)

// UEIDType is the first byte of a UEID, which says how the rest was made.
// Reference: RFC 9711 §4.2.1, Table 1.
type UEIDType byte

const (
	// UEIDTypeRAND is a random number of 128, 192 or 256 bits, generated
	// once and stored in the entity.
	UEIDTypeRAND UEIDType = 0x01
	// UEIDTypeEUI is an IEEE EUI-48 (a MAC-48 address) or EUI-64.
	UEIDTypeEUI UEIDType = 0x02
	// UEIDTypeIMEI is the 14 digits of an IMEI (type allocation code and
	// serial number, without the Luhn check digit or a software version),
	// one byte per digit.
	UEIDTypeIMEI UEIDType = 0x03
)

// String returns the type's name in RFC 9711: "RAND", "IEEE EUI", "IMEI".
func (t UEIDType) String() string {
	switch t {
	case UEIDTypeRAND:
		return "RAND"
	case UEIDTypeEUI:
		return "IEEE EUI"
	case UEIDTypeIMEI:
		return "IMEI"
	}
	return fmt.Sprintf("UEIDType(0x%02x)", byte(t))
}

// Sizes of UEIDs, type byte included. Reference: RFC 9711 §4.2.1 (UEIDs
// are 7 to 33 bytes long).
const (
	minUEIDLen = 7
	// MaxUEIDLen is the longest UEID RFC 9711 defines: a type byte and 256
	// random bits.
	MaxUEIDLen = 33
	imeiDigits = 14
)

// UEID is a Universal Entity ID (RFC 9711 §4.2.1): a type byte followed by
// a value that makes the entity globally unique. ztm knows the three types
// RFC 9711 defines and accepts only well-formed UEIDs of those types:
//
//	0x01 RAND      16, 24 or 32 random bytes        (17, 25, 33 bytes in all)
//	0x02 IEEE EUI  an EUI-48 (6 bytes) or EUI-64 (8 bytes)  (7 or 9 bytes)
//	0x03 IMEI      14 bytes, each the value of one IMEI digit (15 bytes)
//
// A relying party must treat a UEID as opaque bytes (RFC 9711 §4.2.1.1);
// the type is exposed for the party that makes one.
//
// The zero UEID is the absent UEID: [UEID.IsZero] reports it, and encoding
// it is an error. UEID is a comparable value, so == and map keys work, and
// is safe for concurrent use.
//
// RFC 9711 defines no text form. ztm's, returned by [UEID.String] and read
// by [ParseUEID], is the lowercase hexadecimal encoding of all of its bytes,
// type byte first, e.g. "0200005e10000000ff". The CBOR form, used in EAT
// claims (ueid, key 256), is a byte string of the same bytes.
type UEID struct {
	n uint8
	b [MaxUEIDLen]byte
}

var (
	_ cbor.Marshaler   = UEID{}
	_ cbor.Unmarshaler = (*UEID)(nil)
	_ fmt.Stringer     = UEID{}
)

// NewRandomUEID returns a RAND UEID made of n bytes (16, 24 or 32) read
// from random. If random is nil, [crypto/rand.Reader] is used. Any other n
// gives an error wrapping [ErrInvalidUEID]; a short read, the reader's error.
func NewRandomUEID(random io.Reader, n int) (UEID, error) {
	if n != 16 && n != 24 && n != 32 {
		return UEID{}, &UEIDError{Reason: "a RAND UEID has 16, 24 or 32 random bytes, not " + strconv.Itoa(n)}
	}
	if random == nil {
		random = rand.Reader
	}
	var u UEID
	u.n = uint8(1 + n)
	u.b[0] = byte(UEIDTypeRAND)
	if _, err := io.ReadFull(random, u.b[1:1+n]); err != nil {
		return UEID{}, fmt.Errorf("identity: failed to read random UEID bytes: %w", err)
	}
	return u, nil
}

// NewEUI64UEID returns the IEEE EUI UEID for an EUI-64.
func NewEUI64UEID(eui [8]byte) UEID {
	var u UEID
	u.n = 9
	u.b[0] = byte(UEIDTypeEUI)
	copy(u.b[1:], eui[:])
	return u
}

// NewEUI48UEID returns the IEEE EUI UEID for an EUI-48 (a MAC-48 address).
func NewEUI48UEID(eui [6]byte) UEID {
	var u UEID
	u.n = 7
	u.b[0] = byte(UEIDTypeEUI)
	copy(u.b[1:], eui[:])
	return u
}

// NewIMEIUEID returns the IMEI UEID for imei, given as its 14 decimal
// digits (type allocation code and serial number) or as the 15 digits that
// also end in the Luhn check digit, which must then be right. RFC 9711
// keeps neither the check digit nor a software version number: a 16-digit
// IMEISV is refused. Bad input gives an error wrapping [ErrInvalidUEID].
func NewIMEIUEID(imei string) (UEID, error) {
	fail := func(reason string) (UEID, error) { return UEID{}, &UEIDError{Input: imei, Reason: reason} }
	if len(imei) != imeiDigits && len(imei) != imeiDigits+1 {
		return fail("an IMEI has 14 digits, or 15 with its check digit")
	}
	for i := 0; i < len(imei); i++ {
		if imei[i] < '0' || imei[i] > '9' {
			return fail("byte " + strconv.Itoa(i) + " is not a decimal digit")
		}
	}
	if len(imei) == imeiDigits+1 && luhnDigit(imei[:imeiDigits]) != imei[imeiDigits] {
		return fail("wrong Luhn check digit (want " + string(luhnDigit(imei[:imeiDigits])) + ")")
	}
	var u UEID
	u.n = 1 + imeiDigits
	u.b[0] = byte(UEIDTypeIMEI)
	for i := 0; i < imeiDigits; i++ {
		u.b[1+i] = imei[i] - '0'
	}
	return u, nil
}

// luhnDigit returns the Luhn check digit of a string of decimal digits, as
// an ASCII digit. Reference: 3GPP TS 23.003 Annex B.
func luhnDigit(digits string) byte {
	sum := 0
	double := true // the rightmost digit is doubled
	for i := len(digits) - 1; i >= 0; i-- {
		d := int(digits[i] - '0')
		if double {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	return byte('0' + (10-sum%10)%10)
}

// UEIDFromBytes returns the UEID whose bytes, type byte first, are b. It
// accepts only the types and lengths RFC 9711 defines (see [UEID]); any
// other input gives an error wrapping [ErrInvalidUEID]. b is copied.
func UEIDFromBytes(b []byte) (UEID, error) {
	fail := func(reason string) (UEID, error) {
		in := b
		if len(in) > 40 {
			in = in[:40]
		}
		return UEID{}, &UEIDError{Input: hex.EncodeToString(in), Reason: reason}
	}
	if len(b) < minUEIDLen || len(b) > MaxUEIDLen {
		return fail("a UEID has 7 to 33 bytes, not " + strconv.Itoa(len(b)))
	}
	switch t := UEIDType(b[0]); t {
	case UEIDTypeRAND:
		if n := len(b) - 1; n != 16 && n != 24 && n != 32 {
			return fail("a RAND UEID has 16, 24 or 32 random bytes, not " + strconv.Itoa(n))
		}
	case UEIDTypeEUI:
		if n := len(b) - 1; n != 6 && n != 8 {
			return fail("an IEEE EUI UEID has an EUI-48 or EUI-64 (6 or 8 bytes), not " + strconv.Itoa(n) + " bytes")
		}
	case UEIDTypeIMEI:
		if n := len(b) - 1; n != imeiDigits {
			return fail("an IMEI UEID has 14 digit bytes, not " + strconv.Itoa(n))
		}
		for i, d := range b[1:] {
			if d > 9 {
				return fail("IMEI digit " + strconv.Itoa(i) + " has value " + strconv.Itoa(int(d)) + " (digits are stored as values 0-9, not ASCII)")
			}
		}
	default:
		return fail("unknown type byte 0x" + hex.EncodeToString(b[:1]) + " (RFC 9711 defines 0x01 RAND, 0x02 IEEE EUI, 0x03 IMEI)")
	}
	var u UEID
	u.n = uint8(len(b))
	copy(u.b[:], b)
	return u, nil
}

// ParseUEID parses the text form [UEID.String] returns: the hexadecimal
// encoding of the UEID's bytes, type byte first. Upper- and lowercase
// digits are accepted; nothing else (no separators, spaces or prefix). Any
// other input gives an error wrapping [ErrInvalidUEID].
func ParseUEID(s string) (UEID, error) {
	if len(s) > 2*MaxUEIDLen {
		return UEID{}, &UEIDError{Input: s, Reason: "longer than 66 hexadecimal digits"}
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return UEID{}, &UEIDError{Input: s, Reason: "not hexadecimal: " + err.Error()}
	}
	return UEIDFromBytes(b)
}

// Type returns the UEID's type byte, or 0 for the zero UEID.
func (u UEID) Type() UEIDType { return UEIDType(u.b[0]) }

// Bytes returns a copy of the UEID's bytes, type byte first, or nil for the
// zero UEID.
func (u UEID) Bytes() []byte {
	if u.n == 0 {
		return nil
	}
	return append([]byte(nil), u.b[:u.n]...)
}

// Len returns the number of bytes of the UEID, type byte included.
func (u UEID) Len() int { return int(u.n) }

// IsZero reports whether u is the zero (absent) UEID.
func (u UEID) IsZero() bool { return u.n == 0 }

// Equal reports whether u and v are the same UEID. It is the same as
// u == v.
func (u UEID) Equal(v UEID) bool { return u == v }

// String returns the text form: lowercase hexadecimal of all the bytes,
// type byte first. The zero UEID gives "".
func (u UEID) String() string { return hex.EncodeToString(u.b[:u.n]) }

// IMEI returns the 14 IMEI digits of an IMEI UEID, and false for any other
// UEID.
func (u UEID) IMEI() (string, bool) {
	if u.Type() != UEIDTypeIMEI || u.n != 1+imeiDigits {
		return "", false
	}
	var d [imeiDigits]byte
	for i := range d {
		d[i] = '0' + u.b[1+i]
	}
	return string(d[:]), true
}

// MarshalCBOR encodes the UEID as a CBOR byte string, the form of the EAT
// ueid claim (RFC 9711 §4.2.1). The zero UEID gives an error wrapping
// [ErrInvalidUEID].
func (u UEID) MarshalCBOR() ([]byte, error) {
	if u.n == 0 {
		return nil, &UEIDError{Reason: "the zero UEID has no encoding"}
	}
	return detcbor.Marshal(u.b[:u.n])
}

// UnmarshalCBOR decodes a CBOR byte string holding a UEID, strictly: any
// other CBOR item, a tag, a length not in its shortest form (RFC 8949
// §4.2.1), trailing data, or bytes [UEIDFromBytes] refuses give an error,
// and leave u unchanged.
func (u *UEID) UnmarshalCBOR(data []byte) error {
	var b []byte
	if len(data) == 0 || data[0]>>5 != 2 { // major type 2, byte string; no tag
		return &UEIDError{Reason: "not a CBOR byte string"}
	}
	if err := detcbor.Unmarshal(data, &b, 2+MaxUEIDLen); err != nil {
		return &UEIDError{Reason: "not a CBOR byte string: " + err.Error()}
	}
	v, err := UEIDFromBytes(b)
	if err != nil {
		return err
	}
	if enc, err := v.MarshalCBOR(); err != nil || !bytes.Equal(enc, data) {
		return &UEIDError{Input: v.String(), Reason: "CBOR length not in its shortest form"}
	}
	*u = v
	return nil
}
