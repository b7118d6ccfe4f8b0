package tpm

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/subtle"
	"encoding/binary"
	"fmt"
	"math/big"

	"golang.org/x/crypto/cryptobyte"

	"github.com/ztmkit/ztm/attest"
	"github.com/ztmkit/ztm/identity/keystore"
)

// TagAttestCertify is TPM_ST_ATTEST_CERTIFY, the type of the TPMS_ATTEST
// that TPM2_Certify signs.
const TagAttestCertify uint16 = 0x8017

// Object attributes (TPMA_OBJECT) that make a key device-bound. Reference:
// TPM 2.0 Library Part 2 §8.3.
const (
	// AttrFixedTPM: the object cannot be duplicated to another TPM.
	AttrFixedTPM uint32 = 1 << 1
	// AttrFixedParent: the object cannot be moved to another parent.
	AttrFixedParent uint32 = 1 << 4
	// AttrSensitiveDataOrigin: the TPM generated the private key.
	AttrSensitiveDataOrigin uint32 = 1 << 5
)

const (
	algRSA    uint16 = 0x0001
	algECC    uint16 = 0x0023
	algNull   uint16 = 0x0010
	algRSAES  uint16 = 0x0015
	algECDAA  uint16 = 0x001a
	eccP256   uint16 = 0x0003
	eccP384   uint16 = 0x0004
	eccP521   uint16 = 0x0005
	maxPublic        = 1024
)

// Certification is a parsed TPMS_ATTEST of type TPM_ST_ATTEST_CERTIFY.
// Reference: TPM 2.0 Library Part 2 §10.12.3 (TPMS_CERTIFY_INFO).
type Certification struct {
	// QualifiedSigner is the qualified name of the signing key (the AK).
	QualifiedSigner []byte
	// ExtraData is the caller's qualifying data: the nonce.
	ExtraData []byte
	// ClockInfo is the TPM's clock state.
	ClockInfo ClockInfo
	// FirmwareVersion is the TPM vendor's firmware version.
	FirmwareVersion uint64
	// Name is the name of the certified object: its nameAlg, then the
	// digest of its TPMT_PUBLIC with that algorithm.
	Name []byte
	// QualifiedName is the certified object's qualified name.
	QualifiedName []byte
}

// ParseCertification parses a TPMS_ATTEST (the contents of a
// TPM2B_ATTEST) made by TPM2_Certify: magic TPM_GENERATED_VALUE, type
// TPM_ST_ATTEST_CERTIFY. Errors wrap [ErrMalformed].
func ParseCertification(b []byte) (*Certification, error) {
	s := cryptobyte.String(b)
	var c Certification
	var magic uint32
	var typ uint16
	if err := readAttestHeader(&s, TagAttestCertify, "TPM_ST_ATTEST_CERTIFY", &magic, &typ, &c.QualifiedSigner, &c.ExtraData, &c.ClockInfo, &c.FirmwareVersion); err != nil {
		return nil, err
	}
	if !readTPM2B(&s, &c.Name) || !readTPM2B(&s, &c.QualifiedName) {
		return nil, fmt.Errorf("%w: TPMS_CERTIFY_INFO truncated", ErrMalformed)
	}
	if len(c.Name) < 4 {
		return nil, fmt.Errorf("%w: certified name of %d bytes", ErrMalformed, len(c.Name))
	}
	if !s.Empty() {
		return nil, fmt.Errorf("%w: %d bytes of trailing data after TPMS_ATTEST", ErrMalformed, len(s))
	}
	return &c, nil
}

// Public is a parsed TPMT_PUBLIC of an RSA or ECC key. Reference: TPM 2.0
// Library Part 2 §12.2.4.
type Public struct {
	// Type is TPM_ALG_RSA or TPM_ALG_ECC.
	Type uint16
	// NameAlg is the hash algorithm of the object's name.
	NameAlg uint16
	// Attributes are the object's TPMA_OBJECT bits.
	Attributes uint32
	// Key is the public key: *rsa.PublicKey or *ecdsa.PublicKey.
	Key crypto.PublicKey
	// Raw is the TPMT_PUBLIC as parsed.
	Raw []byte
}

// Name returns the object's name: NameAlg, big-endian, then the digest of
// Raw with NameAlg. Reference: TPM 2.0 Library Part 1 §16.
func (p *Public) Name() []byte {
	h := newHash(p.NameAlg)
	h.Write(p.Raw)
	return h.Sum(binary.BigEndian.AppendUint16(nil, p.NameAlg))
}

// ParsePublic parses a TPMT_PUBLIC (the contents of a TPM2B_PUBLIC) of an
// RSA or ECC (P-256, P-384, P-521) key, whose nameAlg is SHA-256, -384 or
// -512. Errors wrap [ErrMalformed].
func ParsePublic(b []byte) (*Public, error) {
	if len(b) > maxPublic {
		return nil, fmt.Errorf("%w: TPMT_PUBLIC of %d bytes", ErrMalformed, len(b))
	}
	s := cryptobyte.String(b)
	p := &Public{Raw: append([]byte(nil), b...)}
	var policy []byte
	if !s.ReadUint16(&p.Type) || !s.ReadUint16(&p.NameAlg) || !s.ReadUint32(&p.Attributes) || !readTPM2B(&s, &policy) {
		return nil, fmt.Errorf("%w: TPMT_PUBLIC truncated", ErrMalformed)
	}
	switch p.NameAlg {
	case algSHA256, algSHA384, algSHA512:
	default:
		return nil, fmt.Errorf("%w: nameAlg %#x", ErrMalformed, p.NameAlg)
	}
	if !skipSymmetric(&s) {
		return nil, fmt.Errorf("%w: TPMT_SYM_DEF_OBJECT truncated", ErrMalformed)
	}
	var err error
	switch p.Type {
	case algRSA:
		p.Key, err = readRSAPublic(&s)
	case algECC:
		p.Key, err = readECCPublic(&s)
	default:
		return nil, fmt.Errorf("%w: object type %#x (want RSA or ECC)", ErrMalformed, p.Type)
	}
	if err != nil {
		return nil, err
	}
	if !s.Empty() {
		return nil, fmt.Errorf("%w: trailing data after TPMT_PUBLIC", ErrMalformed)
	}
	return p, nil
}

// skipSymmetric reads a TPMT_SYM_DEF_OBJECT.
func skipSymmetric(s *cryptobyte.String) bool {
	var alg, bits, mode uint16
	if !s.ReadUint16(&alg) {
		return false
	}
	return alg == algNull || (s.ReadUint16(&bits) && s.ReadUint16(&mode))
}

// readScheme reads a TPMT_RSA_SCHEME or TPMT_ECC_SCHEME.
func readScheme(s *cryptobyte.String) bool {
	var scheme, hash, count uint16
	if !s.ReadUint16(&scheme) {
		return false
	}
	switch scheme {
	case algNull, algRSAES:
		return true
	case algECDAA:
		return s.ReadUint16(&hash) && s.ReadUint16(&count)
	}
	return s.ReadUint16(&hash)
}

func readRSAPublic(s *cryptobyte.String) (crypto.PublicKey, error) {
	var bits uint16
	var exp uint32
	var n []byte
	if !readScheme(s) || !s.ReadUint16(&bits) || !s.ReadUint32(&exp) || !readTPM2B(s, &n) {
		return nil, fmt.Errorf("%w: TPMS_RSA_PARMS truncated", ErrMalformed)
	}
	if exp == 0 {
		exp = 65537
	}
	k := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(exp)}
	if k.N.BitLen() != int(bits) || bits < 2048 || exp%2 == 0 || exp < 3 {
		return nil, fmt.Errorf("%w: RSA key of %d bits (declared %d), exponent %d", ErrMalformed, k.N.BitLen(), bits, exp)
	}
	return k, nil
}

func readECCPublic(s *cryptobyte.String) (crypto.PublicKey, error) {
	var curveID, kdf, kdfHash uint16
	var x, y []byte
	if !readScheme(s) || !s.ReadUint16(&curveID) || !s.ReadUint16(&kdf) ||
		(kdf != algNull && !s.ReadUint16(&kdfHash)) || !readTPM2B(s, &x) || !readTPM2B(s, &y) {
		return nil, fmt.Errorf("%w: TPMS_ECC_PARMS truncated", ErrMalformed)
	}
	var c elliptic.Curve
	switch curveID {
	case eccP256:
		c = elliptic.P256()
	case eccP384:
		c = elliptic.P384()
	case eccP521:
		c = elliptic.P521()
	default:
		return nil, fmt.Errorf("%w: ECC curve %#x", ErrMalformed, curveID)
	}
	size := (c.Params().BitSize + 7) / 8
	if len(x) > size || len(y) > size {
		return nil, fmt.Errorf("%w: ECC point coordinates too long", ErrMalformed)
	}
	pt := make([]byte, 1+2*size)
	pt[0] = 4
	copy(pt[1+size-len(x):], x)
	copy(pt[1+2*size-len(y):], y)
	k, err := ecdsa.ParseUncompressedPublicKey(c, pt)
	if err != nil {
		return nil, fmt.Errorf("%w: ECC point: %v", ErrMalformed, err)
	}
	return k, nil
}

// VerifyCertify checks a TPM2_Certify that certifies the key a certificate
// request is for (TCG "TPM 2.0 Keys for Device Identity and Attestation"):
// everything [CertifiedKey] checks, and that the certified key is want,
// the request's public key. It returns the parsed public area. A
// certified key other than want is refused with ReasonKeyNotConfirmed
// (wrapping [attest.ErrKeyNotConfirmed]).
func VerifyCertify(certification, signature []byte, ak crypto.PublicKey, nonce, public []byte, want crypto.PublicKey) (*Public, error) {
	p, err := CertifiedKey(certification, signature, ak, nonce, public)
	if err != nil {
		return nil, err
	}
	if !keystore.PublicKeysEqual(p.Key, want) {
		return nil, refuse(attest.ReasonKeyNotConfirmed, nil, "the certified key is not the request's key")
	}
	return p, nil
}

// CertifiedKey checks a TPM2_Certify and returns the key it certifies:
//
//   - certification (a TPMS_ATTEST of type certify) is signed by ak, the
//     attestation key the caller trusts (from a verified AK certificate or
//     quote), with signature (a TPMT_SIGNATURE);
//   - its extraData is nonce, the verifier's challenge;
//   - its certified name is the name of public (the certified key's
//     TPMT_PUBLIC);
//   - public's attributes include fixedTPM, fixedParent and
//     sensitiveDataOrigin: the TPM made the key and it cannot leave it.
//
// Every refusal is an [*attest.VerificationError] wrapping
// [attest.ErrVerification]: malformed input (ReasonMalformed), a bad
// signature (ReasonBadSignature), another nonce (ReasonNonceUnknown),
// another name or a key without the attributes (ReasonKeyNotConfirmed,
// wrapping [attest.ErrKeyNotConfirmed]).
func CertifiedKey(certification, signature []byte, ak crypto.PublicKey, nonce, public []byte) (*Public, error) {
	c, err := ParseCertification(certification)
	if err != nil {
		return nil, refuse(attest.ReasonMalformed, err, "certification")
	}
	sig, err := ParseSignature(signature)
	if err != nil {
		return nil, refuse(attest.ReasonMalformed, err, "certification signature")
	}
	h, verr := checkScheme(sig, ak)
	if verr != nil {
		return nil, verr
	}
	h.Write(certification)
	if verr := verifySignature(sig, ak, h.Sum(nil)); verr != nil {
		return nil, verr
	}
	if len(nonce) == 0 || subtle.ConstantTimeCompare(c.ExtraData, nonce) != 1 {
		return nil, refuse(attest.ReasonNonceUnknown, nil, "certification's extraData is not the nonce asked")
	}
	p, err := ParsePublic(public)
	if err != nil {
		return nil, refuse(attest.ReasonMalformed, err, "certified public area")
	}
	if subtle.ConstantTimeCompare(p.Name(), c.Name) != 1 {
		return nil, refuse(attest.ReasonKeyNotConfirmed, nil, "the certified name is not the name of the public area given")
	}
	for _, a := range []struct {
		bit  uint32
		name string
	}{{AttrFixedTPM, "fixedTPM"}, {AttrFixedParent, "fixedParent"}, {AttrSensitiveDataOrigin, "sensitiveDataOrigin"}} {
		if p.Attributes&a.bit == 0 {
			return nil, refuse(attest.ReasonKeyNotConfirmed, nil, "the certified key is not %s", a.name)
		}
	}
	return p, nil
}
