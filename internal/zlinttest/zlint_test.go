package zlinttest

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"sort"
	"testing"
	"time"

	zx509 "github.com/zmap/zcrypto/x509"
	"github.com/zmap/zlint/v3"
	"github.com/zmap/zlint/v3/lint"

	"github.com/ztmkit/ztm/ca"
	"github.com/ztmkit/ztm/identity/keystore"
)

// zlintExcludedSources are lint sources that do not apply to a private
// device PKI, with the reason.
var zlintExcludedSources = map[lint.LintSource]string{
	lint.CABFBaselineRequirements:      "CA/Browser Forum TLS Baseline Requirements govern publicly trusted Web PKI server certificates; device identities are a private PKI",
	lint.CABFCSBaselineRequirements:    "CA/Browser Forum code-signing requirements; no ztm profile signs code",
	lint.CABFSMIMEBaselineRequirements: "CA/Browser Forum S/MIME requirements; no ztm profile is for e-mail",
	lint.CABFEVGuidelines:              "CA/Browser Forum Extended Validation guidelines; Web PKI only",
	lint.MozillaRootStorePolicy:        "Mozilla root store policy; the device root is not in a browser store",
	lint.AppleRootStorePolicy:          "Apple root store policy; the device root is not in a browser store",
	lint.ChromeRootStorePolicy:         "Chrome root store policy; the device root is not in a browser store",
	lint.EtsiEsi:                       "ETSI EN 319 412 qualified-certificate profiles (eIDAS); not a device PKI",
}

// zlintExcludedNames are single lints from the applied sources that do
// not apply, with the reason. Keep this list short and justified.
var zlintExcludedNames = map[string]string{}

func zlintRegistry(t *testing.T) lint.Registry {
	t.Helper()
	var opts lint.FilterOptions
	for src := range zlintExcludedSources {
		opts.ExcludeSources = append(opts.ExcludeSources, src)
	}
	for name := range zlintExcludedNames {
		opts.ExcludeNames = append(opts.ExcludeNames, name)
	}
	reg, err := lint.GlobalRegistry().Filter(opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(reg.Names()) < 100 {
		t.Fatalf("only %d lints left after filtering", len(reg.Names()))
	}
	return reg
}

func lintDER(t *testing.T, reg lint.Registry, name string, der []byte) {
	t.Helper()
	c, err := zx509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("%s: zcrypto parse: %v", name, err)
	}
	rs := zlint.LintCertificateEx(c, reg)
	var bad []string
	for lintName, r := range rs.Results {
		if r.Status == lint.Error || r.Status == lint.Warn || r.Status == lint.Fatal {
			bad = append(bad, lintName+" ("+r.Status.String()+"): "+r.Details)
		}
	}
	sort.Strings(bad)
	for _, b := range bad {
		t.Errorf("%s: %s", name, b)
	}
}

func TestZlint(t *testing.T) {
	reg := zlintRegistry(t)
	for _, alg := range keystore.Algorithms() {
		t.Run(alg.String(), func(t *testing.T) {
			p := newPKI(t, alg, nil)
			lintDER(t, reg, "root", p.root.Raw)
			lintDER(t, reg, "intermediate", p.inter.Raw)
			for name, c := range issueAll(t, p) {
				lintDER(t, reg, name, c.Raw)
			}
			// Every device key type.
			for _, kind := range []string{"P-384", "Ed25519", "RSA-3072"} {
				c, err := p.auth.Issue(context.Background(), &ca.Request{CSR: idevidCSR(t, deviceKey(t, kind), "K-"+kind), Profile: "idevid", Requester: "s"})
				if err != nil {
					t.Fatal(err)
				}
				lintDER(t, reg, "idevid "+kind, c.Raw)
			}
			// With a CRL distribution point too.
			p = newPKI(t, alg, func(c *ca.Config) { c.CRLDistributionPoint = "http://crl.example.com/line1.crl" })
			for name, c := range issueAll(t, p) {
				lintDER(t, reg, name+" with CRL DP", c.Raw)
			}
		})
	}
}

// TestZlintCatches is the negative control: the filtered registry does
// report an RFC 5280 finding (a subscriber certificate without a
// subjectKeyIdentifier).
func TestZlintCatches(t *testing.T) {
	reg := zlintRegistry(t)
	p := newPKI(t, keystore.ES256, nil)
	key := deviceKey(t, "P-256")
	der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: big.NewInt(99),
		Subject:      pkix.Name{CommonName: "no ski"},
		NotBefore:    time.Now(),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}, p.inter, key.Public(), p.interKey)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := zx509.ParseCertificate(der)
	r := zlint.LintCertificateEx(c, reg).Results["w_ext_subject_key_identifier_missing_sub_cert"]
	if r == nil || r.Status != lint.Warn {
		t.Fatalf("RFC 5280 lint did not fire: %+v", r)
	}
}

func TestZlintCRL(t *testing.T) {
	reg := zlintRegistry(t)
	p := newPKI(t, keystore.ES256, nil)
	certs := issueAll(t, p)
	if err := p.auth.Revoke(context.Background(), certs["ldevid"].SerialNumber, 1, "admin"); err != nil {
		t.Fatal(err)
	}
	der, err := p.auth.CRL(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	crl, err := zx509.ParseRevocationList(lintableCRL(t, p, der))
	if err != nil {
		t.Fatal(err)
	}
	rs := zlint.LintRevocationListEx(crl, reg)
	for name, r := range rs.Results {
		if r.Status == lint.Error || r.Status == lint.Warn || r.Status == lint.Fatal {
			t.Errorf("CRL: %s (%s): %s", name, r.Status, r.Details)
		}
	}
}

// lintableCRL returns der re-signed without the ledger checkpoint
// extension, and checks that this is all it removes: zcrypto's CRL parser
// reads OID arcs of at most 28 bits, and ztm's private arc
// (2.25.1868605989) has 31, so zlint cannot parse a CRL carrying it. Go's
// parser and openssl (TestOpenSSLCRL) read it.
func lintableCRL(t *testing.T, p *testPKI, der []byte) []byte {
	t.Helper()
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		t.Fatal(err)
	}
	var kept []pkix.Extension
	for _, e := range crl.Extensions {
		switch {
		case e.Id.Equal(ca.OIDCRLCheckpoint()):
			if e.Critical {
				t.Fatal("checkpoint extension is critical")
			}
		case e.Id.Equal(asn1.ObjectIdentifier{2, 5, 29, 20}), e.Id.Equal(asn1.ObjectIdentifier{2, 5, 29, 35}):
			// cRLNumber and authorityKeyIdentifier: CreateRevocationList adds them.
		default:
			kept = append(kept, e)
		}
	}
	out, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number: crl.Number, ThisUpdate: crl.ThisUpdate, NextUpdate: crl.NextUpdate,
		RevokedCertificateEntries: crl.RevokedCertificateEntries, ExtraExtensions: kept,
		SignatureAlgorithm: crl.SignatureAlgorithm,
	}, p.inter, p.interKey)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
