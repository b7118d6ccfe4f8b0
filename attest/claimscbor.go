package attest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/fxamacker/cbor/v2"

	"github.com/ztmkit/ztm/internal/detcbor"
)

// The CBOR claims decoder: one pass over the claims map with cborReader,
// each defined claim read by its type, each extension's value checked by
// detcbor's strict mode and kept as received. Its rules are detcbor's
// (definite lengths only, no duplicate keys at any level, valid UTF-8, no
// trailing data, at most 16 levels, 4096 map pairs and 65536 array
// elements) and the claims' types: integer keys, no tags on defined
// claims (RFC 8392 §2: a NumericDate is untagged).

// Limits of the reader, detcbor's.
const (
	cborMaxDepth    = 16
	cborMaxMapPairs = 1 << 12
	cborMaxArray    = 1 << 16
)

// cborReader reads CBOR items from the front of a byte slice.
type cborReader []byte

// head reads a head of the given major type with a definite argument.
func (r *cborReader) head(major byte) (uint64, bool) {
	b := *r
	if len(b) == 0 || b[0]>>5 != major {
		return 0, false
	}
	n, h, ok := readArg(b)
	if !ok {
		return 0, false
	}
	*r = b[h:]
	return n, true
}

// readArg decodes the argument of the head at b[0] and its length in bytes;
// ok is false for an indefinite length, a reserved value or truncation.
func readArg(b []byte) (n uint64, h int, ok bool) {
	switch ai := b[0] & 0x1f; {
	case ai < 24:
		return uint64(ai), 1, true
	case ai == 24 && len(b) >= 2:
		return uint64(b[1]), 2, true
	case ai == 25 && len(b) >= 3:
		return uint64(binary.BigEndian.Uint16(b[1:])), 3, true
	case ai == 26 && len(b) >= 5:
		return uint64(binary.BigEndian.Uint32(b[1:])), 5, true
	case ai == 27 && len(b) >= 9:
		return binary.BigEndian.Uint64(b[1:]), 9, true
	}
	return 0, 0, false
}

// bytes reads a byte or text string (major 2 or 3) of definite length.
func (r *cborReader) bytes(major byte) ([]byte, bool) {
	n, ok := r.head(major)
	if !ok || n > uint64(len(*r)) {
		return nil, false
	}
	v := (*r)[:n]
	*r = (*r)[n:]
	return v, true
}

// text reads a text string of valid UTF-8.
func (r *cborReader) text() (string, bool) {
	v, ok := r.bytes(3)
	if !ok || !utf8.Valid(v) {
		return "", false
	}
	return string(v), true
}

// int reads an integer (major 0 or 1) that fits an int64.
func (r *cborReader) int() (int64, bool) {
	if len(*r) == 0 {
		return 0, false
	}
	neg := (*r)[0]>>5 == 1
	major := byte(0)
	if neg {
		major = 1
	}
	n, ok := r.head(major)
	if !ok || n > 1<<63-1 {
		return 0, false
	}
	if neg {
		return -1 - int64(n), true
	}
	return int64(n), true
}

// item reads one well-formed item of definite length and returns its
// bytes. It checks the structure only (nesting, lengths, UTF-8 of text);
// duplicate keys inside it are for the caller to check.
func (r *cborReader) item(depth int) ([]byte, bool) {
	start := *r
	if !r.skip(depth) {
		return nil, false
	}
	return start[:len(start)-len(*r)], true
}

func (r *cborReader) skip(depth int) bool {
	if depth > cborMaxDepth {
		return false
	}
	// Tags wrap their content without nesting it further, as the CBOR
	// library counts them.
	for len(*r) > 0 && (*r)[0]>>5 == 6 {
		if _, ok := r.head(6); !ok {
			return false
		}
	}
	b := *r
	if len(b) == 0 {
		return false
	}
	major := b[0] >> 5
	if major == 7 {
		return r.skipSimple()
	}
	n, h, ok := readArg(b)
	if !ok {
		return false
	}
	*r = b[h:]
	switch major {
	case 2, 3:
		if n > uint64(len(*r)) || (major == 3 && !utf8.Valid((*r)[:n])) {
			return false
		}
		*r = (*r)[n:]
	case 4, 5:
		items, limit := n, uint64(cborMaxArray)
		if major == 5 {
			items, limit = 2*n, cborMaxMapPairs
		}
		if n > limit || items > uint64(len(*r)) {
			return false
		}
		for range items {
			if !r.skip(depth + 1) {
				return false
			}
		}
	}
	return true
}

// skipSimple skips a simple value or float (major 7); a break or reserved
// value is not well formed here.
func (r *cborReader) skipSimple() bool {
	b := *r
	size := 0
	switch ai := b[0] & 0x1f; {
	case ai < 24:
		size = 1
	case ai == 24:
		if len(b) < 2 || b[1] < 32 {
			return false
		}
		size = 2
	case ai == 25:
		size = 3
	case ai == 26:
		size = 5
	case ai == 27:
		size = 9
	default:
		return false
	}
	if len(b) < size {
		return false
	}
	*r = b[size:]
	return true
}

// bstrField decodes only a definite-length CBOR byte string (major type 2),
// never an array of small integers, which the CBOR library would also put
// in a []byte. The decoded value is never nil.
type bstrField []byte

var errNotBstr = errors.New("want a byte string")

// UnmarshalCBOR implements cbor.Unmarshaler. data is one well-formed item.
func (b *bstrField) UnmarshalCBOR(data []byte) error {
	r := cborReader(data)
	v, ok := r.bytes(2)
	if !ok || len(r) != 0 {
		return errNotBstr
	}
	*b = append(make([]byte, 0, len(v)), v...)
	return nil
}

// decodeCBOR decodes a claims map (see [Claims.UnmarshalCBOR]).
func (c *Claims) decodeCBOR(data []byte, depth int) error {
	if depth > maxSubmodDepth {
		return fmt.Errorf("attest: submodules nested deeper than %d", maxSubmodDepth)
	}
	r := cborReader(data)
	n, ok := r.head(5)
	if !ok || n > cborMaxMapPairs || n > uint64(len(r)) {
		return errors.New("attest: claims: not a definite-length map")
	}
	keys := make([]int64, 0, n)
	for range n {
		k, ok := r.int()
		if !ok {
			return errors.New("attest: claims: a claim key is not an integer")
		}
		for _, seen := range keys {
			if seen == k {
				return fmt.Errorf("attest: claims: claim %d appears twice", k)
			}
		}
		keys = append(keys, k)
		v, ok := r.item(1)
		if !ok {
			return fmt.Errorf("attest: claim %d: not well-formed CBOR", k)
		}
		if err := c.decodeClaimCBOR(k, v, depth); err != nil {
			return fmt.Errorf("attest: claim %d: %w", k, err)
		}
	}
	if len(r) != 0 {
		return fmt.Errorf("attest: claims: %d bytes of trailing data", len(r))
	}
	return c.finish(depth)
}

// decodeClaimCBOR decodes the value v (one well-formed item) of claim k.
func (c *Claims) decodeClaimCBOR(k int64, v []byte, depth int) error {
	r := cborReader(v)
	ok := true
	switch k {
	case KeyNonce:
		c.Nonce, ok = r.bstr()
	case KeyUEID:
		c.UEID, ok = r.bstr()
	case KeyOEMID:
		c.OEMID, ok = r.bstr()
	case KeyHWModel:
		c.HWModel, ok = r.bstr()
	case KeyHWVersion, KeySWVersion:
		s, scheme, err := decodeVersion(&r)
		if err != nil {
			return err
		}
		if k == KeyHWVersion {
			c.HWVersion, c.HWVersionScheme = s, scheme
		} else {
			c.SWVersion, c.SWVersionScheme = s, scheme
		}
	case KeyOEMBoot:
		if len(v) != 1 || (v[0] != 0xf4 && v[0] != 0xf5) {
			return errors.New("want a boolean")
		}
		b := v[0] == 0xf5
		c.SecureBoot, r = &b, nil
	case KeyDebugStatus:
		var d int64
		if d, ok = r.int(); ok {
			if d < -1<<31 || d > 1<<31-1 {
				d = -1 // out of range; validate refuses it
			}
			ds := DebugStatus(d)
			c.DebugStatus = &ds
		}
	case KeySWName:
		c.SWName, ok = r.text()
	case KeyProfile:
		c.Profile, ok = r.text()
	case KeyIssuedAt, KeyExpiry, KeyNotBefore:
		var t int64
		if t, ok = r.int(); ok {
			*c.timeClaim(k) = unixUTC(t)
		}
	case KeyMeasurements:
		return c.decodeMeasurements(v)
	case KeySubmods:
		return c.decodeSubmods(v, depth)
	case KeyConfirmation:
		var err error
		c.Confirmation, err = decodeConfirmationCBOR(v)
		return err
	default:
		return c.keepExtension(k, v)
	}
	if !ok || len(r) != 0 {
		return errors.New("wrong type")
	}
	return nil
}

// bstr reads a byte string as a new, non-nil slice.
func (r *cborReader) bstr() ([]byte, bool) {
	v, ok := r.bytes(2)
	if !ok {
		return nil, false
	}
	return append(make([]byte, 0, len(v)), v...), true
}

// keepExtension keeps a claim ztm does not define, as received, once
// detcbor's strict mode has checked it (duplicate keys at any depth, tag
// contents).
func (c *Claims) keepExtension(k int64, v []byte) error {
	var x any
	if err := detcbor.DecMode().Unmarshal(v, &x); err != nil {
		return err
	}
	if c.Extensions == nil {
		c.Extensions = make(map[int64]cbor.RawMessage)
	}
	c.Extensions[k] = append(cbor.RawMessage(nil), v...)
	return nil
}

// decodeVersion reads a version claim, [version: tstr, ? scheme: int].
func decodeVersion(r *cborReader) (string, int64, error) {
	n, ok := r.head(4)
	if !ok || n < 1 || n > 2 {
		return "", 0, errors.New("version: want [version, ?scheme]")
	}
	s, ok := r.text()
	if !ok {
		return "", 0, errors.New("version: not a text string")
	}
	if s == "" {
		return "", 0, errors.New("version: empty")
	}
	var scheme int64
	if n == 2 {
		if scheme, ok = r.int(); !ok {
			return "", 0, errors.New("version: scheme is not an integer")
		}
	}
	if len(*r) != 0 {
		return "", 0, errors.New("version: trailing bytes")
	}
	return s, scheme, nil
}

// decodeMeasurements reads measurements, [+ [content-type: uint, content:
// bstr]], keeping the entries in ztm's form as [Measurement]s.
func (c *Claims) decodeMeasurements(v []byte) error {
	r := cborReader(v)
	n, ok := r.head(4)
	if !ok {
		return errors.New("measurements: want an array")
	}
	for range n {
		if m, ok := r.head(4); !ok || m != 2 {
			return errors.New("measurement: want [content-type, content]")
		}
		ct, ok := r.head(0)
		if !ok || ct > 65535 {
			return errors.New("measurement: content type is not a uint16")
		}
		val, ok := r.bstr()
		if !ok {
			return errNotBstr
		}
		if err := c.addMeasurement(uint16(ct), val); err != nil {
			return err
		}
	}
	if len(r) != 0 {
		return errors.New("measurements: trailing bytes")
	}
	return nil
}

// addMeasurement adds an entry of the measurements claim, either encoding's:
// ztm's form as a [Measurement], any other as it is.
func (c *Claims) addMeasurement(ct uint16, val []byte) error {
	if ct != MeasurementContentFormat {
		c.OtherMeasurements = append(c.OtherMeasurements, RawMeasurement{ContentType: ct, Value: val})
		return nil
	}
	m, err := decodeMeasurement(val)
	if err != nil {
		return err
	}
	c.Measurements = append(c.Measurements, m)
	return nil
}

// decodeSubmods reads submods, { + tstr => claims-set }.
func (c *Claims) decodeSubmods(v []byte, depth int) error {
	r := cborReader(v)
	n, ok := r.head(5)
	if !ok {
		return errors.New("submods: want a map")
	}
	c.Submods = make(map[string]*Claims, n)
	for range n {
		name, ok := r.text()
		if !ok {
			return errors.New("submods: a submodule name is not a text string")
		}
		if _, dup := c.Submods[name]; dup {
			return fmt.Errorf("submodule %q appears twice", name)
		}
		sv, _ := r.item(1) // v is well formed
		s := new(Claims)
		if err := s.decodeCBOR(sv, depth+1); err != nil {
			return fmt.Errorf("submodule %q: %w", name, err)
		}
		c.Submods[name] = s
	}
	return nil
}

// decodeMeasurement decodes a ztm-measurement, [name, [alg, digest]],
// strictly: definite lengths, valid UTF-8, an integer alg, no trailing
// bytes.
func decodeMeasurement(b []byte) (Measurement, error) {
	var m Measurement
	r := cborReader(b)
	n, ok := r.head(4)
	if !ok || n != 2 {
		return m, errors.New("measurement: want [name, [alg, digest]]")
	}
	name, ok := r.text()
	if !ok {
		return m, errors.New("measurement: name is not a text string")
	}
	if n, ok = r.head(4); !ok || n != 2 {
		return m, errors.New("measurement: digest is not [alg, value]")
	}
	if m.Alg, ok = r.int(); !ok {
		return m, errors.New("measurement: digest alg is not an integer")
	}
	digest, ok := r.bytes(2)
	if !ok || len(r) != 0 {
		return m, errors.New("measurement: digest value is not a byte string, or trailing bytes")
	}
	m.Name, m.Digest = name, append([]byte(nil), digest...)
	return m, nil
}
