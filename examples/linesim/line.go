package linesim

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"time"

	"github.com/ztmkit/ztm"
	"github.com/ztmkit/ztm/attest"
	"github.com/ztmkit/ztm/ca"
	"github.com/ztmkit/ztm/ca/enroll"
	"github.com/ztmkit/ztm/ca/ledger/memledger"
	"github.com/ztmkit/ztm/identity/keystore"
	"github.com/ztmkit/ztm/identity/keystore/mem"
	"github.com/ztmkit/ztm/manifest"
	"github.com/ztmkit/ztm/manifest/memchain"
	"github.com/ztmkit/ztm/transport/est"
)

// Role is a partner on the line.
type Role int

// The partners. Rogue is a station with a valid certificate that the CA
// does not authorize to enroll devices.
const (
	ChipVendor Role = iota
	ContractManufacturer
	OEM
	Rogue
	numRoles
)

// String names the role as steps and policies do.
func (r Role) String() string {
	return [...]string{"chip-vendor", "contract-manufacturer", "oem", "rogue"}[r]
}

// Steps each partner may sign, and the CA profiles it may request.
func authorization(r Role) *ca.StationAuthorization {
	switch r {
	case ChipVendor:
		return &ca.StationAuthorization{Steps: []string{manifest.StepDieSort}}
	case ContractManufacturer:
		return &ca.StationAuthorization{Steps: cmSteps(), Profiles: []string{"idevid"}}
	case OEM:
		return &ca.StationAuthorization{Steps: []string{manifest.StepFinalTest, manifest.StepPack, ztm.StepKeyDestroyed, ztm.StepDecommissioned}}
	default: // Rogue: the steps of a CM, no profile.
		return &ca.StationAuthorization{Steps: cmSteps()}
	}
}

func cmSteps() []string {
	return []string{manifest.StepFirmwareLoad, ztm.StepKeyGeneration, ztm.StepKeyInjection,
		ztm.StepKeyDestroyed, ztm.StepEnrollment, ztm.StepInstallFailed, ztm.StepReprovisioned}
}

// Partner is one partner's station.
type Partner struct {
	Role Role
	// Key is the station key, in the partner's own store.
	Key keystore.Key
	// Chain is the station certificate chain, leaf first.
	Chain []*x509.Certificate
	// Station is the partner's ztm station.
	Station *ztm.Station
	// Store is the partner's key store (station key, injected keys).
	Store keystore.Store

	enroller enroll.Enroller
}

// StepStore is what the line needs of the step store its stations share:
// a ztm.StepStore that also appends one step (Append), walks a lot
// (Lot, for the lot manifest) and closes. *chainstore.Store (package
// manifest/chainstore, a SQLite file) and *memchain.Store (package
// manifest/memchain, in memory) are both one.
type StepStore interface {
	ztm.StepStore
	// Append stores one signed step, as AppendAll does.
	Append(ctx context.Context, raw []byte) (*manifest.SignedStep, error)
	// Lot calls fn, in subject order, with the subject and the exact
	// bytes of the latest step of each device whose latest step names
	// lot: the leaves of the lot's manifest.
	Lot(ctx context.Context, lot string, fn func(subject, latest []byte) error) error
	// Close releases the store.
	Close() error
}

var _ StepStore = (*memchain.Store)(nil)

// Config configures NewLine. Its zero value is a line in memory.
type Config struct {
	// OpenLedger opens the CA's issuance ledger; the line closes it. A
	// real line keeps it durable, in ca/ledger/sqlite or
	// ca/ledger/postgres (examples/factoryline passes sqlite.Open). If
	// nil, the ledger is in memory (ca/ledger/memledger) and lost when
	// the line closes.
	OpenLedger func(ctx context.Context) (ca.Ledger, error)
	// OpenStepStore opens the step store every station writes; the line
	// closes it. A real line keeps its steps in manifest/chainstore
	// (examples/factoryline passes chainstore.Open). If nil, the steps are
	// in memory (manifest/memchain).
	OpenStepStore func(ctx context.Context) (StepStore, error)
	// Lot is the lot the OEM packs devices into. If empty, "lot-1".
	Lot string
	// EST makes stations enroll over EST: an est.Server on a random port
	// of 127.0.0.1 over TLS, each station authenticated by its station
	// certificate. Otherwise each station enrolls in process through the
	// same enroll.Service (enroll.Service.Local).
	EST bool
	// Observer and Logger are set on every partner's station
	// (ztm.StationConfig.Observer, .Logger). Optional.
	Observer ztm.Observer
	Logger   *slog.Logger
}

// Line is a simulated production line's infrastructure.
type Line struct {
	Lot string
	// Authority is the IDevID CA; Roots holds its root.
	Authority *ca.Authority
	Root      *x509.Certificate
	// Ledger is the CA's issuance ledger (Config.OpenLedger).
	Ledger ca.Ledger
	// Service holds the CA side's enrollment checks (evidence, authorization,
	// idempotency through the ledger).
	Service *enroll.Service
	// ESTURL is the EST server's base URL when Config.EST is set.
	ESTURL string
	// CAVerifier is the CA side's evidence verifier (it consumes nonces).
	CAVerifier *attest.EATVerifier
	// StationVerifier is the stations' local verifier (no nonces).
	StationVerifier *attest.EATVerifier
	// Chains is the step store every station writes
	// (Config.OpenStepStore).
	Chains StepStore
	// OEMKey signs the policy and the lot manifest.
	OEMKey   crypto.Signer
	Partners [numRoles]*Partner

	akCA  *x509.Certificate
	akKey crypto.Signer

	estServer *http.Server
	estRoots  *x509.CertPool
}

// NewLine sets up a line: its CA on the ledger cfg.OpenLedger opens, its
// stations writing to the step store cfg.OpenStepStore opens.
func NewLine(ctx context.Context, cfg Config) (l *Line, err error) {
	if cfg.Lot == "" {
		cfg.Lot = "lot-1"
	}
	l = &Line{Lot: cfg.Lot}
	defer func() {
		if err != nil {
			l.Close()
		}
	}()
	if err := l.newCA(ctx, cfg.OpenLedger); err != nil {
		return nil, err
	}
	if err := l.newVerifiers(); err != nil {
		return nil, err
	}
	if cfg.EST {
		if err := l.startEST(); err != nil {
			return nil, err
		}
	}
	if cfg.OpenStepStore == nil {
		l.Chains = memchain.New()
	} else {
		steps, err := cfg.OpenStepStore(ctx)
		if err != nil {
			return nil, fmt.Errorf("linesim: step store: %w", err)
		}
		if steps == nil {
			return nil, errors.New("linesim: OpenStepStore returned no store")
		}
		l.Chains = steps
	}
	l.OEMKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	for r := Role(0); r < numRoles; r++ {
		p, err := l.newPartner(ctx, r, cfg)
		if err != nil {
			return nil, fmt.Errorf("linesim: station %v: %w", r, err)
		}
		l.Partners[r] = p
	}
	return l, nil
}

// newCA makes the IDevID CA: a root, an issuing intermediate, and the
// Authority over the ledger open returns (in memory if open is nil).
func (l *Line) newCA(ctx context.Context, open func(context.Context) (ca.Ledger, error)) error {
	caStore := mem.New()
	rootKey, err := caStore.Create(ctx, keystore.CreateRequest{Label: "root"})
	if err != nil {
		return err
	}
	l.Root, err = ca.NewRoot(ca.RootRequest{Subject: pkix.Name{CommonName: "ZTM Widgets IDevID Root", Organization: []string{"ZTM Widgets"}}, Signer: rootKey})
	if err != nil {
		return err
	}
	issKey, err := caStore.Create(ctx, keystore.CreateRequest{Label: "issuing"})
	if err != nil {
		return err
	}
	iss, err := ca.NewIntermediate(ca.IntermediateRequest{
		Subject:   pkix.Name{CommonName: "ZTM Widgets IDevID CA 1", Organization: []string{"ZTM Widgets"}},
		PublicKey: issKey.Public(), Parent: l.Root, ParentSigner: rootKey,
	})
	if err != nil {
		return err
	}
	if open == nil {
		l.Ledger = memledger.New()
	} else {
		ledger, err := open(ctx)
		if err != nil {
			return fmt.Errorf("linesim: ledger: %w", err)
		}
		if ledger == nil {
			return errors.New("linesim: OpenLedger returned no ledger")
		}
		l.Ledger = ledger
	}
	l.Authority, err = ca.New(ca.Config{Signer: issKey, Chain: []*x509.Certificate{iss, l.Root}, Ledger: l.Ledger})
	if err != nil {
		return err
	}
	return nil
}

// newVerifiers makes the chip vendor's attestation CA, the CA side's
// verifier (with nonces) and enrollment service, and the stations' local
// verifier.
func (l *Line) newVerifiers() error {
	// The chip vendor's attestation CA certifies device attestation keys.
	akKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	l.akKey = akKey
	l.akCA, err = ca.NewRoot(ca.RootRequest{Subject: pkix.Name{CommonName: "Chip Vendor Attestation CA", Organization: []string{"Chip Vendor"}}, Signer: akKey})
	if err != nil {
		return err
	}
	roots := x509.NewCertPool()
	roots.AddCert(l.akCA)
	// Reference values: those of an honest device of the model.
	probe, err := l.NewDevice(0, DeviceOptions{})
	if err != nil {
		return err
	}
	refs := []attest.ReferenceValues{probe.sim.ReferenceValues()}
	l.CAVerifier, err = attest.NewVerifier(attest.Config{
		Roots: roots, Nonces: attest.NewNonces(attest.NonceConfig{}), ReferenceValues: refs,
		VerifierID: attest.VerifierID{Build: "ztm-ca", Developer: "https://github.com/ztmkit/ztm"},
	})
	if err != nil {
		return err
	}
	l.Service, err = enroll.New(enroll.Config{
		Authority: l.Authority, Verifier: l.CAVerifier, // its nonce source is the verifier's
		// Devices that cannot make keys get one injected by the contract
		// manufacturer, whose authorization lists key injection; every
		// other IDevID key must be confirmed by the device's evidence.
		InjectedKeyProfiles: []string{"idevid"},
	})
	if err != nil {
		return err
	}
	l.StationVerifier, err = attest.NewVerifier(attest.Config{
		Roots: roots, ReferenceValues: refs,
		VerifierID: attest.VerifierID{Build: "ztm-station", Developer: "https://github.com/ztmkit/ztm"},
	})
	if err != nil {
		return err
	}
	return nil
}

func (l *Line) newPartner(ctx context.Context, r Role, cfg Config) (*Partner, error) {
	store := mem.New()
	key, err := store.Create(ctx, keystore.CreateRequest{Label: "station"})
	if err != nil {
		return nil, err
	}
	tmpl := &x509.CertificateRequest{Subject: pkix.Name{CommonName: r.String() + "-station-1", OrganizationalUnit: []string{r.String()}}}
	csr, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		return nil, err
	}
	cert, err := l.Authority.Issue(ctx, &ca.Request{CSR: csr, Profile: "station", Requester: "line-setup", Station: authorization(r)})
	if err != nil {
		return nil, err
	}
	p := &Partner{Role: r, Key: key, Store: store, Chain: []*x509.Certificate{cert, l.Authority.Chain()[0]}}
	var enr enroll.Enroller = l.Service.Local(enroll.Requester{Certificate: cert})
	if cfg.EST {
		c, err := est.NewClient(est.ClientConfig{
			URL: l.ESTURL, Roots: l.estRoots,
			Certificate: &tls.Certificate{Certificate: [][]byte{cert.Raw, p.Chain[1].Raw}, PrivateKey: key, Leaf: cert},
		})
		if err != nil {
			return nil, err
		}
		enr = c
	}
	p.enroller = enr
	lot := ""
	if r == OEM {
		lot = l.Lot
	}
	p.Station, err = ztm.NewStation(ztm.StationConfig{
		Name: r.String(), Key: key, CertChain: p.Chain, Enroller: enr,
		Verifier: l.StationVerifier, StepStore: l.Chains, Store: store,
		Revoker: l.Authority, Lot: lot, Observer: cfg.Observer, Logger: cfg.Logger,
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// certifyAK issues the chip vendor's certificate for a device's
// attestation key.
func (l *Line) certifyAK(pub crypto.PublicKey, serial string) (*x509.Certificate, error) {
	sn, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: sn.Add(sn, big.NewInt(1)),
		Subject:      pkix.Name{CommonName: serial + " AK", Organization: []string{"Chip Vendor"}},
		NotBefore:    now.Add(-time.Hour), NotAfter: now.AddDate(20, 0, 0),
		KeyUsage: x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, l.akCA, pub, l.akKey)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

// Policy returns the OEM's policy for the line: which partner signs which
// step, in order.
func (l *Line) Policy() *manifest.Policy {
	key := func(r Role) manifest.PolicyKey {
		return manifest.PolicyKey{Name: r.String(), Public: l.Partners[r].Key.Public()}
	}
	cm, oem := ContractManufacturer.String(), OEM.String()
	return &manifest.Policy{
		Name: "ztm-widget-line", Version: 1, Issuer: "ZTM Widgets",
		Keys: []manifest.PolicyKey{key(ChipVendor), key(ContractManufacturer), key(OEM)},
		Steps: []manifest.StepRule{
			{Name: manifest.StepDieSort, Signers: []string{ChipVendor.String()}},
			{Name: manifest.StepFirmwareLoad, Signers: []string{cm}},
			{Name: ztm.StepKeyGeneration, Signers: []string{cm}, Optional: true},
			{Name: ztm.StepKeyInjection, Signers: []string{cm}, Optional: true},
			{Name: ztm.StepKeyDestroyed, Signers: []string{cm, oem}, Optional: true},
			{Name: ztm.StepEnrollment, Signers: []string{cm}},
			{Name: ztm.StepReprovisioned, Signers: []string{cm}, Optional: true},
			{Name: manifest.StepFinalTest, Signers: []string{oem}},
			{Name: manifest.StepPack, Signers: []string{oem}},
		},
	}
}

// startEST serves the Service over EST on 127.0.0.1 with a TLS certificate
// of its own.
func (l *Line) startEST() error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "est.line.test"},
		NotBefore:    now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return err
	}
	l.estRoots = x509.NewCertPool()
	l.estRoots.AddCert(cert)
	srv, err := est.NewServer(est.ServerConfig{Service: l.Service})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	l.estServer = est.NewHTTPServer(ln.Addr().String(), srv, est.ServerTLSConfig(tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}))
	l.ESTURL = "https://" + ln.Addr().String()
	go l.estServer.ServeTLS(ln, "", "")
	return nil
}

// Close stops the EST server and closes the chain store and the ledger.
func (l *Line) Close() error {
	var errs []error
	if l.estServer != nil {
		errs = append(errs, l.estServer.Close())
	}
	for _, p := range l.Partners {
		if p == nil {
			continue
		}
		if c, ok := p.enroller.(*est.Client); ok {
			c.Close()
		}
	}
	if l.Chains != nil {
		errs = append(errs, l.Chains.Close())
	}
	if l.Ledger != nil {
		errs = append(errs, l.Ledger.Close())
	}
	return errors.Join(errs...)
}
