package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"sync"

	"github.com/ztmkit/ztm"
	"github.com/ztmkit/ztm/attest/devicesim"
	"github.com/ztmkit/ztm/identity"
	"github.com/ztmkit/ztm/identity/keystore"
)

// link is the jig's connection to the device under test: one request, one
// answer. On a real jig it is the device's test port (UART, USB, JTAG
// mailbox); here it is a simulated board.
type link interface {
	Call(ctx context.Context, cmd string, arg []byte) ([]byte, error)
}

// Link commands the device firmware answers.
const (
	cmdUEID    = "ueid"    // → the device's UEID bytes
	cmdSerial  = "serial"  // → its printed serial number
	cmdAttest  = "attest"  // nonce → EAT evidence (CWT)
	cmdKeygen  = "keygen"  // → a PKCS#10 request for a new ES256 key
	cmdInstall = "install" // DER certificates, concatenated → "ok"
)

// modelOID identifies the device model in hardwareModuleName (RFC 4108):
// an OID under the OEM's own arc (here the documentation PEN 32473).
var modelOID = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 32473, 1, 7}

// device is the jig's ztm.Device: it speaks the device's link protocol.
// This is the type a vendor writes for its own hardware.
type device struct {
	link link
	cert *x509.Certificate // installed by InstallChain
}

var _ ztm.Device = (*device)(nil)

// Info reads the device's UEID and serial number. Its hardwareModuleName
// serial is its UEID (identity.DeviceInfoFromUEID builds it so): that is
// what ties the certificate to the evidence, whose ueid claim the station
// and the CA compare with it.
func (d *device) Info(ctx context.Context) (identity.DeviceInfo, error) {
	raw, err := d.link.Call(ctx, cmdUEID, nil)
	if err != nil {
		return identity.DeviceInfo{}, err
	}
	ueid, err := identity.UEIDFromBytes(raw)
	if err != nil {
		return identity.DeviceInfo{}, fmt.Errorf("device sent a bad UEID: %w", err)
	}
	serial, err := d.link.Call(ctx, cmdSerial, nil)
	if err != nil {
		return identity.DeviceInfo{}, err
	}
	return identity.DeviceInfoFromUEID(ueid, string(serial), modelOID)
}

// Attest asks the device for evidence over nonce.
func (d *device) Attest(ctx context.Context, nonce []byte) ([]byte, error) {
	return d.link.Call(ctx, cmdAttest, nonce)
}

// GenerateKey has the device make its identity key and a request for it.
func (d *device) GenerateKey(ctx context.Context, alg keystore.Algorithm) ([]byte, error) {
	if alg != keystore.ES256 {
		return nil, fmt.Errorf("device makes ES256 keys only, not %v: %w", alg, ztm.ErrKeyGenerationUnsupported)
	}
	return d.link.Call(ctx, cmdKeygen, nil)
}

// InstallChain sends the chain to the device.
func (d *device) InstallChain(ctx context.Context, chain []*x509.Certificate) error {
	var der []byte
	for _, c := range chain {
		der = append(der, c.Raw...)
	}
	if _, err := d.link.Call(ctx, cmdInstall, der); err != nil {
		return err
	}
	d.cert = chain[0]
	return nil
}

// board simulates a device's firmware behind the link: an attestation key,
// a key store for its identity key, its evidence (attest/devicesim).
type board struct {
	serial string
	ueid   identity.UEID
	ak     *ecdsa.PrivateKey
	akID   []byte
	sim    *devicesim.Device

	mu    sync.Mutex
	key   *ecdsa.PrivateKey
	chain []*x509.Certificate
}

var _ link = (*board)(nil)

// firmware is the image every board runs; the verifier holds its
// measurement as a reference value.
var firmware = []byte("jig reference firmware 1.0")

// newBoard makes board number n with a fresh attestation key.
func newBoard(n uint32) (*board, error) {
	ak, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	eui := [8]byte{0x00, 0x00, 0x5e, 0xfe, byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}
	b := &board{serial: fmt.Sprintf("JIG-%06d", n), ueid: identity.NewEUI64UEID(eui), ak: ak, akID: fmt.Appendf(nil, "ak-%d", n)}
	b.sim, err = devicesim.New(devicesim.Config{
		Key: ak, KeyID: b.akID, UEID: b.ueid.Bytes(), OEMID: []byte{0x00, 0x00, 0x5e},
		HWModel: []byte("jig-widget"), SWName: "fw", SWVersion: "1.0",
		Images: map[string][]byte{"firmware": firmware},
	})
	return b, err
}

// Call answers one command, as the device's firmware would.
func (b *board) Call(ctx context.Context, cmd string, arg []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	switch cmd {
	case cmdUEID:
		return b.ueid.Bytes(), nil
	case cmdSerial:
		return []byte(b.serial), nil
	case cmdAttest:
		return b.sim.EvidenceCWT(arg)
	case cmdKeygen:
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, err
		}
		b.key = key
		b.sim.BindKey(key.Public()) // the evidence confirms the key (cnf)
		info, err := identity.DeviceInfoFromUEID(b.ueid, b.serial, modelOID)
		if err != nil {
			return nil, err
		}
		return identity.CreateCSR(rand.Reader, key, info)
	case cmdInstall:
		chain, err := x509.ParseCertificates(arg)
		if err != nil {
			return nil, err
		}
		if b.key == nil || len(chain) == 0 || !b.key.PublicKey.Equal(chain[0].PublicKey) {
			return nil, errors.New("board: the certificate is not for this device's key")
		}
		b.chain = chain
		return []byte("ok"), nil
	}
	return nil, fmt.Errorf("board: unknown command %q", cmd)
}
