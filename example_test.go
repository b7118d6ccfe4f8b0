package ztm_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"

	"github.com/ztmkit/ztm"
	"github.com/ztmkit/ztm/attest"
	"github.com/ztmkit/ztm/attest/devicesim"
	"github.com/ztmkit/ztm/ca"
	"github.com/ztmkit/ztm/ca/enroll"
	"github.com/ztmkit/ztm/ca/ledger/memledger"
	"github.com/ztmkit/ztm/identity"
	"github.com/ztmkit/ztm/identity/keystore"
	"github.com/ztmkit/ztm/identity/keystore/mem"
	"github.com/ztmkit/ztm/manifest/memchain"
)

// jig is what an OEM writes: the station's view of the device on its test
// jig. This one drives a simulated device; a real jig talks to the device
// over its test port.
type jig struct {
	info identity.DeviceInfo
	dev  *devicesim.Device
	key  crypto.Signer
	cert *x509.Certificate
}

func (j *jig) Info(ctx context.Context) (identity.DeviceInfo, error) { return j.info, nil }

func (j *jig) Attest(ctx context.Context, nonce []byte) ([]byte, error) {
	return j.dev.EvidenceCWT(nonce)
}

func (j *jig) GenerateKey(ctx context.Context, alg keystore.Algorithm) ([]byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader) // on the device, in reality
	if err != nil {
		return nil, err
	}
	j.key = key
	j.dev.BindKey(key.Public()) // the device's evidence confirms its key (cnf)
	return identity.CreateCSR(rand.Reader, key, j.info)
}

func (j *jig) InstallChain(ctx context.Context, chain []*x509.Certificate) error {
	j.cert = chain[0]
	return nil
}

// exampleLine sets up what ExampleStation_Provision describes and returns
// the station, the device on its jig and a cleanup function.
func exampleLine() (*ztm.Station, *jig, func()) {
	ctx := context.Background()
	var closers []func() error
	cleanup := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	must := func(err error) {
		if err != nil {
			cleanup()
			panic(err)
		}
	}

	// The CA: a root (a key ceremony, in reality), a ledger and the
	// registration authority (enroll.Service). The ledger is in memory
	// here; a line's CA keeps it in ca/ledger/sqlite or ca/ledger/postgres.
	keys := mem.New()
	caKey, err := keys.Create(ctx, keystore.CreateRequest{Label: "ca"})
	must(err)
	root, err := ca.NewRoot(ca.RootRequest{Subject: pkix.Name{CommonName: "Example IDevID CA"}, Signer: caKey})
	must(err)
	ledger := memledger.New()
	closers = append(closers, ledger.Close)
	authority, err := ca.New(ca.Config{Signer: caKey, Chain: []*x509.Certificate{root}, Ledger: ledger})
	must(err)

	// The device's model: its attestation key is registered by key ID.
	ak, err := keys.Create(ctx, keystore.CreateRequest{Label: "device-ak"})
	must(err)
	ueid := identity.NewEUI64UEID([8]byte{0x00, 0x00, 0x5e, 0xfe, 0, 0, 0, 1})
	sim, err := devicesim.New(devicesim.Config{
		Key: ak, KeyID: []byte("ak-1"), UEID: ueid.Bytes(), OEMID: []byte{0x00, 0x00, 0x5e},
		HWModel: []byte("widget"), SWName: "fw", SWVersion: "1.0",
		Images: map[string][]byte{"firmware": []byte("firmware image")},
	})
	must(err)
	// One verifier with the one nonce source: the CA consumes the nonces,
	// the station checks the one it asked for.
	verifier, err := attest.NewVerifier(attest.Config{
		Keys:            map[string]crypto.PublicKey{"ak-1": ak.Public()},
		ReferenceValues: []attest.ReferenceValues{sim.ReferenceValues()},
		Nonces:          attest.NewNonces(attest.NonceConfig{}),
	})
	must(err)
	gate, err := enroll.New(enroll.Config{Authority: authority, Verifier: verifier})
	must(err)

	// The station: its key, its certificate, its step store (in memory
	// here; manifest/chainstore on a line).
	stationKey, err := keys.Create(ctx, keystore.CreateRequest{Label: "station"})
	must(err)
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "cm-station-1"}}, stationKey)
	must(err)
	stationCert, err := authority.Issue(ctx, &ca.Request{CSR: csr, Profile: "station", Requester: "setup",
		Station: &ca.StationAuthorization{
			Steps:    []string{ztm.StepKeyGeneration, ztm.StepEnrollment, ztm.StepInstallFailed, ztm.StepKeyDestroyed, ztm.StepDecommissioned},
			Profiles: []string{"idevid"},
		}})
	must(err)
	steps := memchain.New()
	closers = append(closers, steps.Close)
	station, err := ztm.NewStation(ztm.StationConfig{
		Name: "cm-station-1", Key: stationKey, CertChain: []*x509.Certificate{stationCert},
		Enroller: gate.Local(enroll.Requester{Certificate: stationCert}),
		Verifier: verifier, StepStore: steps, Revoker: authority,
	})
	must(err)

	// The device on the jig. Its hardwareModuleName carries its UEID, which
	// ties the certificate to the evidence.
	dev := &jig{dev: sim, info: identity.DeviceInfo{
		UEID: ueid, SerialNumber: "WIDGET-0001",
		HardwareModule: identity.HardwareModuleName{Type: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 32473, 1}, SerialNumber: ueid.Bytes()},
	}}
	return station, dev, cleanup
}

// A station provisions one device: the CA side (an Authority and its
// ledger behind an enroll.Service, in process here; over EST with
// est.Client in a real plant) re-checks the evidence the station checked first. The setup
// is in exampleLine; ExampleNewStation shows the same setup whole.
func ExampleStation_Provision() {
	station, dev, cleanup := exampleLine()
	defer cleanup()
	ctx := context.Background()

	res, err := station.Provision(ctx, dev)
	var pe *ztm.ProvisionError
	if errors.As(err, &pe) {
		fmt.Println("failed at", pe.Stage, pe.Err)
		return
	}
	fmt.Println("appraisal:", res.Attestation.Status())
	fmt.Println("certificate for:", dev.cert.Subject.SerialNumber)
	for _, s := range res.Steps {
		fmt.Printf("step %d: %s by %s\n", s.Step.Sequence, s.Step.Name, s.Issuer)
	}

	// A device whose debug port is open is refused before any certificate
	// exists.
	dev.dev.SetTamper(devicesim.Tamper{DebugEnabled: true})
	_, err = station.Provision(ctx, dev)
	if errors.As(err, &pe) {
		fmt.Println("tampered device refused at", pe.Stage, errors.Is(err, ztm.ErrRefused))
	}
	// Output:
	// appraisal: affirming
	// certificate for: WIDGET-0001
	// step 0: key-generation by cm-station-1
	// step 1: enrollment by cm-station-1
	// tampered device refused at appraisal true
}

// At end of life the station revokes the device's certificate, has the
// device destroy its key, and records both.
func ExampleStation_Decommission() {
	station, dev, cleanup := exampleLine()
	defer cleanup()
	ctx := context.Background()
	if _, err := station.Provision(ctx, dev); err != nil {
		panic(err)
	}
	steps, err := station.Decommission(ctx, destroyer{dev}, ca.ReasonCessationOfOperation)
	if err != nil {
		panic(err)
	}
	for _, s := range steps {
		fmt.Printf("step %d: %s\n", s.Step.Sequence, s.Step.Name)
	}
	fmt.Println("device key:", dev.key)
	// Output:
	// step 2: key-destroyed
	// step 3: decommissioned
	// device key: <nil>
}

// destroyer is a jig whose device can erase its key (ztm.KeyDestroyer).
type destroyer struct{ *jig }

func (d destroyer) DestroyKey(ctx context.Context) error {
	d.key, d.cert = nil, nil
	return nil
}
