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
	"fmt"
	"log"

	"github.com/ztmkit/ztm"
	"github.com/ztmkit/ztm/attest"
	"github.com/ztmkit/ztm/attest/devicesim"
	"github.com/ztmkit/ztm/ca"
	"github.com/ztmkit/ztm/ca/enroll"
	"github.com/ztmkit/ztm/ca/ledger/memledger"
	"github.com/ztmkit/ztm/identity"
	"github.com/ztmkit/ztm/identity/keystore"
	"github.com/ztmkit/ztm/identity/keystore/mem"
	"github.com/ztmkit/ztm/manifest"
	"github.com/ztmkit/ztm/manifest/memchain"
)

// widget is the jig's view of a device: a ztm.Device. This one drives a
// simulated device (attest/devicesim); a real jig talks to the device over
// its test port.
type widget struct {
	info identity.DeviceInfo
	sim  *devicesim.Device
}

func (w *widget) Info(ctx context.Context) (identity.DeviceInfo, error) { return w.info, nil }

func (w *widget) Attest(ctx context.Context, nonce []byte) ([]byte, error) {
	return w.sim.EvidenceCWT(nonce)
}

func (w *widget) GenerateKey(ctx context.Context, alg keystore.Algorithm) ([]byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader) // made on the device, in reality
	if err != nil {
		return nil, err
	}
	w.sim.BindKey(key.Public()) // the device's evidence confirms its key (cnf)
	return identity.CreateCSR(rand.Reader, key, w.info)
}

func (w *widget) InstallChain(ctx context.Context, chain []*x509.Certificate) error { return nil }

// A station and the CA it enrolls devices with, set up from nothing: the
// CA's root and ledger, the one evidence verifier (the CA consumes its
// nonces, the station checks the one it asked for), the registration
// authority (enroll.Service), the station's key and certificate, and its
// step store. Then one device is provisioned and its final test recorded.
func ExampleNewStation() {
	ctx := context.Background()
	keys := mem.New() // an HSM or TPM on a real line: keystore.Open(ctx, "pkcs11:…")

	// The CA: a root (a key ceremony, in reality) and its ledger. This one
	// is in memory; a line's CA keeps its ledger durable, in
	// ca/ledger/sqlite or ca/ledger/postgres.
	caKey, err := keys.Create(ctx, keystore.CreateRequest{Label: "ca"})
	if err != nil {
		log.Fatal(err)
	}
	root, err := ca.NewRoot(ca.RootRequest{Subject: pkix.Name{CommonName: "Example IDevID CA"}, Signer: caKey})
	if err != nil {
		log.Fatal(err)
	}
	ledger := memledger.New()
	defer ledger.Close()
	authority, err := ca.New(ca.Config{Signer: caKey, Chain: []*x509.Certificate{root}, Ledger: ledger})
	if err != nil {
		log.Fatal(err)
	}

	// The device model: its attestation key, registered by key ID, and the
	// reference values of its firmware.
	ak, err := keys.Create(ctx, keystore.CreateRequest{Label: "device-ak"})
	if err != nil {
		log.Fatal(err)
	}
	ueid := identity.NewEUI64UEID([8]byte{0x00, 0x00, 0x5e, 0xfe, 0, 0, 0, 1})
	sim, err := devicesim.New(devicesim.Config{
		Key: ak, KeyID: []byte("ak-1"), UEID: ueid.Bytes(), OEMID: []byte{0x00, 0x00, 0x5e},
		HWModel: []byte("widget"), SWName: "fw", SWVersion: "1.0",
		Images: map[string][]byte{"firmware": []byte("firmware image")},
	})
	if err != nil {
		log.Fatal(err)
	}
	// One verifier, configured once: attestation keys by lookup (keys can
	// be added to the set while the line runs) and the one nonce source.
	// The CA's service consumes its nonces; the station, given the same
	// verifier, checks the nonce it asked for without consuming it.
	attestationKeys, err := attest.NewKeySet(map[string]crypto.PublicKey{"ak-1": ak.Public()})
	if err != nil {
		log.Fatal(err)
	}
	verifier, err := attest.NewVerifier(attest.Config{
		KeyLookup:       attestationKeys.Lookup,
		ReferenceValues: []attest.ReferenceValues{sim.ReferenceValues()},
		Nonces:          attest.NewNonces(attest.NonceConfig{}),
	})
	if err != nil {
		log.Fatal(err)
	}
	service, err := enroll.New(enroll.Config{Authority: authority, Verifier: verifier})
	if err != nil {
		log.Fatal(err)
	}

	// The station: its key, its certificate (the steps it may sign, the
	// profiles it may enroll under) and its step store.
	stationKey, err := keys.Create(ctx, keystore.CreateRequest{Label: "station"})
	if err != nil {
		log.Fatal(err)
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "cm-station-1"}}, stationKey)
	if err != nil {
		log.Fatal(err)
	}
	stationCert, err := authority.Issue(ctx, &ca.Request{CSR: csr, Profile: "station", Requester: "setup",
		Station: &ca.StationAuthorization{
			Steps:    []string{ztm.StepKeyGeneration, ztm.StepEnrollment, ztm.StepInstallFailed, "final-test"},
			Profiles: []string{"idevid"},
		}})
	if err != nil {
		log.Fatal(err)
	}
	// The steps are kept in memory here; a line keeps them in
	// manifest/chainstore (a SQLite file) or its own database.
	steps := memchain.New()
	defer steps.Close()

	station, err := ztm.NewStation(ztm.StationConfig{
		Name:      "cm-station-1",
		Key:       stationKey,
		CertChain: []*x509.Certificate{stationCert},
		Enroller:  service.Local(enroll.Requester{Certificate: stationCert}), // or an *est.Client
		Verifier:  verifier,
		StepStore: steps,
		Revoker:   authority,
	})
	if err != nil {
		log.Fatal(err)
	}

	// A device on the jig. Its hardwareModuleName serial is its UEID, which
	// ties the certificate to the evidence: DeviceInfoFromUEID keeps the
	// rule, and the station checks it before it asks for a nonce.
	info, err := identity.DeviceInfoFromUEID(ueid, "WIDGET-0001", asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 32473, 1})
	if err != nil {
		log.Fatal(err)
	}
	dev := &widget{sim: sim, info: info}
	res, err := station.Provision(ctx, dev)
	if err != nil {
		log.Fatal(err)
	}
	step, err := station.Record(ctx, ueid.Bytes(), "final-test",
		map[string]manifest.Digest{"report": manifest.Sum(manifest.SHA256, []byte("all tests passed"))},
		manifest.Claims{"result": "pass"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("certificate for:", res.CertChain[0].Subject.SerialNumber)
	for _, s := range res.Steps {
		fmt.Printf("step %d: %s\n", s.Step.Sequence, s.Step.Name)
	}
	fmt.Printf("step %d: %s\n", step.Step.Sequence, step.Step.Name)
	// Output:
	// certificate for: WIDGET-0001
	// step 0: key-generation
	// step 1: enrollment
	// step 2: final-test
}
