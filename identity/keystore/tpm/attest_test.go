package tpm_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"testing"
	"time"

	"github.com/google/go-tpm/tpm2"

	"github.com/ztmkit/ztm/identity/keystore"
	"github.com/ztmkit/ztm/identity/keystore/tpm"
	"github.com/ztmkit/ztm/internal/tpmtest"
)

// TestQuote checks a quote with plain go-tpm and crypto code, as a
// verifier would: the signature over the TPMS_ATTEST bytes, the magic, the
// type, the nonce in extraData, the PCR selection and the PCR digest.
func TestQuote(t *testing.T) {
	sim := tpmtest.Open(t)
	s := newStore(t, sim, tpm.Config{})
	ctx := context.Background()

	// Give two PCRs values other than their reset values.
	for _, p := range []uint32{16, 23} {
		_, err := tpm2.PCRExtend{
			PCRHandle: tpm2.AuthHandle{Handle: tpm2.TPMHandle(p), Auth: tpm2.PasswordAuth(nil)},
			Digests: tpm2.TPMLDigestValues{Digests: []tpm2.TPMTHA{{
				HashAlg: tpm2.TPMAlgSHA256, Digest: bytes.Repeat([]byte{byte(p)}, 32),
			}}},
		}.Execute(sim)
		if err != nil {
			t.Fatalf("PCR_Extend(%d): %v", p, err)
		}
	}

	ak, err := s.CreateAttestationKey(ctx, "ak")
	if err != nil {
		t.Fatal(err)
	}
	akPub := ak.Public().(*ecdsa.PublicKey)
	if ak.Algorithm() != keystore.ES256 || akPub.Curve != elliptic.P256() {
		t.Fatalf("AK is %v on %v", ak.Algorithm(), akPub.Curve.Params().Name)
	}
	nonce := []byte("0123456789abcdef0123456789abcdef")
	pcrs := []int{23, 0, 16, 7, 1, 2, 3, 4, 5, 6, 8, 9} // more than one PCR_Read returns
	q, err := s.Quote(ctx, "ak", nonce, pcrs)
	if err != nil {
		t.Fatal(err)
	}

	// The signature, both forms.
	digest := sha256.Sum256(q.Attest)
	if !ecdsa.VerifyASN1(akPub, digest[:], q.SignatureDER) {
		t.Fatal("DER signature does not verify over SHA-256(Attest)")
	}
	sig, err := tpm2.Unmarshal[tpm2.TPMTSignature](q.Signature)
	if err != nil {
		t.Fatal(err)
	}
	ecsig, err := sig.Signature.ECDSA()
	if err != nil || sig.SigAlg != tpm2.TPMAlgECDSA || ecsig.Hash != tpm2.TPMAlgSHA256 {
		t.Fatalf("TPMT_SIGNATURE is %v/%v: %v", sig.SigAlg, ecsig, err)
	}
	r, sv := new(big.Int).SetBytes(ecsig.SignatureR.Buffer), new(big.Int).SetBytes(ecsig.SignatureS.Buffer)
	if !ecdsa.Verify(akPub, digest[:], r, sv) {
		t.Fatal("TPMT_SIGNATURE does not verify")
	}
	tampered := bytes.Clone(q.Attest)
	tampered[len(tampered)-1] ^= 1
	if d := sha256.Sum256(tampered); ecdsa.VerifyASN1(akPub, d[:], q.SignatureDER) {
		t.Fatal("signature verifies over altered attest bytes")
	}

	// The attested contents.
	att, err := tpm2.Unmarshal[tpm2.TPMSAttest](q.Attest)
	if err != nil {
		t.Fatal(err)
	}
	if att.Magic != tpm2.TPMGeneratedValue {
		t.Errorf("magic %#x", att.Magic)
	}
	if att.Type != tpm2.TPMSTAttestQuote {
		t.Errorf("type %v", att.Type)
	}
	if !bytes.Equal(att.ExtraData.Buffer, nonce) {
		t.Errorf("extraData %x, want the nonce", att.ExtraData.Buffer)
	}
	info, err := att.Attested.Quote()
	if err != nil {
		t.Fatal(err)
	}
	wantSel := tpm2.TPMLPCRSelection{PCRSelections: []tpm2.TPMSPCRSelection{{Hash: tpm2.TPMAlgSHA256, PCRSelect: tpm2.PCClientCompatible.PCRs(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 16, 23)}}}
	if !bytes.Equal(tpm2.Marshal(&info.PCRSelect), tpm2.Marshal(&wantSel)) {
		t.Errorf("quoted selection %+v", info.PCRSelect)
	}
	h := sha256.New()
	var got []int
	for _, p := range q.PCRs {
		h.Write(p.Value)
		got = append(got, p.Index)
	}
	if !bytes.Equal(info.PCRDigest.Buffer, h.Sum(nil)) {
		t.Error("PCR digest is not SHA-256 of the PCR values returned")
	}
	if want := []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 16, 23}; !equalInts(got, want) {
		t.Errorf("PCRs %v, want %v", got, want)
	}

	// The values are the TPM's, read independently.
	for _, p := range q.PCRs {
		rsp, err := tpm2.PCRRead{PCRSelectionIn: tpm2.TPMLPCRSelection{PCRSelections: []tpm2.TPMSPCRSelection{{
			Hash: tpm2.TPMAlgSHA256, PCRSelect: tpm2.PCClientCompatible.PCRs(uint(p.Index)),
		}}}}.Execute(sim)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(rsp.PCRValues.Digests[0].Buffer, p.Value) {
			t.Errorf("PCR %d: quote says %x, TPM says %x", p.Index, p.Value, rsp.PCRValues.Digests[0].Buffer)
		}
	}
	if bytes.Equal(q.PCRs[len(q.PCRs)-1].Value, make([]byte, 32)) {
		t.Error("extended PCR 23 reads as zero")
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestQuoteBadInput(t *testing.T) {
	s := newStore(t, tpmtest.Open(t), tpm.Config{})
	ctx := context.Background()
	ak, err := s.CreateAttestationKey(ctx, "ak")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(ctx, keystore.CreateRequest{Label: "plain"}); err != nil {
		t.Fatal(err)
	}
	nonce := make([]byte, 32)

	var ne *tpm.NonceError
	if _, err := s.Quote(ctx, "ak", make([]byte, tpm.MaxNonceSize+1), []int{0}); !errors.As(err, &ne) || ne.Size != 33 || !errors.Is(err, tpm.ErrInvalidNonce) {
		t.Errorf("Quote(long nonce): err = %v, want a *NonceError", err)
	}
	if _, err := s.Quote(ctx, "ak", nil, []int{0}); !errors.Is(err, tpm.ErrInvalidNonce) {
		t.Errorf("Quote(no nonce): err = %v, want ErrInvalidNonce", err)
	}
	for _, pcrs := range [][]int{nil, {}, {-1}, {24}, {1, 1}, {0, 99}} {
		if _, err := s.Quote(ctx, "ak", nonce, pcrs); !errors.Is(err, tpm.ErrInvalidPCR) {
			t.Errorf("Quote(pcrs %v): err = %v, want ErrInvalidPCR", pcrs, err)
		}
	}
	if _, err := s.Quote(ctx, "plain", nonce, []int{0}); !errors.Is(err, tpm.ErrNotAttestationKey) {
		t.Errorf("Quote(ordinary key): err = %v, want ErrNotAttestationKey", err)
	}
	if _, err := s.Quote(ctx, "missing", nonce, []int{0}); !errors.Is(err, keystore.ErrNotFound) {
		t.Errorf("Quote(missing key): err = %v, want ErrNotFound", err)
	}
	if _, err := s.Quote(ctx, "../ak", nonce, []int{0}); !errors.Is(err, keystore.ErrInvalidLabel) {
		t.Errorf("Quote(bad label): err = %v, want ErrInvalidLabel", err)
	}
	// A restricted key signs no caller digest.
	if _, err := ak.Sign(rand.Reader, nonce, crypto.SHA256); !errors.Is(err, tpm.ErrRestricted) {
		t.Errorf("AK Sign: err = %v, want ErrRestricted", err)
	}
	// The AK is an ordinary entry of the index otherwise.
	if labels, _ := s.List(ctx); !equalStrings(labels, []string{"ak", "plain"}) {
		t.Errorf("List = %v", labels)
	}
	if err := s.Delete(ctx, "ak"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Quote(ctx, "ak", nonce, []int{0}); !errors.Is(err, keystore.ErrNotFound) {
		t.Errorf("Quote(deleted AK): err = %v, want ErrNotFound", err)
	}
	s.Close()
	if _, err := s.Quote(ctx, "plain", nonce, []int{0}); !errors.Is(err, keystore.ErrClosed) {
		t.Errorf("Quote after Close: err = %v, want ErrClosed", err)
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestEndorsementKey(t *testing.T) {
	sim := tpmtest.Open(t)
	s := newStore(t, sim, tpm.Config{})
	ctx := context.Background()

	ek, err := s.EndorsementKey(ctx, tpm.EKECC)
	if err != nil {
		t.Fatal(err)
	}
	if pub, ok := ek.Public.(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P256() {
		t.Fatalf("ECC EK public is %T", ek.Public)
	}
	// The EK is the TCG default one: the same as go-tpm derives itself.
	raw, err := tpm2.CreatePrimary{PrimaryHandle: tpm2.TPMRHEndorsement, InPublic: tpm2.New2B(tpm2.ECCEKTemplate)}.Execute(sim)
	if err != nil {
		t.Fatal(err)
	}
	tpm2.FlushContext{FlushHandle: raw.ObjectHandle}.Execute(sim)
	if !bytes.Equal(raw.OutPublic.Bytes(), ek.PublicArea) || !bytes.Equal(raw.Name.Buffer, ek.Name) {
		t.Fatal("EK differs from the TCG default ECC EK")
	}
	rsaEK, err := s.EndorsementKey(ctx, tpm.EKRSA)
	if err != nil {
		t.Fatal(err)
	}
	if pub, ok := rsaEK.Public.(*rsa.PublicKey); !ok || pub.N.BitLen() != 2048 {
		t.Fatalf("RSA EK public is %T", rsaEK.Public)
	}
	if _, err := s.EndorsementKey(ctx, tpm.EKType(7)); err == nil {
		t.Error("EndorsementKey(unknown type) succeeded")
	}

	// The simulator has no EK certificate.
	if _, err := s.EndorsementCertificate(ctx, tpm.EKECC); !errors.Is(err, tpm.ErrNoEKCertificate) {
		t.Fatalf("EndorsementCertificate: err = %v, want ErrNoEKCertificate", err)
	}

	// Provision one as a manufacturer would (platform hierarchy, TCG EK
	// Credential Profile index), longer than one NV read, and read it
	// back.
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "test EK", Organization: []string{"ztm test manufacturer with a long enough name to need two NV reads"}},
		NotBefore:    time.Unix(1700000000, 0),
		NotAfter:     time.Unix(1900000000, 0),
		DNSNames:     []string{"a.example", "b.example", "c.example", "d.example", "e.example", "f.example", "g.example", "h.example", "i.example", "j.example", "k.example", "l.example"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, ek.Public, caKey)
	if err != nil {
		t.Fatal(err)
	}
	if len(der) <= 512 {
		t.Fatalf("test certificate of %d bytes fits one NV read", len(der))
	}
	padded := append(bytes.Clone(der), make([]byte, 16)...) // vendors pad
	nvPub := tpm2.TPMSNVPublic{
		NVIndex: 0x01c0000a,
		NameAlg: tpm2.TPMAlgSHA256,
		Attributes: tpm2.TPMANV{
			PPWrite: true, PPRead: true, OwnerRead: true, AuthRead: true,
			NoDA: true, PlatformCreate: true, NT: tpm2.TPMNTOrdinary,
		},
		DataSize: uint16(len(padded)),
	}
	if _, err := (tpm2.NVDefineSpace{AuthHandle: tpm2.TPMRHPlatform, PublicInfo: tpm2.New2B(nvPub)}).Execute(sim); err != nil {
		t.Fatalf("NV_DefineSpace: %v", err)
	}
	name, err := tpm2.NVName(&nvPub)
	if err != nil {
		t.Fatal(err)
	}
	for off := 0; off < len(padded); off += 512 {
		end := min(off+512, len(padded))
		_, err := tpm2.NVWrite{
			AuthHandle: tpm2.TPMRHPlatform,
			NVIndex:    tpm2.NamedHandle{Handle: 0x01c0000a, Name: *name},
			Data:       tpm2.TPM2BMaxNVBuffer{Buffer: padded[off:end]},
			Offset:     uint16(off),
		}.Execute(sim)
		if err != nil {
			t.Fatalf("NV_Write: %v", err)
		}
	}
	cert, err := s.EndorsementCertificate(ctx, tpm.EKECC)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(cert, der) {
		t.Fatalf("read %d certificate bytes, want the %d written", len(cert), len(der))
	}
	if _, err := s.EndorsementCertificate(ctx, tpm.EKRSA); !errors.Is(err, tpm.ErrNoEKCertificate) {
		t.Fatalf("RSA EndorsementCertificate: err = %v, want ErrNoEKCertificate", err)
	}
}
