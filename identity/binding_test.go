package identity_test

import (
	"encoding/asn1"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ztmkit/ztm/identity"
)

var modelOID = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 32473, 7}

func TestDeviceInfoFromUEID(t *testing.T) {
	ueid := identity.NewEUI64UEID([8]byte{0x00, 0x00, 0x5e, 0xfe, 0, 0, 0, 9})
	d, err := identity.DeviceInfoFromUEID(ueid, "SN-9", modelOID)
	require.NoError(t, err)
	require.Equal(t, ueid, d.UEID)
	require.Equal(t, "SN-9", d.SerialNumber)
	require.Equal(t, ueid.Bytes(), d.HardwareModule.SerialNumber)
	require.True(t, d.HardwareModule.Type.Equal(modelOID))
	require.NoError(t, d.CheckBinding())

	for name, call := range map[string]func() (identity.DeviceInfo, error){
		"zero UEID": func() (identity.DeviceInfo, error) {
			return identity.DeviceInfoFromUEID(identity.UEID{}, "SN-9", modelOID)
		},
		"bad serial": func() (identity.DeviceInfo, error) { return identity.DeviceInfoFromUEID(ueid, "SN_9", modelOID) },
		"no hwType":  func() (identity.DeviceInfo, error) { return identity.DeviceInfoFromUEID(ueid, "SN-9", nil) },
		"bad hwType": func() (identity.DeviceInfo, error) {
			return identity.DeviceInfoFromUEID(ueid, "SN-9", asn1.ObjectIdentifier{3, 1})
		},
		"empty serial": func() (identity.DeviceInfo, error) { return identity.DeviceInfoFromUEID(ueid, "", modelOID) },
	} {
		_, err := call()
		require.ErrorIs(t, err, identity.ErrInvalidDevice, name)
	}
}

func TestDeviceInfoCheckBinding(t *testing.T) {
	ueid := identity.NewEUI48UEID([6]byte{0x00, 0x00, 0x5e, 0, 0, 1})
	good, err := identity.DeviceInfoFromUEID(ueid, "SN-1", modelOID)
	require.NoError(t, err)
	for _, tc := range []struct {
		name  string
		mut   func(*identity.DeviceInfo)
		field string
	}{
		{"no hardwareModuleName", func(d *identity.DeviceInfo) { d.HardwareModule = identity.HardwareModuleName{} }, "HardwareModule.SerialNumber"},
		{"serial number as hwSerialNum", func(d *identity.DeviceInfo) { d.HardwareModule.SerialNumber = []byte("SN-1") }, "HardwareModule.SerialNumber"},
		{"UEID without its type byte", func(d *identity.DeviceInfo) { d.HardwareModule.SerialNumber = ueid.Bytes()[1:] }, "HardwareModule.SerialNumber"},
	} {
		d := good
		tc.mut(&d)
		err := d.CheckBinding()
		require.ErrorIs(t, err, identity.ErrDeviceMismatch, tc.name)
		var me *identity.MismatchError
		require.ErrorAs(t, err, &me, tc.name)
		require.Equal(t, tc.field, me.Field, tc.name)
		require.NotEmpty(t, me.Fix, tc.name)
		if tc.field == "HardwareModule.SerialNumber" {
			require.Equal(t, ueid.String(), me.Evidence, tc.name)
			require.Contains(t, err.Error(), ueid.String(), tc.name)
		}
	}
}

func TestDeviceInfoCheckBindingNoUEID(t *testing.T) {
	d := identity.DeviceInfo{SerialNumber: "SN-1"}
	var de *identity.DeviceError
	require.ErrorAs(t, d.CheckBinding(), &de)
	require.Equal(t, "UEID", de.Field)
	require.ErrorIs(t, d.CheckBinding(), identity.ErrInvalidDevice)
}

func TestDeviceInfoCheckClaims(t *testing.T) {
	ueid := identity.NewEUI48UEID([6]byte{0x00, 0x00, 0x5e, 0, 0, 2})
	oui := []byte{0x00, 0x00, 0x5e}
	base, err := identity.DeviceInfoFromUEID(ueid, "SN-2", modelOID)
	require.NoError(t, err)
	for _, tc := range []struct {
		name    string
		mut     func(*identity.DeviceInfo)
		oemid   []byte
		hwmodel []byte
		field   string // "" for no mismatch
	}{
		{"nothing but the UEID set", func(*identity.DeviceInfo) {}, oui, []byte("widget"), ""},
		{"same OUI and model", func(d *identity.DeviceInfo) {
			d.OEMID, d.HardwareModel = identity.NewIEEEOEMID([3]byte{0x00, 0x00, 0x5e}), []byte("widget")
		}, oui, []byte("widget"), ""},
		{"PEN against an OUI", func(d *identity.DeviceInfo) { d.OEMID = identity.NewPENOEMID(32473) }, oui, nil, "OEMID"},
		{"OEM ID the evidence lacks", func(d *identity.DeviceInfo) { d.OEMID = identity.NewIEEEOEMID([3]byte{0x00, 0x00, 0x5e}) }, nil, nil, "OEMID"},
		{"another OUI", func(d *identity.DeviceInfo) { d.OEMID = identity.NewIEEEOEMID([3]byte{0x00, 0x1b, 0x63}) }, oui, nil, "OEMID"},
		{"another model", func(d *identity.DeviceInfo) { d.HardwareModel = []byte("gadget") }, oui, []byte("widget"), "HardwareModel"},
		{"another UEID", func(d *identity.DeviceInfo) { d.UEID = identity.NewEUI48UEID([6]byte{0x00, 0x00, 0x5e, 0, 0, 3}) }, oui, nil, "UEID"},
	} {
		d := base
		tc.mut(&d)
		err := d.CheckClaims(ueid.Bytes(), tc.oemid, tc.hwmodel)
		if tc.field == "" {
			require.NoError(t, err, tc.name)
			continue
		}
		var me *identity.MismatchError
		require.ErrorAs(t, err, &me, tc.name)
		require.ErrorIs(t, err, identity.ErrDeviceMismatch, tc.name)
		require.Equal(t, tc.field, me.Field, tc.name)
	}
	// The message names the field, both values and the fix.
	d := base
	d.OEMID = identity.NewPENOEMID(32473)
	err = d.CheckClaims(ueid.Bytes(), oui, nil)
	require.EqualError(t, err, "identity: device info disagrees with the evidence: OEMID is pen:32473, the evidence's is ieee:00005e: "+
		"set DeviceInfo.OEMID to the oemid the device's evidence carries (identity.NewIEEEOEMID for an OUI), or leave it zero")
}
