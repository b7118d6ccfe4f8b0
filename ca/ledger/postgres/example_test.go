package postgres_test

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log"

	"github.com/ztmkit/ztm/ca"
	"github.com/ztmkit/ztm/ca/ledger/postgres"
	"github.com/ztmkit/ztm/identity/keystore"
)

// Example runs one CA instance on a shared PostgreSQL ledger; every other
// instance of the same CA runs the same code with the same connection
// string and schema. It needs a server, so it is compiled, not run.
func Example() {
	ctx := context.Background()
	// The issuing CA's key and chain, made once in a key ceremony (see
	// ca.NewRoot and ca.NewIntermediate) and shared by the instances, the
	// key typically in an HSM.
	var key keystore.Key
	var chain []*x509.Certificate

	ledger, err := postgres.Open(ctx, "postgres://ca@db.example/ztm?sslmode=verify-full", postgres.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer ledger.Close()
	auth, err := ca.New(ca.Config{
		Signer: key,
		Chain:  chain,
		Ledger: ledger,
		// The quota holds across all instances: it is decided in the
		// database, under the chain lock.
		Quota: ca.QuotaPolicy{Limit: 1000},
	})
	if err != nil {
		log.Fatal(err)
	}

	var csr []byte // from the device
	cert, err := auth.Issue(ctx, &ca.Request{CSR: csr, Profile: "idevid", Requester: "station-7"})
	switch {
	case errors.Is(err, postgres.ErrUnavailable):
		// The database is down or the connection was lost: no certificate
		// was returned; retry later. With ErrCommitUnknown the issuance
		// may be recorded, but the certificate was never handed out.
		log.Print(err)
		return
	case err != nil:
		log.Fatal(err)
	}
	fmt.Printf("issued %x\n", cert.SerialNumber)

	// A revocation through this instance is in the next CRL of every
	// instance.
	if err := auth.Revoke(ctx, cert.SerialNumber, ca.ReasonKeyCompromise, "admin"); err != nil {
		log.Fatal(err)
	}
	crl, err := auth.CRL(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(crl) > 0)
}
