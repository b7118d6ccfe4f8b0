package identity

import (
	"bytes"
	"encoding/asn1"
	"encoding/hex"
	"strconv"
)

// DeviceInfoFromUEID returns the device information of a device named by
// ueid, built by the rule that ties an IDevID to the device's attestation
// evidence: the certificate's hardwareModuleName has type hwType (an OID
// the manufacturer assigns to the model, usually under its Private
// Enterprise Number) and serial number ueid's bytes, the very UEID the
// evidence carries in its ueid claim. serialNumber is the subject
// serialNumber (see [DeviceInfo.SerialNumber]). Set OEMID, HardwareModel
// and the other optional fields on the result as the device's evidence
// gives them.
//
// It returns a [*DeviceError] wrapping [ErrInvalidDevice] for a zero UEID,
// a malformed hwType or a bad serial number.
func DeviceInfoFromUEID(ueid UEID, serialNumber string, hwType asn1.ObjectIdentifier) (DeviceInfo, error) {
	if ueid.IsZero() {
		return DeviceInfo{}, &DeviceError{Field: "UEID", Reason: "zero (the device's UEID names it in its evidence, its certificate and its manifest)"}
	}
	d := DeviceInfo{
		UEID:           ueid,
		SerialNumber:   serialNumber,
		HardwareModule: HardwareModuleName{Type: append(asn1.ObjectIdentifier(nil), hwType...), SerialNumber: ueid.Bytes()},
	}
	if err := d.Validate(); err != nil {
		return DeviceInfo{}, err
	}
	return d, nil
}

// CheckBinding checks the rule that ties a device's IDevID to its
// evidence, before anything is asked of the device's attestation: the
// device has a UEID, and its HardwareModule (which the certificate request
// carries as hardwareModuleName) has the UEID's bytes as its serial
// number. The CA refuses a request that breaks the rule (package ca/enroll,
// BindUEIDToHardwareModule), once the evidence's nonce is spent; a station
// checks it first. A hardwareModuleName that breaks the rule is a
// [*MismatchError] wrapping [ErrDeviceMismatch], which names the field,
// both values and the fix; an absent UEID a [*DeviceError] wrapping
// [ErrInvalidDevice].
func (d DeviceInfo) CheckBinding() error {
	const fix = "build the device info with identity.DeviceInfoFromUEID, or set HardwareModule.SerialNumber to UEID.Bytes()"
	switch {
	case d.UEID.IsZero():
		return &DeviceError{Field: "UEID", Reason: "absent: the device must report its UEID, the ueid claim its evidence carries"}
	case d.HardwareModule.IsZero():
		return &MismatchError{Field: "HardwareModule.SerialNumber", Value: "", Evidence: d.UEID.String(), Fix: fix}
	case !bytes.Equal(d.HardwareModule.SerialNumber, d.UEID.b[:d.UEID.n]):
		return &MismatchError{Field: "HardwareModule.SerialNumber", Value: hex.EncodeToString(d.HardwareModule.SerialNumber), Evidence: d.UEID.String(), Fix: fix}
	}
	return nil
}

// CheckClaims checks the device information against the claims of the
// device's verified evidence (the EAT ueid, oemid and hwmodel, as bytes):
// the UEID must be the evidence's; an OEMID or HardwareModel that is set
// must be what the evidence says (an OEM ID given as a Private Enterprise
// Number never matches evidence naming an IEEE OUI or random bytes). The
// error is a [*MismatchError] wrapping [ErrDeviceMismatch] for the first
// field that disagrees.
func (d DeviceInfo) CheckClaims(ueid, oemid, hwmodel []byte) error {
	if !bytes.Equal(d.UEID.b[:d.UEID.n], ueid) {
		return &MismatchError{Field: "UEID", Value: d.UEID.String(), Evidence: hex.EncodeToString(ueid),
			Fix: "the device must report the UEID its attestation signs"}
	}
	if !d.OEMID.IsZero() && !d.OEMID.equalClaim(oemid) {
		return &MismatchError{Field: "OEMID", Value: d.OEMID.String(), Evidence: claimOEMID(oemid),
			Fix: "set DeviceInfo.OEMID to the oemid the device's evidence carries (identity.NewIEEEOEMID for an OUI), or leave it zero"}
	}
	if d.HardwareModel != nil && !bytes.Equal(d.HardwareModel, hwmodel) {
		return &MismatchError{Field: "HardwareModel", Value: strconv.Quote(string(d.HardwareModel)), Evidence: strconv.Quote(string(hwmodel)),
			Fix: "set DeviceInfo.HardwareModel to the hwmodel the device's evidence carries, or leave it nil"}
	}
	return nil
}

// claimOEMID renders an oemid claim's bytes in the OEMID text form.
func claimOEMID(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if o, err := oemidFromBytes(b); err == nil {
		return o.String()
	}
	return hex.EncodeToString(b)
}

// equalClaim reports whether o is the OEM ID an oemid claim's bytes give
// (a PEN never is: the claims carry IEEE or random OEM IDs as bytes),
// without copying o's bytes.
func (o OEMID) equalClaim(b []byte) bool {
	switch o.kind {
	case OEMIDIEEE:
		return bytes.Equal(o.b[:3], b)
	case OEMIDRandom:
		return bytes.Equal(o.b[:], b)
	}
	return false
}
