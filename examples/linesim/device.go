package linesim

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/asn1"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/ztmkit/ztm"
	"github.com/ztmkit/ztm/attest/devicesim"
	"github.com/ztmkit/ztm/identity"
	"github.com/ztmkit/ztm/identity/keyseal"
	"github.com/ztmkit/ztm/identity/keystore"
	"github.com/ztmkit/ztm/internal/softkey"
)

// ModelOID names the simulated hardware model: an arc under IANA PEN 32473,
// which RFC 5612 reserves for documentation.
var modelOID = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 32473, 1, 1}

// ModelOID returns the OID of the simulated hardware model.
func ModelOID() asn1.ObjectIdentifier { return append(asn1.ObjectIdentifier(nil), modelOID...) }

// OEMID is the simulated OEM's IEEE OUI (00-00-5E, the IANA OUI RFC 9542
// sets aside for documentation).
var oemID = []byte{0x00, 0x00, 0x5e}

// Model names the simulated hardware model in evidence.
const Model = "ztm-widget-1"

// Firmware is the simulated firmware image every honest device runs.
var firmware = []byte("ztm-widget firmware 1.4.2\x00")

// Bootloader is the simulated bootloader image.
var bootloader = []byte("ztm-widget bootloader 2.0\x00")

// Firmware returns the firmware image honest devices run.
func Firmware() []byte { return append([]byte(nil), firmware...) }

// Tamper is how a simulated device misbehaves.
type Tamper int

// The kinds of bad device the line sends.
const (
	Honest Tamper = iota
	// DebugEnabled reports an open debug port.
	DebugEnabled
	// ReplayedNonce answers with evidence for an old nonce.
	ReplayedNonce
	// TamperedFirmware reports a firmware digest that is not the reference.
	TamperedFirmware
	// UnauthorizedStation is an honest device taken to a station the CA
	// does not authorize to enroll devices.
	UnauthorizedStation
	// KeySubstitution is an honest device at a compromised station that
	// swaps in a key of its own: it sends the device's genuine evidence
	// with a request for the station's key (see SubstituteKey).
	KeySubstitution
	maxTamper
)

// TamperKinds returns the kinds of bad device, in the order the line
// cycles through them.
func TamperKinds() []Tamper {
	return []Tamper{DebugEnabled, ReplayedNonce, TamperedFirmware, UnauthorizedStation, KeySubstitution}
}

// String names the kind.
func (t Tamper) String() string {
	switch t {
	case Honest:
		return "honest"
	case DebugEnabled:
		return "debug-enabled"
	case ReplayedNonce:
		return "replayed-nonce"
	case TamperedFirmware:
		return "tampered-firmware"
	case UnauthorizedStation:
		return "unauthorized-station"
	case KeySubstitution:
		return "key-substitution"
	}
	return fmt.Sprintf("Tamper(%d)", int(t))
}

// Device is a simulated device: an attestation key certified by the chip
// vendor, evidence from devicesim, and an identity key it makes itself
// (or, with NoKeyGeneration, receives sealed). It implements ztm.Device,
// ztm.KeyImporter and ztm.KeyDestroyer, and is safe for concurrent use.
type Device struct {
	info   identity.DeviceInfo
	ak     *ecdsa.PrivateKey
	sim    *devicesim.Device
	tamper Tamper
	// NoKeyGeneration makes GenerateKey fail with
	// ztm.ErrKeyGenerationUnsupported, so that the station injects a key.
	noKeyGen bool

	mu          sync.Mutex
	key         crypto.Signer
	chain       []*x509.Certificate
	failInstall bool
}

var (
	_ ztm.Device       = (*Device)(nil)
	_ ztm.KeyImporter  = (*Device)(nil)
	_ ztm.KeyDestroyer = (*Device)(nil)
)

// Info implements ztm.Device.
func (d *Device) Info(ctx context.Context) (identity.DeviceInfo, error) { return d.info, ctx.Err() }

// Serial returns the device's serial number.
func (d *Device) Serial() string { return d.info.SerialNumber }

// UEID returns the device's UEID bytes.
func (d *Device) UEID() []byte { return d.info.UEID.Bytes() }

// Tamper returns how the device misbehaves.
func (d *Device) Tamper() Tamper { return d.tamper }

// Attest implements ztm.Device with CWT evidence.
func (d *Device) Attest(ctx context.Context, nonce []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return d.sim.EvidenceCWT(nonce)
}

// GenerateKey implements ztm.Device.
func (d *Device) GenerateKey(ctx context.Context, alg keystore.Algorithm) ([]byte, error) {
	if d.noKeyGen {
		return nil, ztm.ErrKeyGenerationUnsupported
	}
	key, err := softkey.Generate(rand.Reader, alg)
	if err != nil {
		return nil, err
	}
	csr, err := identity.CreateCSR(rand.Reader, key, d.info)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	d.key, d.chain = key, nil
	d.mu.Unlock()
	// The device's evidence confirms the key it made (EAT cnf).
	d.sim.BindKey(key.Public())
	return csr, nil
}

// ImportKey implements ztm.KeyImporter.
func (d *Device) ImportKey(ctx context.Context, sealed *keyseal.Sealed) ([]byte, error) {
	key, err := keyseal.Open(d.ak, d.info.UEID.Bytes(), sealed)
	if err != nil {
		return nil, err
	}
	csr, err := identity.CreateCSR(rand.Reader, key, d.info)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	d.key, d.chain = key, nil
	d.mu.Unlock()
	return csr, nil
}

// InstallChain implements ztm.Device: it refuses a chain whose leaf does
// not certify the device's key.
func (d *Device) InstallChain(ctx context.Context, chain []*x509.Certificate) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.failInstall {
		return errors.New("linesim: flash write failed")
	}
	if d.key == nil {
		return errors.New("linesim: device has no key")
	}
	if len(chain) == 0 || !chain[0].PublicKey.(interface{ Equal(crypto.PublicKey) bool }).Equal(d.key.Public()) {
		return errors.New("linesim: certificate is not for the device's key")
	}
	d.chain = append([]*x509.Certificate(nil), chain...)
	return nil
}

// DestroyKey implements ztm.KeyDestroyer.
func (d *Device) DestroyKey(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.key, d.chain = nil, nil
	return nil
}

// Chain returns the installed certificate chain.
func (d *Device) Chain() []*x509.Certificate {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.chain
}

// Key returns the device's identity key, or nil.
func (d *Device) Key() crypto.Signer {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.key
}

// SetFailInstall makes InstallChain fail (a flash write error).
func (d *Device) SetFailInstall(fail bool) {
	d.mu.Lock()
	d.failInstall = fail
	d.mu.Unlock()
}

// DeviceOptions say what kind of device NewDevice makes.
type DeviceOptions struct {
	// Tamper is how it misbehaves.
	Tamper Tamper
	// NoKeyGeneration makes it a device that needs key injection.
	NoKeyGeneration bool
}

// NewDevice makes simulated device number n: serial "ZTM-%07d", an
// EUI-64 UEID, a fresh P-256 attestation key certified by the chip
// vendor's attestation CA.
func (l *Line) NewDevice(n uint32, opts DeviceOptions) (*Device, error) {
	ak, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial := fmt.Sprintf("ZTM-%07d", n)
	var eui [8]byte
	copy(eui[:3], oemID)
	binary.BigEndian.PutUint32(eui[4:], n)
	eui[3] = 0xfe
	ueid := identity.NewEUI64UEID(eui)
	akCert, err := l.certifyAK(ak.Public(), serial)
	if err != nil {
		return nil, err
	}
	sim, err := devicesim.New(devicesim.Config{
		Key: ak, Chain: []*x509.Certificate{akCert, l.akCA},
		UEID: ueid.Bytes(), OEMID: oemID, HWModel: []byte(Model),
		HWVersion: "1.0", SWName: "ztm-widget-fw", SWVersion: "1.4.2",
		Images: map[string][]byte{"bootloader": bootloader, "firmware": firmware},
	})
	if err != nil {
		return nil, err
	}
	d := &Device{
		info: identity.DeviceInfo{
			UEID: ueid, SerialNumber: serial,
			HardwareModule: identity.HardwareModuleName{Type: modelOID, SerialNumber: ueid.Bytes()},
			HardwareModel:  []byte(Model), Organization: "ZTM Widgets",
		},
		ak: ak, sim: sim, tamper: opts.Tamper, noKeyGen: opts.NoKeyGeneration,
	}
	switch opts.Tamper {
	case DebugEnabled:
		sim.SetTamper(devicesim.Tamper{DebugEnabled: true})
	case TamperedFirmware:
		sim.SetTamper(devicesim.Tamper{WrongMeasurement: "firmware"})
	case ReplayedNonce:
		// The device answered an earlier challenge; it replays that answer.
		old := make([]byte, 32)
		if _, err := rand.Read(old); err != nil {
			return nil, err
		}
		if _, err := sim.EvidenceCWT(old); err != nil {
			return nil, err
		}
		sim.SetTamper(devicesim.Tamper{ReplayNonce: true})
	}
	return d, nil
}

// SubstituteKey returns dev as a compromised station drives it: the device
// makes its key and attests honestly, but the request the station passes
// on is for a key the station made, with the device's names. The CA must
// refuse it: the device's evidence confirms the device's key, not the
// station's.
func SubstituteKey(dev *Device) ztm.Device { return &substituted{Device: dev} }

type substituted struct{ *Device }

// GenerateKey lets the device make its key, then swaps in the station's.
func (s *substituted) GenerateKey(ctx context.Context, alg keystore.Algorithm) ([]byte, error) {
	if _, err := s.Device.GenerateKey(ctx, alg); err != nil {
		return nil, err
	}
	own, err := softkey.Generate(rand.Reader, alg)
	if err != nil {
		return nil, err
	}
	return identity.CreateCSR(rand.Reader, own, s.info)
}
