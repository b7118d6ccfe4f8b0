package identity

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"strconv"
	"testing"

	"github.com/ztmkit/ztm/identity/keystore/mem"
)

// BenchmarkCreate makes an ES256 identity (key in the in-memory store and
// IDevID request) through Create. Its twin BenchmarkCreateRaw does only the
// primitives: ecdsa.GenerateKey and x509.CreateCertificateRequest with the
// same subject and subject alternative name. Each key is deleted again, on
// the clock, so that the store (and the heap the GC scans) stays the same
// size however many iterations run, as it does for the raw twin.
func BenchmarkCreate(b *testing.B) {
	ctx := context.Background()
	store := mem.New()
	defer store.Close()
	dev := testDevice("SN-000001")
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		id, err := Create(ctx, store, CreateRequest{Label: "dev-" + strconv.Itoa(i), Device: dev})
		if err != nil {
			b.Fatal(err)
		}
		if err := store.Delete(ctx, id.Key.Label()); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCreateRaw(b *testing.B) {
	dev := testDevice("SN-000001")
	san, err := HardwareModuleNameExtension(dev.HardwareModule, false)
	if err != nil {
		b.Fatal(err)
	}
	tmpl := &x509.CertificateRequest{
		SignatureAlgorithm: x509.ECDSAWithSHA256,
		Subject:            pkix.Name{SerialNumber: dev.SerialNumber, CommonName: dev.CommonName, Organization: []string{dev.Organization}},
		ExtraExtensions:    []pkix.Extension{san},
	}
	b.ReportAllocs()
	for b.Loop() {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCheckCSR measures what a station or CA spends on each request
// it receives: parsing, signature verification and field checks.
func BenchmarkCheckCSR(b *testing.B) {
	dev := testDevice("SN-000001")
	der, err := CreateCSR(nil, testKeys()[ES256], dev)
	if err != nil {
		b.Fatal(err)
	}
	p := CSRPolicy{SerialNumber: dev.SerialNumber, HardwareModule: dev.HardwareModule}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := CheckCSR(der, p); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCheckCSRRaw is the stdlib's share of BenchmarkCheckCSR:
// x509.ParseCertificateRequest and CheckSignature.
func BenchmarkCheckCSRRaw(b *testing.B) {
	der, err := CreateCSR(nil, testKeys()[ES256], testDevice("SN-000001"))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		req, err := x509.ParseCertificateRequest(der)
		if err != nil {
			b.Fatal(err)
		}
		if err := req.CheckSignature(); err != nil {
			b.Fatal(err)
		}
	}
}
