package ztm

import (
	"context"
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/hpke"
	"crypto/x509"
	"errors"
	"fmt"

	"github.com/ztmkit/ztm/identity/keystore"
	"github.com/ztmkit/ztm/internal/softkey"
)

// sealInfoPrefix starts the HPKE info of every sealed key; the device's
// UEID follows, so a blob sealed for one device does not open as another's.
const sealInfoPrefix = "ztm key injection v1\x00"

// SealedKey is a private key sealed with HPKE (RFC 9180, base mode) to one
// device's attestation key, for key injection. The plaintext is the key's
// PKCS#8 DER encoding. The suite is DHKEM over the attestation key's curve
// (P-256 with HKDF-SHA256, P-384 with HKDF-SHA384, or X25519), HKDF-SHA256
// and AES-128-GCM.
type SealedKey struct {
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

// KeyExporter is the capability of handing out a key's private part so
// that the station can seal it to a device. Provision uses
// StationConfig.Exporter; by default keys of the software stores
// (identity/keystore/mem and identity/keystore/file) are exported, and keys
// of hardware stores are refused with ErrUnsupportedKey.
//
// For keys generated in a PKCS#11 token, use the exporter of
// identity/keystore/pkcs11 (pkcs11.Exporter): it exports keys made
// exportable only under a wrapping key the token's security officer
// installed as trusted. TPM keys are never exportable.
type KeyExporter interface {
	// ExportKey returns the private part of key, which must be a key of a
	// store the exporter serves. Keys it does not serve are refused with
	// an error: the default exporter's wraps ErrUnsupportedKey, a
	// backend's its own sentinel (pkcs11.ErrNotExportable).
	ExportKey(ctx context.Context, key keystore.Key) (crypto.PrivateKey, error)
}

// softwareExporter exports keys of the in-process software stores.
type softwareExporter struct{}

var _ KeyExporter = softwareExporter{}

func (softwareExporter) ExportKey(ctx context.Context, key keystore.Key) (crypto.PrivateKey, error) {
	k, ok := key.(*softkey.Key)
	if !ok {
		return nil, fmt.Errorf("%w: key %q is not held in a software store", ErrUnsupportedKey, key.Label())
	}
	return k.Signer(), nil
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

// SealKey seals priv to a device's attestation public key recipient (an
// ECDSA P-256 or P-384 key, or an X25519 key) for the device with the
// given UEID. HPKE takes its randomness from crypto/rand.
func SealKey(recipient crypto.PublicKey, ueid []byte, priv crypto.PrivateKey) (*SealedKey, error) {
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
	info := append([]byte(sealInfoPrefix), ueid...)
	aead := hpke.AES128GCM()
	enc, sender, err := hpke.NewSender(pk, kdf, aead, info)
	if err != nil {
		return nil, fmt.Errorf("ztm: failed to set up HPKE: %w", err)
	}
	ct, err := sender.Seal(nil, der)
	if err != nil {
		return nil, fmt.Errorf("ztm: failed to seal key: %w", err)
	}
	return &SealedKey{
		KEM: pk.KEM().ID(), KDF: kdf.ID(), AEAD: aead.ID(),
		Info: info, Enc: enc, Ciphertext: ct, Algorithm: alg,
	}, nil
}

// OpenSealedKey is the device side of key injection: it opens s with the
// device's attestation key (an *ecdh.PrivateKey, an *ecdsa.PrivateKey on P-256
// or P-384, or any ecdh.KeyExchanger) and returns the private key, after
// checking that s was sealed for ueid and holds a key of s.Algorithm.
// Every failure wraps ErrSealedKey.
func OpenSealedKey(recipient any, ueid []byte, s *SealedKey) (crypto.Signer, error) {
	if s == nil {
		return nil, fmt.Errorf("%w: nil sealed key", ErrSealedKey)
	}
	var kx ecdh.KeyExchanger
	switch r := recipient.(type) {
	case *ecdsa.PrivateKey:
		e, err := r.ECDH()
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrSealedKey, err)
		}
		kx = e
	case ecdh.KeyExchanger:
		kx = r
	default:
		return nil, fmt.Errorf("%w: recipient key of type %T", ErrSealedKey, recipient)
	}
	want := append([]byte(sealInfoPrefix), ueid...)
	if string(s.Info) != string(want) {
		return nil, fmt.Errorf("%w: sealed for another device", ErrSealedKey)
	}
	sk, err := hpke.NewDHKEMPrivateKey(kx)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSealedKey, err)
	}
	if sk.KEM().ID() != s.KEM {
		return nil, fmt.Errorf("%w: KEM 0x%04x, key is 0x%04x", ErrSealedKey, s.KEM, sk.KEM().ID())
	}
	kdf, err := hpke.NewKDF(s.KDF)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSealedKey, err)
	}
	aead, err := hpke.NewAEAD(s.AEAD)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSealedKey, err)
	}
	r, err := hpke.NewRecipient(s.Enc, sk, kdf, aead, s.Info)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSealedKey, err)
	}
	der, err := r.Open(nil, s.Ciphertext)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSealedKey, err)
	}
	defer clear(der)
	priv, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSealedKey, err)
	}
	signer, ok := priv.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%w: not a signing key", ErrSealedKey)
	}
	alg, err := keystore.AlgorithmOf(signer.Public())
	if err != nil || alg != s.Algorithm {
		return nil, errors.Join(ErrSealedKey, fmt.Errorf("ztm: sealed key is not %v", s.Algorithm))
	}
	return signer, nil
}
