package ca_test

import (
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ztmkit/ztm/ca"
	"github.com/ztmkit/ztm/ca/ledger/memledger"
	"github.com/ztmkit/ztm/identity"
	"github.com/ztmkit/ztm/identity/keystore"
)

func TestNameConstraintsAndPathLen(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rootKey, interKey := caKey(t, keystore.ES256), caKey(t, keystore.ES256)
	root, err := ca.NewRoot(ca.RootRequest{Subject: pkix.Name{CommonName: "Root"}, Signer: rootKey})
	if err != nil {
		t.Fatal(err)
	}
	if root.MaxPathLen != -1 || !root.IsCA || root.KeyUsage != x509.KeyUsageCertSign|x509.KeyUsageCRLSign {
		t.Fatalf("root %d %v %v", root.MaxPathLen, root.IsCA, root.KeyUsage)
	}
	inter, err := ca.NewIntermediate(ca.IntermediateRequest{
		Subject: pkix.Name{CommonName: "Constrained"}, PublicKey: interKey.Public(), Parent: root, ParentSigner: rootKey,
		NameConstraints: ca.NameConstraints{
			Permitted: ca.NameSubtrees{DNSDomains: []string{"devices.example.com"}, EmailAddresses: []string{"line.example.com"},
				IPRanges: []*net.IPNet{{IP: net.IP{10, 0, 0, 0}, Mask: net.CIDRMask(8, 32)}}},
			Excluded: ca.NameSubtrees{URIDomains: []string{"evil.example.com"}},
		},
		CRLDistributionPoint: "http://127.0.0.1/root.crl",
	})
	if err != nil {
		t.Fatal(err)
	}
	if !inter.MaxPathLenZero || !inter.PermittedDNSDomainsCritical || len(inter.CRLDistributionPoints) != 1 {
		t.Fatalf("intermediate %v %v", inter.MaxPathLenZero, inter.PermittedDNSDomainsCritical)
	}
	if fmt.Sprint(inter.PermittedDNSDomains, inter.PermittedEmailAddresses, inter.PermittedIPRanges, inter.ExcludedURIDomains) !=
		"[devices.example.com] [line.example.com] [10.0.0.0/8] [evil.example.com]" || len(inter.ExcludedDNSDomains) != 0 {
		t.Fatalf("intermediate's name constraints: %v %v %v %v", inter.PermittedDNSDomains, inter.PermittedEmailAddresses, inter.PermittedIPRanges, inter.ExcludedURIDomains)
	}
	// Path length 0: it cannot make another CA.
	if _, err := ca.NewIntermediate(ca.IntermediateRequest{Subject: pkix.Name{CommonName: "x"}, PublicKey: caKey(t, keystore.ES256).Public(), Parent: inter, ParentSigner: interKey}); !errors.Is(err, ca.ErrInvalidConfig) {
		t.Fatalf("CA under pathlen 0: %v", err)
	}
	l := memledger.New()
	defer l.Close()
	auth, err := ca.New(ca.Config{Signer: interKey, Chain: []*x509.Certificate{inter, root}, Ledger: l})
	if err != nil {
		t.Fatal(err)
	}
	key := deviceKey(t, "P-256")
	roots := x509.NewCertPool()
	roots.AddCert(root)
	inters := x509.NewCertPool()
	inters.AddCert(inter)
	c, err := auth.Issue(ctx, &ca.Request{CSR: csr(t, key, pkix.Name{CommonName: "d"}, hwModuleSAN(t, nil, nil, "a.devices.example.com", "devices.example.com")), Profile: "ldevid", Requester: "s"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err = c.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inters, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		t.Fatal(err)
	}
	// Names the chain cannot validate are refused before anything is
	// signed or recorded.
	before, _ := l.Head(ctx)
	for _, dns := range []string{"a.other.example.com", "xdevices.example.com"} {
		_, err := auth.Issue(ctx, &ca.Request{CSR: csr(t, key, pkix.Name{CommonName: "d"}, hwModuleSAN(t, nil, nil, dns)), Profile: "ldevid", Requester: "s"})
		var ce *identity.CSRError
		if !errors.As(err, &ce) || ce.Reason != identity.CSRUnexpectedExtension {
			t.Errorf("%s: %v", dns, err)
		}
	}
	uriSAN := pkix.Extension{Id: oidSAN, Value: []byte{0x30, 0x1b, 0x86, 0x19}}
	uriSAN.Value = append(uriSAN.Value, "https://evil.example.com/x"[:25]...)
	var ce *identity.CSRError
	if _, err := auth.Issue(ctx, &ca.Request{CSR: csr(t, key, pkix.Name{CommonName: "d"}, uriSAN), Profile: "ldevid", Requester: "s"}); !errors.As(err, &ce) || !strings.Contains(ce.Detail, "name constraints") {
		t.Errorf("excluded URI domain: %v", err)
	}
	if after, _ := l.Head(ctx); after.Seq != before.Seq {
		t.Errorf("refused requests were recorded")
	}
	// A three-level chain: root → pathlen-1 intermediate → issuing CA.
	midKey := caKey(t, keystore.ES384)
	mid, err := ca.NewIntermediate(ca.IntermediateRequest{Subject: pkix.Name{CommonName: "Mid"}, PublicKey: midKey.Public(), Parent: root, ParentSigner: rootKey, MaxPathLen: 1})
	if err != nil {
		t.Fatal(err)
	}
	leafCAKey := caKey(t, keystore.EdDSA)
	leafCA, err := ca.NewIntermediate(ca.IntermediateRequest{Subject: pkix.Name{CommonName: "Issuing"}, PublicKey: leafCAKey.Public(), Parent: mid, ParentSigner: midKey})
	if err != nil {
		t.Fatal(err)
	}
	auth3, err := ca.New(ca.Config{Signer: leafCAKey, Chain: []*x509.Certificate{leafCA, mid, root}, Ledger: l})
	if err != nil {
		t.Fatal(err)
	}
	c, err = auth3.Issue(ctx, &ca.Request{CSR: idevidCSR(t, key, "L3"), Profile: "idevid", Requester: "s"})
	if err != nil {
		t.Fatal(err)
	}
	inters.AddCert(mid)
	inters.AddCert(leafCA)
	if _, err := c.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inters, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		t.Fatal(err)
	}
}

func TestConfigValidation(t *testing.T) {
	t.Parallel()
	p := newPKI(t, keystore.ES256, nil)
	other := caKey(t, keystore.ES256)
	good := ca.Config{Signer: p.interKey, Chain: []*x509.Certificate{p.inter, p.root}, Ledger: p.ledger}
	cases := map[string]func(c *ca.Config){
		"no signer":         func(c *ca.Config) { c.Signer = nil },
		"no chain":          func(c *ca.Config) { c.Chain = nil },
		"no ledger":         func(c *ca.Config) { c.Ledger = nil },
		"wrong key":         func(c *ca.Config) { c.Signer = other },
		"broken chain":      func(c *ca.Config) { c.Chain = []*x509.Certificate{p.inter, p.inter} },
		"duplicate profile": func(c *ca.Config) { c.Profiles = []ca.Profile{ca.IDevIDProfile(), ca.IDevIDProfile()} },
		"bad profile kind":  func(c *ca.Config) { c.Profiles = []ca.Profile{{Name: "x"}} },
		"bad profile name":  func(c *ca.Config) { c.Profiles = []ca.Profile{{Name: "a b", Kind: ca.IDevID}} },
		"negative validity": func(c *ca.Config) { c.Profiles = []ca.Profile{{Name: "x", Kind: ca.LDevID, Validity: -1}} },
		"negative quota":    func(c *ca.Config) { c.Quota.Limit = -1 },
		"bad CRL URL":       func(c *ca.Config) { c.CRLDistributionPoint = "not a url" },
	}
	for name, edit := range cases {
		c := good
		edit(&c)
		if a, err := ca.New(c); a != nil || !errors.Is(err, ca.ErrInvalidConfig) {
			t.Errorf("%s: %v", name, err)
		}
	}
	// A leaf as CA is refused.
	leaf := issueAll(t, p)["ldevid"]
	c := good
	c.Chain = []*x509.Certificate{leaf, p.inter, p.root}
	if _, err := ca.New(c); !errors.Is(err, ca.ErrInvalidConfig) {
		t.Errorf("leaf as CA: %v", err)
	}
	if _, err := ca.NewRoot(ca.RootRequest{Signer: other}); !errors.Is(err, ca.ErrInvalidConfig) {
		t.Errorf("root without subject: %v", err)
	}
	if _, err := ca.NewIntermediate(ca.IntermediateRequest{Subject: pkix.Name{CommonName: "x"}, PublicKey: other.Public(), Parent: p.root, ParentSigner: other}); !errors.Is(err, ca.ErrInvalidConfig) {
		t.Errorf("parent/signer mismatch: %v", err)
	}
}

func TestCustomProfile(t *testing.T) {
	t.Parallel()
	now := testNow
	p := newPKI(t, keystore.ES256, func(c *ca.Config) {
		c.Time = func() time.Time { return now }
		c.Profiles = []ca.Profile{{Name: "ldevid-7d", Kind: ca.LDevID, Validity: 7 * 24 * time.Hour, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}}
	})
	c, err := p.auth.Issue(context.Background(), &ca.Request{CSR: csr(t, deviceKey(t, "Ed25519"), pkix.Name{CommonName: "gw"}), Profile: "ldevid-7d", Requester: "s"})
	if err != nil {
		t.Fatal(err)
	}
	if !c.NotAfter.Equal(now.Add(7*24*time.Hour-time.Second)) || len(c.ExtKeyUsage) != 1 || c.ExtKeyUsage[0] != x509.ExtKeyUsageServerAuth {
		t.Fatalf("%v %v", c.NotAfter, c.ExtKeyUsage)
	}
	if _, err := p.auth.Issue(context.Background(), &ca.Request{CSR: idevidCSR(t, deviceKey(t, "P-256"), "x"), Profile: "idevid", Requester: "s"}); !errors.Is(err, ca.ErrUnknownProfile) {
		t.Fatalf("default profile still present: %v", err)
	}
}

func TestCRLRefreshAndSharedLedger(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var mu sync.Mutex
	now := testNow
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	p := newPKI(t, keystore.ES256, func(c *ca.Config) { c.Time = clock; c.CRLValidity = time.Hour })
	der1, err := p.auth.CRL(ctx)
	if err != nil {
		t.Fatal(err)
	}
	crl1, _ := x509.ParseRevocationList(der1)
	if !crl1.NextUpdate.Equal(testNow.Add(time.Hour)) {
		t.Fatalf("nextUpdate %v", crl1.NextUpdate)
	}
	mu.Lock()
	now = now.Add(31 * time.Minute)
	mu.Unlock()
	der2, _ := p.auth.CRL(ctx)
	crl2, _ := x509.ParseRevocationList(der2)
	if crl2.Number.Int64() != 2 || !crl2.ThisUpdate.Equal(now) {
		t.Fatalf("refresh after half the validity: number %v thisUpdate %v", crl2.Number, crl2.ThisUpdate)
	}
	// A second Authority on the same ledger (another CA instance) sees
	// revocations the first recorded, and CRL numbers stay monotonic.
	second, err := ca.New(ca.Config{Signer: p.interKey, Chain: []*x509.Certificate{p.inter, p.root}, Ledger: p.ledger, Time: clock})
	if err != nil {
		t.Fatal(err)
	}
	cert := issueAll(t, p)["idevid"]
	if err := second.Revoke(ctx, cert.SerialNumber, ca.ReasonSuperseded, "ops"); err != nil {
		t.Fatal(err)
	}
	der3, _ := p.auth.CRL(ctx)
	crl3, _ := x509.ParseRevocationList(der3)
	der4, _ := second.CRL(ctx)
	crl4, _ := x509.ParseRevocationList(der4)
	if len(crl3.RevokedCertificateEntries) != 1 || len(crl4.RevokedCertificateEntries) != 1 || crl4.Number.Cmp(crl3.Number) <= 0 || crl3.Number.Int64() != 3 {
		t.Fatalf("shared ledger CRLs: %v (%d) and %v (%d)", crl3.Number, len(crl3.RevokedCertificateEntries), crl4.Number, len(crl4.RevokedCertificateEntries))
	}
	if !strings.Contains(crl3.Issuer.String(), "Issuing CA") {
		t.Fatalf("issuer %v", crl3.Issuer)
	}
}

func TestValidityCappedAtIssuer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p := newPKI(t, keystore.ES256, nil)
	interKey := caKey(t, keystore.ES256)
	inter, err := ca.NewIntermediate(ca.IntermediateRequest{Subject: pkix.Name{CommonName: "Ten Years"},
		PublicKey: interKey.Public(), Parent: p.root, ParentSigner: p.rootKey, Validity: 10 * 365 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	auth, err := ca.New(ca.Config{Signer: interKey, Chain: []*x509.Certificate{inter, p.root}, Ledger: p.ledger,
		Profiles: []ca.Profile{{Name: "long", Kind: ca.LDevID, Validity: 50 * 365 * 24 * time.Hour}}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := auth.Issue(ctx, &ca.Request{CSR: csr(t, deviceKey(t, "P-256"), pkix.Name{CommonName: "x"}), Profile: "long", Requester: "s"})
	if err != nil {
		t.Fatal(err)
	}
	if !c.NotAfter.Equal(inter.NotAfter) {
		t.Fatalf("notAfter %v, issuer's %v", c.NotAfter, inter.NotAfter)
	}
	c, err = p.auth.Issue(ctx, &ca.Request{CSR: idevidCSR(t, deviceKey(t, "P-256"), "x"), Profile: "idevid", Requester: "s"})
	if err != nil || c.NotAfter.Year() != 9999 {
		t.Fatalf("IDevID %v %v", c, err)
	}
}

func TestIDevIDWithEKU(t *testing.T) {
	t.Parallel()
	p := newPKI(t, keystore.ES256, func(c *ca.Config) {
		c.Profiles = []ca.Profile{{Name: "idevid-tls", Kind: ca.IDevID, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}}
	})
	c, err := p.auth.Issue(context.Background(), &ca.Request{CSR: idevidCSR(t, deviceKey(t, "P-256"), "E1"), Profile: "idevid-tls", Requester: "s"})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.ExtKeyUsage) != 1 || c.ExtKeyUsage[0] != x509.ExtKeyUsageClientAuth || c.NotAfter.Year() != 9999 {
		t.Fatalf("%v %v", c.ExtKeyUsage, c.NotAfter)
	}
}
