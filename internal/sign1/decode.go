package sign1

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/fxamacker/cbor/v2"
	"github.com/ztmkit/ztm/internal/detcbor"
)

// ErrItems is wrapped by the error of [Decode] for a COSE_Sign1 that is an
// array of other than four items.
var ErrItems = errors.New("COSE_Sign1 is not an array of 4 items")

// DecodeOptions says what [Decode] accepts beyond the strict common form.
type DecodeOptions struct {
	// CWTTag accepts the CWT tag (61, RFC 8392 §6) around the COSE_Sign1
	// tag.
	CWTTag bool
	// Detached requires a detached payload (nil); otherwise the payload
	// must be an attached byte string.
	Detached bool
	// Shortest requires the heads of the protected header, payload and
	// signature byte strings in their shortest form (RFC 8949 §4.2.1), so
	// that one message has one encoding.
	Shortest bool
	// MaxSize bounds the input (0: detcbor's default).
	MaxSize int
}

// Envelope is a decoded COSE_Sign1: its signed parts, and its two headers
// as received (neither decoded further).
type Envelope struct {
	Message
	// RawProtected is the protected header's bstr item as received.
	RawProtected []byte
	// Unprotected is the unprotected header map item as received.
	Unprotected []byte
}

// sign1Wire is COSE_Sign1 (RFC 9052 §4.2) without its tag.
type sign1Wire struct {
	_           struct{} `cbor:",toarray"`
	Protected   cbor.RawMessage
	Unprotected cbor.RawMessage
	Payload     cbor.RawMessage
	Signature   cbor.RawMessage
}

// noTagsDecMode is detcbor's strict decoding with CBOR tags forbidden:
// inside a COSE_Sign1's envelope and unprotected header every item has a
// fixed, untagged type.
var noTagsDecMode = sync.OnceValue(func() cbor.DecMode {
	o := detcbor.DecOptions()
	o.TagsMd = cbor.TagsForbidden
	dm, err := o.DecMode()
	if err != nil {
		panic(err)
	}
	return dm
})

// Decode decodes a tagged COSE_Sign1 strictly: tag 18, an array of exactly
// four items, a protected header bstr, an unprotected header map, the
// payload (attached or, with o.Detached, nil), a non-empty signature, no
// indefinite lengths, no duplicate map keys, no trailing data. It checks
// neither header's contents: see [CheckUnprotected].
func Decode(raw []byte, o DecodeOptions) (*Envelope, error) {
	if o.MaxSize > 0 && len(raw) > o.MaxSize {
		return nil, fmt.Errorf("COSE_Sign1 of %d bytes, limit %d", len(raw), o.MaxSize)
	}
	body := raw
	if o.CWTTag && len(body) >= 2 && body[0] == 0xd8 && body[1] == TagCWT {
		body = body[2:]
	}
	if len(body) < 2 || body[0] != 0xc0|TagSign1 {
		return nil, errors.New("not a tagged COSE_Sign1 (tag 18)")
	}
	body = body[1:]
	if body[0]>>5 != 4 {
		return nil, fmt.Errorf("%w: not an array", ErrItems)
	}
	if body[0] != 0x84 {
		n := "an indefinite or oversize number of"
		if ai := body[0] & 0x1f; ai < 24 {
			n = fmt.Sprint(ai)
		}
		return nil, fmt.Errorf("%w: COSE_Sign1 of %s items, want 4 (protected, unprotected, payload, signature)", ErrItems, n)
	}
	var w sign1Wire
	rest, err := noTagsDecMode().UnmarshalFirst(body, &w)
	if err != nil {
		return nil, err
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%d bytes of trailing data", len(rest))
	}
	return w.envelope(o)
}

func (w *sign1Wire) envelope(o DecodeOptions) (*Envelope, error) {
	e := &Envelope{RawProtected: w.Protected, Unprotected: w.Unprotected}
	var ok bool
	if e.Protected, ok = bstrContent(w.Protected); !ok {
		return nil, errors.New("protected header is not a byte string")
	}
	if len(w.Unprotected) == 0 || w.Unprotected[0]>>5 != 5 {
		return nil, errors.New("unprotected header is not a map")
	}
	switch {
	case o.Detached:
		if len(w.Payload) != 1 || w.Payload[0] != 0xf6 {
			return nil, errors.New("payload is not detached")
		}
	default:
		if e.Payload, ok = bstrContent(w.Payload); !ok {
			return nil, errors.New("payload is not an attached byte string")
		}
	}
	if e.Signature, ok = bstrContent(w.Signature); !ok {
		return nil, errors.New("signature is not a byte string")
	}
	if len(e.Signature) == 0 {
		return nil, errors.New("empty signature")
	}
	if o.Shortest {
		for _, it := range []struct {
			name string
			item []byte
		}{{"protected header", w.Protected}, {"payload", w.Payload}, {"signature", w.Signature}} {
			if !ShortestHead(it.item) {
				return nil, fmt.Errorf("%s length is not in its shortest form", it.name)
			}
		}
	}
	return e, nil
}

// bstrContent returns the contents of the definite-length byte string item
// b (one well-formed item). The contents of an empty one are non-nil.
func bstrContent(b []byte) ([]byte, bool) {
	if len(b) == 0 || b[0]>>5 != 2 {
		return nil, false
	}
	n, h := uint64(b[0]&0x1f), 1
	switch n {
	case 24:
		n, h = uint64(b[1]), 2
	case 25:
		n, h = uint64(binary.BigEndian.Uint16(b[1:])), 3
	case 26:
		n, h = uint64(binary.BigEndian.Uint32(b[1:])), 5
	case 27:
		n, h = binary.BigEndian.Uint64(b[1:]), 9
	}
	if n != uint64(len(b)-h) {
		return nil, false
	}
	return b[h:len(b):len(b)], true
}

// ShortestHead reports whether the head of the CBOR item starting item
// encodes its argument in the fewest bytes (RFC 8949 §4.2.1).
func ShortestHead(item []byte) bool {
	if len(item) == 0 {
		return false
	}
	switch ai := item[0] & 0x1f; {
	case ai < 24:
		return true
	case ai == 24:
		return len(item) >= 2 && item[1] >= 24
	case ai == 25:
		return len(item) >= 3 && binary.BigEndian.Uint16(item[1:]) > 0xff
	case ai == 26:
		return len(item) >= 5 && binary.BigEndian.Uint32(item[1:]) > 0xffff
	case ai == 27:
		return len(item) >= 9 && binary.BigEndian.Uint64(item[1:]) > 0xffffffff
	}
	return false
}

// labelNames names the COSE header labels an unprotected header is most
// likely to carry, for error messages.
var labelNames = map[int64]string{
	1: "alg", 2: "crit", 3: "content type", 4: "kid",
	16: "typ", 33: "x5chain", 34: "x5t", 395: "vds", 396: "vdp",
}

// CheckUnprotected decodes an unprotected header map strictly (no tags,
// no duplicate labels) and returns it (nil if empty) with the labels it
// holds beyond allowed, named and in ascending order ("-70000, 4 (kid)",
// then text labels quoted), or "" if none: what is outside the signature
// must not change what a message says or who it is attributed to.
func CheckUnprotected(raw []byte, allowed ...int64) (map[any]cbor.RawMessage, string, error) {
	if len(raw) == 1 && raw[0] == 0xa0 {
		return nil, "", nil
	}
	if len(raw) == 0 || raw[0]>>5 != 5 {
		return nil, "", errors.New("unprotected header is not a map")
	}
	var u map[any]cbor.RawMessage
	if err := noTagsDecMode().Unmarshal(raw, &u); err != nil {
		return nil, "", fmt.Errorf("unprotected header: %w", err)
	}
	var bad []string
	var nums []int64
	for k := range u {
		switch v := k.(type) {
		case int64:
			if !slices.Contains(allowed, v) {
				nums = append(nums, v)
			}
		case uint64: // positive labels decode as uint64
			switch {
			case v > 1<<62:
				bad = append(bad, fmt.Sprint(v))
			case !slices.Contains(allowed, int64(v)):
				nums = append(nums, int64(v))
			}
		case string:
			bad = append(bad, fmt.Sprintf("%q", v))
		default:
			bad = append(bad, fmt.Sprintf("of type %T", k))
		}
	}
	slices.Sort(nums)
	names := make([]string, 0, len(nums)+len(bad))
	for _, n := range nums {
		if name, ok := labelNames[n]; ok {
			names = append(names, fmt.Sprintf("%d (%s)", n, name))
		} else {
			names = append(names, fmt.Sprint(n))
		}
	}
	slices.Sort(bad)
	return u, strings.Join(append(names, bad...), ", "), nil
}

// Label returns the value of label in a header map CheckUnprotected
// returned (positive labels decode as uint64, negative as int64).
func Label(m map[any]cbor.RawMessage, label int64) (cbor.RawMessage, bool) {
	if label >= 0 {
		v, ok := m[uint64(label)]
		return v, ok
	}
	v, ok := m[label]
	return v, ok
}
