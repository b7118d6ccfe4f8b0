package ca_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"log"
	"log/slog"
	"os"

	"github.com/ztmkit/ztm/ca"
	"github.com/ztmkit/ztm/ca/ledger/memledger"
)

// ExampleConfig_logger gives the CA a *slog.Logger: each issuance is a
// record at Info, each refusal one at Warn with its reason and check. (The
// handler here drops the time, the random serial and the error text, so
// that the output is the same on every run.)
func ExampleConfig_logger() {
	ctx := context.Background()
	root, inter, key := ceremony(ctx)
	// The ledger is in memory here; a line's CA keeps it in
	// ca/ledger/sqlite or ca/ledger/postgres.
	ledger := memledger.New()
	defer ledger.Close()
	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			switch a.Key {
			case slog.TimeKey, "serial", "error":
				return slog.Attr{}
			}
			return a
		},
	}))
	auth, err := ca.New(ca.Config{Signer: key, Chain: []*x509.Certificate{inter, root}, Ledger: ledger, Logger: logger})
	if err != nil {
		log.Fatal(err)
	}

	_, _ = auth.Issue(ctx, &ca.Request{CSR: deviceCSR("PID-000042"), Profile: "idevid", Requester: "station-3"})
	weak, _ := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	csr, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{SerialNumber: "PID-000043"}}, weak)
	_, _ = auth.Issue(ctx, &ca.Request{CSR: csr, Profile: "idevid", Requester: "station-3"})
	// Output:
	// level=INFO msg="ca: certificate issued" profile=idevid requester=station-3 subject="SERIALNUMBER=PID-000042"
	// level=WARN msg="ca: request refused" profile=idevid requester=station-3 reason="certificate request refused" check="weak or unsupported key"
}
