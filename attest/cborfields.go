package attest

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/fxamacker/cbor/v2"

	"github.com/ztmkit/ztm/internal/detcbor"
)

// bstrField decodes only a definite-length CBOR byte string (major type 2),
// never an array of small integers, which the CBOR library would also put
// in a []byte. The decoded value is never nil.
type bstrField []byte

var errNotBstr = errors.New("want a byte string")

// UnmarshalCBOR implements cbor.Unmarshaler. data is one well-formed item.
func (b *bstrField) UnmarshalCBOR(data []byte) error {
	if len(data) == 0 || data[0]>>5 != 2 {
		return errNotBstr
	}
	var n uint64
	h := 1
	switch ai := data[0] & 0x1f; {
	case ai < 24:
		n = uint64(ai)
	case ai == 24 && len(data) >= 2:
		n, h = uint64(data[1]), 2
	case ai == 25 && len(data) >= 3:
		n, h = uint64(binary.BigEndian.Uint16(data[1:])), 3
	case ai == 26 && len(data) >= 5:
		n, h = uint64(binary.BigEndian.Uint32(data[1:])), 5
	case ai == 27 && len(data) >= 9:
		n, h = binary.BigEndian.Uint64(data[1:]), 9
	default:
		return errNotBstr // indefinite length or truncated
	}
	if uint64(len(data)-h) != n {
		return errNotBstr
	}
	*b = append(make([]byte, 0, n), data[h:]...)
	return nil
}

// versionField is a version claim: [version: tstr, ? scheme: int].
type versionField struct {
	v      string
	scheme int64
}

// UnmarshalCBOR implements cbor.Unmarshaler.
func (f *versionField) UnmarshalCBOR(data []byte) error {
	var err error
	f.v, f.scheme, err = decodeVersion(data)
	return err
}

// claimsFast is the claims map ztm defines, decoded in one pass. A claims
// set with any other key fails to decode into it (unknown field) and takes
// the general path, which keeps extensions.
type claimsFast struct {
	IssuedAt     *int64                     `cbor:"6,keyasint"`
	Confirmation cbor.RawMessage            `cbor:"8,keyasint"`
	Nonce        *bstrField                 `cbor:"10,keyasint"`
	UEID         *bstrField                 `cbor:"256,keyasint"`
	OEMID        *bstrField                 `cbor:"258,keyasint"`
	HWModel      *bstrField                 `cbor:"259,keyasint"`
	HWVersion    *versionField              `cbor:"260,keyasint"`
	SecureBoot   *bool                      `cbor:"262,keyasint"`
	DebugStatus  *int64                     `cbor:"263,keyasint"`
	Profile      *string                    `cbor:"265,keyasint"`
	Submods      map[string]cbor.RawMessage `cbor:"266,keyasint"`
	SWName       *string                    `cbor:"270,keyasint"`
	SWVersion    *versionField              `cbor:"271,keyasint"`
	Measurements *[]rawMeasurementEntry     `cbor:"273,keyasint"`
}

// decodeFast decodes data through claimsFast. It reports ok=false, with no
// error, when the claims carry keys it does not know.
func (c *Claims) decodeFast(data []byte, depth int) (ok bool, err error) {
	var f claimsFast
	if err := detcbor.Unmarshal(data, &f, len(data)); err != nil {
		var uf *cbor.UnknownFieldError
		if errors.As(err, &uf) {
			return false, nil
		}
		return true, err
	}
	if f.IssuedAt != nil {
		c.IssuedAt = unixUTC(*f.IssuedAt)
	}
	if f.Nonce != nil {
		c.Nonce = *f.Nonce
	}
	if f.UEID != nil {
		c.UEID = *f.UEID
	}
	if f.OEMID != nil {
		c.OEMID = *f.OEMID
	}
	if f.HWModel != nil {
		c.HWModel = *f.HWModel
	}
	if f.HWVersion != nil {
		c.HWVersion, c.HWVersionScheme = f.HWVersion.v, f.HWVersion.scheme
	}
	c.SecureBoot = f.SecureBoot
	if f.DebugStatus != nil {
		d := *f.DebugStatus
		if d < -1<<31 || d > 1<<31-1 {
			d = -1
		}
		ds := DebugStatus(d)
		c.DebugStatus = &ds
	}
	if f.Profile != nil {
		c.Profile = *f.Profile
	}
	if f.Confirmation != nil {
		if c.Confirmation, err = decodeConfirmationCBOR(f.Confirmation); err != nil {
			return true, fmt.Errorf("claim 8: %w", err)
		}
	}
	if f.SWName != nil {
		c.SWName = *f.SWName
	}
	if f.SWVersion != nil {
		c.SWVersion, c.SWVersionScheme = f.SWVersion.v, f.SWVersion.scheme
	}
	if f.Measurements != nil {
		if err := c.measurementsFrom(*f.Measurements); err != nil {
			return true, err
		}
	}
	if f.Submods != nil {
		if err := c.submodsFrom(f.Submods, depth); err != nil {
			return true, err
		}
	}
	return true, nil
}
