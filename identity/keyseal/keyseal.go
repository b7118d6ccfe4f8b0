package keyseal

import (
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/hpke"
	"crypto/x509"
	"errors"
	"fmt"

	"github.com/ztmkit/ztm/identity/keystore"
)

// Sentinel errors. Match them with errors.Is.
var (
	// ErrUnsupportedKey is returned by Seal for a recipient key that
	// cannot receive a sealed key (not P-256, P-384, P-521 or X25519) or a
	// private key of an algorithm ztm does not sign with.
	ErrUnsupportedKey = errors.New("keyseal: unsupported key")
	// ErrOpen is returned by Open for a sealed key that does not open:
	// another device's, tampered with, or not a key of its algorithm.
	ErrOpen = errors.New("keyseal: sealed key does not open")
)

// infoPrefix starts the HPKE info of every sealed key; the device's UEID
// follows, so a blob sealed for one device does not open as another's.
const infoPrefix = "ztm key injection v1\x00"

// Sealed is a private key sealed with HPKE (RFC 9180, base mode) to one
// device's attestation key. The plaintext is the key's PKCS#8 DER
// encoding. The suite is DHKEM over the attestation key's curve (P-256
// with HKDF-SHA256, P-384 or P-521 with HKDF-SHA384, or X25519), that KDF,
// and AES-128-GCM.
type Sealed struct {
	// KEM, KDF and AEAD are the HPKE algorithm identifiers (RFC 9180 §7).
	KEM, KDF, AEAD uint16
	// Info is the HPKE info: a fixed prefix and the device's UEID.
	Info []byte
	// Enc is the encapsulated key.
	Enc []byte
	// Ciphertext is the sealed PKCS#8 private key.
	Ciphertext []byte
	// Algorithm is the key's signature algorithm.
	Algorithm keystore.Algorithm
}

// recipientKey returns the HPKE public key and KDF for a device's
// attestation public key.
func recipientKey(pub crypto.PublicKey) (hpke.PublicKey, hpke.KDF, error) {
	var epub *ecdh.PublicKey
	switch p := pub.(type) {
	case *ecdsa.PublicKey:
		e, err := p.ECDH()
		if err != nil {
			return nil, nil, fmt.Errorf("%w: %v", ErrUnsupportedKey, err)
		}
		epub = e
	case *ecdh.PublicKey:
		epub = p
	default:
		return nil, nil, fmt.Errorf("%w: attestation key of type %T cannot receive a sealed key", ErrUnsupportedKey, pub)
	}
	pk, err := hpke.NewDHKEMPublicKey(epub)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrUnsupportedKey, err)
	}
	kdf := hpke.HKDFSHA256()
	if epub.Curve() == ecdh.P384() || epub.Curve() == ecdh.P521() {
		kdf = hpke.HKDFSHA384()
	}
	return pk, kdf, nil
}

// Seal seals priv to a device's attestation public key recipient (an
// ECDSA or ECDH key on P-256, P-384 or P-521, or an X25519 key) for the
// device with the given UEID. HPKE takes its randomness from crypto/rand.
// Errors wrap ErrUnsupportedKey for keys it cannot use.
func Seal(recipient crypto.PublicKey, ueid []byte, priv crypto.PrivateKey) (*Sealed, error) {
	signer, ok := priv.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%w: private key of type %T", ErrUnsupportedKey, priv)
	}
	alg, err := keystore.AlgorithmOf(signer.Public())
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnsupportedKey, err)
	}
	pk, kdf, err := recipientKey(recipient)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnsupportedKey, err)
	}
	defer clear(der)
	info := append([]byte(infoPrefix), ueid...)
	aead := hpke.AES128GCM()
	enc, sender, err := hpke.NewSender(pk, kdf, aead, info)
	if err != nil {
		return nil, fmt.Errorf("keyseal: failed to set up HPKE: %w", err)
	}
	ct, err := sender.Seal(nil, der)
	if err != nil {
		return nil, fmt.Errorf("keyseal: failed to seal key: %w", err)
	}
	return &Sealed{
		KEM: pk.KEM().ID(), KDF: kdf.ID(), AEAD: aead.ID(),
		Info: info, Enc: enc, Ciphertext: ct, Algorithm: alg,
	}, nil
}

// Open is the device side of key injection: it opens s with the device's
// attestation key (an *ecdh.PrivateKey, an *ecdsa.PrivateKey, or any
// ecdh.KeyExchanger, such as a key held in a secure element) and returns
// the private key, after checking that s was sealed for ueid and holds a
// key of s.Algorithm. Every failure wraps ErrOpen.
func Open(recipient any, ueid []byte, s *Sealed) (crypto.Signer, error) {
	if s == nil {
		return nil, fmt.Errorf("%w: nil sealed key", ErrOpen)
	}
	var kx ecdh.KeyExchanger
	switch r := recipient.(type) {
	case *ecdsa.PrivateKey:
		e, err := r.ECDH()
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrOpen, err)
		}
		kx = e
	case ecdh.KeyExchanger:
		kx = r
	default:
		return nil, fmt.Errorf("%w: recipient key of type %T", ErrOpen, recipient)
	}
	want := append([]byte(infoPrefix), ueid...)
	if string(s.Info) != string(want) {
		return nil, fmt.Errorf("%w: sealed for another device", ErrOpen)
	}
	sk, err := hpke.NewDHKEMPrivateKey(kx)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrOpen, err)
	}
	if sk.KEM().ID() != s.KEM {
		return nil, fmt.Errorf("%w: KEM 0x%04x, key is 0x%04x", ErrOpen, s.KEM, sk.KEM().ID())
	}
	kdf, err := hpke.NewKDF(s.KDF)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrOpen, err)
	}
	aead, err := hpke.NewAEAD(s.AEAD)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrOpen, err)
	}
	r, err := hpke.NewRecipient(s.Enc, sk, kdf, aead, s.Info)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrOpen, err)
	}
	der, err := r.Open(nil, s.Ciphertext)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrOpen, err)
	}
	defer clear(der)
	priv, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrOpen, err)
	}
	signer, ok := priv.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%w: not a signing key", ErrOpen)
	}
	alg, err := keystore.AlgorithmOf(signer.Public())
	if err != nil || alg != s.Algorithm {
		return nil, fmt.Errorf("%w: the key is not %v", ErrOpen, s.Algorithm)
	}
	return signer, nil
}
