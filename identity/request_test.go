package identity

import (
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestParseRequestRules checks what RequestRules relax and what they
// never do: the CA's rules take requests other tools made (PKCS#1 v1.5,
// another SHA-2 digest, a challengePassword, DNS names, no
// serialNumber), which ParseCSR refuses; SHA-1 and a CA certificate stay
// refused.
func TestParseRequestRules(t *testing.T) {
	t.Parallel()
	p256 := testKeys()[ES256]
	rsa3072 := testKeys()[PS256]
	lax := RequestRules{AnySHA2Signature: true, AnyAttribute: true}
	uri, err := url.Parse("https://device.example.com/x")
	require.NoError(t, err)
	ldevid := &x509.CertificateRequest{Subject: pkix.Name{CommonName: "gw-1"}, DNSNames: []string{"gw-1.example.com"}, URIs: []*url.URL{uri}}
	pw, err := asn1.Marshal("secret") // PrintableString
	require.NoError(t, err)
	withPassword := idevidTemplate(t, "SN-1")
	withPassword.ExtraExtensions = nil
	challenge := addChallengePassword(t, p256, withPassword, pw)

	cases := []struct {
		name        string
		der         []byte
		strict      CSRErrorReason // ParseCSR's outcome (0: accepted)
		relaxed     CSRErrorReason // ParseRequest with lax (0: accepted)
		dns, serial string
	}{
		{"IDevID", stdlibCSR(t, p256, idevidTemplate(t, "SN-1")), 0, 0, "", "SN-1"},
		{"RSA PKCS#1 v1.5", stdlibCSR(t, rsa3072, idevidTemplate(t, "SN-1")), CSRSignatureAlgorithm, 0, "", "SN-1"},
		{"P-256 with SHA-384", func() []byte {
			tmpl := idevidTemplate(t, "SN-1")
			tmpl.SignatureAlgorithm = x509.ECDSAWithSHA384
			return stdlibCSR(t, p256, tmpl)
		}(), CSRSignatureAlgorithm, 0, "", "SN-1"},
		{"SHA-1", func() []byte {
			tmpl := idevidTemplate(t, "SN-1")
			tmpl.SignatureAlgorithm = x509.ECDSAWithSHA1
			return stdlibCSR(t, p256, tmpl)
		}(), CSRSignatureAlgorithm, CSRBadSignature, "", ""},
		{"challengePassword", challenge, CSRUnexpectedAttribute, 0, "", "SN-1"},
		{"LDevID names, no serialNumber", stdlibCSR(t, p256, ldevid), CSRUnexpectedExtension, 0, "gw-1.example.com", ""},
		{"CA:true", func() []byte {
			tmpl := idevidTemplate(t, "SN-1")
			bc, _ := asn1.Marshal(struct{ IsCA bool }{true})
			tmpl.ExtraExtensions = append(tmpl.ExtraExtensions, pkix.Extension{Id: oidBasicConstraints, Critical: true, Value: bc})
			return stdlibCSR(t, p256, tmpl)
		}(), CSRUnexpectedExtension, CSRUnexpectedExtension, "", ""},
		{"over MaxCSRSize", make([]byte, MaxCSRSize+1), CSRTooLarge, CSRMalformed, "", ""},
		{"over MaxRequestSize", make([]byte, MaxRequestSize+1), CSRTooLarge, CSRTooLarge, "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseCSR(tc.der)
			requireReason(t, err, tc.strict)
			c, err := ParseRequest(tc.der, lax)
			requireReason(t, err, tc.relaxed)
			if tc.relaxed != 0 {
				require.Nil(t, c)
				return
			}
			require.Equal(t, tc.serial, c.SerialNumber)
			if tc.dns != "" {
				require.Equal(t, []string{tc.dns}, c.Names.DNSNames)
				require.Equal(t, []string{uri.String()}, c.Names.URIs)
				require.True(t, c.HardwareModule.IsZero())
			}
		})
	}
}

func requireReason(t *testing.T, err error, want CSRErrorReason) {
	t.Helper()
	if want == 0 {
		require.NoError(t, err)
		return
	}
	var ce *CSRError
	require.ErrorAs(t, err, &ce)
	require.ErrorIs(t, err, ErrInvalidCSR)
	require.Equal(t, want, ce.Reason, "%v", err)
}

// addChallengePassword makes a request from tmpl with a challengePassword
// attribute (PKCS#9, 1.2.840.113549.1.9.7) beside its extensionRequest.
func addChallengePassword(t *testing.T, key any, tmpl *x509.CertificateRequest, pw []byte) []byte {
	t.Helper()
	//lint:ignore SA1019 crypto/x509 writes a challengePassword only through Attributes.
	tmpl.Attributes = []pkix.AttributeTypeAndValueSET{{
		Type:  asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 7},
		Value: [][]pkix.AttributeTypeAndValue{{{Type: asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 7}, Value: asn1.RawValue{FullBytes: pw}}}},
	}}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	require.NoError(t, err)
	return der
}

func TestParseSubjectAltName(t *testing.T) {
	t.Parallel()
	hw := HardwareModuleName{Type: modelOID, SerialNumber: []byte("SN-1")}
	ext, err := HardwareModuleNameExtension(hw, false)
	require.NoError(t, err)
	one := ext.Value[2:] // the otherName, without the GeneralNames header
	seq := func(parts ...[]byte) []byte {
		var b []byte
		for _, p := range parts {
			b = append(b, p...)
		}
		v, err := asn1.Marshal(asn1.RawValue{Tag: asn1.TagSequence, IsCompound: true, Bytes: b})
		require.NoError(t, err)
		return v
	}
	dns := []byte{0x82, 0x03, 'a', '.', 'b'}
	uri := []byte{0x86, 0x05, 'u', 'r', 'n', ':', 'x'}
	email := []byte{0x81, 0x03, 'a', '@', 'b'}
	otherOID := []byte{0xa0, 0x0a, 0x06, 0x03, 0x2a, 0x03, 0x04, 0xa0, 0x03, 0x04, 0x01, 0x00} // otherName 1.2.3.4
	got, err := ParseSubjectAltName(seq(one, dns, uri, email, otherOID, one))
	require.NoError(t, err)
	require.Equal(t, SubjectAltName{HardwareModules: []HardwareModuleName{hw, hw}, DNSNames: []string{"a.b"}, URIs: []string{"urn:x"}, Others: 2}, got)

	for name, der := range map[string][]byte{
		"empty":              {},
		"empty GeneralNames": {0x30, 0x00},
		"trailing data":      append(seq(dns), 0),
		"truncated":          seq(one)[:10],
		"bad otherName":      seq([]byte{0xa0, 0x01, 0x00}),
		"bad hwName":         seq([]byte{0xa0, 0x0b, 0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x08, 0x04, 0xa0, 0x00}),
		"invalid hwName":     seq(mustOtherName(t, HardwareModuleName{Type: modelOID})),
	} {
		_, err := ParseSubjectAltName(der)
		require.ErrorIs(t, err, ErrInvalidDevice, name)
	}
}

// mustOtherName encodes h as an otherName without validating it.
func mustOtherName(t *testing.T, h HardwareModuleName) []byte {
	t.Helper()
	inner, err := asn1.Marshal(struct {
		Type   asn1.ObjectIdentifier
		Serial []byte
	}{h.Type, h.SerialNumber})
	require.NoError(t, err)
	explicit, err := asn1.Marshal(asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: inner})
	require.NoError(t, err)
	oid, err := asn1.Marshal(oidHardwareModuleName)
	require.NoError(t, err)
	v, err := asn1.Marshal(asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: append(oid, explicit...)})
	require.NoError(t, err)
	return v
}

// FuzzParseSubjectAltName: the one subjectAltName parser never panics,
// refuses with ErrInvalidDevice, and what it accepts
// HardwareModuleNameFromExtensions reads alike.
func FuzzParseSubjectAltName(f *testing.F) {
	ext, err := HardwareModuleNameExtension(HardwareModuleName{Type: modelOID, SerialNumber: []byte("SN-F")}, false)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(ext.Value)
	f.Add([]byte{0x30, 0x05, 0x82, 0x03, 'a', '.', 'b'})
	f.Add([]byte{0x30, 0x05, 0x81, 0x03, 'a', '@', 'b'})
	f.Add([]byte{0x30, 0x00})
	f.Fuzz(func(t *testing.T, der []byte) {
		san, err := ParseSubjectAltName(der)
		if err != nil {
			if !errors.Is(err, ErrInvalidDevice) {
				t.Fatalf("error %v does not wrap ErrInvalidDevice", err)
			}
			return
		}
		h, ok, err := HardwareModuleNameFromExtensions([]pkix.Extension{{Id: oidSubjectAltName, Value: der}})
		switch n := len(san.HardwareModules); {
		case n == 0 && (ok || err != nil), n == 1 && (!ok || !h.Equal(san.HardwareModules[0])), n > 1 && err == nil:
			t.Fatalf("%d hardwareModuleNames, HardwareModuleNameFromExtensions: %v %v %v", n, h, ok, err)
		}
		for _, h := range san.HardwareModules {
			if h.Validate() != nil {
				t.Fatalf("accepted invalid %v", h)
			}
		}
	})
}
