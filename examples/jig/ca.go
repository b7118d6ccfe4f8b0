package main

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"path/filepath"

	"github.com/ztmkit/ztm"
	"github.com/ztmkit/ztm/attest"
	"github.com/ztmkit/ztm/ca"
	"github.com/ztmkit/ztm/ca/enroll"
	"github.com/ztmkit/ztm/ca/ledger/sqlite"
	"github.com/ztmkit/ztm/identity/keystore"
	"github.com/ztmkit/ztm/identity/keystore/mem"
	"github.com/ztmkit/ztm/manifest/chainstore"
	"github.com/ztmkit/ztm/transport/est"
)

// plantCA is what the jig sets up in place of the plant's CA: on a real
// line the CA, its ledger and the registration authority run elsewhere and
// the station reaches them over EST; the chain store may be the line's.
type plantCA struct {
	authority *ca.Authority
	ledger    *sqlite.Ledger
	chains    *chainstore.Store
	// akeys are the devices' attestation keys by key ID: the verifier
	// looks keys up in it, so that a key registered while the line runs
	// (a new lot of chips) is used without a restart. refs are the
	// reference values of the devices' firmware.
	akeys attest.KeySet
	refs  []attest.ReferenceValues
	// verifier appraises evidence, configured once: the CA's service
	// consumes the nonces it issues, and the station, given the same
	// verifier, checks the nonce it asked for without consuming it.
	verifier *attest.EATVerifier
	service  *enroll.Service
}

// newCA makes a root CA (in memory: a key ceremony, in reality), a SQLite
// ledger and a chain store in dir.
func newCA(ctx context.Context, dir string) (_ *plantCA, err error) {
	p := &plantCA{}
	defer func() {
		if err != nil {
			p.Close()
		}
	}()
	caKey, err := mem.New().Create(ctx, keystore.CreateRequest{Label: "ca", Algorithm: keystore.ES256})
	if err != nil {
		return nil, err
	}
	root, err := ca.NewRoot(ca.RootRequest{Subject: pkix.Name{CommonName: "Jig IDevID CA"}, Signer: caKey})
	if err != nil {
		return nil, err
	}
	if p.ledger, err = sqlite.Open(ctx, filepath.Join(dir, "ledger.db"), sqlite.Options{}); err != nil {
		return nil, err
	}
	if p.authority, err = ca.New(ca.Config{Signer: caKey, Chain: []*x509.Certificate{root}, Ledger: p.ledger}); err != nil {
		return nil, err
	}
	if p.chains, err = chainstore.Open(ctx, filepath.Join(dir, "chains.db")); err != nil {
		return nil, err
	}
	return p, nil
}

// register registers a board's attestation key and, for the first board,
// the reference values of the model's firmware.
func (p *plantCA) register(b *board) error {
	if err := p.akeys.Add(b.akID, b.ak.Public()); err != nil {
		return err
	}
	if p.refs == nil {
		p.refs = []attest.ReferenceValues{b.sim.ReferenceValues()}
	}
	return nil
}

// certifyStation issues the station its certificate: the steps it may sign
// and the profile it may enroll devices under.
func (p *plantCA) certifyStation(ctx context.Context, key crypto.Signer) (*x509.Certificate, error) {
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: stationName}}, key)
	if err != nil {
		return nil, err
	}
	return p.authority.Issue(ctx, &ca.Request{CSR: csr, Profile: "station", Requester: "jig-setup",
		Station: &ca.StationAuthorization{
			Steps:    []string{ztm.StepKeyGeneration, ztm.StepEnrollment, ztm.StepInstallFailed, "final-test"},
			Profiles: []string{"idevid"},
		}})
}

// enroller makes the verifier and the registration authority, and returns
// the station's way to it: in process (enroll.Local), or an EST client
// over mutual TLS with the station's certificate.
func (p *plantCA) enroller(ctx context.Context, overEST bool, key crypto.Signer, cert *x509.Certificate) (enroll.Enroller, func(), error) {
	var err error
	p.verifier, err = attest.NewVerifier(attest.Config{
		KeyLookup:       p.akeys.Lookup,
		ReferenceValues: p.refs,
		Nonces:          attest.NewNonces(attest.NonceConfig{}), // the one nonce source
	})
	if err != nil {
		return nil, nil, err
	}
	if p.service, err = enroll.New(enroll.Config{Authority: p.authority, Verifier: p.verifier}); err != nil {
		return nil, nil, err
	}
	if !overEST {
		return p.service.Local(enroll.Requester{Certificate: cert}), func() {}, nil
	}
	url, roots, stop, err := estServer(p.service)
	if err != nil {
		return nil, nil, err
	}
	client, err := est.NewClient(est.ClientConfig{URL: url, Roots: roots,
		Certificate: &tls.Certificate{Certificate: [][]byte{cert.Raw}, PrivateKey: key, Leaf: cert}})
	if err != nil {
		stop()
		return nil, nil, err
	}
	return client, func() { client.Close(); stop() }, nil
}

// Close closes the chain store and the ledger.
func (p *plantCA) Close() error {
	var errs []error
	if p.chains != nil {
		errs = append(errs, p.chains.Close())
	}
	if p.ledger != nil {
		errs = append(errs, p.ledger.Close())
	}
	return errors.Join(errs...)
}
