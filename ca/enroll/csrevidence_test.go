package enroll

import (
	"bytes"
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

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

func testCSR(t testing.TB, key crypto.Signer, alg x509.SignatureAlgorithm) []byte {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{SerialNumber: "SN-1"}, SignatureAlgorithm: alg, DNSNames: []string{"dev.example"},
	}, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// TestAddEvidenceToCSR round-trips evidence through a request for each
// key type: the re-signed request verifies and carries the evidence.
func TestAddEvidenceToCSR(t *testing.T) {
	t.Parallel()
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ec384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	evidence := []byte("\xd2\x84 an EAT")
	for name, tc := range map[string]struct {
		key crypto.Signer
		alg x509.SignatureAlgorithm
	}{
		"P-256": {ec, x509.ECDSAWithSHA256}, "P-384": {ec384, x509.ECDSAWithSHA384},
		"Ed25519": {ed, x509.PureEd25519}, "RSA": {rk, x509.SHA256WithRSA}, "RSA-PSS": {rk, x509.SHA256WithRSAPSS},
	} {
		csr := testCSR(t, tc.key, tc.alg)
		out, err := AddEvidenceToCSR(nil, tc.key, csr, evidence)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		req, err := x509.ParseCertificateRequest(out)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := req.CheckSignature(); err != nil {
			t.Fatalf("%s: re-signed request does not verify: %v", name, err)
		}
		if req.Subject.SerialNumber != "SN-1" || len(req.DNSNames) != 1 {
			t.Errorf("%s: request contents changed", name)
		}
		got, ok, err := EvidenceFromCSR(req.RawTBSCertificateRequest)
		if err != nil || !ok || !bytes.Equal(got, evidence) {
			t.Errorf("%s: EvidenceFromCSR = %q, %v, %v", name, got, ok, err)
		}
		if _, err := AddEvidenceToCSR(nil, tc.key, out, evidence); err == nil {
			t.Errorf("%s: evidence added twice", name)
		}
	}
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if _, err := AddEvidenceToCSR(nil, other, testCSR(t, ec, x509.ECDSAWithSHA256), evidence); err == nil {
		t.Error("evidence added with another key")
	}
	if _, ok, err := EvidenceFromCSR(mustParse(t, testCSR(t, ec, x509.ECDSAWithSHA256)).RawTBSCertificateRequest); ok || err != nil {
		t.Errorf("plain request: %v, %v", ok, err)
	}
}

func mustParse(t testing.TB, der []byte) *x509.CertificateRequest {
	t.Helper()
	r, err := x509.ParseCertificateRequest(der)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// tbsWith builds a certificationRequestInfo whose attributes are attrs
// (each a full Attribute SEQUENCE).
func tbsWith(attrs ...[]byte) []byte {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1Int64(0)
		b.AddASN1(cbasn1.SEQUENCE, func(*cryptobyte.Builder) {})
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { b.AddASN1NULL() })
		b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
			for _, a := range attrs {
				b.AddBytes(a)
			}
		})
	})
	return b.BytesOrPanic()
}

type stmt struct {
	typ  asn1.ObjectIdentifier
	tag  cbasn1.Tag
	val  []byte
	hint string
}

func evidenceAttr(values int, stmts ...stmt) []byte {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1ObjectIdentifier(oidEvidenceAttribute)
		b.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) {
			for range values {
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
					b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
						for _, s := range stmts {
							b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
								b.AddASN1ObjectIdentifier(s.typ)
								b.AddASN1(s.tag, func(b *cryptobyte.Builder) { b.AddBytes(s.val) })
								if s.hint != "" {
									b.AddASN1(cbasn1.IA5String, func(b *cryptobyte.Builder) { b.AddBytes([]byte(s.hint)) })
								}
							})
						}
					})
				})
			}
		})
	})
	return b.BytesOrPanic()
}

func TestEvidenceFromCSRRefused(t *testing.T) {
	t.Parallel()
	eat := stmt{typ: oidEvidenceEAT, tag: cbasn1.OCTET_STRING, val: []byte("tok")}
	other := stmt{typ: asn1.ObjectIdentifier{1, 2, 3}, tag: cbasn1.SEQUENCE, val: nil, hint: "verifier.example"}
	good := [][]byte{
		tbsWith(evidenceAttr(1, eat)),
		tbsWith(evidenceAttr(1, other, eat)),
		tbsWith(evidenceAttr(1, stmt{oidEvidenceEAT, cbasn1.OCTET_STRING, []byte("tok"), "verifier.example"})),
	}
	for i, tbs := range good {
		if ev, ok, err := EvidenceFromCSR(tbs); err != nil || !ok || string(ev) != "tok" {
			t.Errorf("good %d: %q %v %v", i, ev, ok, err)
		}
	}
	bad := map[string][]byte{
		"attribute twice":   tbsWith(evidenceAttr(1, eat), evidenceAttr(1, eat)),
		"two values":        tbsWith(evidenceAttr(2, eat)),
		"no value":          tbsWith(evidenceAttr(0, eat)),
		"two EATs":          tbsWith(evidenceAttr(1, eat, eat)),
		"no statement":      tbsWith(evidenceAttr(1)),
		"no EAT statement":  tbsWith(evidenceAttr(1, other)),
		"EAT not octets":    tbsWith(evidenceAttr(1, stmt{oidEvidenceEAT, cbasn1.UTF8String, []byte("tok"), ""})),
		"empty EAT":         tbsWith(evidenceAttr(1, stmt{oidEvidenceEAT, cbasn1.OCTET_STRING, nil, ""})),
		"truncated":         tbsWith(evidenceAttr(1, eat))[:30],
		"too many":          tbsWith(evidenceAttr(1, other, other, other, other, other, other, other, other, eat)),
		"not a certreqinfo": []byte{0x30, 0x00},
	}
	for name, tbs := range bad {
		if _, _, err := EvidenceFromCSR(tbs); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func FuzzEvidenceFromCSR(f *testing.F) {
	eat := stmt{typ: oidEvidenceEAT, tag: cbasn1.OCTET_STRING, val: []byte("tok")}
	f.Add(tbsWith(evidenceAttr(1, eat)))
	f.Add(tbsWith(evidenceAttr(1, stmt{asn1.ObjectIdentifier{1, 2, 3}, cbasn1.SEQUENCE, nil, "h"}, eat)))
	f.Add(tbsWith(evidenceAttr(1, eat), evidenceAttr(1, eat)))
	f.Add(tbsWith())
	f.Fuzz(func(t *testing.T, tbs []byte) {
		ev, ok, err := EvidenceFromCSR(tbs)
		if err != nil && (ok || ev != nil) {
			t.Fatal("error with a result")
		}
		if ok && len(ev) == 0 {
			t.Fatal("empty evidence reported")
		}
	})
}
