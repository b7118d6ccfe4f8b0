package ca_test

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
	"encoding/pem"
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/ztmkit/ztm/ca"
	"github.com/ztmkit/ztm/ca/ledger/memledger"
	"github.com/ztmkit/ztm/identity/keystore"
	"github.com/ztmkit/ztm/internal/testpki"
)

// testPKI is a root, an intermediate and an Authority on the intermediate
// with a ledger in memory (tests of the SQLite ledger's file and of crash
// safety are in ca/ledger/sqlite).
type testPKI struct {
	root, inter       *x509.Certificate
	rootKey, interKey crypto.Signer
	auth              *ca.Authority
	ledger            *memledger.Ledger
}

func caKey(t testing.TB, alg keystore.Algorithm) crypto.Signer { return testpki.Key(t, alg) }

func newPKI(t testing.TB, alg keystore.Algorithm, edit func(*ca.Config)) *testPKI {
	t.Helper()
	pki := testpki.New(t, testpki.Config{Algorithm: alg, RootName: "Example OEM Device Root CA", IssuingName: "Example OEM Line 1 Issuing CA"})
	p := &testPKI{root: pki.Root, inter: pki.Issuing, rootKey: pki.RootKey, interKey: pki.IssuingKey}
	p.ledger = testpki.Ledger(t)
	p.auth = pki.Authority(t, p.ledger, edit)
	return p
}

func (p *testPKI) records(t testing.TB) uint64 {
	t.Helper()
	h, err := p.ledger.Head(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return h.Seq
}

// Device keys.
var (
	rsaOnce          sync.Once
	rsa3072, rsa2048 *rsa.PrivateKey
	rsa1024          *rsa.PrivateKey
)

func rsaKeys(t testing.TB) {
	rsaOnce.Do(func() {
		var err error
		if rsa3072, err = rsa.GenerateKey(rand.Reader, 3072); err != nil {
			panic(err)
		}
		if rsa2048, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		// GenerateKey refuses keys under 1024 bits only; 1024 is allowed.
		if rsa1024, err = rsa.GenerateKey(rand.Reader, 1024); err != nil {
			panic(err)
		}
	})
}

func deviceKey(t testing.TB, kind string) crypto.Signer {
	t.Helper()
	switch kind {
	case "P-256":
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		return k
	case "P-384":
		k, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		return k
	case "P-224":
		k, _ := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
		return k
	case "Ed25519":
		_, k, _ := ed25519.GenerateKey(rand.Reader)
		return k
	case "RSA-3072":
		rsaKeys(t)
		return rsa3072
	case "RSA-2048":
		rsaKeys(t)
		return rsa2048
	case "RSA-1024":
		rsaKeys(t)
		return rsa1024
	}
	t.Fatalf("unknown key kind %s", kind)
	return nil
}

var oidSAN = asn1.ObjectIdentifier{2, 5, 29, 17}

// hwModuleSAN encodes a subjectAltName with one hardwareModuleName
// otherName (RFC 4108) and DNS names, with encoding/asn1 only, apart from
// the package's own encoder.
func hwModuleSAN(t testing.TB, hwType asn1.ObjectIdentifier, serial []byte, dns ...string) pkix.Extension {
	t.Helper()
	must := func(b []byte, err error) []byte {
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	var names []byte
	if hwType != nil {
		hw := must(asn1.Marshal(struct {
			Type   asn1.ObjectIdentifier
			Serial []byte
		}{hwType, serial}))
		explicit := must(asn1.Marshal(asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: hw}))
		oid := must(asn1.Marshal(asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 8, 4}))
		names = append(names, must(asn1.Marshal(asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: append(oid, explicit...)}))...)
	}
	for _, d := range dns {
		names = append(names, must(asn1.Marshal(asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 2, Bytes: []byte(d)}))...)
	}
	return pkix.Extension{Id: oidSAN, Value: must(asn1.Marshal(asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSequence, IsCompound: true, Bytes: names}))}
}

var exampleHWType = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 99999, 1, 1}

func csr(t testing.TB, key crypto.Signer, subject pkix.Name, exts ...pkix.Extension) []byte {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: subject, ExtraExtensions: exts}, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// newDeviceCSR is an IDevID request of another device each call: a device
// holds one live IDevID, so tests that issue many make many devices.
func newDeviceCSR(t testing.TB, key crypto.Signer, prefix string) []byte {
	return idevidCSR(t, key, testpki.NewDeviceSerial(prefix))
}

func idevidCSR(t testing.TB, key crypto.Signer, serial string) []byte {
	return csr(t, key, pkix.Name{SerialNumber: serial, CommonName: "Sensor " + serial},
		hwModuleSAN(t, exampleHWType, []byte(serial)))
}

func writePEM(t testing.TB, path string, certs ...*x509.Certificate) string {
	t.Helper()
	var b []byte
	for _, c := range certs {
		b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

var testNow = time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)

func errorsIs(err, target error) bool { return errors.Is(err, target) }
