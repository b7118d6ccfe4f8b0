package zlinttest

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"testing"

	"github.com/ztmkit/ztm/ca"
	"github.com/ztmkit/ztm/identity/keystore"
	"github.com/ztmkit/ztm/internal/testpki"
)

// The PKI these tests lint: the same as ca's own tests make (ca's test
// helpers are not importable from this module).

type testPKI struct {
	root, inter       *x509.Certificate
	rootKey, interKey crypto.Signer
	auth              *ca.Authority
}

// newPKI is internal/testpki's root and issuing CA with the names the
// lints read, and an Authority over a ledger in memory.
func newPKI(t testing.TB, alg keystore.Algorithm, edit func(*ca.Config)) *testPKI {
	t.Helper()
	pki := testpki.New(t, testpki.Config{Algorithm: alg,
		RootName: "Example OEM Device Root CA", IssuingName: "Example OEM Line 1 Issuing CA"})
	return &testPKI{
		root: pki.Root, inter: pki.Issuing, rootKey: pki.RootKey, interKey: pki.IssuingKey,
		auth: pki.Authority(t, testpki.Ledger(t), edit),
	}
}

func deviceKey(t testing.TB, kind string) crypto.Signer {
	t.Helper()
	var (
		k   crypto.Signer
		err error
	)
	switch kind {
	case "P-256":
		k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "P-384":
		k, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case "Ed25519":
		_, k, err = ed25519.GenerateKey(rand.Reader)
	case "RSA-3072":
		k, err = rsa.GenerateKey(rand.Reader, 3072)
	default:
		t.Fatalf("unknown key kind %s", kind)
	}
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// hwModuleSAN encodes a subjectAltName with one hardwareModuleName
// otherName (RFC 4108) and DNS names.
func hwModuleSAN(t testing.TB, serial []byte, dns ...string) pkix.Extension {
	t.Helper()
	must := func(b []byte, err error) []byte {
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	hwType := asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 99999, 1, 1}
	hw := must(asn1.Marshal(struct {
		Type   asn1.ObjectIdentifier
		Serial []byte
	}{hwType, serial}))
	explicit := must(asn1.Marshal(asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: hw}))
	oid := must(asn1.Marshal(asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 8, 4}))
	names := must(asn1.Marshal(asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: append(oid, explicit...)}))
	for _, d := range dns {
		names = append(names, must(asn1.Marshal(asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 2, Bytes: []byte(d)}))...)
	}
	return pkix.Extension{Id: asn1.ObjectIdentifier{2, 5, 29, 17},
		Value: must(asn1.Marshal(asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSequence, IsCompound: true, Bytes: names}))}
}

func csr(t testing.TB, key crypto.Signer, subject pkix.Name, exts ...pkix.Extension) []byte {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: subject, ExtraExtensions: exts}, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func idevidCSR(t testing.TB, key crypto.Signer, serial string) []byte {
	return csr(t, key, pkix.Name{SerialNumber: serial, CommonName: "Sensor " + serial}, hwModuleSAN(t, []byte(serial)))
}

// issueAll issues one certificate per profile.
func issueAll(t *testing.T, p *testPKI) map[string]*x509.Certificate {
	t.Helper()
	ctx := context.Background()
	key := deviceKey(t, "P-256")
	out := map[string]*x509.Certificate{}
	reqs := map[string]*ca.Request{
		"idevid": {CSR: idevidCSR(t, key, "PID-0042"), Profile: "idevid", Requester: "s"},
		"ldevid": {CSR: csr(t, key, pkix.Name{CommonName: "sensor-42"}, hwModuleSAN(t, []byte("42"), "sensor-42.line1.example.com")), Profile: "ldevid", Requester: "s"},
		"station": {CSR: csr(t, key, pkix.Name{CommonName: "Station 1", Organization: []string{"Example CM"}}), Profile: "station", Requester: "admin",
			Station: &ca.StationAuthorization{Steps: []string{"provision"}, Profiles: []string{"idevid"}}},
		"ak": {CSR: csr(t, key, pkix.Name{SerialNumber: "PID-0042"}, hwModuleSAN(t, []byte("42"))), Profile: "ak", Requester: "s"},
	}
	for name, req := range reqs {
		c, err := p.auth.Issue(ctx, req)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out[name] = c
	}
	return out
}
