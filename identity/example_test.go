package identity_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"log"

	"github.com/ztmkit/ztm/identity"
	"github.com/ztmkit/ztm/identity/keystore"
	"github.com/ztmkit/ztm/identity/keystore/mem"
)

// sensorModel is the hardware type OID of a device model, under the IANA
// example Private Enterprise Number 32473.
var sensorModel = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 32473, 1, 7}

// Creating the identity of one device in an in-memory key store: a key
// and the IDevID certificate request that goes to the CA.
func ExampleCreate() {
	ctx := context.Background()
	store := mem.New()
	defer store.Close()

	id, err := identity.Create(ctx, store, identity.CreateRequest{
		Label: "dev-0001",
		Device: identity.DeviceInfo{
			SerialNumber:   "SN-0001",
			HardwareModule: identity.HardwareModuleName{Type: sensorModel, SerialNumber: []byte("SN-0001")},
		},
	})
	if err != nil {
		log.Fatal(err)
	}

	// What the CA sees in the request.
	csr, err := identity.CheckCSR(id.CSR, identity.CSRPolicy{SerialNumber: "SN-0001", RequireHardwareModule: true})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("key:", id.Key.Label(), id.Key.Algorithm())
	fmt.Println("signature:", csr.Request.SignatureAlgorithm)
	fmt.Println("serialNumber:", csr.SerialNumber)
	fmt.Printf("hardwareModuleName: %v %s\n", csr.HardwareModule.Type, csr.HardwareModule.SerialNumber)
	// Output:
	// key: dev-0001 ES256
	// signature: ECDSA-SHA256
	// serialNumber: SN-0001
	// hardwareModuleName: 1.3.6.1.4.1.32473.1.7 SN-0001
}

// A station opens its key store by URI, so that moving from the in-memory
// store to a file store or an HSM changes one string, and creates
// identities in it.
func Example_openStoreByURI() {
	ctx := context.Background()
	// Importing a backend registers its scheme; this file imports mem.
	store, err := keystore.Open(ctx, "mem:")
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()

	for _, serial := range []string{"SN-0001", "SN-0002", "SN-0003"} {
		_, err := identity.Create(ctx, store, identity.CreateRequest{
			Label:     "dev-" + serial,
			Algorithm: identity.ES384,
			Device:    identity.DeviceInfo{SerialNumber: serial},
		})
		if err != nil {
			log.Fatal(err)
		}
	}
	labels, _ := store.List(ctx)
	fmt.Println(labels)

	// A second identity under a taken label changes nothing.
	_, err = identity.Create(ctx, store, identity.CreateRequest{Label: "dev-SN-0001", Device: identity.DeviceInfo{SerialNumber: "SN-0009"}})
	fmt.Println(errors.Is(err, keystore.ErrExists))
	// Output:
	// [dev-SN-0001 dev-SN-0002 dev-SN-0003]
	// true
}

// A device makes its own key and request; the station checks what it
// receives and refuses a request that was altered on the way.
func ExampleCheckCSR() {
	deviceKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		log.Fatal(err)
	}
	der, err := identity.CreateCSR(rand.Reader, deviceKey, identity.DeviceInfo{SerialNumber: "SN-0042"})
	if err != nil {
		log.Fatal(err)
	}

	csr, err := identity.CheckCSR(der, identity.CSRPolicy{SerialNumber: "SN-0042"})
	fmt.Println(csr.SerialNumber, err)

	altered := bytes.Replace(der, []byte("SN-0042"), []byte("SN-0043"), 1)
	_, err = identity.CheckCSR(altered, identity.CSRPolicy{})
	var ce *identity.CSRError
	if errors.As(err, &ce) {
		fmt.Println(ce.Reason, errors.Is(err, identity.ErrBadSignature))
	}
	// Output:
	// SN-0042 <nil>
	// bad signature true
}

// UEIDs round-trip through their text and CBOR forms.
func ExampleUEID() {
	u := identity.NewEUI64UEID([8]byte{0x00, 0x1b, 0x63, 0xff, 0xfe, 0x84, 0x45, 0xe6})
	fmt.Println(u.Type(), u)

	v, err := identity.ParseUEID(u.String())
	fmt.Println(v == u, err)

	enc, _ := u.MarshalCBOR()
	fmt.Printf("%x\n", enc)
	var w identity.UEID
	err = w.UnmarshalCBOR(enc)
	fmt.Println(w == u, err)
	// Output:
	// IEEE EUI 02001b63fffe8445e6
	// true <nil>
	// 4902001b63fffe8445e6
	// true <nil>
}

// A RAND UEID of 16 bytes. Real code passes nil (crypto/rand); a fixed
// reader makes the output repeatable.
func ExampleNewRandomUEID() {
	u, err := identity.NewRandomUEID(bytes.NewReader(bytes.Repeat([]byte{0x5a}, 16)), 16)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(u.Type(), u.Len(), u)
	// Output:
	// RAND 17 015a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a
}

// An IMEI with its check digit: the check digit is verified, then dropped,
// as RFC 9711 requires.
func ExampleNewIMEIUEID() {
	u, err := identity.NewIMEIUEID("490154203237518")
	if err != nil {
		log.Fatal(err)
	}
	digits, _ := u.IMEI()
	fmt.Println(u, digits)

	_, err = identity.NewIMEIUEID("490154203237517")
	fmt.Println(err)
	// Output:
	// 030409000105040200030203070501 49015420323751
	// identity: invalid UEID "490154203237517": wrong Luhn check digit (want 8)
}

func ExampleParseOEMID() {
	o, err := identity.ParseOEMID("pen:32473")
	if err != nil {
		log.Fatal(err)
	}
	pen, _ := o.PEN()
	enc, _ := o.MarshalCBOR()
	fmt.Println(o.Kind(), pen, o)
	fmt.Printf("%x\n", enc)
	// Output:
	// pen 32473 pen:32473
	// 197ed9
}

// A CA copies the hardware module name into the certificate it issues,
// and a verifier reads it back.
func ExampleHardwareModuleNameExtension() {
	hw := identity.HardwareModuleName{Type: sensorModel, SerialNumber: []byte("SN-0001")}
	ext, err := identity.HardwareModuleNameExtension(hw, false)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(ext.Id)

	got, ok, err := identity.HardwareModuleNameFromExtensions([]pkix.Extension{ext})
	fmt.Println(got.Equal(hw), ok, err)
	// Output:
	// 2.5.29.17
	// true true <nil>
}

// ExampleDeviceInfoFromUEID builds a device's information by the rule that
// ties its IDevID to its evidence: the hardwareModuleName's serial number
// is the UEID the evidence carries.
func ExampleDeviceInfoFromUEID() {
	ueid := identity.NewEUI64UEID([8]byte{0x00, 0x00, 0x5e, 0xfe, 0x00, 0x00, 0x00, 0x2a})
	model := asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 32473, 1} // under the OEM's PEN
	info, err := identity.DeviceInfoFromUEID(ueid, "WIDGET-0042", model)
	if err != nil {
		log.Fatal(err)
	}
	info.OEMID = identity.NewIEEEOEMID([3]byte{0x00, 0x00, 0x5e}) // as the device's evidence says
	fmt.Printf("hwSerialNum %x\n", info.HardwareModule.SerialNumber)
	fmt.Println("binding:", info.CheckBinding())

	info.HardwareModule.SerialNumber = []byte(info.SerialNumber) // a common mistake
	fmt.Println(info.CheckBinding())
	// Output:
	// hwSerialNum 0200005efe0000002a
	// binding: <nil>
	// identity: device info disagrees with the evidence: HardwareModule.SerialNumber is 5749444745542d30303432, the evidence's is 0200005efe0000002a: build the device info with identity.DeviceInfoFromUEID, or set HardwareModule.SerialNumber to UEID.Bytes()
}
