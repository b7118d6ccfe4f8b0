package file

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"errors"
	"fmt"

	"github.com/ztmkit/ztm/identity/keystore"
)

func verifySig(pub crypto.PublicKey, alg keystore.Algorithm, digest, sig []byte) error {
	switch p := pub.(type) {
	case *ecdsa.PublicKey:
		if !ecdsa.VerifyASN1(p, digest, sig) {
			return errors.New("ECDSA signature does not verify")
		}
		return nil
	case ed25519.PublicKey:
		if !ed25519.Verify(p, digest, sig) {
			return errors.New("Ed25519 signature does not verify")
		}
		return nil
	case *rsa.PublicKey:
		return rsa.VerifyPSS(p, crypto.SHA256, digest, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
	}
	return fmt.Errorf("unexpected public key %T for %v", pub, alg)
}
