package attest_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ztmkit/ztm/attest"
	"github.com/ztmkit/ztm/attest/devicesim"
	"github.com/ztmkit/ztm/identity/keystore"
	"github.com/ztmkit/ztm/identity/keystore/mem"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// clock is a settable test clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: t0} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// pki is a chip vendor's attestation CA.
type pki struct {
	root    *x509.Certificate
	rootKey crypto.Signer
	pool    *x509.CertPool
}

var serial atomic.Int64 // tests run in parallel

func newPKI(t testing.TB, name string) *pki {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(serial.Add(1)),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             t0.Add(-24 * time.Hour),
		NotAfter:              t0.Add(10 * 365 * 24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	root, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(root)
	return &pki{root: root, rootKey: key, pool: pool}
}

type leafOpts struct {
	notAfter time.Time
	usage    x509.KeyUsage
	exts     []pkix.Extension
}

// issue certifies pub as an attestation key, leaf first chain.
func (p *pki) issue(t testing.TB, pub crypto.PublicKey, o leafOpts) []*x509.Certificate {
	t.Helper()
	if o.notAfter.IsZero() {
		o.notAfter = t0.Add(365 * 24 * time.Hour)
	}
	if o.usage == 0 {
		o.usage = x509.KeyUsageDigitalSignature
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial.Add(1)),
		Subject:      pkix.Name{CommonName: "attestation key"},
		NotBefore:    t0.Add(-time.Hour),
		NotAfter:     o.notAfter,
		KeyUsage:     o.usage,

		ExtraExtensions: o.exts,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.root, pub, p.rootKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return []*x509.Certificate{c}
}

func newKey(t testing.TB, alg keystore.Algorithm) keystore.Key {
	t.Helper()
	k, err := mem.New().Create(context.Background(), keystore.CreateRequest{Label: "ak", Algorithm: alg})
	if err != nil {
		t.Fatal(err)
	}
	return k
}

var (
	testOEMID   = []byte{0x00, 0x1b, 0x63}
	testHWModel = []byte("sensor-v2")
	testUEID    = append([]byte{0x01}, make([]byte, 16)...)
)

func testImages() map[string][]byte {
	return map[string][]byte{
		"bootloader": []byte("bootloader image v1.4"),
		"firmware":   []byte("firmware image v2.3.1"),
	}
}

// env is a verifier with a registered device key and a device.
type env struct {
	clock  *clock
	nonces *attest.Nonces
	dev    *devicesim.Device
	key    keystore.Key
	ver    *attest.EATVerifier
	cfg    attest.Config
}

type envOpts struct {
	alg   keystore.Algorithm
	chain func(pub crypto.PublicKey) ([]*x509.Certificate, *x509.CertPool)
	tweak func(*attest.Config)
}

func newEnv(t testing.TB, o envOpts) *env {
	t.Helper()
	e := &env{clock: newClock()}
	e.nonces = attest.NewNonces(attest.NonceConfig{Time: e.clock.Now})
	e.key = newKey(t, o.alg)
	dc := devicesim.Config{
		Key: e.key, UEID: testUEID, OEMID: testOEMID, HWModel: testHWModel,
		SWName: "sensor-fw", SWVersion: "2.3.1", HWVersion: "1.0",
		Images: testImages(), Time: e.clock.Now,
	}
	e.cfg = attest.Config{
		Nonces:     e.nonces,
		Time:       e.clock.Now,
		VerifierID: attest.VerifierID{Build: "ztm-test 1", Developer: "https://example.com/ztm"},
	}
	if o.chain != nil {
		chain, pool := o.chain(e.key.Public())
		dc.Chain = chain
		e.cfg.Roots = pool
	} else {
		dc.KeyID = []byte("device-1")
		e.cfg.Keys = map[string]crypto.PublicKey{"device-1": e.key.Public()}
	}
	dev, err := devicesim.New(dc)
	if err != nil {
		t.Fatal(err)
	}
	e.dev = dev
	e.cfg.ReferenceValues = []attest.ReferenceValues{dev.ReferenceValues()}
	if o.tweak != nil {
		o.tweak(&e.cfg)
	}
	e.ver, err = attest.NewVerifier(e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *env) nonce(t testing.TB) []byte {
	t.Helper()
	n, err := e.nonces.Issue()
	if err != nil {
		t.Fatal(err)
	}
	return n
}
