package tpm_test

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"testing"

	"github.com/google/go-tpm/tpm2"

	"github.com/ztmkit/ztm/identity/keystore"
	"github.com/ztmkit/ztm/identity/keystore/tpm"
	"github.com/ztmkit/ztm/internal/tpmtest"
)

var benchAlgs = []keystore.Algorithm{keystore.ES256, keystore.ES384}

// BenchmarkSign signs through the store on the simulator: a key that stays
// loaded, so each Sign is one TPM2_Sign plus the store's checks and the
// DER encoding.
func BenchmarkSign(b *testing.B) {
	for _, alg := range benchAlgs {
		b.Run(alg.String(), func(b *testing.B) {
			sim := tpmtest.Open(b)
			s, err := tpm.New(context.Background(), sim, tpm.Config{Dir: b.TempDir()})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			k, err := s.Create(context.Background(), keystore.CreateRequest{Label: "bench", Algorithm: alg})
			if err != nil {
				b.Fatal(err)
			}
			h := alg.Hash().New()
			h.Write([]byte("bench"))
			digest := h.Sum(nil)
			opts := alg.SignerOpts()
			if _, err := k.Sign(rand.Reader, digest, opts); err != nil { // load the key
				b.Fatal(err)
			}
			b.ResetTimer()
			for b.Loop() {
				if _, err := k.Sign(rand.Reader, digest, opts); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSignRaw is the raw primitive: TPM2_Sign with go-tpm on a loaded
// key of the same template on the same simulator, no ztm code.
func BenchmarkSignRaw(b *testing.B) {
	for _, alg := range benchAlgs {
		b.Run(alg.String(), func(b *testing.B) {
			sim := tpmtest.Open(b)
			curve, hash, size := tpm2.TPMECCNistP256, tpm2.TPMAlgSHA256, sha256.Size
			if alg == keystore.ES384 {
				curve, hash, size = tpm2.TPMECCNistP384, tpm2.TPMAlgSHA384, crypto.SHA384.Size()
			}
			primary, err := tpm2.CreatePrimary{
				PrimaryHandle: tpm2.TPMRHOwner,
				InPublic: tpm2.New2B(tpm2.TPMTPublic{
					Type:    tpm2.TPMAlgECC,
					NameAlg: tpm2.TPMAlgSHA256,
					ObjectAttributes: tpm2.TPMAObject{
						FixedTPM: true, FixedParent: true, SensitiveDataOrigin: true,
						UserWithAuth: true, NoDA: true, SignEncrypt: true,
					},
					Parameters: tpm2.NewTPMUPublicParms(tpm2.TPMAlgECC, &tpm2.TPMSECCParms{
						Scheme: tpm2.TPMTECCScheme{
							Scheme:  tpm2.TPMAlgECDSA,
							Details: tpm2.NewTPMUAsymScheme(tpm2.TPMAlgECDSA, &tpm2.TPMSSigSchemeECDSA{HashAlg: hash}),
						},
						CurveID: curve,
					}),
				}),
			}.Execute(sim)
			if err != nil {
				b.Fatal(err)
			}
			defer tpm2.FlushContext{FlushHandle: primary.ObjectHandle}.Execute(sim)
			cmd := tpm2.Sign{
				KeyHandle: tpm2.NamedHandle{Handle: primary.ObjectHandle, Name: primary.Name},
				Digest:    tpm2.TPM2BDigest{Buffer: make([]byte, size)},
				InScheme: tpm2.TPMTSigScheme{
					Scheme:  tpm2.TPMAlgECDSA,
					Details: tpm2.NewTPMUSigScheme(tpm2.TPMAlgECDSA, &tpm2.TPMSSchemeHash{HashAlg: hash}),
				},
				Validation: tpm2.TPMTTKHashCheck{Tag: tpm2.TPMSTHashCheck, Hierarchy: tpm2.TPMRHNull},
			}
			if _, err := cmd.Execute(sim); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for b.Loop() {
				if _, err := cmd.Execute(sim); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
