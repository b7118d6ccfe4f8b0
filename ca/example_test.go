package ca_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"

	"github.com/ztmkit/ztm/ca"
	"github.com/ztmkit/ztm/ca/ledger/memledger"
	"github.com/ztmkit/ztm/identity"
	"github.com/ztmkit/ztm/identity/keystore"
	"github.com/ztmkit/ztm/identity/keystore/mem"
)

// ceremony makes a root and an intermediate with keys in an in-memory
// store (a PKCS#11 or TPM store in production).
func ceremony(ctx context.Context) (root, inter *x509.Certificate, interKey keystore.Key) {
	store := mem.New()
	rootKey, err := store.Create(ctx, keystore.CreateRequest{Label: "root", Algorithm: keystore.ES384})
	if err != nil {
		log.Fatal(err)
	}
	interKey, err = store.Create(ctx, keystore.CreateRequest{Label: "line1"})
	if err != nil {
		log.Fatal(err)
	}
	root, err = ca.NewRoot(ca.RootRequest{
		Subject: pkix.Name{Organization: []string{"Example OEM"}, CommonName: "Example OEM Root CA"},
		Signer:  rootKey,
	})
	if err != nil {
		log.Fatal(err)
	}
	inter, err = ca.NewIntermediate(ca.IntermediateRequest{
		Subject:         pkix.Name{Organization: []string{"Example OEM"}, CommonName: "Line 1 Issuing CA"},
		PublicKey:       interKey.Public(),
		Parent:          root,
		ParentSigner:    rootKey,
		MaxPathLen:      0,
		NameConstraints: ca.NameConstraints{Permitted: ca.NameSubtrees{DNSDomains: []string{"devices.example.com"}}},
	})
	if err != nil {
		log.Fatal(err)
	}
	return root, inter, interKey
}

// newAuthority makes an Authority over the intermediate of a fresh
// ceremony, with a ledger in memory (ca/ledger/memledger, not durable): a
// line's CA keeps its ledger in ca/ledger/sqlite or ca/ledger/postgres.
func newAuthority(ctx context.Context, crlURL string) (*ca.Authority, *memledger.Ledger) {
	root, inter, key := ceremony(ctx)
	ledger := memledger.New()
	auth, err := ca.New(ca.Config{
		Signer:               key,
		Chain:                []*x509.Certificate{inter, root},
		Ledger:               ledger,
		CRLDistributionPoint: crlURL,
	})
	if err != nil {
		log.Fatal(err)
	}
	return auth, ledger
}

// deviceCSR is what a device sends: a request with its IEEE 802.1AR
// identity, the subject serialNumber and the hardwareModuleName.
func deviceCSR(serial string) []byte {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		log.Fatal(err)
	}
	hw := ca.HardwareModuleName{Type: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 99999, 1}, SerialNumber: []byte(serial)}
	san, err := identity.HardwareModuleNameExtension(hw, false)
	if err != nil {
		log.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject:         pkix.Name{SerialNumber: serial},
		ExtraExtensions: []pkix.Extension{san},
	}, key)
	if err != nil {
		log.Fatal(err)
	}
	return der
}

// Example_ceremony makes a root and an intermediate CA, the intermediate
// limited to end-entity certificates and to one DNS domain.
func Example_ceremony() {
	root, inter, _ := ceremony(context.Background())
	fmt.Println(root.Subject.CommonName, "CA:", root.IsCA, "self-signed:", root.CheckSignatureFrom(root) == nil)
	fmt.Println(inter.Subject.CommonName, "CA:", inter.IsCA, "path length:", inter.MaxPathLen, "zero:", inter.MaxPathLenZero)
	fmt.Println("permitted:", inter.PermittedDNSDomains, "issued by root:", inter.CheckSignatureFrom(root) == nil)
	// Output:
	// Example OEM Root CA CA: true self-signed: true
	// Line 1 Issuing CA CA: true path length: 0 zero: true
	// permitted: [devices.example.com] issued by root: true
}

// ExampleAuthority_Issue issues an IDevID: the certificate is in the
// ledger before Issue returns.
func ExampleAuthority_Issue() {
	ctx := context.Background()
	// The ledger is in memory here; a line's CA keeps it in
	// ca/ledger/sqlite or ca/ledger/postgres.
	auth, ledger := newAuthority(ctx, "")
	defer ledger.Close()

	cert, err := auth.Issue(ctx, &ca.Request{
		CSR:            deviceCSR("PID-000042"),
		Profile:        "idevid",
		Requester:      "station-3",
		EvidenceDigest: make([]byte, 32), // digest of the attestation result
	})
	if err != nil {
		log.Fatal(err)
	}
	hw, _ := ca.HardwareModuleNames(cert)
	fmt.Println("subject:", cert.Subject)
	fmt.Println("hardwareModuleName:", string(hw[0].SerialNumber))
	fmt.Println("notAfter:", cert.NotAfter.Format("20060102150405Z"))
	st, _ := ledger.Lookup(ctx, cert.SerialNumber)
	fmt.Println("recorded:", st.Issuance.Profile, st.Issuance.Requester)
	head, err := ledger.Verify(ctx)
	fmt.Println("chain:", head.Seq, "record(s), error:", err)
	// Output:
	// subject: SERIALNUMBER=PID-000042
	// hardwareModuleName: PID-000042
	// notAfter: 99991231235959Z
	// recorded: idevid station-3
	// chain: 1 record(s), error: <nil>
}

// A request retried with the same idempotency key — after a lost answer,
// a crash, or on another CA instance sharing the ledger — gets the
// certificate issued the first time, never a second one.
func ExampleRequest_idempotencyKey() {
	ctx := context.Background()
	// The ledger is in memory here; a line's CA keeps it in
	// ca/ledger/sqlite or ca/ledger/postgres.
	auth, ledger := newAuthority(ctx, "")
	defer ledger.Close()

	csr := deviceCSR("PID-000044")
	key := sha256.Sum256(csr)
	req := &ca.Request{CSR: csr, Profile: "idevid", Requester: "station-3", IdempotencyKey: key[:]}
	first, err := auth.Issue(ctx, req)
	if err != nil {
		log.Fatal(err)
	}
	again, err := auth.Issue(ctx, req)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("same certificate:", again.Equal(first))
	st, _ := ledger.LookupRequest(ctx, key[:])
	fmt.Println("recorded serial matches:", st.Issuance.Serial.Cmp(first.SerialNumber) == 0)
	req.Requester = "station-4"
	_, err = auth.Issue(ctx, req)
	fmt.Println("other requester refused:", errors.Is(err, ca.ErrRequestExists))
	// Output:
	// same certificate: true
	// recorded serial matches: true
	// other requester refused: true
}

// The ledger records how each certified key came to be. A registration
// authority (ca/enroll) sets it from the evidence; an auditor reads it
// back with the issuance. An injected key is accepted only from a station
// authorized for key injection.
func ExampleKeyProvenance() {
	ctx := context.Background()
	// The ledger is in memory here; a line's CA keeps it in
	// ca/ledger/sqlite or ca/ledger/postgres.
	auth, ledger := newAuthority(ctx, "")
	defer ledger.Close()

	cert, err := auth.Issue(ctx, &ca.Request{CSR: deviceCSR("PID-000045"), Profile: "idevid", Requester: "station-3",
		KeyProvenance: ca.ProvenanceTPMCertified})
	if err != nil {
		log.Fatal(err)
	}
	st, _ := ledger.Lookup(ctx, cert.SerialNumber)
	p := st.Issuance.KeyProvenance
	fmt.Println("recorded:", p, "device-attested:", p.DeviceAttested())
	_, err = auth.Issue(ctx, &ca.Request{CSR: deviceCSR("PID-000046"), Profile: "idevid", Requester: "station-3",
		KeyProvenance: ca.ProvenanceInjected})
	fmt.Println("injected without a station authorized to inject:", errors.Is(err, ca.ErrNotAuthorized))
	parsed, _ := ca.ParseKeyProvenance("eat-cnf")
	fmt.Println("parsed:", parsed == ca.ProvenanceEATConfirmed)
	// Output:
	// recorded: tpm-certified device-attested: true
	// injected without a station authorized to inject: true
	// parsed: true
}

// ExampleAuthority_CRLHandler revokes a certificate and fetches the CRL
// over HTTP.
func ExampleAuthority_CRLHandler() {
	ctx := context.Background()
	// The ledger is in memory here; a line's CA keeps it in
	// ca/ledger/sqlite or ca/ledger/postgres.
	auth, ledger := newAuthority(ctx, "")
	defer ledger.Close()
	srv := httptest.NewServer(auth.CRLHandler())
	defer srv.Close()

	cert, err := auth.Issue(ctx, &ca.Request{CSR: deviceCSR("PID-000043"), Profile: "idevid", Requester: "station-3"})
	if err != nil {
		log.Fatal(err)
	}
	if err := auth.Revoke(ctx, cert.SerialNumber, ca.ReasonKeyCompromise, "security-team"); err != nil {
		log.Fatal(err)
	}

	resp, err := http.Get(srv.URL)
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	der, _ := io.ReadAll(resp.Body)
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("content type:", resp.Header.Get("Content-Type"))
	fmt.Println("CRL number:", crl.Number, "signed by the CA:", crl.CheckSignatureFrom(auth.Chain()[0]) == nil)
	for _, e := range crl.RevokedCertificateEntries {
		fmt.Println("revoked:", e.SerialNumber.Cmp(cert.SerialNumber) == 0, "reason:", ca.RevocationReason(e.ReasonCode))
	}
	// Output:
	// content type: application/pkix-crl
	// CRL number: 1 signed by the CA: true
	// revoked: true reason: keyCompromise
}

// ExampleParseStationAuthorization reads what a station certificate
// authorizes, as an EST server or a manifest verifier does after verifying
// the certificate's chain.
func ExampleParseStationAuthorization() {
	ctx := context.Background()
	// The ledger is in memory here; a line's CA keeps it in
	// ca/ledger/sqlite or ca/ledger/postgres.
	auth, ledger := newAuthority(ctx, "")
	defer ledger.Close()

	stationKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: "Line 1 Station 3"},
	}, stationKey)
	cert, err := auth.Issue(ctx, &ca.Request{
		CSR:       csr,
		Profile:   "station",
		Requester: "pki-admin",
		Station:   &ca.StationAuthorization{Steps: []string{"test", "provision"}, Profiles: []string{"idevid"}},
	})
	if err != nil {
		log.Fatal(err)
	}
	a, err := ca.ParseStationAuthorization(cert)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("steps:", a.Steps, "profiles:", a.Profiles)
	fmt.Println("may request ldevid:", a.AllowsProfile("ldevid"))
	fmt.Println("extension:", ca.OIDStationAuthorization())
	// Output:
	// steps: [provision test] profiles: [idevid]
	// may request ldevid: false
	// extension: 2.25.1868605989.1.1
}

// ExampleAuthority_IssueIntermediate is the offline root ceremony: an
// Authority over the root key (from any key store: a PKCS#11 token or a
// TPM in production) signs an issuing CA and records it in the root's own
// ledger, so that it can later be revoked and listed on the root's CRL.
func ExampleAuthority_IssueIntermediate() {
	ctx := context.Background()
	store := mem.New()
	rootKey, err := store.Create(ctx, keystore.CreateRequest{Label: "root", Algorithm: keystore.ES384})
	if err != nil {
		log.Fatal(err)
	}
	root, err := ca.NewRoot(ca.RootRequest{Subject: pkix.Name{CommonName: "Example OEM Root CA"}, Signer: rootKey})
	if err != nil {
		log.Fatal(err)
	}
	// The root's own ledger, in memory here: a root CA keeps it in
	// ca/ledger/sqlite or ca/ledger/postgres.
	ledger := memledger.New()
	defer ledger.Close()
	// No leaf profiles: the root signs CA certificates and CRLs only.
	rootCA, err := ca.New(ca.Config{Signer: rootKey, Chain: []*x509.Certificate{root}, Ledger: ledger, Profiles: []ca.Profile{}})
	if err != nil {
		log.Fatal(err)
	}
	lineKey, err := store.Create(ctx, keystore.CreateRequest{Label: "line1"})
	if err != nil {
		log.Fatal(err)
	}
	inter, err := rootCA.IssueIntermediate(ctx, ca.IntermediateRequest{
		Subject: pkix.Name{CommonName: "Line 1 Issuing CA"}, PublicKey: lineKey.Public(),
	}, "root ceremony 2026-12")
	if err != nil {
		log.Fatal(err)
	}
	// Later, the line's key leaks: the root revokes its CA certificate.
	if err := rootCA.Revoke(ctx, inter.SerialNumber, ca.ReasonCACompromise, "pki-admin"); err != nil {
		log.Fatal(err)
	}
	der, err := rootCA.CRL(ctx)
	if err != nil {
		log.Fatal(err)
	}
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("CA valid until:", inter.NotAfter.Format("20060102150405Z"))
	fmt.Println("root CRL lists the intermediate:", crl.RevokedCertificateEntries[0].SerialNumber.Cmp(inter.SerialNumber) == 0)
	// Output:
	// CA valid until: 99991231235959Z
	// root CRL lists the intermediate: true
}

// EqualNames compares names as RFC 5280 §7.1 does: the string type, case
// and insignificant spaces do not matter, the order of the RDNs does.
func ExampleEqualNames() {
	asCA, _ := asn1.Marshal(pkix.Name{CommonName: "Sensor 42", Organization: []string{"Example OEM"}}.ToRDNSequence())
	// The same name with UTF8String values, other case and extra spaces,
	// as another tool may write it.
	utf8 := func(s string) asn1.RawValue { return asn1.RawValue{Tag: asn1.TagUTF8String, Bytes: []byte(s)} }
	type atv struct {
		Type  asn1.ObjectIdentifier
		Value asn1.RawValue
	}
	type rdnSET []atv // encoding/asn1 writes a SET OF for a type named …SET
	other, _ := asn1.Marshal([]rdnSET{
		{{asn1.ObjectIdentifier{2, 5, 4, 10}, utf8("EXAMPLE  OEM")}},
		{{asn1.ObjectIdentifier{2, 5, 4, 3}, utf8(" sensor 42 ")}},
	})
	same, err := ca.EqualNames(asCA, other)
	fmt.Println(same, err)
	// Output:
	// true <nil>
}

// ExampleAuthority_Checkpoint keeps signed checkpoints of the ledger in a
// file outside it: each names the ledger's head, signed by the CA's key, so
// that records deleted from the ledger later are seen. A durable ledger is
// checked against them when it opens (Checkpoints and CheckpointKey in
// ca/ledger/sqlite's Options and ca/ledger/postgres's Config; see
// sqlite's ExampleOptions_checkpoints).
func ExampleAuthority_Checkpoint() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "ztm-checkpoint")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	root, inter, key := ceremony(ctx)
	// In production: another disk or host than the ledger's.
	checkpoints := ca.NewCheckpointFile(filepath.Join(dir, "checkpoint"))
	// The ledger is in memory here; a line's CA keeps it in
	// ca/ledger/sqlite or ca/ledger/postgres.
	ledger := memledger.New()
	defer ledger.Close()
	auth, err := ca.New(ca.Config{Signer: key, Chain: []*x509.Certificate{inter, root}, Ledger: ledger, Checkpoints: checkpoints})
	if err != nil {
		log.Fatal(err)
	}
	devKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "sensor-1"}}, devKey)
	if _, err := auth.Issue(ctx, &ca.Request{CSR: csr, Profile: "ldevid", Requester: "line-1"}); err != nil {
		log.Fatal(err)
	}
	// Also made with every CRL, by RunCheckpoints and by CheckpointHandler.
	cp, err := auth.Checkpoint(ctx)
	if err != nil {
		log.Fatal(err)
	}
	verified, err := ca.ParseCheckpoint(cp.Raw, inter.PublicKey)
	fmt.Println("checkpoint of record", verified.Seq, "verifies:", err == nil)
	latest, err := ca.LatestCheckpoint(ctx, checkpoints, inter.PublicKey)
	fmt.Println("stored:", err == nil && latest.Seq == verified.Seq)
	// Output:
	// checkpoint of record 1 verifies: true
	// stored: true
}
