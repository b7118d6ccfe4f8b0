package manifest_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log"
	"math/big"
	"time"

	"github.com/ztmkit/ztm/manifest"
)

func pemPublicKey(k *ecdsa.PrivateKey) string {
	der, err := x509.MarshalPKIXPublicKey(k.Public())
	if err != nil {
		log.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

func newKey() *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		log.Fatal(err)
	}
	return k
}

// Three partners record what they did to a device; the OEM checks the
// chain against its signed policy.
func Example() {
	chipco, cm, testhouse, oem := newKey(), newKey(), newKey(), newKey()

	// The OEM writes its policy as JSON, signs it and publishes it.
	policyJSON, _ := json.Marshal(map[string]any{
		"name": "acme-widget-line", "version": 1, "issuer": "ACME",
		"expires": "2027-01-01T00:00:00Z",
		"keys": []map[string]string{
			{"name": "chipco", "publicKey": pemPublicKey(chipco)},
			{"name": "cm", "publicKey": pemPublicKey(cm)},
			{"name": "testhouse", "publicKey": pemPublicKey(testhouse)},
		},
		"steps": []map[string]any{
			{"name": "key-generation", "signers": []string{"chipco"}},
			{"name": "firmware-load", "signers": []string{"cm"}},
			{"name": "final-test", "signers": []string{"testhouse"}},
		},
	})
	policy, err := manifest.ParsePolicyJSON(policyJSON)
	if err != nil {
		log.Fatal(err)
	}
	signedPolicy, err := manifest.SignPolicy(rand.Reader, policy, oem, manifest.SignOptions{Issuer: "ACME"})
	if err != nil {
		log.Fatal(err)
	}

	// Each partner signs its step, linked to the previous one.
	ueid := []byte{0x01, 0x5a, 0x1d, 0x3c, 0x9e, 0x77, 0x10, 0x42, 0x8b, 0x2f, 0x6c, 0x01, 0xd4, 0x73, 0x55, 0x0e, 0x91}
	t := time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)
	var chain manifest.Chain
	for i, p := range []struct {
		step, issuer string
		key          *ecdsa.PrivateKey
	}{{"key-generation", "chipco", chipco}, {"firmware-load", "cm", cm}, {"final-test", "testhouse", testhouse}} {
		step := &manifest.Step{Name: p.step, Subject: ueid, Sequence: uint64(i), Time: t.Add(time.Duration(i) * time.Hour),
			Predicate: manifest.Claims{"result": "pass"}}
		if i > 0 {
			prev := manifest.Sum(manifest.SHA256, chain[i-1].Raw)
			step.Prev = &prev
		}
		signed, err := manifest.SignStep(rand.Reader, step, p.key, manifest.SignOptions{Issuer: p.issuer})
		if err != nil {
			log.Fatal(err)
		}
		chain = append(chain, signed)
	}

	// The operator loads the OEM's policy and verifies the chain.
	policy, err = manifest.VerifyPolicy(signedPolicy, oem.Public())
	if err != nil {
		log.Fatal(err)
	}
	opts := &manifest.VerifyOptions{CurrentTime: t.Add(24 * time.Hour)}
	report := manifest.Verify(context.Background(), chain, policy, opts)
	fmt.Println("verified:", report.Err() == nil, report.Signers)

	// Dropping the firmware step breaks the chain.
	report = manifest.Verify(context.Background(), manifest.Chain{chain[0], chain[2]}, policy, opts)
	for _, c := range report.Failed() {
		var ve *manifest.VerificationError
		errors.As(c.Err, &ve)
		fmt.Printf("step %d: %s: %v\n", c.Step, c.Check, ve.Reason)
	}
	// Output:
	// verified: true [chipco cm testhouse]
	// step 1: sequence: sequence
	// step 1: link: broken link
	// step 1: layout: layout
}

// A lot manifest signs the root of a Merkle tree over every device's latest
// step; each device gets a receipt that verifies on its own.
func ExampleLot() {
	station, oem := newKey(), newKey()
	signer, err := manifest.NewStepSigner(station, manifest.SignOptions{Issuer: "cm-line-2"})
	if err != nil {
		log.Fatal(err)
	}
	lot, err := manifest.NewLot("LOT-2026-03-A", manifest.LotOptions{KeepProofs: true})
	if err != nil {
		log.Fatal(err)
	}
	var latest [][]byte
	for i := range 5 {
		s, err := signer.Sign(rand.Reader, &manifest.Step{Name: "ship", Subject: []byte{0x01, byte(i)},
			Time: time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC), Lot: "LOT-2026-03-A"})
		if err != nil {
			log.Fatal(err)
		}
		latest = append(latest, s.Raw)
		if _, err := lot.Add(s.Raw); err != nil {
			log.Fatal(err)
		}
	}
	oemSigner, err := manifest.NewStepSigner(oem, manifest.SignOptions{Issuer: "ACME"})
	if err != nil {
		log.Fatal(err)
	}
	m, err := lot.Sign(rand.Reader, oemSigner, time.Date(2026, 3, 3, 0, 0, 0, 0, time.UTC))
	if err != nil {
		log.Fatal(err)
	}

	// Device 3 keeps its last step and its receipt.
	receipt, err := m.Receipt(3)
	if err != nil {
		log.Fatal(err)
	}
	r, err := manifest.VerifyReceipt(receipt, latest[3], oem.Public())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s: device %d of %d, signed by %s\n", r.Lot, r.Index, r.TreeSize, r.Issuer)

	// The receipt proves nothing about another device's step.
	_, err = manifest.VerifyReceipt(receipt, latest[4], oem.Public())
	fmt.Println(errors.Is(err, manifest.ErrVerification))
	// Output:
	// LOT-2026-03-A: device 3 of 5, signed by ACME
	// true
}

// A test station with a certificate names it by digest (x5t) instead of
// sending it with every step; the OEM, which holds the station's
// certificate, verifies the step as if the certificate had come with it.
func ExampleSignOptions_chainByDigest() {
	rootKey, stationKey := newKey(), newKey()
	t := time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)
	rootTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ACME Partner Root"},
		NotBefore: t.Add(-time.Hour), NotAfter: t.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	rootDER, _ := x509.CreateCertificate(rand.Reader, rootTmpl, rootTmpl, rootKey.Public(), rootKey)
	root, _ := x509.ParseCertificate(rootDER)
	leafTmpl := &x509.Certificate{SerialNumber: big.NewInt(2),
		Subject:   pkix.Name{CommonName: "testhouse-line2", OrganizationalUnit: []string{"test-station"}},
		NotBefore: t.Add(-time.Hour), NotAfter: t.Add(24 * time.Hour), KeyUsage: x509.KeyUsageDigitalSignature}
	leafDER, _ := x509.CreateCertificate(rand.Reader, leafTmpl, root, stationKey.Public(), rootKey)
	leaf, _ := x509.ParseCertificate(leafDER)

	signer, err := manifest.NewStepSigner(stationKey, manifest.SignOptions{
		Issuer: "testhouse", CertChain: []*x509.Certificate{leaf}, CertChainByDigest: true})
	if err != nil {
		log.Fatal(err)
	}
	ueid := []byte{0x01, 0x5a, 0x1d, 0x3c, 0x9e, 0x77, 0x10, 0x42, 0x8b, 0x2f, 0x6c, 0x01, 0xd4, 0x73, 0x55, 0x0e, 0x91}
	step, err := signer.Sign(rand.Reader, &manifest.Step{Name: "final-test", Subject: ueid, Time: t})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("under 400 bytes:", len(step.Raw) < 400)

	policy := &manifest.Policy{Name: "acme-widget-line", Version: 1, Issuer: "ACME",
		Roots: []*x509.Certificate{root},
		Steps: []manifest.StepRule{{Name: "final-test", Roles: []string{"test-station"}}}}
	rep := manifest.Verify(context.Background(), manifest.Chain{step}, policy,
		&manifest.VerifyOptions{CurrentTime: t, Certificates: []*x509.Certificate{leaf}})
	fmt.Println(rep.OK(), rep.Signers[0])
	// Output:
	// under 400 bytes: true
	// true cert:testhouse-line2
}

// An OEM verifies every device of a lot at once, from the chains' encoded
// form, on every core, and counts the refused devices by reason.
func ExampleVerifyAll() {
	chipco, cm := newKey(), newKey()
	policy := &manifest.Policy{Name: "acme-widget-line", Version: 1,
		Keys: []manifest.PolicyKey{{Name: "chipco", Public: chipco.Public()}, {Name: "cm", Public: cm.Public()}},
		Steps: []manifest.StepRule{
			{Name: "key-generation", Signers: []string{"chipco"}},
			{Name: "firmware-load", Signers: []string{"cm"}},
		}}
	t := time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)

	// A lot of 8 devices, each with two steps. Device 5's firmware-load is
	// signed by the chip vendor, device 6's chain lost its last step.
	var encoded [][]byte
	for d := range 8 {
		ueid := []byte{0x01, 0x5a, 0x1d, 0x3c, 0x9e, 0x77, 0x10, 0x42, 0x8b, 0x2f, 0x6c, 0x01, 0xd4, 0x73, 0x55, 0x0e, byte(d)}
		var chain manifest.Chain
		for i, name := range []string{"key-generation", "firmware-load"} {
			key, issuer := []*ecdsa.PrivateKey{chipco, cm}[i], []string{"chipco", "cm"}[i]
			if d == 5 {
				key, issuer = chipco, "chipco"
			}
			step := &manifest.Step{Name: name, Subject: ueid, Sequence: uint64(i), Time: t.Add(time.Duration(i) * time.Hour)}
			if i > 0 {
				prev := manifest.Sum(manifest.SHA256, chain[i-1].Raw)
				step.Prev = &prev
			}
			signed, err := manifest.SignStep(rand.Reader, step, key, manifest.SignOptions{Issuer: issuer})
			if err != nil {
				log.Fatal(err)
			}
			chain = append(chain, signed)
		}
		if d == 6 {
			chain = chain[:1]
		}
		enc, err := chain.Marshal()
		if err != nil {
			log.Fatal(err)
		}
		encoded = append(encoded, enc)
	}

	chains := func(yield func(manifest.ChainInput) bool) {
		for d, enc := range encoded {
			if !yield(manifest.ChainInput{ID: fmt.Sprintf("device-%d", d), Raw: enc}) {
				return
			}
		}
	}
	refused := map[int]string{}
	sum, err := manifest.VerifyAll(context.Background(), chains, policy, &manifest.BulkOptions{
		VerifyOptions: manifest.VerifyOptions{CurrentTime: t.Add(24 * time.Hour)},
		Result: func(r *manifest.ChainResult) {
			if !r.Report.OK() {
				refused[r.Index] = r.ID + ": " + r.Report.Failed()[0].Check
			}
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%d chains: %d passed, %d refused\n", sum.Chains, sum.Passed, sum.Refused)
	fmt.Println(refused[5])
	fmt.Println(refused[6])
	fmt.Println("unauthorized signer:", sum.Reasons[manifest.ReasonUnauthorizedSigner], "layout:", sum.Reasons[manifest.ReasonLayout])
	// Output:
	// 8 chains: 6 passed, 2 refused
	// device-5: signer-authorized
	// device-6: layout
	// unauthorized signer: 1 layout: 1
}

// An OEM writes its policy as JSON, reviews it as text, and signs it with
// SignPolicy. Decoding is strict: a misspelt field is refused, not
// ignored.
func ExampleParsePolicyJSON() {
	keyJSON, err := json.Marshal(pemPublicKey(newKey()))
	if err != nil {
		log.Fatal(err)
	}
	policy, err := manifest.ParsePolicyJSON([]byte(`{
	  "name": "acme-widget-line", "version": 3, "issuer": "ACME",
	  "keys": [{"name": "chipco", "publicKey": ` + string(keyJSON) + `}],
	  "steps": [
	    {"name": "die-sort", "signers": ["chipco"]},
	    {"name": "final-test", "signers": ["chipco"]},
	    {"name": "key-destroyed", "signers": ["chipco"], "optional": true}
	  ]
	}`))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s v%d by %s\n", policy.Name, policy.Version, policy.Issuer)
	for _, r := range policy.Steps {
		fmt.Println(r.Name, r.Signers, "optional:", r.Optional)
	}

	_, err = manifest.ParsePolicyJSON([]byte(`{"name": "p", "version": 1, "issuer": "ACME", "step": []}`))
	fmt.Println("misspelt field refused:", errors.Is(err, manifest.ErrMalformed))
	// Output:
	// acme-widget-line v3 by ACME
	// die-sort [chipco] optional: false
	// final-test [chipco] optional: false
	// key-destroyed [chipco] optional: true
	// misspelt field refused: true
}
