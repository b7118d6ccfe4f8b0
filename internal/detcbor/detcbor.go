// Package detcbor holds the CBOR encoding and decoding modes every ztm wire
// format uses, so that attest, manifest and the rest agree byte for byte.
//
// Encoding is core deterministic (RFC 8949 §4.2.1): shortest integers and
// lengths, map keys sorted bytewise, no indefinite lengths. Decoding is
// strict: duplicate map keys, indefinite lengths, invalid UTF-8, unknown
// struct fields and oversize input are errors.
package detcbor

import (
	"errors"
	"fmt"
	"sync"

	"github.com/fxamacker/cbor/v2"
)

// MaxSize is the default bound on one encoded item that [Unmarshal] accepts.
const MaxSize = 64 << 10

// ErrTooLarge is returned by [Unmarshal] for input over its size bound.
var ErrTooLarge = errors.New("cbor: input exceeds size limit")

var modes = sync.OnceValues(func() (cbor.EncMode, cbor.DecMode) {
	enc, err := cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		panic(err)
	}
	dec, err := DecOptions().DecMode()
	if err != nil {
		panic(err)
	}
	return enc, dec
})

// DecOptions returns the options of [DecMode], for a package that needs
// the same strictness with one option changed (tags forbidden, say).
func DecOptions() cbor.DecOptions {
	return cbor.DecOptions{
		DupMapKey:         cbor.DupMapKeyEnforcedAPF,
		IndefLength:       cbor.IndefLengthForbidden,
		UTF8:              cbor.UTF8RejectInvalid,
		MaxNestedLevels:   16,
		MaxArrayElements:  1 << 16,
		MaxMapPairs:       1 << 12,
		ExtraReturnErrors: cbor.ExtraDecErrorUnknownField,
		TagsMd:            cbor.TagsAllowed,
	}
}

// EncMode returns the core deterministic encoding mode. It is safe for
// concurrent use.
func EncMode() cbor.EncMode { enc, _ := modes(); return enc }

// DecMode returns the strict decoding mode. It is safe for concurrent use.
func DecMode() cbor.DecMode { _, dec := modes(); return dec }

// Marshal encodes v deterministically.
func Marshal(v any) ([]byte, error) { return EncMode().Marshal(v) }

// Unmarshal decodes exactly one item from data into v, strictly. Input
// longer than maxSize (MaxSize if maxSize <= 0) is refused with an error
// wrapping [ErrTooLarge] before any decoding; trailing bytes after the item
// are an error.
func Unmarshal(data []byte, v any, maxSize int) error {
	if maxSize <= 0 {
		maxSize = MaxSize
	}
	if len(data) > maxSize {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(data), maxSize)
	}
	rest, err := DecMode().UnmarshalFirst(data, v)
	if err != nil {
		return err
	}
	if len(rest) != 0 {
		return fmt.Errorf("cbor: %d bytes of trailing data after the item", len(rest))
	}
	return nil
}
