package enroll_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"log"

	"github.com/ztmkit/ztm/attest"
	"github.com/ztmkit/ztm/attest/devicesim"
	"github.com/ztmkit/ztm/ca"
	"github.com/ztmkit/ztm/ca/enroll"
	"github.com/ztmkit/ztm/ca/ledger/memledger"
	"github.com/ztmkit/ztm/identity"
)

// Example sets up the CA side of a line — a CA with its ledger, a
// verifier that knows the device, the registration authority over both —
// and enrolls one device in process as a station would: a nonce, the
// device's evidence for it, its certificate request. Replaying the
// evidence for another key is refused, with the reason a station reads
// over EST too. The ledger here is in memory; a line's CA keeps it in
// ca/ledger/sqlite or ca/ledger/postgres.
func Example() {
	ctx := context.Background()
	newKey := func() *ecdsa.PrivateKey { return must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader)) }

	// The CA: a root, an issuing CA and its ledger.
	rootKey, caKey := newKey(), newKey()
	root := must(ca.NewRoot(ca.RootRequest{Subject: pkix.Name{CommonName: "Example Root CA"}, Signer: rootKey}))
	issuing := must(ca.NewIntermediate(ca.IntermediateRequest{Subject: pkix.Name{CommonName: "Line 1 CA"},
		PublicKey: caKey.Public(), Parent: root, ParentSigner: rootKey}))
	ledger := memledger.New()
	defer ledger.Close()
	authority := must(ca.New(ca.Config{Signer: caKey, Chain: []*x509.Certificate{issuing, root}, Ledger: ledger}))

	// The device (simulated) and a verifier that knows its attestation key
	// and the reference values of its firmware.
	attKey, devKey := newKey(), newKey()
	ueid := append([]byte{0x01}, make([]byte, 16)...)
	device := must(devicesim.New(devicesim.Config{Key: attKey, KeyID: []byte("dev-1"), UEID: ueid,
		OEMID: []byte{0x00, 0x1b, 0x63}, HWModel: []byte("sensor-v2"), SWName: "fw", SWVersion: "1.0",
		Images: map[string][]byte{"firmware": []byte("image")}}))
	nonces := attest.NewNonces(attest.NonceConfig{})
	verifier := must(attest.NewVerifier(attest.Config{Keys: map[string]crypto.PublicKey{"dev-1": attKey.Public()},
		Nonces: nonces, ReferenceValues: []attest.ReferenceValues{device.ReferenceValues()}}))

	// The registration authority, and a station certificate it trusts.
	svc := must(enroll.New(enroll.Config{Authority: authority, Verifier: verifier})) // the verifier's nonces
	stationKey := newKey()
	stationCSR := must(x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "station 7"}}, stationKey))
	station := must(authority.Issue(ctx, &ca.Request{CSR: stationCSR, Profile: "station", Requester: "ceremony",
		Station: &ca.StationAuthorization{Steps: []string{"enrollment"}, Profiles: []string{"idevid"}}}))

	// The station enrolls the device.
	var enroller enroll.Enroller = svc.Local(enroll.Requester{Certificate: station})
	info := identity.DeviceInfo{SerialNumber: "SN-000124",
		HardwareModule: identity.HardwareModuleName{Type: []int{1, 3, 6, 1, 4, 1, 55555, 1}, SerialNumber: ueid}}
	nonce := must(enroller.Nonce(ctx))
	device.BindKey(devKey.Public()) // the device made devKey; its evidence confirms it (cnf)
	evidence := must(device.EvidenceCWT(nonce))
	chain, err := enroller.Enroll(ctx, &enroll.Request{CSR: must(identity.CreateCSR(nil, devKey, info)), Profile: "idevid", Evidence: evidence})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("issued:", chain[0].Subject, "by", chain[0].Issuer.CommonName)

	// The same evidence for another key: its nonce is spent.
	_, err = enroller.Enroll(ctx, &enroll.Request{CSR: must(identity.CreateCSR(nil, newKey(), info)), Profile: "idevid", Evidence: evidence})
	var refusal *enroll.RefusalError
	if errors.As(err, &refusal) {
		fmt.Println("refused:", refusal.Code(), "retryable:", enroll.Retryable(err))
	}

	// Fresh, genuine evidence with a request for the station's own key:
	// the evidence confirms the device's key, not this one.
	nonce = must(enroller.Nonce(ctx))
	evidence = must(device.EvidenceCWT(nonce))
	_, err = enroller.Enroll(ctx, &enroll.Request{CSR: must(identity.CreateCSR(nil, stationKey, info)), Profile: "idevid", Evidence: evidence})
	if errors.As(err, &refusal) {
		fmt.Println("refused:", refusal.Code())
	}
	// Output:
	// issued: SERIALNUMBER=SN-000124 by Line 1 CA
	// refused: evidence/nonce-reused retryable: false
	// refused: key-binding/key-not-confirmed
}

func must[T any](v T, err error) T {
	if err != nil {
		log.Fatal(err)
	}
	return v
}

// A device that enrolls through a plain RFC 7030 client puts its evidence
// inside its request (draft-ietf-lamps-csr-attestation); the registration
// authority reads it from there when no evidence comes beside the request.
func ExampleAddEvidenceToCSR() {
	key := must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))
	csr := must(x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{SerialNumber: "SN-000125"}}, key))
	evidence := []byte("an EAT: the device's CWT or JWT")

	attested := must(enroll.AddEvidenceToCSR(rand.Reader, key, csr, evidence))
	req := must(x509.ParseCertificateRequest(attested))
	fmt.Println("signature:", req.CheckSignature() == nil)
	got, ok, err := enroll.EvidenceFromCSR(req.RawTBSCertificateRequest)
	fmt.Printf("evidence: %q %v %v\n", got, ok, err)
	// Output:
	// signature: true
	// evidence: "an EAT: the device's CWT or JWT" true <nil>
}
