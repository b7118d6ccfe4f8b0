package identity

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/fxamacker/cbor/v2"

	"github.com/ztmkit/ztm/internal/detcbor"
)

// OEMIDKind says which registry an [OEMID] comes from. Reference: RFC 9711
// §4.2.3.
type OEMIDKind int

const (
	// OEMIDPEN is an IANA Private Enterprise Number, the number under
	// 1.3.6.1.4.1 that also roots the OEM's own OIDs (such as a
	// [HardwareModuleName.Type]).
	OEMIDPEN OEMIDKind = iota + 1
	// OEMIDIEEE is a 24-bit IEEE company identifier (an OUI, MA-L).
	OEMIDIEEE
	// OEMIDRandom is 16 random bytes the manufacturer chose once.
	OEMIDRandom
)

// String returns "pen", "ieee" or "random", the prefixes of the text form.
func (k OEMIDKind) String() string {
	switch k {
	case OEMIDPEN:
		return "pen"
	case OEMIDIEEE:
		return "ieee"
	case OEMIDRandom:
		return "random"
	}
	return "OEMIDKind(" + strconv.Itoa(int(k)) + ")"
}

// OEMID identifies the manufacturer of a device: the EAT oemid claim (RFC
// 9711 §4.2.3, key 258). It is one of an IANA Private Enterprise Number, an
// IEEE OUI, or 16 random bytes.
//
// ztm's text form, returned by [OEMID.String] and read by [ParseOEMID], is
// the kind, a colon and the value: "pen:32473", "ieee:001b63",
// "random:<32 lowercase hex digits>". The CBOR form is RFC 9711's: an
// integer for a PEN, a byte string of 3 or 16 bytes otherwise.
//
// The zero OEMID is the absent OEM ID. OEMID is a comparable value and is
// safe for concurrent use.
type OEMID struct {
	kind OEMIDKind
	pen  uint32
	b    [16]byte
}

var (
	_ cbor.Marshaler   = OEMID{}
	_ cbor.Unmarshaler = (*OEMID)(nil)
)

// NewPENOEMID returns the OEM ID for an IANA Private Enterprise Number.
func NewPENOEMID(pen uint32) OEMID { return OEMID{kind: OEMIDPEN, pen: pen} }

// NewIEEEOEMID returns the OEM ID for a 24-bit IEEE company identifier.
func NewIEEEOEMID(oui [3]byte) OEMID {
	o := OEMID{kind: OEMIDIEEE}
	copy(o.b[:], oui[:])
	return o
}

// NewRandomOEMID returns an OEM ID of 16 bytes read from random. If random
// is nil, [crypto/rand.Reader] is used.
func NewRandomOEMID(random io.Reader) (OEMID, error) {
	if random == nil {
		random = rand.Reader
	}
	o := OEMID{kind: OEMIDRandom}
	if _, err := io.ReadFull(random, o.b[:]); err != nil {
		return OEMID{}, fmt.Errorf("identity: failed to read random OEM ID bytes: %w", err)
	}
	return o, nil
}

// ParseOEMID parses the text form [OEMID.String] returns; hexadecimal
// digits may be upper- or lowercase. Bad input gives
// an error wrapping [ErrInvalidOEMID].
func ParseOEMID(s string) (OEMID, error) {
	fail := func(reason string) (OEMID, error) { return OEMID{}, &OEMIDError{Input: s, Reason: reason} }
	kind, val, ok := strings.Cut(s, ":")
	if !ok {
		return fail(`want "pen:<number>", "ieee:<6 hex digits>" or "random:<32 hex digits>"`)
	}
	switch kind {
	case "pen":
		if val == "" || val[0] == '+' || (len(val) > 1 && val[0] == '0') {
			return fail("a PEN is a decimal number without sign or leading zeros")
		}
		n, err := strconv.ParseUint(val, 10, 32)
		if err != nil {
			return fail("a PEN is a decimal number below 2^32")
		}
		return NewPENOEMID(uint32(n)), nil
	case "ieee", "random":
		want := 3
		if kind == "random" {
			want = 16
		}
		if len(val) != 2*want {
			return fail(kind + " OEM ID has " + strconv.Itoa(2*want) + " hexadecimal digits")
		}
		b, err := hex.DecodeString(val)
		if err != nil {
			return fail("not hexadecimal")
		}
		return oemidFromBytes(b)
	}
	return fail("unknown kind " + quote(kind) + ` (want "pen", "ieee" or "random")`)
}

func oemidFromBytes(b []byte) (OEMID, error) {
	var o OEMID
	switch len(b) {
	case 3:
		o.kind = OEMIDIEEE
	case 16:
		o.kind = OEMIDRandom
	default:
		return OEMID{}, &OEMIDError{Input: hex.EncodeToString(b), Reason: "a byte-string OEM ID has 3 (IEEE) or 16 (random) bytes, not " + strconv.Itoa(len(b))}
	}
	copy(o.b[:], b)
	return o, nil
}

// Kind returns the OEM ID's kind, or 0 for the zero OEMID.
func (o OEMID) Kind() OEMIDKind { return o.kind }

// IsZero reports whether o is the zero (absent) OEM ID.
func (o OEMID) IsZero() bool { return o.kind == 0 }

// PEN returns the Private Enterprise Number of a PEN OEM ID, and false for
// any other kind.
func (o OEMID) PEN() (uint32, bool) { return o.pen, o.kind == OEMIDPEN }

// Bytes returns a copy of the bytes of an IEEE (3 bytes) or random (16
// bytes) OEM ID, and nil for a PEN or the zero OEMID.
func (o OEMID) Bytes() []byte {
	switch o.kind {
	case OEMIDIEEE:
		return append([]byte(nil), o.b[:3]...)
	case OEMIDRandom:
		return append([]byte(nil), o.b[:]...)
	}
	return nil
}

// String returns the text form ("pen:32473", "ieee:001b63",
// "random:…"), or "" for the zero OEMID.
func (o OEMID) String() string {
	switch o.kind {
	case OEMIDPEN:
		return "pen:" + strconv.FormatUint(uint64(o.pen), 10)
	case OEMIDIEEE, OEMIDRandom:
		return o.kind.String() + ":" + hex.EncodeToString(o.Bytes())
	}
	return ""
}

// MarshalCBOR encodes the OEM ID as RFC 9711 §4.2.3 does: an integer for a
// PEN, a byte string otherwise. The zero OEMID gives an error wrapping
// [ErrInvalidOEMID].
func (o OEMID) MarshalCBOR() ([]byte, error) {
	switch o.kind {
	case OEMIDPEN:
		return detcbor.Marshal(uint64(o.pen))
	case OEMIDIEEE, OEMIDRandom:
		return detcbor.Marshal(o.Bytes())
	}
	return nil, &OEMIDError{Reason: "the zero OEM ID has no encoding"}
}

// UnmarshalCBOR decodes an OEM ID strictly: an unsigned integer below 2^32
// or a byte string of 3 or 16 bytes, untagged, in the shortest form (RFC
// 8949 §4.2.1), with nothing after it. On error o is unchanged.
func (o *OEMID) UnmarshalCBOR(data []byte) error {
	if len(data) == 0 {
		return &OEMIDError{Reason: "empty CBOR input"}
	}
	switch data[0] >> 5 {
	case 0: // unsigned integer
		var n uint64
		if err := detcbor.Unmarshal(data, &n, 16); err != nil {
			return &OEMIDError{Reason: "bad CBOR integer: " + err.Error()}
		}
		if n > 1<<32-1 {
			return &OEMIDError{Reason: "PEN " + strconv.FormatUint(n, 10) + " is not below 2^32"}
		}
		v := NewPENOEMID(uint32(n))
		if err := checkShortest(data, v); err != nil {
			return err
		}
		*o = v
		return nil
	case 2: // byte string
		var b []byte
		if err := detcbor.Unmarshal(data, &b, 32); err != nil {
			return &OEMIDError{Reason: "bad CBOR byte string: " + err.Error()}
		}
		v, err := oemidFromBytes(b)
		if err != nil {
			return err
		}
		if err := checkShortest(data, v); err != nil {
			return err
		}
		*o = v
		return nil
	}
	return &OEMIDError{Reason: "want a CBOR unsigned integer (PEN) or byte string"}
}

// checkShortest refuses data that is not the deterministic encoding of v:
// an integer or length in a longer form than needed.
func checkShortest(data []byte, v OEMID) error {
	enc, err := v.MarshalCBOR()
	if err != nil {
		return err
	}
	if !bytes.Equal(enc, data) {
		return &OEMIDError{Reason: "CBOR integer or length not in its shortest form"}
	}
	return nil
}
