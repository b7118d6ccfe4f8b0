package estline

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/asn1"
	"fmt"
	"sync"
	"testing"

	"github.com/ztmkit/ztm/attest/devicesim"
	"github.com/ztmkit/ztm/identity"
)

// HWType is the hardwareModuleName type (RFC 4108) of the devices'
// requests.
var HWType = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 55555, 1, 1}

// Device is a simulated device of one model: the model's attestation key
// and key ID, and the device's own UEID.
type Device struct {
	// mu makes a request and its evidence together (CSREvidence), for
	// tests that enroll one device from several goroutines.
	mu     sync.Mutex
	Sim    *devicesim.Device
	AttKey *ecdsa.PrivateKey
	KID    []byte
	UEID   []byte
}

// NewDevice is a device of a new model: a new attestation key with key
// ID "dev-i", and a random UEID.
func NewDevice(tb testing.TB, i int) *Device {
	tb.Helper()
	return newDevice(tb, newKey(tb), []byte(fmt.Sprintf("dev-%d", i)))
}

// NewUEID is a random UEID of type RAND (0x01, 16 bytes).
func NewUEID() []byte {
	ueid := make([]byte, 17)
	ueid[0] = 0x01
	rand.Read(ueid[1:])
	return ueid
}

// newDevice is a device of the model whose attestation key is attKey
// (key ID kid), with its own UEID.
func newDevice(tb testing.TB, attKey *ecdsa.PrivateKey, kid []byte) *Device {
	tb.Helper()
	ueid := NewUEID()
	d := &Device{AttKey: attKey, KID: kid, UEID: ueid}
	var err error
	d.Sim, err = devicesim.New(devicesim.Config{Key: attKey, KeyID: kid, UEID: ueid, OEMID: []byte{0x00, 0x1b, 0x63},
		HWModel: []byte("sensor-v2"), SWName: "sensor-fw", SWVersion: "2.3.1",
		Images: map[string][]byte{"firmware": []byte("firmware image")}})
	if err != nil {
		tb.Fatal(err)
	}
	return d
}

// Twin returns another device of the same model: the same attestation key
// and key ID (so the line's verifier knows it), its own UEID. A device
// holds one live IDevID, so tests that enroll many certificates enroll
// twins.
func (d *Device) Twin(tb testing.TB) *Device {
	tb.Helper()
	return newDevice(tb, d.AttKey, d.KID)
}

// CSR makes a fresh device key and its IDevID request naming the device
// (serial, and its UEID as hardwareModuleName); the device's evidence
// from now on confirms that key (cnf).
func (d *Device) CSR(tb testing.TB, serial string) []byte {
	tb.Helper()
	return d.CSRFor(tb, newKey(tb), serial)
}

// CSRFor is the device's IDevID request (as CSR) for key; the device's
// evidence from now on confirms key.
func (d *Device) CSRFor(tb testing.TB, key *ecdsa.PrivateKey, serial string) []byte {
	tb.Helper()
	d.Sim.BindKey(key.Public())
	return request(tb, key, serial, d.UEID)
}

// NewCSR is the IDevID request of another device (serial, a fresh key
// and UEID), for enrollments that carry no evidence.
func NewCSR(tb testing.TB, serial string) []byte {
	tb.Helper()
	return request(tb, newKey(tb), serial, NewUEID())
}

// request is an IDevID request signed by key naming serial and, as its
// hardwareModuleName, ueid.
func request(tb testing.TB, key *ecdsa.PrivateKey, serial string, ueid []byte) []byte {
	tb.Helper()
	der, err := identity.CreateCSR(nil, key, identity.DeviceInfo{SerialNumber: serial,
		HardwareModule: identity.HardwareModuleName{Type: HWType, SerialNumber: ueid}})
	if err != nil {
		tb.Fatal(err)
	}
	return der
}

// BindCSR makes the device's evidence confirm the key of csr.
func (d *Device) BindCSR(tb testing.TB, csr []byte) {
	tb.Helper()
	req, err := x509.ParseCertificateRequest(csr)
	if err != nil {
		tb.Fatal(err)
	}
	d.Sim.BindKey(req.PublicKey)
}

// CSREvidence makes a request (as CSR) and the evidence over nonce that
// confirms its key, atomically with respect to other goroutines using d.
func (d *Device) CSREvidence(tb testing.TB, serial string, nonce []byte) ([]byte, []byte) {
	tb.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	csr := d.CSR(tb, serial)
	return csr, d.Evidence(tb, nonce)
}

// Evidence is the device's EAT (CWT) over nonce.
func (d *Device) Evidence(tb testing.TB, nonce []byte) []byte {
	tb.Helper()
	ev, err := d.Sim.EvidenceCWT(nonce)
	if err != nil {
		tb.Fatal(err)
	}
	return ev
}

func newKey(tb testing.TB) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}
