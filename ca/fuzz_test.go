package ca

import (
	"github.com/ztmkit/ztm/identity"

	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"math/big"
	"testing"
)

func FuzzParseStationAuthorization(f *testing.F) {
	for _, a := range []*StationAuthorization{
		{},
		{Steps: []string{"provision", "test"}, Profiles: []string{"idevid"}},
		{Steps: []string{"a:b/c.d_e-f"}, Profiles: []string{"ak", "ldevid", "station"}},
	} {
		der, err := a.Marshal()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(der)
	}
	f.Add([]byte{0x30, 0x00})
	f.Add([]byte{0x30, 0x08, 0x02, 0x01, 0x02, 0x30, 0x00, 0x30, 0x00, 0x00})
	f.Fuzz(func(t *testing.T, der []byte) {
		a, err := ParseStationAuthorizationExtension(der)
		if err != nil {
			if a != nil {
				t.Fatal("value with error")
			}
			return
		}
		// Accepted input is canonical: it re-encodes to the same bytes.
		again, err := a.Marshal()
		if err != nil || !bytes.Equal(again, der) {
			t.Fatalf("accepted non-canonical input %x (re-encoded %x, %v)", der, again, err)
		}
	})
}

func FuzzParseSubjectAltName(f *testing.F) {
	for _, s := range []subjectAltName{
		{HardwareModules: []HardwareModuleName{{Type: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 1}, SerialNumber: []byte("SN1")}}},
		{DNSNames: []string{"a.example.com"}, URIs: []string{"urn:uuid:0e4f5c3a-7b1d-4c55-9a3e-2f1b8d6c7a90"}},
	} {
		der, err := s.marshal()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(der)
	}
	f.Add([]byte{0x30, 0x05, 0x81, 0x03, 'a', '@', 'b'})
	f.Fuzz(func(t *testing.T, der []byte) {
		hw, hwErr := parseHardwareModuleNames(der)
		san, err := parseSubjectAltName(der)
		if err != nil {
			return
		}
		if hwErr != nil || len(hw) != len(san.HardwareModules) {
			t.Fatalf("parsers disagree: %v, %d vs %d", hwErr, len(hw), len(san.HardwareModules))
		}
		again, err := san.marshal()
		if err != nil {
			t.Fatal(err)
		}
		san2, err := parseSubjectAltName(again)
		if err != nil || len(san2.HardwareModules) != len(san.HardwareModules) ||
			len(san2.DNSNames) != len(san.DNSNames) || len(san2.URIs) != len(san.URIs) {
			t.Fatalf("re-encoding does not parse back: %v", err)
		}
	})
}

func FuzzCheckCSR(f *testing.F) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	hw, _ := identity.HardwareModuleNameExtension(HardwareModuleName{Type: asn1.ObjectIdentifier{1, 2, 3}, SerialNumber: []byte("X")}, false)
	for _, tmpl := range []*x509.CertificateRequest{
		{Subject: pkix.Name{SerialNumber: "X"}, ExtraExtensions: []pkix.Extension{hw}},
		{Subject: pkix.Name{CommonName: "station"}},
		{Subject: pkix.Name{CommonName: "d", Country: []string{"DE"}}, DNSNames: []string{"d.example.com"}},
	} {
		der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(der)
	}
	profiles := DefaultProfiles()
	f.Fuzz(func(t *testing.T, der []byte) {
		for i := range profiles {
			c, err := checkCSR(der, &profiles[i])
			if (c == nil) == (err == nil) {
				t.Fatalf("checkCSR returned %v, %v", c, err)
			}
			if err != nil {
				var ce *identity.CSRError
				if !errors.As(err, &ce) {
					t.Fatalf("untyped error %v", err)
				}
			}
		}
	})
}

// FuzzParseCheckpoint feeds ParseCheckpoint mutations of real checkpoints
// (ES256 and Ed25519): it must not panic, and whatever it accepts must be
// exactly what was signed, re-signed to the same payload.
func FuzzParseCheckpoint(f *testing.F) {
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	cp := &Checkpoint{Seq: 7, Hash: bytes.Repeat([]byte{0xab}, 32), KeyID: []byte{1, 2, 3}, CRLNumber: big.NewInt(3)}
	if err := signCheckpoint(rand.Reader, ecKey, cp); err != nil {
		f.Fatal(err)
	}
	f.Add(cp.Raw)
	f.Add(cp.Raw[:len(cp.Raw)-1])
	f.Add([]byte{0xd2, 0x84, 0x40, 0xa0, 0x40, 0x40})
	f.Fuzz(func(t *testing.T, raw []byte) {
		got, err := ParseCheckpoint(raw, ecKey.Public())
		if err != nil {
			if !errors.Is(err, ErrBadCheckpoint) {
				t.Fatalf("error not wrapping ErrBadCheckpoint: %v", err)
			}
			return
		}
		if got.Seq != cp.Seq || !bytes.Equal(got.Hash, cp.Hash) || got.CRLNumber.Cmp(cp.CRLNumber) != 0 {
			t.Fatalf("accepted a changed checkpoint: %+v", got)
		}
	})
}
