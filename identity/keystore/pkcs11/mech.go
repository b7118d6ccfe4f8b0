//go:build cgo

package pkcs11

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"

	p11 "github.com/miekg/pkcs11"
	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/cryptobyte/asn1"

	"github.com/ztmkit/ztm/identity/keystore"
)

// PKCS#11 3.0 names that github.com/miekg/pkcs11 v1.1.2 does not define.
// Reference: PKCS #11 Cryptographic Token Interface Current Mechanisms
// Specification Version 3.0, §2.3.
const (
	ckkECEdwards           = 0x00000040 // CKK_EC_EDWARDS
	ckmECEdwardsKeyPairGen = 0x00001055 // CKM_EC_EDWARDS_KEY_PAIR_GEN
	ckmEdDSA               = 0x00001057 // CKM_EDDSA
)

// DER encodings of the curve OIDs in CKA_EC_PARAMS.
var (
	oidP256    = []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07} // 1.2.840.10045.3.1.7
	oidP384    = []byte{0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22}                   // 1.3.132.0.34
	oidEd25519 = []byte{0x06, 0x03, 0x2b, 0x65, 0x70}                               // 1.3.101.112
	// edwards25519 as a PrintableString, the form PKCS#11 3.0 also allows.
	nameEd25519 = append([]byte{0x13, 12}, "edwards25519"...)
)

// algorithms returns the algorithms the token in slot has mechanisms for.
func algorithms(ctx *p11.Ctx, slot uint) ([]keystore.Algorithm, error) {
	list, err := ctx.GetMechanismList(slot)
	if err != nil {
		return nil, wrap("C_GetMechanismList", err)
	}
	has := map[uint]bool{}
	for _, m := range list {
		has[m.Mechanism] = true
	}
	// keySize says whether mechanism m accepts keys of size bits. The
	// unit is bits, but some tokens give EC sizes in bytes: either is
	// accepted, and a token that gives no range is taken at its word.
	// (Bytes are accepted for EC only.)
	keySize := func(m uint, bits uint, ec bool) bool {
		info, err := ctx.GetMechanismInfo(slot, []*p11.Mechanism{p11.NewMechanism(m, nil)})
		if err != nil {
			return false
		}
		in := func(n uint) bool { return info.MinKeySize <= n && n <= info.MaxKeySize }
		return info.MaxKeySize == 0 || in(bits) || (ec && in(bits/8))
	}
	var algs []keystore.Algorithm
	for _, a := range keystore.Algorithms() {
		ok := false
		switch a {
		case keystore.ES256:
			ok = has[p11.CKM_EC_KEY_PAIR_GEN] && has[p11.CKM_ECDSA] && keySize(p11.CKM_ECDSA, 256, true)
		case keystore.ES384:
			ok = has[p11.CKM_EC_KEY_PAIR_GEN] && has[p11.CKM_ECDSA] && keySize(p11.CKM_ECDSA, 384, true)
		case keystore.EdDSA:
			ok = has[ckmECEdwardsKeyPairGen] && has[ckmEdDSA]
		case keystore.PS256:
			ok = has[p11.CKM_RSA_PKCS_KEY_PAIR_GEN] && has[p11.CKM_RSA_PKCS_PSS] && keySize(p11.CKM_RSA_PKCS_KEY_PAIR_GEN, keystore.RSABits, false)
		}
		if ok {
			algs = append(algs, a)
		}
	}
	return algs, nil
}

func keyGenMechanism(a keystore.Algorithm) uint {
	switch a {
	case keystore.EdDSA:
		return ckmECEdwardsKeyPairGen
	case keystore.PS256:
		return p11.CKM_RSA_PKCS_KEY_PAIR_GEN
	}
	return p11.CKM_EC_KEY_PAIR_GEN
}

// signMechanism returns the mechanism Sign uses for a: raw ECDSA over the
// digest, pure EdDSA over the message, RSA-PSS over the SHA-256 digest
// with MGF1-SHA-256 and a 32-byte salt.
func signMechanism(a keystore.Algorithm) []*p11.Mechanism {
	switch a {
	case keystore.EdDSA:
		return []*p11.Mechanism{p11.NewMechanism(ckmEdDSA, nil)}
	case keystore.PS256:
		return []*p11.Mechanism{p11.NewMechanism(p11.CKM_RSA_PKCS_PSS, p11.NewPSSParams(p11.CKM_SHA256, p11.CKG_MGF1_SHA256, 32))}
	}
	return []*p11.Mechanism{p11.NewMechanism(p11.CKM_ECDSA, nil)}
}

// templates returns the public and private key templates for req. Keys
// get the least rights a signing key needs, whatever the token's
// defaults: the private key signs and does nothing else (no decrypt,
// unwrap, derive or sign-recover), the public key verifies and does
// nothing else. The private key is sensitive, and only wrappable under a
// key the SO marked trusted (CKA_WRAP_WITH_TRUSTED), so that even an
// exportable key cannot be wrapped under a key a user PIN holder made and
// read in clear.
func templates(req keystore.CreateRequest, id []byte) (pub, priv []*p11.Attribute) {
	pub = []*p11.Attribute{
		p11.NewAttribute(p11.CKA_CLASS, p11.CKO_PUBLIC_KEY),
		p11.NewAttribute(p11.CKA_TOKEN, true),
		p11.NewAttribute(p11.CKA_PRIVATE, false),
		p11.NewAttribute(p11.CKA_VERIFY, true),
		p11.NewAttribute(p11.CKA_VERIFY_RECOVER, false),
		p11.NewAttribute(p11.CKA_ENCRYPT, false),
		p11.NewAttribute(p11.CKA_WRAP, false),
		p11.NewAttribute(p11.CKA_DERIVE, false),
		p11.NewAttribute(p11.CKA_LABEL, req.Label),
		p11.NewAttribute(p11.CKA_ID, id),
	}
	priv = []*p11.Attribute{
		p11.NewAttribute(p11.CKA_CLASS, p11.CKO_PRIVATE_KEY),
		p11.NewAttribute(p11.CKA_TOKEN, true),
		p11.NewAttribute(p11.CKA_PRIVATE, true),
		p11.NewAttribute(p11.CKA_SENSITIVE, true),
		p11.NewAttribute(p11.CKA_EXTRACTABLE, req.Exportable),
		p11.NewAttribute(p11.CKA_WRAP_WITH_TRUSTED, true),
		p11.NewAttribute(p11.CKA_SIGN, true),
		p11.NewAttribute(p11.CKA_SIGN_RECOVER, false),
		p11.NewAttribute(p11.CKA_DECRYPT, false),
		p11.NewAttribute(p11.CKA_UNWRAP, false),
		p11.NewAttribute(p11.CKA_DERIVE, false),
		p11.NewAttribute(p11.CKA_LABEL, req.Label),
		p11.NewAttribute(p11.CKA_ID, id),
	}
	switch req.Algorithm {
	case keystore.ES256, keystore.ES384:
		params := oidP256
		if req.Algorithm == keystore.ES384 {
			params = oidP384
		}
		pub = append(pub, p11.NewAttribute(p11.CKA_KEY_TYPE, p11.CKK_EC), p11.NewAttribute(p11.CKA_EC_PARAMS, params))
		priv = append(priv, p11.NewAttribute(p11.CKA_KEY_TYPE, p11.CKK_EC))
	case keystore.EdDSA:
		pub = append(pub, p11.NewAttribute(p11.CKA_KEY_TYPE, ckkECEdwards), p11.NewAttribute(p11.CKA_EC_PARAMS, oidEd25519))
		priv = append(priv, p11.NewAttribute(p11.CKA_KEY_TYPE, ckkECEdwards))
	case keystore.PS256:
		pub = append(pub,
			p11.NewAttribute(p11.CKA_KEY_TYPE, p11.CKK_RSA),
			p11.NewAttribute(p11.CKA_MODULUS_BITS, keystore.RSABits),
			p11.NewAttribute(p11.CKA_PUBLIC_EXPONENT, []byte{1, 0, 1}))
		priv = append(priv, p11.NewAttribute(p11.CKA_KEY_TYPE, p11.CKK_RSA))
	}
	return pub, priv
}

// ulong decodes a CK_ULONG attribute value (native byte order and size).
func ulong(b []byte) (uint, bool) {
	switch len(b) {
	case 8:
		return uint(binary.NativeEndian.Uint64(b)), true
	case 4:
		return uint(binary.NativeEndian.Uint32(b)), true
	}
	return 0, false
}

// unwrapPoint returns the point inside a CKA_EC_POINT value: a DER OCTET
// STRING as PKCS#11 requires, or the raw point some tokens return.
func unwrapPoint(v []byte) []byte {
	s := cryptobyte.String(v)
	var inner cryptobyte.String
	if s.ReadASN1(&inner, asn1.OCTET_STRING) && s.Empty() {
		return inner
	}
	return v
}

func ecPublicKey(params, point []byte) (*ecdsa.PublicKey, error) {
	var curve elliptic.Curve
	switch string(params) {
	case string(oidP256):
		curve = elliptic.P256()
	case string(oidP384):
		curve = elliptic.P384()
	default:
		return nil, fmt.Errorf("pkcs11: %w: EC key on a curve other than P-256 and P-384", keystore.ErrUnsupportedAlgorithm)
	}
	pub, err := ecdsa.ParseUncompressedPublicKey(curve, unwrapPoint(point))
	if err != nil {
		return nil, fmt.Errorf("pkcs11: malformed CKA_EC_POINT: %w", err)
	}
	return pub, nil
}

func edPublicKey(params, point []byte) (ed25519.PublicKey, error) {
	if string(params) != string(oidEd25519) && string(params) != string(nameEd25519) {
		return nil, fmt.Errorf("pkcs11: %w: Edwards key on a curve other than Ed25519", keystore.ErrUnsupportedAlgorithm)
	}
	p := unwrapPoint(point)
	if len(p) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("pkcs11: malformed Ed25519 CKA_EC_POINT of %d bytes", len(p))
	}
	return ed25519.PublicKey(append([]byte(nil), p...)), nil
}

func rsaPublicKey(modulus, exponent []byte) (*rsa.PublicKey, error) {
	e := new(big.Int).SetBytes(exponent)
	if len(modulus) == 0 || !e.IsInt64() || e.Int64() < 3 || e.Int64() > 1<<31-1 {
		return nil, errors.New("pkcs11: malformed RSA public key attributes")
	}
	return &rsa.PublicKey{N: new(big.Int).SetBytes(modulus), E: int(e.Int64())}, nil
}

// ecdsaDER converts a PKCS#11 ECDSA signature, r||s with each half as
// long as the curve order, to the ASN.1 DER form crypto.Signer returns.
// Reference: PKCS #11 Mechanisms 3.0 §2.3.1; RFC 3279 §2.2.3.
func ecdsaDER(raw []byte) ([]byte, error) {
	if len(raw) == 0 || len(raw)%2 != 0 || len(raw) > 2*66 {
		return nil, fmt.Errorf("pkcs11: malformed ECDSA signature of %d bytes from the token", len(raw))
	}
	n := len(raw) / 2
	var b cryptobyte.Builder
	b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
		addUnsigned(b, raw[:n])
		addUnsigned(b, raw[n:])
	})
	return b.Bytes()
}

// addUnsigned adds a big-endian unsigned integer as an ASN.1 INTEGER.
func addUnsigned(b *cryptobyte.Builder, v []byte) {
	for len(v) > 1 && v[0] == 0 {
		v = v[1:]
	}
	b.AddASN1(asn1.INTEGER, func(b *cryptobyte.Builder) {
		if v[0]&0x80 != 0 {
			b.AddUint8(0)
		}
		b.AddBytes(v)
	})
}

var _ crypto.Signer = (*Key)(nil)
