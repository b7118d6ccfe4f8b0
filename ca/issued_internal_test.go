package ca

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"testing"
	"time"
)

// FuzzWalkIssued feeds issuedCertificate's DER walk mutations of a
// certificate issued from a known template: it must not panic, and what
// it accepts must be the input whole, with the raw parts inside it.
func FuzzWalkIssued(f *testing.F) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	now := time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Issuing CA"},
		NotBefore: now, NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign, SubjectKeyId: []byte{1, 2, 3, 4},
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, key.Public(), key)
	if err != nil {
		f.Fatal(err)
	}
	parent, err := x509.ParseCertificate(caDER)
	if err != nil {
		f.Fatal(err)
	}
	csrDER, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "device"}}, key)
	if err != nil {
		f.Fatal(err)
	}
	csr, err := x509.ParseCertificateRequest(csrDER)
	if err != nil {
		f.Fatal(err)
	}
	c := &checkedCSR{csr: csr, subject: pkix.Name{CommonName: "device"}, san: subjectAltName{DNSNames: []string{"device.example.com"}}}
	san, err := c.san.marshal()
	if err != nil {
		f.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: c.subject, NotBefore: now, NotAfter: now.Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true, SubjectKeyId: []byte{5, 6, 7},
		CRLDistributionPoints: []string{"http://127.0.0.1/crl"},
		ExtraExtensions:       []pkix.Extension{{Id: oidSubjectAltName, Value: san}},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), key)
	if err != nil {
		f.Fatal(err)
	}
	if _, ok := walkIssued(der, tmpl, parent, c); !ok {
		f.Fatal("the seed is not walked")
	}
	f.Add(der)
	f.Add(der[:len(der)-1])
	f.Add(append(bytes.Clone(der), 0))
	f.Fuzz(func(t *testing.T, in []byte) {
		cert, ok := walkIssued(in, tmpl, parent, c)
		if !ok {
			return
		}
		if !bytes.Equal(cert.Raw, in) || !bytes.Contains(in, cert.RawTBSCertificate) ||
			!bytes.Contains(in, cert.RawSubjectPublicKeyInfo) || !bytes.Contains(in, cert.Signature) {
			t.Fatal("accepted a certificate that is not the input")
		}
	})
}
