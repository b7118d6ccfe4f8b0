package tpm_test

import (
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/ztmkit/ztm/attest"
	attesttpm "github.com/ztmkit/ztm/attest/tpm"
)

func golden(f *testing.F) *attesttpm.Evidence {
	b, err := os.ReadFile(filepath.Join("testdata", "quote-evidence.cbor"))
	if err != nil {
		f.Fatal(err)
	}
	e, err := attesttpm.ParseEvidence(b, 0)
	if err != nil {
		f.Fatal(err)
	}
	return e
}

func FuzzParseAttest(f *testing.F) {
	e := golden(f)
	f.Add(e.Attest)
	f.Add(e.Attest[:10])
	f.Add([]byte{0xff, 0x54, 0x43, 0x47, 0x80, 0x18})
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := attesttpm.ParseAttest(data)
		if err != nil {
			if !errors.Is(err, attesttpm.ErrMalformed) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if a.Magic != attesttpm.GeneratedValue || a.Type != attesttpm.TagAttestQuote {
			t.Fatalf("accepted magic %#x type %#x", a.Magic, a.Type)
		}
	})
}

func FuzzParseSignature(f *testing.F) {
	e := golden(f)
	f.Add(e.Signature)
	f.Add([]byte{0x00, 0x14, 0x00, 0x0b, 0x00, 0x00})
	f.Fuzz(func(t *testing.T, data []byte) {
		if _, err := attesttpm.ParseSignature(data); err != nil && !errors.Is(err, attesttpm.ErrMalformed) {
			t.Fatalf("untyped error %v", err)
		}
	})
}

func FuzzVerifyQuote(f *testing.F) {
	e := golden(f)
	leaf, err := x509.ParseCertificate(e.AKChain[0])
	if err != nil {
		f.Fatal(err)
	}
	v, err := attesttpm.NewVerifier(attesttpm.Config{
		Keys:            map[string]crypto.PublicKey{"ak": leaf.PublicKey},
		ReferenceValues: []attesttpm.ReferenceValues{{Name: "golden", PCRs: e.PCRs}},
	})
	if err != nil {
		f.Fatal(err)
	}
	e.AKChain, e.AKKeyID = nil, []byte("ak")
	good, err := e.Marshal()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte{0xa0})
	// The same quote with another bank's values beside it (refused: the
	// quote does not select that bank), to seed field 6.
	e.OtherBanks = map[uint16]map[int][]byte{0x0004: {0: make([]byte, 20)}}
	if multi, err := e.Marshal(); err == nil {
		f.Add(multi)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := v.Verify(context.Background(), data)
		if r == nil {
			t.Fatal("no Result")
		}
		if err != nil {
			var ve *attest.VerificationError
			if !errors.As(err, &ve) || !errors.Is(err, attest.ErrVerification) || r.Status() != attest.StatusContraindicated {
				t.Fatalf("error %v, status %v", err, r.Status())
			}
		} else if r.Status() != attest.StatusAffirming {
			t.Fatalf("accepted with status %v", r.Status())
		}
	})
}

// certifySeed is a TPMS_ATTEST of type certify, as TPM2_Certify makes it.
func certifySeed() []byte {
	b := []byte{0xff, 0x54, 0x43, 0x47, 0x80, 0x17, 0x00, 0x00, 0x00, 0x04, 0x00, 0xff, 0x55, 0xaa}
	b = append(b, make([]byte, 8+4+4)...)
	b = append(b, 1)
	b = append(b, make([]byte, 8)...)
	b = append(b, 0x00, 0x22, 0x00, 0x0b)
	b = append(b, make([]byte, 32)...)
	return append(b, 0x00, 0x00)
}

func FuzzParseCertification(f *testing.F) {
	f.Add(certifySeed())
	f.Add(certifySeed()[:20])
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := attesttpm.ParseCertification(data)
		if err != nil {
			if !errors.Is(err, attesttpm.ErrMalformed) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if len(c.Name) < 4 {
			t.Fatal("accepted without a certified name")
		}
	})
}

func FuzzParsePublic(f *testing.F) {
	// An ECDSA P-256 signing key's TPMT_PUBLIC (the point is not on the
	// curve) and an RSA one's head.
	ecc := []byte{0x00, 0x23, 0x00, 0x0b, 0x00, 0x04, 0x00, 0x72, 0x00, 0x00, 0x00, 0x10, 0x00, 0x18, 0x00, 0x0b, 0x00, 0x03, 0x00, 0x10, 0x00, 0x20}
	ecc = append(ecc, make([]byte, 32)...)
	ecc = append(ecc, 0x00, 0x20)
	ecc = append(ecc, make([]byte, 32)...)
	f.Add(ecc)
	f.Add([]byte{0x00, 0x01, 0x00, 0x0b, 0x00, 0x04, 0x00, 0x72, 0x00, 0x00, 0x00, 0x10, 0x00, 0x14, 0x00, 0x0b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00})
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := attesttpm.ParsePublic(data)
		if err != nil {
			if !errors.Is(err, attesttpm.ErrMalformed) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if p.Key == nil || len(p.Name()) < 34 {
			t.Fatal("accepted without a key or a name")
		}
	})
}
