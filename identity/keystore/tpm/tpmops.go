package tpm

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/google/go-tpm/tpm2"
	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/cryptobyte/asn1"

	"github.com/ztmkit/ztm/identity/keystore"
)

// keyTemplate returns the public template of a key of alg: an unrestricted
// (or, for attestation keys, restricted) signing key that never leaves the
// TPM, with an empty authorization value and no dictionary-attack lockout.
func keyTemplate(alg keystore.Algorithm, restricted bool) tpm2.TPMTPublic {
	attrs := tpm2.TPMAObject{
		FixedTPM:            true,
		FixedParent:         true,
		SensitiveDataOrigin: true,
		UserWithAuth:        true,
		NoDA:                true,
		Restricted:          restricted,
		SignEncrypt:         true,
	}
	ecc := func(curve tpm2.TPMECCCurve, hash tpm2.TPMAlgID, size int) tpm2.TPMTPublic {
		return tpm2.TPMTPublic{
			Type:             tpm2.TPMAlgECC,
			NameAlg:          tpm2.TPMAlgSHA256,
			ObjectAttributes: attrs,
			Parameters: tpm2.NewTPMUPublicParms(tpm2.TPMAlgECC, &tpm2.TPMSECCParms{
				Scheme: tpm2.TPMTECCScheme{
					Scheme:  tpm2.TPMAlgECDSA,
					Details: tpm2.NewTPMUAsymScheme(tpm2.TPMAlgECDSA, &tpm2.TPMSSigSchemeECDSA{HashAlg: hash}),
				},
				CurveID: curve,
			}),
			Unique: tpm2.NewTPMUPublicID(tpm2.TPMAlgECC, &tpm2.TPMSECCPoint{
				X: tpm2.TPM2BECCParameter{Buffer: make([]byte, size)},
				Y: tpm2.TPM2BECCParameter{Buffer: make([]byte, size)},
			}),
		}
	}
	switch alg {
	case keystore.ES384:
		return ecc(tpm2.TPMECCNistP384, tpm2.TPMAlgSHA384, 48)
	case keystore.PS256:
		return tpm2.TPMTPublic{
			Type:             tpm2.TPMAlgRSA,
			NameAlg:          tpm2.TPMAlgSHA256,
			ObjectAttributes: attrs,
			Parameters: tpm2.NewTPMUPublicParms(tpm2.TPMAlgRSA, &tpm2.TPMSRSAParms{
				Scheme: tpm2.TPMTRSAScheme{
					Scheme:  tpm2.TPMAlgRSAPSS,
					Details: tpm2.NewTPMUAsymScheme(tpm2.TPMAlgRSAPSS, &tpm2.TPMSSigSchemeRSAPSS{HashAlg: tpm2.TPMAlgSHA256}),
				},
				KeyBits: keystore.RSABits,
			}),
			Unique: tpm2.NewTPMUPublicID(tpm2.TPMAlgRSA, &tpm2.TPM2BPublicKeyRSA{Buffer: make([]byte, keystore.RSABits/8)}),
		}
	}
	return ecc(tpm2.TPMECCNistP256, tpm2.TPMAlgSHA256, 32)
}

// srkTemplate returns the TCG reference ECC P-256 storage root key template
// (TCG TPM v2.0 Provisioning Guidance §7.5.1). go-tpm's template variable is
// copied, never modified.
func srkTemplate() tpm2.TPMTPublic { return tpm2.ECCSRKTemplate }

// sigScheme returns the signing scheme of alg.
func sigScheme(alg keystore.Algorithm) tpm2.TPMTSigScheme {
	switch alg {
	case keystore.ES384:
		return tpm2.TPMTSigScheme{Scheme: tpm2.TPMAlgECDSA, Details: tpm2.NewTPMUSigScheme(tpm2.TPMAlgECDSA, &tpm2.TPMSSchemeHash{HashAlg: tpm2.TPMAlgSHA384})}
	case keystore.PS256:
		return tpm2.TPMTSigScheme{Scheme: tpm2.TPMAlgRSAPSS, Details: tpm2.NewTPMUSigScheme(tpm2.TPMAlgRSAPSS, &tpm2.TPMSSchemeHash{HashAlg: tpm2.TPMAlgSHA256})}
	}
	return tpm2.TPMTSigScheme{Scheme: tpm2.TPMAlgECDSA, Details: tpm2.NewTPMUSigScheme(tpm2.TPMAlgECDSA, &tpm2.TPMSSchemeHash{HashAlg: tpm2.TPMAlgSHA256})}
}

// supportParms returns the parameters TPM2_TestParms checks for alg.
func supportParms(alg keystore.Algorithm) tpm2.TPMTPublicParms {
	t := keyTemplate(alg, false)
	return tpm2.TPMTPublicParms{Type: t.Type, Parameters: t.Parameters}
}

// signatureBytes converts a TPMT_SIGNATURE into the form crypto.Signer
// returns: ASN.1 DER for ECDSA, the raw signature for RSA-PSS.
func signatureBytes(sig *tpm2.TPMTSignature) ([]byte, error) {
	switch sig.SigAlg {
	case tpm2.TPMAlgECDSA:
		ecc, err := sig.Signature.ECDSA()
		if err != nil {
			return nil, err
		}
		return ecdsaDER(ecc.SignatureR.Buffer, ecc.SignatureS.Buffer)
	case tpm2.TPMAlgRSAPSS:
		rsa, err := sig.Signature.RSAPSS()
		if err != nil {
			return nil, err
		}
		return rsa.Sig.Buffer, nil
	}
	return nil, fmt.Errorf("unexpected signature algorithm %v", sig.SigAlg)
}

// ecdsaDER encodes r and s (big-endian unsigned) as an ASN.1 ECDSA-Sig-Value
// (RFC 5480 §2.2 / SEC 1 §C.5).
func ecdsaDER(r, s []byte) ([]byte, error) {
	var b cryptobyte.Builder
	b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1BigInt(new(big.Int).SetBytes(r))
		b.AddASN1BigInt(new(big.Int).SetBytes(s))
	})
	return b.Bytes()
}

// transient reports whether err is a TPM warning that asks the caller to
// send the same command again: TPM_RC_RETRY, TPM_RC_YIELDED, TPM_RC_TESTING.
func transient(err error) bool {
	return errors.Is(err, tpm2.TPMRCRetry) || errors.Is(err, tpm2.TPMRCYielded) || errors.Is(err, tpm2.TPMRCTesting)
}

// defaultRetries bounds how often a command is resent on a transient
// warning; with the backoff below this is about 5 seconds in all.
const defaultRetries = 24

// execute runs cmd on s's TPM, resending it while the TPM answers with a
// transient warning, with a backoff from 1 ms to 250 ms, at most s.retries
// times and until ctx is done.
func execute[C tpm2.Command[R, *R], R any](ctx context.Context, s *Store, cmd C, sess ...tpm2.Session) (*R, error) {
	delay := time.Millisecond
	for i := 0; ; i++ {
		rsp, err := cmd.Execute(s.tpm, sess...)
		if err == nil || !transient(err) || i >= s.retries {
			return rsp, err
		}
		timer := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil, errors.Join(err, ctx.Err())
		case <-timer.C:
		}
		delay = min(2*delay, 250*time.Millisecond)
	}
}
