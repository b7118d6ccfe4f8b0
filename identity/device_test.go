package identity

import (
	"bytes"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

func TestDeviceInfoValidate(t *testing.T) {
	t.Parallel()
	good := testDevice("SN-1")
	tests := []struct {
		name  string
		mod   func(*DeviceInfo)
		field string // "" when valid
	}{
		{"complete", func(*DeviceInfo) {}, ""},
		{"serial only", func(d *DeviceInfo) { *d = DeviceInfo{SerialNumber: "A"} }, ""},
		{"every PrintableString char", func(d *DeviceInfo) { d.SerialNumber = "Az09 '()+,-./:=?" }, ""},
		{"64-char serial", func(d *DeviceInfo) { d.SerialNumber = strings.Repeat("9", 64) }, ""},
		{"65-char serial", func(d *DeviceInfo) { d.SerialNumber = strings.Repeat("9", 65) }, "SerialNumber"},
		{"empty serial", func(d *DeviceInfo) { d.SerialNumber = "" }, "SerialNumber"},
		{"serial with '_'", func(d *DeviceInfo) { d.SerialNumber = "SN_1" }, "SerialNumber"},
		{"serial with '@'", func(d *DeviceInfo) { d.SerialNumber = "a@b" }, "SerialNumber"},
		{"serial with UTF-8", func(d *DeviceInfo) { d.SerialNumber = "SNé" }, "SerialNumber"},
		{"hw type one arc", func(d *DeviceInfo) { d.HardwareModule.Type = asn1.ObjectIdentifier{1} }, "HardwareModule.Type"},
		{"hw type first arc 3", func(d *DeviceInfo) { d.HardwareModule.Type = asn1.ObjectIdentifier{3, 1} }, "HardwareModule.Type"},
		{"hw type 1.40", func(d *DeviceInfo) { d.HardwareModule.Type = asn1.ObjectIdentifier{1, 40} }, "HardwareModule.Type"},
		{"hw type 2.999", func(d *DeviceInfo) { d.HardwareModule.Type = asn1.ObjectIdentifier{2, 999, 1} }, ""},
		{"hw type negative arc", func(d *DeviceInfo) { d.HardwareModule.Type = asn1.ObjectIdentifier{1, 3, -6} }, "HardwareModule.Type"},
		{"hw type missing", func(d *DeviceInfo) { d.HardwareModule.Type = nil }, "HardwareModule.Type"},
		{"hw serial missing", func(d *DeviceInfo) { d.HardwareModule.SerialNumber = nil }, "HardwareModule.SerialNumber"},
		{"hw serial too long", func(d *DeviceInfo) { d.HardwareModule.SerialNumber = make([]byte, MaxHardwareSerialLen+1) }, "HardwareModule.SerialNumber"},
		{"hw serial binary", func(d *DeviceInfo) { d.HardwareModule.SerialNumber = []byte{0, 0xff, 0x10} }, ""},
		{"model 32 bytes", func(d *DeviceInfo) { d.HardwareModel = make([]byte, 32) }, ""},
		{"model 33 bytes", func(d *DeviceInfo) { d.HardwareModel = make([]byte, 33) }, "HardwareModel"},
		{"model empty non-nil", func(d *DeviceInfo) { d.HardwareModel = []byte{} }, "HardwareModel"},
		{"version", func(d *DeviceInfo) { d.HardwareVersion = "rev C" }, ""},
		{"version with newline", func(d *DeviceInfo) { d.HardwareVersion = "1\n2" }, "HardwareVersion"},
		{"CN UTF-8", func(d *DeviceInfo) { d.CommonName = "Capteur thermique été" }, ""},
		{"CN bad UTF-8", func(d *DeviceInfo) { d.CommonName = "\xff" }, "CommonName"},
		{"CN 65 chars", func(d *DeviceInfo) { d.CommonName = strings.Repeat("é", 65) }, "CommonName"},
		{"O with NUL", func(d *DeviceInfo) { d.Organization = "a\x00b" }, "Organization"},
	}
	for _, tt := range tests {
		d := good
		d.HardwareModule.Type = append(asn1.ObjectIdentifier(nil), good.HardwareModule.Type...)
		tt.mod(&d)
		err := d.Validate()
		if tt.field == "" {
			if err != nil {
				t.Errorf("%s: %v", tt.name, err)
			}
			continue
		}
		var de *DeviceError
		if !errors.As(err, &de) || !errors.Is(err, ErrInvalidDevice) {
			t.Errorf("%s: err = %v, want *DeviceError", tt.name, err)
			continue
		}
		if de.Field != tt.field {
			t.Errorf("%s: field %q, want %q (%v)", tt.name, de.Field, tt.field, err)
		}
	}
}

func TestHardwareModuleNameEncoding(t *testing.T) {
	t.Parallel()
	hw := HardwareModuleName{Type: modelOID, SerialNumber: []byte("SN-1")}
	der, err := hw.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	// SEQUENCE { OID 1.3.6.1.4.1.32473.1.7, OCTET STRING "SN-1" }
	if want := "3012060a2b0601040181fd59010704" + "04534e2d31"; hex.EncodeToString(der) != want {
		t.Errorf("DER %x, want %s", der, want)
	}
	// encoding/asn1 reads the same structure.
	var std struct {
		Type   asn1.ObjectIdentifier
		Serial []byte
	}
	if rest, err := asn1.Unmarshal(der, &std); err != nil || len(rest) != 0 || !std.Type.Equal(modelOID) || string(std.Serial) != "SN-1" {
		t.Errorf("encoding/asn1 reads %+v, %v", std, err)
	}
	back, err := ParseHardwareModuleName(der)
	if err != nil || !back.Equal(hw) {
		t.Errorf("round trip: %+v, %v", back, err)
	}
	for _, bad := range []string{"", "30", "3000", "3012060a2b0601040181fd5901070404534e2d3100", "3012060a2b0601040181fd59010704" + "0c534e2d31", "30050603010203"} {
		if _, err := ParseHardwareModuleName(mustHex(t, bad)); !errors.Is(err, ErrInvalidDevice) {
			t.Errorf("%s: err = %v", bad, err)
		}
	}
	if _, err := (HardwareModuleName{}).Marshal(); !errors.Is(err, ErrInvalidDevice) {
		t.Errorf("zero name marshalled: %v", err)
	}
}

func TestHardwareModuleNameExtension(t *testing.T) {
	t.Parallel()
	hw := HardwareModuleName{Type: modelOID, SerialNumber: []byte("SN-1")}
	for _, critical := range []bool{false, true} {
		ext, err := HardwareModuleNameExtension(hw, critical)
		if err != nil {
			t.Fatal(err)
		}
		if !ext.Id.Equal(asn1.ObjectIdentifier{2, 5, 29, 17}) || ext.Critical != critical {
			t.Errorf("extension %v critical=%v", ext.Id, ext.Critical)
		}
		got, ok, err := HardwareModuleNameFromExtensions([]pkix.Extension{{Id: asn1.ObjectIdentifier{2, 5, 29, 14}, Value: []byte{4, 0}}, ext})
		if err != nil || !ok || !got.Equal(hw) {
			t.Errorf("read back %+v %v %v", got, ok, err)
		}
	}
	if !OIDHardwareModuleName().Equal(asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 8, 4}) {
		t.Error("OIDHardwareModuleName")
	}
	o := OIDHardwareModuleName()
	o[0] = 2
	if !OIDHardwareModuleName().Equal(asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 8, 4}) {
		t.Error("OIDHardwareModuleName returns shared storage")
	}
	if _, err := HardwareModuleNameExtension(HardwareModuleName{}, false); !errors.Is(err, ErrInvalidDevice) {
		t.Errorf("zero name: %v", err)
	}
	// No SAN, or a SAN without a hardwareModuleName: not found, no error.
	if _, ok, err := HardwareModuleNameFromExtensions(nil); ok || err != nil {
		t.Errorf("no extensions: %v %v", ok, err)
	}
	dnsOnly := pkix.Extension{Id: oidSubjectAltName, Value: mustHex(t, "30058203612e62")}
	if _, ok, err := HardwareModuleNameFromExtensions([]pkix.Extension{dnsOnly}); ok || err != nil {
		t.Errorf("DNS-only SAN: %v %v", ok, err)
	}
	ext, _ := HardwareModuleNameExtension(hw, false)
	if _, _, err := HardwareModuleNameFromExtensions([]pkix.Extension{ext, ext}); !errors.Is(err, ErrInvalidDevice) {
		t.Errorf("two SAN extensions: %v", err)
	}
	for _, bad := range []string{"", "3000", "30", "3003a00100", "3026a02406082b06010505070804a0183016060a2b0601040181fd59010704" + "0408534e2d4553"} {
		if _, _, err := HardwareModuleNameFromExtensions([]pkix.Extension{{Id: oidSubjectAltName, Value: mustHex(t, bad)}}); !errors.Is(err, ErrInvalidDevice) {
			t.Errorf("SAN %s: err = %v", bad, err)
		}
	}
}

func FuzzParseHardwareModuleName(f *testing.F) {
	hw := HardwareModuleName{Type: modelOID, SerialNumber: []byte("SN-1")}
	der, _ := hw.Marshal()
	ext, _ := HardwareModuleNameExtension(hw, false)
	f.Add(der)
	f.Add(ext.Value)
	f.Add([]byte{0x30, 0x00})
	f.Add(mustHex(f, "30058203612e62"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if h, err := ParseHardwareModuleName(b); err == nil {
			again, err := h.Marshal()
			if err != nil || !bytes.Equal(again, b) {
				t.Fatalf("%x parsed but re-encodes as %x (%v)", b, again, err)
			}
		} else if !errors.Is(err, ErrInvalidDevice) {
			t.Fatalf("error %v does not wrap ErrInvalidDevice", err)
		}
		h, ok, err := HardwareModuleNameFromExtensions([]pkix.Extension{{Id: oidSubjectAltName, Value: b}})
		if err != nil {
			if ok || !errors.Is(err, ErrInvalidDevice) {
				t.Fatalf("ok=%v err=%v", ok, err)
			}
			return
		}
		if ok {
			if err := h.Validate(); err != nil {
				t.Fatalf("found an invalid name: %v", err)
			}
		}
	})
}
