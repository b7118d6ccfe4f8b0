package est_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/ztmkit/ztm/internal/testpki"

	"github.com/ztmkit/ztm/attest"
	"github.com/ztmkit/ztm/attest/devicesim"
	"github.com/ztmkit/ztm/ca"
	"github.com/ztmkit/ztm/ca/enroll"
	"github.com/ztmkit/ztm/ca/ledger/memledger"
	"github.com/ztmkit/ztm/identity"
	"github.com/ztmkit/ztm/transport/est"
)

// env is a test PKI (root → intermediate → Authority with a ledger in
// memory), an attestation verifier, and an EST server on 127.0.0.1 over
// TLS.
type env struct {
	t        testing.TB
	root     *x509.Certificate
	rootKey  crypto.Signer
	inter    *x509.Certificate
	interKey crypto.Signer
	ledger   *memledger.Ledger
	auth     *ca.Authority
	nonces   *attest.Nonces
	verifier *attest.EATVerifier
	gate     *enroll.Service
	server   *est.Server
	devices  []*device
	tlsRoots *x509.CertPool
	url      string
	srv      *http.Server
	addr     string
}

type envOpts struct {
	devices   int
	quota     ca.QuotaPolicy
	gate      func(*enroll.Config)
	server    func(*est.ServerConfig)
	noServer  bool
	noncesMax int
	// authTime is the Authority's clock; nil is time.Now.
	authTime func() time.Time
	// perOwner is the nonces' MaxPerOwner.
	perOwner int
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newEnv(t testing.TB, o envOpts) *env {
	t.Helper()
	e := &env{t: t}
	pki := testpki.New(t, testpki.Config{Organization: "-", RootName: "Test Root CA", IssuingName: "Test Issuing CA"})
	e.root, e.rootKey, e.inter, e.interKey = pki.Root, pki.RootKey, pki.Issuing, pki.IssuingKey
	e.ledger = testpki.Ledger(t)
	e.auth = pki.Authority(t, e.ledger, func(c *ca.Config) { c.Quota, c.Time = o.quota, o.authTime })
	var err error
	e.nonces = attest.NewNonces(attest.NonceConfig{MaxOutstanding: o.noncesMax, MaxPerOwner: o.perOwner})
	keys := map[string]crypto.PublicKey{}
	var refs []attest.ReferenceValues
	n := o.devices
	if n == 0 {
		n = 1
	}
	for i := range n {
		d := newDevice(t, i)
		keys[string(d.kid)] = d.attKey.Public()
		if i == 0 {
			refs = append(refs, d.sim.ReferenceValues())
		}
		e.devices = append(e.devices, d)
	}
	e.verifier, err = attest.NewVerifier(attest.Config{Keys: keys, Nonces: e.nonces, ReferenceValues: refs})
	if err != nil {
		t.Fatal(err)
	}
	gc := enroll.Config{Authority: e.auth, Verifier: e.verifier, Nonces: e.nonces}
	if o.gate != nil {
		o.gate(&gc)
	}
	e.gate, err = enroll.New(gc)
	if err != nil {
		t.Fatal(err)
	}
	sc := est.ServerConfig{Service: e.gate}
	if o.server != nil {
		o.server(&sc)
	}
	e.server, err = est.NewServer(sc)
	if err != nil {
		t.Fatal(err)
	}
	if !o.noServer {
		e.start()
	}
	return e
}

// serverTLSCert is the server's TLS certificate for 127.0.0.1, issued by
// the test root so that cacerts bootstrap can verify it.
func (e *env) serverTLSCert() tls.Certificate {
	k := newKey(e.t)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "est.test"},
		NotBefore:    time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, e.root, k.Public(), e.rootKey)
	if err != nil {
		e.t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: k}
}

func (e *env) start() {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		e.t.Fatal(err)
	}
	e.addr = l.Addr().String()
	e.url = "https://" + e.addr
	e.tlsRoots = x509.NewCertPool()
	e.tlsRoots.AddCert(e.root)
	e.srv = est.NewHTTPServer(e.addr, e.server, est.ServerTLSConfig(e.serverTLSCert()))
	e.srv.ErrorLog = log.New(io.Discard, "", 0)
	go e.srv.ServeTLS(l, "", "")
	e.t.Cleanup(func() { e.srv.Close() })
}

// station issues a station certificate allowed the given profiles and
// returns it with its key.
func (e *env) station(profiles ...string) (*x509.Certificate, *ecdsa.PrivateKey) {
	e.t.Helper()
	return testpki.Station(e.t, e.auth, []string{"provision"}, profiles)
}

func (e *env) client(cert *x509.Certificate, key crypto.Signer) *est.Client {
	e.t.Helper()
	cfg := est.ClientConfig{URL: e.url, Roots: e.tlsRoots}
	if cert != nil {
		cfg.Certificate = &tls.Certificate{Certificate: [][]byte{cert.Raw}, PrivateKey: key, Leaf: cert}
	}
	c, err := est.NewClient(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(c.Close)
	return c
}

func (e *env) issuances() uint64 {
	h, err := e.ledger.Head(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return h.Seq
}

// device is a simulated device with its attestation key and a UEID.
type device struct {
	// mu makes a request and its evidence together (csrEvidence), for
	// tests that enroll one device from several goroutines.
	mu     sync.Mutex
	sim    *devicesim.Device
	attKey *ecdsa.PrivateKey
	kid    []byte
	ueid   []byte
}

var hwType = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 55555, 1, 1}

func newDevice(t testing.TB, i int) *device {
	k := newKey(t)
	ueid := make([]byte, 17)
	ueid[0] = 0x01
	rand.Read(ueid[1:])
	d := &device{attKey: k, kid: []byte(fmt.Sprintf("dev-%d", i)), ueid: ueid}
	var err error
	d.sim, err = devicesim.New(devicesim.Config{Key: k, KeyID: d.kid, UEID: ueid, OEMID: []byte{0x00, 0x1b, 0x63},
		HWModel: []byte("sensor-v2"), SWName: "sensor-fw", SWVersion: "2.3.1",
		Images: map[string][]byte{"firmware": []byte("firmware image")}})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// twin returns another device of the same model: the same attestation key
// and key ID (so the env's verifier knows it), its own UEID. A device
// holds one live IDevID, so tests that enroll many certificates enroll
// twins.
func (d *device) twin(t testing.TB) *device {
	t.Helper()
	ueid := make([]byte, 17)
	ueid[0] = 0x01
	rand.Read(ueid[1:])
	tw := &device{attKey: d.attKey, kid: d.kid, ueid: ueid}
	var err error
	tw.sim, err = devicesim.New(devicesim.Config{Key: d.attKey, KeyID: d.kid, UEID: ueid, OEMID: []byte{0x00, 0x1b, 0x63},
		HWModel: []byte("sensor-v2"), SWName: "sensor-fw", SWVersion: "2.3.1",
		Images: map[string][]byte{"firmware": []byte("firmware image")}})
	if err != nil {
		t.Fatal(err)
	}
	return tw
}

// csr makes a fresh device key and its IDevID request naming the device;
// the device's evidence from now on confirms that key (cnf).
func (d *device) csr(t testing.TB, serial string) []byte {
	t.Helper()
	k := newKey(t)
	d.sim.BindKey(k.Public())
	der, err := identity.CreateCSR(nil, k, identity.DeviceInfo{SerialNumber: serial,
		HardwareModule: identity.HardwareModuleName{Type: hwType, SerialNumber: d.ueid}})
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// bindCSR makes the device's evidence confirm the key of csr.
func (d *device) bindCSR(t testing.TB, csr []byte) {
	t.Helper()
	req, err := x509.ParseCertificateRequest(csr)
	if err != nil {
		t.Fatal(err)
	}
	d.sim.BindKey(req.PublicKey)
}

// csrEvidence makes a request and the evidence that confirms its key,
// atomically with respect to other goroutines using d.
func (d *device) csrEvidence(t testing.TB, serial string, nonce []byte) ([]byte, []byte) {
	t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	csr := d.csr(t, serial)
	return csr, d.evidence(t, nonce)
}

func (d *device) evidence(t testing.TB, nonce []byte) []byte {
	t.Helper()
	ev, err := d.sim.EvidenceCWT(nonce)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

type x509Cert = x509.Certificate

func parseCert(der []byte) (*x509.Certificate, error) { return x509.ParseCertificate(der) }

func mustSigner(t testing.TB, e *env) crypto.Signer { return e.interKey }

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }
