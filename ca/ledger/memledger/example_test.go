package memledger_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"log"

	"github.com/ztmkit/ztm/ca"
	"github.com/ztmkit/ztm/ca/ledger/memledger"
)

// ExampleNew runs a CA on a ledger in memory, as a test or a demonstration
// would: it revokes a certificate and reads the ledger's answer. A line's
// CA opens ca/ledger/sqlite or ca/ledger/postgres instead.
func ExampleNew() {
	ctx := context.Background()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader) // the CA's key
	root, err := ca.NewRoot(ca.RootRequest{Subject: pkix.Name{CommonName: "Example Test CA"}, Signer: key})
	if err != nil {
		log.Fatal(err)
	}
	ledger := memledger.New()
	auth, err := ca.New(ca.Config{Signer: key, Chain: []*x509.Certificate{root}, Ledger: ledger})
	if err != nil {
		log.Fatal(err)
	}

	// A device's operational certificate (LDevID).
	deviceKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: "device-1"},
	}, deviceKey)
	cert, err := auth.Issue(ctx, &ca.Request{CSR: csr, Profile: "ldevid", Requester: "line-1"})
	if err != nil {
		log.Fatal(err)
	}
	if err := auth.Revoke(ctx, cert.SerialNumber, ca.ReasonKeyCompromise, "security officer"); err != nil {
		log.Fatal(err)
	}
	st, err := ledger.Lookup(ctx, cert.SerialNumber)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("issued:", st.Issuance.Subject)
	fmt.Println("revoked:", st.Revocation.Reason)
	head, err := ledger.Verify(ctx)
	fmt.Println("records in the chain:", head.Seq, err == nil)
	// Output:
	// issued: CN=device-1
	// revoked: keyCompromise
	// records in the chain: 2 true
}
