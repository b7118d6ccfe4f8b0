package est_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"log"
	"math/big"
	"net"
	"time"

	"github.com/ztmkit/ztm/attest"
	"github.com/ztmkit/ztm/attest/devicesim"
	"github.com/ztmkit/ztm/ca"
	"github.com/ztmkit/ztm/ca/enroll"
	"github.com/ztmkit/ztm/ca/ledger/memledger"
	"github.com/ztmkit/ztm/identity"
	"github.com/ztmkit/ztm/transport/est"
)

// An EST server: an enroll.Service over the CA and the verifier, the Server handler,
// and an http.Server with timeouts and TLS 1.2+. The examples' CA keeps its
// ledger in memory (ca/ledger/memledger); a line's CA keeps it in
// ca/ledger/sqlite or ca/ledger/postgres.
func ExampleServer() {
	pki := newExamplePKI()
	defer pki.close()

	gate, err := enroll.New(enroll.Config{
		Authority: pki.auth, Verifier: pki.verifier, Nonces: pki.nonces,
	})
	if err != nil {
		log.Fatal(err)
	}
	handler, err := est.NewServer(est.ServerConfig{Service: gate})
	if err != nil {
		log.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	srv := est.NewHTTPServer(l.Addr().String(), handler, est.ServerTLSConfig(pki.serverCert))
	go srv.ServeTLS(l, "", "")
	defer srv.Close()

	// Anyone trusting the root can read the CA certificates.
	c, err := est.NewClient(est.ClientConfig{URL: "https://" + l.Addr().String(), Roots: pki.roots})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	certs, err := c.CACerts(context.Background(), "")
	if err != nil {
		log.Fatal(err)
	}
	for _, cert := range certs {
		fmt.Println(cert.Subject)
	}
	// Output:
	// CN=Line 1 Issuing CA,O=Example OEM
	// CN=Example OEM Root CA,O=Example OEM
}

// An EST server that offers HTTP/2, with tighter limits than the defaults,
// and accepts client chains of at most three certificates.
func ExampleHTTPConfig() {
	pki := newExamplePKI()
	defer pki.close()
	gate, err := enroll.New(enroll.Config{Authority: pki.auth, Verifier: pki.verifier, Nonces: pki.nonces})
	if err != nil {
		log.Fatal(err)
	}
	handler, err := est.NewServer(est.ServerConfig{
		Service:               gate,
		MaxClientCertificates: 3,
		HTTP:                  est.HTTPConfig{HTTP2: true, MaxConcurrentStreams: 8},
	})
	if err != nil {
		log.Fatal(err)
	}
	srv := est.NewHTTPServer("127.0.0.1:8443", handler, est.ServerTLSConfig(pki.serverCert))
	fmt.Println("HTTP/2:", srv.Protocols.HTTP2(), "streams:", srv.HTTP2.MaxConcurrentStreams)
	// Output:
	// HTTP/2: true streams: 8
}

// A station enrolls a device: it fetches a nonce, has the device attest
// and make its request, and sends both over mutual TLS with its station
// certificate.
func ExampleClient_Enroll() {
	pki := newExamplePKI()
	defer pki.close()
	url, stop := pki.serve()
	defer stop()
	ctx := context.Background()

	station, err := est.NewClient(est.ClientConfig{URL: url, Roots: pki.roots, Certificate: &pki.stationCert})
	if err != nil {
		log.Fatal(err)
	}
	defer station.Close()

	nonce, err := station.Nonce(ctx)
	if err != nil {
		log.Fatal(err)
	}
	// The device made its identity key; its evidence confirms it (cnf).
	pki.device.BindKey(pki.deviceKey.Public())
	evidence, err := pki.device.EvidenceCWT(nonce)
	if err != nil {
		log.Fatal(err)
	}
	csr, err := identity.CreateCSR(nil, pki.deviceKey, identity.DeviceInfo{
		SerialNumber:   "SN-000123",
		HardwareModule: identity.HardwareModuleName{Type: []int{1, 3, 6, 1, 4, 1, 55555, 1}, SerialNumber: pki.ueid},
	})
	if err != nil {
		log.Fatal(err)
	}
	chain, err := station.Enroll(ctx, &enroll.Request{CSR: csr, Profile: "idevid", Evidence: evidence})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("device:", chain[0].Subject)
	fmt.Println("issuer:", chain[0].Issuer)
	fmt.Println("chain:", len(chain), "certificates")

	// Enrolling the same request again returns the same certificate.
	again, err := station.Enroll(ctx, &enroll.Request{CSR: csr, Profile: "idevid", Evidence: evidence})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("same certificate:", again[0].Equal(chain[0]))
	// Output:
	// device: SERIALNUMBER=SN-000123
	// issuer: CN=Line 1 Issuing CA,O=Example OEM
	// chain: 2 certificates
	// same certificate: true
}

// examplePKI is the setup of the examples: a root and issuing CA with a
// ledger in memory, a verifier with a device's reference values, a station
// certificate, and the server's TLS certificate.
type examplePKI struct {
	auth        *ca.Authority
	ledger      *memledger.Ledger
	nonces      *attest.Nonces
	verifier    *attest.EATVerifier
	roots       *x509.CertPool
	serverCert  tls.Certificate
	stationCert tls.Certificate
	device      *devicesim.Device
	deviceKey   crypto.Signer
	ueid        []byte
}

func must[T any](v T, err error) T {
	if err != nil {
		log.Fatal(err)
	}
	return v
}

func newExamplePKI() *examplePKI {
	ctx := context.Background()
	p := &examplePKI{}
	key := func() *ecdsa.PrivateKey { return must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader)) }
	rootKey, interKey := key(), key()
	root := must(ca.NewRoot(ca.RootRequest{Subject: pkix.Name{Organization: []string{"Example OEM"}, CommonName: "Example OEM Root CA"}, Signer: rootKey}))
	inter := must(ca.NewIntermediate(ca.IntermediateRequest{Subject: pkix.Name{Organization: []string{"Example OEM"}, CommonName: "Line 1 Issuing CA"},
		PublicKey: interKey.Public(), Parent: root, ParentSigner: rootKey}))
	p.ledger = memledger.New()
	p.auth = must(ca.New(ca.Config{Signer: interKey, Chain: []*x509.Certificate{inter, root}, Ledger: p.ledger}))
	p.roots = x509.NewCertPool()
	p.roots.AddCert(root)

	// The device and the verifier that knows it.
	attKey := key()
	p.deviceKey = key()
	p.ueid = append([]byte{0x01}, make([]byte, 16)...)
	p.device = must(devicesim.New(devicesim.Config{Key: attKey, KeyID: []byte("dev-1"), UEID: p.ueid,
		OEMID: []byte{0x00, 0x1b, 0x63}, HWModel: []byte("sensor-v2"), SWName: "fw", SWVersion: "1.0",
		Images: map[string][]byte{"firmware": []byte("image")}}))
	p.nonces = attest.NewNonces(attest.NonceConfig{})
	p.verifier = must(attest.NewVerifier(attest.Config{Keys: map[string]crypto.PublicKey{"dev-1": attKey.Public()},
		Nonces: p.nonces, ReferenceValues: []attest.ReferenceValues{p.device.ReferenceValues()}}))

	// The station's certificate, allowed to enroll IDevIDs.
	stKey := key()
	stCSR := must(x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "station 7"}}, stKey))
	st := must(p.auth.Issue(ctx, &ca.Request{CSR: stCSR, Profile: "station", Requester: "ceremony",
		Station: &ca.StationAuthorization{Steps: []string{"provision"}, Profiles: []string{"idevid"}}}))
	p.stationCert = tls.Certificate{Certificate: [][]byte{st.Raw}, PrivateKey: stKey}

	// The server's TLS certificate for 127.0.0.1.
	srvKey := key()
	srv := must(x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "est.example"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}, root, srvKey.Public(), rootKey))
	p.serverCert = tls.Certificate{Certificate: [][]byte{srv}, PrivateKey: srvKey}
	return p
}

// serve runs an EST server for p on 127.0.0.1.
func (p *examplePKI) serve() (string, func()) {
	gate := must(enroll.New(enroll.Config{Authority: p.auth, Verifier: p.verifier, Nonces: p.nonces}))
	h := must(est.NewServer(est.ServerConfig{Service: gate}))
	l := must(net.Listen("tcp", "127.0.0.1:0"))
	srv := est.NewHTTPServer(l.Addr().String(), h, est.ServerTLSConfig(p.serverCert))
	go srv.ServeTLS(l, "", "")
	return "https://" + l.Addr().String(), func() { srv.Close() }
}

func (p *examplePKI) close() {
	p.ledger.Close()
}
