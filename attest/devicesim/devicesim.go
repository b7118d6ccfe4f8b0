package devicesim

import (
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"
	"time"

	"github.com/ztmkit/ztm/attest"
)

// COSE algorithm of SHA-256 (RFC 9054).
const sha256Alg = -16

// Measure returns the SHA-256 measurement of a component image.
func Measure(name string, image []byte) attest.Measurement {
	d := sha256.Sum256(image)
	return attest.Measurement{Name: name, Alg: sha256Alg, Digest: d[:]}
}

// Config describes a simulated device. Key, UEID, OEMID and HWModel are
// required.
type Config struct {
	// Key is the device's attestation key.
	Key crypto.Signer
	// KeyID names Key to a verifier that has it registered. Set KeyID or
	// Chain.
	KeyID []byte
	// Chain is Key's certificate chain, leaf first, from the chip
	// vendor's attestation CA.
	Chain []*x509.Certificate
	// UEID, OEMID and HWModel identify the device and its model.
	UEID, OEMID, HWModel []byte
	// HWVersion, SWName and SWVersion are the version claims; empty ones
	// are left out.
	HWVersion, SWName, SWVersion string
	// Images are the device's component images by name (bootloader,
	// firmware, …); the device reports their SHA-256 measurements.
	Images map[string][]byte
	// Time returns the device clock, for iat. If nil, time.Now is used.
	Time func() time.Time
	// Rand is the randomness for signatures. If nil, crypto/rand is used.
	Rand io.Reader
}

// Tamper makes the device misbehave. The zero value is an honest device:
// debug disabled since boot, secure boot on, true measurements, fresh
// nonces.
type Tamper struct {
	// DebugEnabled reports dbgstat enabled.
	DebugEnabled bool
	// SecureBootOff reports oemboot (secure boot) false.
	SecureBootOff bool
	// WrongMeasurement names a component whose reported digest is wrong
	// (as if its image had been modified).
	WrongMeasurement string
	// ReplayNonce signs the first nonce the device ever answered instead
	// of the one it is given: a replay of old evidence.
	ReplayNonce bool
	// OmitNonce leaves the nonce claim out.
	OmitNonce bool
}

// Device is a simulated device. It is safe for concurrent use.
type Device struct {
	cfg          Config
	measurements []attest.Measurement

	mu        sync.Mutex
	tamper    Tamper
	firstSeen []byte
	bound     crypto.PublicKey
}

// New returns a device for cfg.
func New(cfg Config) (*Device, error) {
	if cfg.Key == nil {
		return nil, errors.New("devicesim: Config.Key is required")
	}
	if len(cfg.UEID) == 0 || len(cfg.OEMID) == 0 || len(cfg.HWModel) == 0 {
		return nil, errors.New("devicesim: UEID, OEMID and HWModel are required")
	}
	if len(cfg.KeyID) == 0 && len(cfg.Chain) == 0 {
		return nil, errors.New("devicesim: set KeyID or Chain")
	}
	if cfg.Time == nil {
		cfg.Time = time.Now
	}
	d := &Device{cfg: cfg}
	names := make([]string, 0, len(cfg.Images))
	for name := range cfg.Images {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		d.measurements = append(d.measurements, Measure(name, cfg.Images[name]))
	}
	return d, nil
}

// SetTamper sets how the device misbehaves from now on.
func (d *Device) SetTamper(t Tamper) {
	d.mu.Lock()
	d.tamper = t
	d.mu.Unlock()
}

// BindKey makes pub the device's identity key, the key it generated and
// holds: evidence from now on confirms it in its cnf claim (RFC 8747 in
// a CWT, RFC 7800 jwk in a JWT), so that a CA can check that a request's
// key is the device's own. A nil pub leaves cnf out again.
func (d *Device) BindKey(pub crypto.PublicKey) {
	d.mu.Lock()
	d.bound = pub
	d.mu.Unlock()
}

// Claims returns the claims the device would sign for nonce.
func (d *Device) Claims(nonce []byte) *attest.Claims {
	d.mu.Lock()
	t := d.tamper
	if d.firstSeen == nil && nonce != nil {
		d.firstSeen = append([]byte(nil), nonce...)
	}
	first := d.firstSeen
	bound := d.bound
	d.mu.Unlock()

	dbg := attest.DebugDisabledSinceBoot
	if t.DebugEnabled {
		dbg = attest.DebugEnabled
	}
	c := &attest.Claims{
		Nonce:       nonce,
		UEID:        d.cfg.UEID,
		OEMID:       d.cfg.OEMID,
		HWModel:     d.cfg.HWModel,
		HWVersion:   d.cfg.HWVersion,
		SWName:      d.cfg.SWName,
		SWVersion:   d.cfg.SWVersion,
		SecureBoot:  attest.BoolPtr(!t.SecureBootOff),
		DebugStatus: attest.DebugPtr(dbg),
		IssuedAt:    d.cfg.Time().Truncate(time.Second),
	}
	if bound != nil {
		c.Confirmation = &attest.Confirmation{Key: bound}
	}
	if t.ReplayNonce {
		c.Nonce = first
	}
	if t.OmitNonce {
		c.Nonce = nil
	}
	for _, m := range d.measurements {
		if m.Name == t.WrongMeasurement {
			bad := append([]byte(nil), m.Digest...)
			bad[0] ^= 0xff
			m.Digest = bad
		}
		c.Measurements = append(c.Measurements, m)
	}
	return c
}

func (d *Device) opts() *attest.SignOptions {
	return &attest.SignOptions{KeyID: d.cfg.KeyID, Chain: d.cfg.Chain}
}

// EvidenceCWT answers nonce with CWT evidence.
func (d *Device) EvidenceCWT(nonce []byte) ([]byte, error) {
	b, err := attest.SignCWT(d.cfg.Rand, d.cfg.Key, d.Claims(nonce), d.opts())
	if err != nil {
		return nil, fmt.Errorf("devicesim: %w", err)
	}
	return b, nil
}

// EvidenceJWT answers nonce with JWT evidence.
func (d *Device) EvidenceJWT(nonce []byte) ([]byte, error) {
	b, err := attest.SignJWT(d.cfg.Rand, d.cfg.Key, d.Claims(nonce), d.opts())
	if err != nil {
		return nil, fmt.Errorf("devicesim: %w", err)
	}
	return b, nil
}

// ReferenceValues returns the reference values of an honest device of this
// model: its true measurements, its software name and version as the
// minimum, debug disabled and secure boot required.
func (d *Device) ReferenceValues() attest.ReferenceValues {
	return attest.ReferenceValues{
		OEMID:        d.cfg.OEMID,
		HWModel:      d.cfg.HWModel,
		Measurements: append([]attest.Measurement(nil), d.measurements...),
		SWName:       d.cfg.SWName,
		MinSWVersion: d.cfg.SWVersion,
	}
}
