package queue_test

import (
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
	"path/filepath"
	"testing"
	"time"

	"github.com/ztmkit/ztm/attest"
	"github.com/ztmkit/ztm/attest/devicesim"
	"github.com/ztmkit/ztm/ca"
	"github.com/ztmkit/ztm/ca/enroll"
	"github.com/ztmkit/ztm/ca/ledger/sqlite"
	"github.com/ztmkit/ztm/identity"
	"github.com/ztmkit/ztm/internal/testpki"
	"github.com/ztmkit/ztm/transport/est"
)

// caLine is the CA side of a line for the queue's crash tests: a CA on a
// SQLite ledger, a verifier that knows one device model's attestation key,
// and an EST server on 127.0.0.1 over TLS.
type caLine struct {
	t       testing.TB
	root    *x509.Certificate
	ledger  *sqlite.Ledger
	auth    *ca.Authority
	nonces  *attest.Nonces
	url     string
	roots   *x509.CertPool
	devices []*device
}

func newCALine(t testing.TB) *caLine {
	t.Helper()
	pki := testpki.New(t, testpki.Config{Organization: "-", RootName: "Test Root CA", IssuingName: "Test Issuing CA"})
	e := &caLine{t: t, root: pki.Root, roots: pki.Roots()}
	var err error
	e.ledger, err = sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "ledger.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.ledger.Close() })
	e.auth = pki.Authority(t, e.ledger, nil)
	e.nonces = attest.NewNonces(attest.NonceConfig{})
	d := newDevice(t, 0)
	e.devices = []*device{d}
	verifier, err := attest.NewVerifier(attest.Config{Keys: map[string]crypto.PublicKey{string(d.kid): d.attKey.Public()},
		Nonces: e.nonces, ReferenceValues: []attest.ReferenceValues{d.sim.ReferenceValues()}})
	if err != nil {
		t.Fatal(err)
	}
	gate, err := enroll.New(enroll.Config{Authority: e.auth, Verifier: verifier, Nonces: e.nonces})
	if err != nil {
		t.Fatal(err)
	}
	server, err := est.NewServer(est.ServerConfig{Service: gate})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.url = "https://" + l.Addr().String()
	srv := est.NewHTTPServer(l.Addr().String(), server, est.ServerTLSConfig(serverTLSCert(t, pki)))
	srv.ErrorLog = log.New(io.Discard, "", 0)
	go srv.ServeTLS(l, "", "")
	t.Cleanup(func() { srv.Close() })
	return e
}

// serverTLSCert is the EST server's certificate for 127.0.0.1, issued by
// the test root.
func serverTLSCert(t testing.TB, pki *testpki.PKI) tls.Certificate {
	k := newKey(t)
	der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "est.test"},
		NotBefore:    time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}, pki.Root, k.Public(), pki.RootKey)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: k}
}

// station issues a station certificate allowed the given profiles and
// returns it with its key.
func (e *caLine) station(profiles ...string) (*x509.Certificate, *ecdsa.PrivateKey) {
	e.t.Helper()
	return testpki.Station(e.t, e.auth, []string{"provision"}, profiles)
}

// client is an EST client of the line's server, with the station's
// certificate.
func (e *caLine) client(cert *x509.Certificate, key crypto.Signer) *est.Client {
	e.t.Helper()
	c, err := est.NewClient(est.ClientConfig{URL: e.url, Roots: e.roots,
		Certificate: &tls.Certificate{Certificate: [][]byte{cert.Raw}, PrivateKey: key, Leaf: cert}})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(c.Close)
	return c
}

// issuances is the number of records in the CA's ledger.
func (e *caLine) issuances() uint64 {
	h, err := e.ledger.Head(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return h.Seq
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// device is a simulated device with its attestation key and a UEID.
type device struct {
	sim    *devicesim.Device
	attKey *ecdsa.PrivateKey
	kid    []byte
	ueid   []byte
}

var hwType = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 55555, 1, 1}

func newDevice(t testing.TB, i int) *device {
	return newDeviceKey(t, newKey(t), []byte(fmt.Sprintf("dev-%d", i)))
}

// newDeviceKey is a device of the model whose attestation key is attKey
// (key ID kid), with its own random UEID.
func newDeviceKey(t testing.TB, attKey *ecdsa.PrivateKey, kid []byte) *device {
	t.Helper()
	ueid := make([]byte, 17)
	ueid[0] = 0x01
	rand.Read(ueid[1:])
	d := &device{attKey: attKey, kid: kid, ueid: ueid}
	var err error
	d.sim, err = devicesim.New(devicesim.Config{Key: attKey, KeyID: kid, UEID: ueid, OEMID: []byte{0x00, 0x1b, 0x63},
		HWModel: []byte("sensor-v2"), SWName: "sensor-fw", SWVersion: "2.3.1",
		Images: map[string][]byte{"firmware": []byte("firmware image")}})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// twin returns another device of the same model: the same attestation key
// and key ID (so the line's verifier knows it), its own UEID. A device
// holds one live IDevID.
func (d *device) twin(t testing.TB) *device { return newDeviceKey(t, d.attKey, d.kid) }

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

func (d *device) evidence(t testing.TB, nonce []byte) []byte {
	t.Helper()
	ev, err := d.sim.EvidenceCWT(nonce)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}
