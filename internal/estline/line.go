package estline

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/ztmkit/ztm/attest"
	"github.com/ztmkit/ztm/ca"
	"github.com/ztmkit/ztm/ca/enroll"
	"github.com/ztmkit/ztm/internal/testpki"
	"github.com/ztmkit/ztm/transport/est"
)

// Config says how [New] builds a line. The zero value is a line over a
// ledger in memory whose verifier knows one device model, with the
// default Authority, nonces, Service and Server, served at once.
type Config struct {
	// Ledger is the CA's ledger. If nil, a new ledger in memory, closed
	// by the test's cleanup; a ledger passed here is the caller's to
	// close.
	Ledger ca.Ledger
	// Devices is the number of device models the verifier knows (one
	// device of each in Line.Devices). If zero, 1.
	Devices int
	// Quota and Time are the Authority's ca.Config.Quota and
	// ca.Config.Time (nil Time is time.Now).
	Quota ca.QuotaPolicy
	Time  func() time.Time
	// NonceConfig configures the line's attestation nonces.
	NonceConfig attest.NonceConfig
	// Service and Server, if not nil, edit the enroll.Service's and the
	// est.Server's configuration before they are made.
	Service func(*enroll.Config)
	Server  func(*est.ServerConfig)
	// NoServer leaves the Server unserved: Line.URL is empty until
	// [Line.Start].
	NoServer bool
}

// Line is the CA side of a line: its PKI, Authority, verifier, Service
// and EST Server, and the devices its verifier knows.
type Line struct {
	tb testing.TB

	PKI       *testpki.PKI
	Ledger    ca.Ledger
	Authority *ca.Authority
	Nonces    *attest.Nonces
	Verifier  *attest.EATVerifier
	Service   *enroll.Service
	Server    *est.Server
	// Devices holds one device of each model the verifier knows; the
	// verifier holds reference values of the first one's firmware.
	Devices []*Device

	// URL is the served Server's base URL ("https://127.0.0.1:port"),
	// HTTP its http.Server, and Roots a pool that verifies its TLS
	// certificate (the PKI's root). URL and HTTP are set by Start.
	URL   string
	HTTP  *http.Server
	Roots *x509.CertPool
}

// New builds a line as cfg says and, unless cfg.NoServer, serves it.
func New(tb testing.TB, cfg Config) *Line {
	tb.Helper()
	pki := testpki.New(tb, testpki.Config{Organization: "-", RootName: "Test Root CA", IssuingName: "Test Issuing CA"})
	l := &Line{tb: tb, PKI: pki, Ledger: cfg.Ledger, Roots: pki.Roots()}
	if l.Ledger == nil {
		l.Ledger = testpki.Ledger(tb)
	}
	l.Authority = pki.Authority(tb, l.Ledger, func(c *ca.Config) { c.Quota, c.Time = cfg.Quota, cfg.Time })
	l.Nonces = attest.NewNonces(cfg.NonceConfig)
	n := max(cfg.Devices, 1)
	keys := make(map[string]crypto.PublicKey, n)
	for i := range n {
		d := NewDevice(tb, i)
		keys[string(d.KID)] = d.AttKey.Public()
		l.Devices = append(l.Devices, d)
	}
	var err error
	l.Verifier, err = attest.NewVerifier(attest.Config{Keys: keys, Nonces: l.Nonces,
		ReferenceValues: []attest.ReferenceValues{l.Devices[0].Sim.ReferenceValues()}})
	if err != nil {
		tb.Fatal(err)
	}
	sc := enroll.Config{Authority: l.Authority, Verifier: l.Verifier, Nonces: l.Nonces}
	if cfg.Service != nil {
		cfg.Service(&sc)
	}
	if l.Service, err = enroll.New(sc); err != nil {
		tb.Fatal(err)
	}
	esc := est.ServerConfig{Service: l.Service}
	if cfg.Server != nil {
		cfg.Server(&esc)
	}
	if l.Server, err = est.NewServer(esc); err != nil {
		tb.Fatal(err)
	}
	if !cfg.NoServer {
		l.Start()
	}
	return l
}

// Start serves the line's Server on 127.0.0.1 over TLS, with a
// certificate from [ServerTLS], until the test's cleanup.
func (l *Line) Start() {
	l.tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		l.tb.Fatal(err)
	}
	addr := ln.Addr().String()
	l.URL = "https://" + addr
	l.HTTP = est.NewHTTPServer(addr, l.Server, est.ServerTLSConfig(ServerTLS(l.tb, l.PKI)))
	l.HTTP.ErrorLog = log.New(io.Discard, "", 0)
	go l.HTTP.ServeTLS(ln, "", "")
	srv := l.HTTP
	l.tb.Cleanup(func() { srv.Close() })
}

// ServerTLS is an EST server's TLS certificate for 127.0.0.1
// (serverAuth), issued by pki's root, so that a client trusting the root
// (and cacerts bootstrap) verifies it.
func ServerTLS(tb testing.TB, pki *testpki.PKI) tls.Certificate {
	tb.Helper()
	k := newKey(tb)
	der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "est.test"},
		NotBefore:    time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}, pki.Root, k.Public(), pki.RootKey)
	if err != nil {
		tb.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: k}
}

// Station issues a station certificate allowed the step "provision" and
// the given profiles, and returns it with its key.
func (l *Line) Station(profiles ...string) (*x509.Certificate, *ecdsa.PrivateKey) {
	l.tb.Helper()
	return testpki.Station(l.tb, l.Authority, []string{"provision"}, profiles)
}

// Client is an EST client of the line's Server, trusting Roots, with the
// TLS client certificate cert and its key (none if cert is nil); it is
// closed by the test's cleanup.
func (l *Line) Client(cert *x509.Certificate, key crypto.Signer) *est.Client {
	l.tb.Helper()
	cfg := est.ClientConfig{URL: l.URL, Roots: l.Roots}
	if cert != nil {
		cfg.Certificate = &tls.Certificate{Certificate: [][]byte{cert.Raw}, PrivateKey: key, Leaf: cert}
	}
	c, err := est.NewClient(cfg)
	if err != nil {
		l.tb.Fatal(err)
	}
	l.tb.Cleanup(c.Close)
	return c
}

// Issuances is the number of records in the CA's ledger (issuances and
// revocations: its head's sequence number). Unlike the other methods it
// does not call tb.Helper, so that a fuzz target may call it.
func (l *Line) Issuances() uint64 {
	h, err := l.Ledger.Head(context.Background())
	if err != nil {
		l.tb.Fatal(err)
	}
	return h.Seq
}
