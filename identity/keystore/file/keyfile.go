package file

import (
	"bytes"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/pbkdf2"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	encasn1 "encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"hash"
	"io"
	"math/big"
	"strconv"

	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/cryptobyte/asn1"

	"github.com/ztmkit/ztm/identity/keystore"
)

// The key file format: an encrypted PKCS#8 key (RFC 5958 §3,
// EncryptedPrivateKeyInfo) in PEM ("ENCRYPTED PRIVATE KEY", RFC 7468 §11),
// encrypted with PBES2 (RFC 8018 §6.2) using PBKDF2 with HMAC-SHA-256 and
// AES-256-CBC (RFC 8018 §B.2.5 padding, i.e. PKCS#7).
const pemType = "ENCRYPTED PRIVATE KEY"

const (
	// DefaultIterations is the PBKDF2-HMAC-SHA-256 iteration count for keys
	// written under a passphrase when [Config.Iterations] is zero: the OWASP
	// recommendation for PBKDF2-HMAC-SHA-256 (2023).
	DefaultIterations = 600_000
	// MinIterations is the lowest iteration count the store writes with,
	// and the default under a key-encryption key, whose 256 bits of entropy
	// make the count irrelevant to its strength.
	MinIterations = 10_000
	// MaxIterations is the highest iteration count the store reads. A file
	// claiming more is refused with [ErrUnsupportedFormat] instead of
	// keeping the process busy for minutes.
	MaxIterations = 10_000_000

	maxFileSize = 64 << 10 // an RSA-4096 key file is about 3.5 KiB
	saltLen     = 16
)

var (
	oidPBES2          = encasn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 13}
	oidPBKDF2         = encasn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 12}
	oidHMACWithSHA1   = encasn1.ObjectIdentifier{1, 2, 840, 113549, 2, 7}
	oidHMACWithSHA256 = encasn1.ObjectIdentifier{1, 2, 840, 113549, 2, 9}
	oidHMACWithSHA384 = encasn1.ObjectIdentifier{1, 2, 840, 113549, 2, 10}
	oidHMACWithSHA512 = encasn1.ObjectIdentifier{1, 2, 840, 113549, 2, 11}
	oidAES128CBC      = encasn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 2}
	oidAES192CBC      = encasn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 22}
	oidAES256CBC      = encasn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 42}
	oidLocalKeyID     = encasn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 21} // PKCS #9 (RFC 2985 §5.5.2)
	oidECPublicKey    = encasn1.ObjectIdentifier{1, 2, 840, 10045, 2, 1}
	oidEd25519        = encasn1.ObjectIdentifier{1, 3, 101, 112}
	oidRSAEncryption  = encasn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 1}
	// Parse errors carry no "file:" prefix: Get adds it with the label.
	errWrongCredential = fmt.Errorf("%w: wrong passphrase or key-encryption key", keystore.ErrAuth)
)

// marshalKeyFile encrypts key under password and returns the PEM key file.
//
// The PKCS#8 structure carries one attribute, PKCS #9 localKeyID, holding
// the SHA-256 of the key's SubjectPublicKeyInfo; parseKeyFile checks it, so
// that a damaged ciphertext cannot silently become another valid key.
// openssl ignores the attribute.
func marshalKeyFile(random io.Reader, key crypto.Signer, password []byte, iterations int) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("file: cannot encode key: %w", err)
	}
	defer clear(der)
	spki, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return nil, fmt.Errorf("file: cannot encode public key: %w", err)
	}
	id := sha256.Sum256(spki)
	plain, err := addLocalKeyID(der, id[:])
	if err != nil {
		return nil, err
	}
	defer clear(plain)

	var params [saltLen + aes.BlockSize]byte
	if _, err := io.ReadFull(random, params[:]); err != nil {
		return nil, fmt.Errorf("file: cannot read random salt and IV: %w", err)
	}
	salt, iv := params[:saltLen], params[saltLen:]
	dk, err := pbkdf2.Key(sha256.New, string(password), salt, iterations, 32)
	if err != nil {
		return nil, fmt.Errorf("file: PBKDF2: %w", err)
	}
	defer clear(dk)
	block, err := aes.NewCipher(dk)
	if err != nil {
		return nil, err
	}
	pad := aes.BlockSize - len(plain)%aes.BlockSize
	ct := make([]byte, len(plain)+pad)
	copy(ct, plain)
	for i := len(plain); i < len(ct); i++ {
		ct[i] = byte(pad)
	}
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(ct, ct)

	return encodeKeyFile(salt, iterations, iv, ct)
}

// encodeKeyFile encodes the PEM EncryptedPrivateKeyInfo for PBES2 with
// PBKDF2-HMAC-SHA-256 and AES-256-CBC.
func encodeKeyFile(salt []byte, iterations int, iv, ct []byte) ([]byte, error) {
	var b cryptobyte.Builder
	b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) { // EncryptedPrivateKeyInfo
		b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) { // AlgorithmIdentifier
			b.AddASN1ObjectIdentifier(oidPBES2)
			b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) { // PBES2-params
				b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) { // keyDerivationFunc
					b.AddASN1ObjectIdentifier(oidPBKDF2)
					b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) { // PBKDF2-params
						b.AddASN1OctetString(salt)
						b.AddASN1Int64(int64(iterations))
						b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) { // prf
							b.AddASN1ObjectIdentifier(oidHMACWithSHA256)
							b.AddASN1NULL()
						})
					})
				})
				b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) { // encryptionScheme
					b.AddASN1ObjectIdentifier(oidAES256CBC)
					b.AddASN1OctetString(iv)
				})
			})
		})
		b.AddASN1OctetString(ct)
	})
	out, err := b.Bytes()
	if err != nil {
		return nil, fmt.Errorf("file: cannot encode key file: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemType, Bytes: out}), nil
}

// addLocalKeyID appends to a PKCS#8 PrivateKeyInfo without attributes the
// attribute set { localKeyID: id }.
func addLocalKeyID(der, id []byte) ([]byte, error) {
	in := cryptobyte.String(der)
	var body cryptobyte.String
	if !in.ReadASN1(&body, asn1.SEQUENCE) || !in.Empty() {
		return nil, errors.New("file: unexpected PKCS#8 encoding")
	}
	var b cryptobyte.Builder
	b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddBytes(body)
		b.AddASN1(asn1.Tag(0).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) {
			b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddASN1ObjectIdentifier(oidLocalKeyID)
				b.AddASN1(asn1.SET, func(b *cryptobyte.Builder) {
					b.AddASN1OctetString(id)
				})
			})
		})
	})
	return b.Bytes()
}

// pbes2Params are the parameters parseKeyFile reads from a key file.
type pbes2Params struct {
	salt       []byte
	iterations int
	prf        func() hash.Hash
	keyLen     int
	iv         []byte
	ciphertext []byte
}

// parseKeyFile decrypts a PEM encrypted PKCS#8 key file with password. It
// refuses iteration counts above maxIter. Errors: a [*FormatError] (wrapping
// ErrCorrupt or ErrUnsupportedFormat) for a file it cannot read, an error
// wrapping keystore.ErrAuth for a wrong password, and one wrapping
// keystore.ErrUnsupportedAlgorithm for a key ztm does not use.
//
// A wrong password and damage to the first ciphertext block (or the IV)
// cannot be told apart: PBES2 has no MAC. Everything else is: with the
// right password the first plaintext block is the start of a PKCS#8
// structure (about 40 fixed bits; a wrong password matches them with
// probability near 2^-40), so damage elsewhere is reported as ErrCorrupt.
func parseKeyFile(data, password []byte, maxIter int) (crypto.Signer, error) {
	der, err := decodePEM(data)
	if err != nil {
		return nil, err
	}
	p, err := parseEncryptedPrivateKeyInfo(der, maxIter)
	if err != nil {
		return nil, err
	}
	dk, err := pbkdf2.Key(p.prf, string(password), p.salt, p.iterations, p.keyLen)
	if err != nil {
		return nil, unsupported("PBKDF2: " + err.Error())
	}
	defer clear(dk)
	block, err := aes.NewCipher(dk)
	if err != nil {
		return nil, unsupported(err.Error())
	}
	plain := make([]byte, len(p.ciphertext))
	defer clear(plain)
	cipher.NewCBCDecrypter(block, p.iv).CryptBlocks(plain, p.ciphertext)

	// With the right password, block 0 is the start of the PKCS#8 key;
	// after that, any failure is damage, not a wrong password.
	rightPassword := looksLikePKCS8(plain)
	damaged := func(reason string) error {
		if !rightPassword {
			return errWrongCredential
		}
		return corrupt("decrypted key is damaged: " + reason)
	}
	pad := int(plain[len(plain)-1])
	if pad == 0 || pad > aes.BlockSize {
		return nil, damaged("bad padding")
	}
	for _, c := range plain[len(plain)-pad:] {
		if int(c) != pad {
			return nil, damaged("bad padding")
		}
	}
	body := plain[:len(plain)-pad]
	info, ok := parsePrivateKeyInfo(body)
	if !ok {
		return nil, damaged("not a PKCS#8 structure")
	}
	if !info.algo.Equal(oidECPublicKey) && !info.algo.Equal(oidEd25519) && !info.algo.Equal(oidRSAEncryption) {
		return nil, fmt.Errorf("%w: key of type %v", keystore.ErrUnsupportedAlgorithm, info.algo)
	}
	parsed, err := x509.ParsePKCS8PrivateKey(body)
	if err != nil {
		return nil, damaged(err.Error())
	}
	signer, ok := parsed.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%w: key of type %T", keystore.ErrUnsupportedAlgorithm, parsed)
	}
	if _, err := keystore.AlgorithmOf(signer.Public()); err != nil {
		wipe(signer)
		return nil, err
	}
	if err := checkPublic(signer, info); err != nil {
		wipe(signer)
		return nil, err
	}
	return signer, nil
}

// decodePEM returns the DER of the one PEM block that data must consist of,
// with nothing but white space around it.
func decodePEM(data []byte) ([]byte, error) {
	if len(data) > maxFileSize {
		return nil, corrupt("larger than " + strconv.Itoa(maxFileSize) + " bytes")
	}
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if !bytes.HasPrefix(trimmed, []byte("-----BEGIN ")) {
		return nil, corrupt("does not start with a PEM BEGIN line")
	}
	block, rest := pem.Decode(trimmed)
	if block == nil {
		return nil, corrupt("malformed PEM (truncated, bad base64 or missing END line)")
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, corrupt("trailing data after the PEM block")
	}
	switch block.Type {
	case pemType:
	case "PRIVATE KEY", "EC PRIVATE KEY", "RSA PRIVATE KEY":
		return nil, unsupported("PEM type " + strconv.Quote(block.Type) + ": the key is not encrypted as PKCS#8, and the store holds only encrypted PKCS#8 keys")
	default:
		return nil, corrupt("PEM type " + strconv.Quote(block.Type) + ", want " + strconv.Quote(pemType))
	}
	if len(block.Headers) != 0 {
		return nil, corrupt("unexpected PEM headers")
	}
	return block.Bytes, nil
}

func parseEncryptedPrivateKeyInfo(der []byte, maxIter int) (*pbes2Params, error) {
	var (
		in                     = cryptobyte.String(der)
		epki, algo, params     cryptobyte.String
		kdf, kdfParams, enc    cryptobyte.String
		algOID, kdfOID, encOID encasn1.ObjectIdentifier
		salt, iv, ct           []byte
		iterations             int64
		p                      pbes2Params
	)
	if !in.ReadASN1(&epki, asn1.SEQUENCE) || !in.Empty() {
		return nil, corrupt("not an EncryptedPrivateKeyInfo (or trailing data)")
	}
	if !epki.ReadASN1(&algo, asn1.SEQUENCE) ||
		!epki.ReadASN1Bytes(&ct, asn1.OCTET_STRING) || !epki.Empty() ||
		!algo.ReadASN1ObjectIdentifier(&algOID) {
		return nil, corrupt("malformed EncryptedPrivateKeyInfo")
	}
	if !algOID.Equal(oidPBES2) {
		return nil, unsupported("encryption scheme " + algOID.String() + ", want PBES2 (" + oidPBES2.String() + ")")
	}
	if !algo.ReadASN1(&params, asn1.SEQUENCE) || !algo.Empty() ||
		!params.ReadASN1(&kdf, asn1.SEQUENCE) || !params.ReadASN1(&enc, asn1.SEQUENCE) || !params.Empty() ||
		!kdf.ReadASN1ObjectIdentifier(&kdfOID) {
		return nil, corrupt("malformed PBES2 parameters")
	}
	if !kdfOID.Equal(oidPBKDF2) {
		return nil, unsupported("key derivation function " + kdfOID.String() + ", want PBKDF2")
	}
	if !kdf.ReadASN1(&kdfParams, asn1.SEQUENCE) || !kdf.Empty() ||
		!kdfParams.ReadASN1Bytes(&salt, asn1.OCTET_STRING) ||
		!kdfParams.ReadASN1Integer(&iterations) {
		return nil, corrupt("malformed PBKDF2 parameters")
	}
	keyLen := int64(-1)
	if kdfParams.PeekASN1Tag(asn1.INTEGER) && !kdfParams.ReadASN1Integer(&keyLen) {
		return nil, corrupt("malformed PBKDF2 key length")
	}
	prf, err := readPRF(&kdfParams)
	if err != nil {
		return nil, err
	}
	p.prf = prf
	if !kdfParams.Empty() {
		return nil, corrupt("malformed PBKDF2 parameters")
	}
	if len(salt) < 8 || len(salt) > 64 {
		return nil, unsupported("PBKDF2 salt of " + strconv.Itoa(len(salt)) + " bytes (want 8 to 64)")
	}
	if iterations < 1 {
		return nil, corrupt("PBKDF2 iteration count " + strconv.FormatInt(iterations, 10))
	}
	if iterations > int64(maxIter) {
		return nil, unsupported("PBKDF2 iteration count " + strconv.FormatInt(iterations, 10) + " exceeds the maximum of " + strconv.Itoa(maxIter))
	}
	if !enc.ReadASN1ObjectIdentifier(&encOID) {
		return nil, corrupt("malformed encryption scheme")
	}
	switch {
	case encOID.Equal(oidAES128CBC):
		p.keyLen = 16
	case encOID.Equal(oidAES192CBC):
		p.keyLen = 24
	case encOID.Equal(oidAES256CBC):
		p.keyLen = 32
	default:
		return nil, unsupported("cipher " + encOID.String() + " (want AES-CBC)")
	}
	if keyLen != -1 && keyLen != int64(p.keyLen) {
		return nil, corrupt("PBKDF2 key length " + strconv.FormatInt(keyLen, 10) + " does not match the cipher")
	}
	if !enc.ReadASN1Bytes(&iv, asn1.OCTET_STRING) || !enc.Empty() || len(iv) != aes.BlockSize {
		return nil, corrupt("malformed AES-CBC IV")
	}
	if len(ct) == 0 || len(ct)%aes.BlockSize != 0 {
		return nil, corrupt("ciphertext of " + strconv.Itoa(len(ct)) + " bytes is not a whole number of AES blocks")
	}
	p.salt, p.iterations, p.iv, p.ciphertext = salt, int(iterations), iv, ct
	return &p, nil
}

// readPRF reads the optional prf AlgorithmIdentifier that ends PBKDF2's
// parameters (RFC 8018 §A.2); its DEFAULT is HMAC-SHA1.
func readPRF(kdfParams *cryptobyte.String) (func() hash.Hash, error) {
	if !kdfParams.PeekASN1Tag(asn1.SEQUENCE) {
		return sha1.New, nil
	}
	var prf cryptobyte.String
	var prfOID encasn1.ObjectIdentifier
	if !kdfParams.ReadASN1(&prf, asn1.SEQUENCE) || !prf.ReadASN1ObjectIdentifier(&prfOID) {
		return nil, corrupt("malformed PBKDF2 PRF")
	}
	if prf.PeekASN1Tag(asn1.NULL) {
		var null cryptobyte.String
		if !prf.ReadASN1(&null, asn1.NULL) || !null.Empty() {
			return nil, corrupt("malformed PBKDF2 PRF parameters")
		}
	}
	if !prf.Empty() {
		return nil, corrupt("malformed PBKDF2 PRF parameters")
	}
	switch {
	case prfOID.Equal(oidHMACWithSHA1):
		return sha1.New, nil
	case prfOID.Equal(oidHMACWithSHA256):
		return sha256.New, nil
	case prfOID.Equal(oidHMACWithSHA384):
		return sha512.New384, nil
	case prfOID.Equal(oidHMACWithSHA512):
		return sha512.New, nil
	}
	return nil, unsupported("PBKDF2 PRF " + prfOID.String())
}

// looksLikePKCS8 reports whether plain, a decrypted PKCS#8 key with its
// padding, starts as one: a SEQUENCE header in DER (short, one- or two-byte
// length), then INTEGER version 0 or 1, then SEQUENCE. Random bytes match
// with probability about 2^-40.
func looksLikePKCS8(plain []byte) bool {
	if len(plain) < aes.BlockSize || plain[0] != 0x30 {
		return false
	}
	var hdr int
	switch {
	case plain[1] < 0x80:
		hdr = 2
	case plain[1] == 0x81 && plain[2] >= 0x80:
		hdr = 3
	case plain[1] == 0x82 && plain[2] != 0:
		hdr = 4
	default:
		return false
	}
	q := plain[hdr:]
	return q[0] == 0x02 && q[1] == 0x01 && (q[2] == 0 || q[2] == 1) && q[3] == 0x30
}

// privateKeyInfo holds what parseKeyFile checks in a PKCS#8
// OneAsymmetricKey (RFC 5958 §2) besides what x509 parses.
type privateKeyInfo struct {
	algo       encasn1.ObjectIdentifier
	privateKey []byte // the privateKey OCTET STRING's content
	localKeyID []byte // the localKeyID attribute, if present
}

func parsePrivateKeyInfo(der []byte) (*privateKeyInfo, bool) {
	var (
		in        = cryptobyte.String(der)
		seq, algo cryptobyte.String
		version   int64
		info      privateKeyInfo
	)
	if !in.ReadASN1(&seq, asn1.SEQUENCE) || !in.Empty() ||
		!seq.ReadASN1Integer(&version) || (version != 0 && version != 1) ||
		!seq.ReadASN1(&algo, asn1.SEQUENCE) || !algo.ReadASN1ObjectIdentifier(&info.algo) ||
		!seq.ReadASN1Bytes(&info.privateKey, asn1.OCTET_STRING) {
		return nil, false
	}
	attrTag := asn1.Tag(0).ContextSpecific().Constructed()
	if seq.PeekASN1Tag(attrTag) {
		var attrs cryptobyte.String
		if !seq.ReadASN1(&attrs, attrTag) {
			return nil, false
		}
		for !attrs.Empty() {
			var attr, values cryptobyte.String
			var oid encasn1.ObjectIdentifier
			if !attrs.ReadASN1(&attr, asn1.SEQUENCE) || !attr.ReadASN1ObjectIdentifier(&oid) ||
				!attr.ReadASN1(&values, asn1.SET) || !attr.Empty() {
				return nil, false
			}
			if oid.Equal(oidLocalKeyID) {
				var id []byte
				if info.localKeyID != nil || !values.ReadASN1Bytes(&id, asn1.OCTET_STRING) || !values.Empty() {
					return nil, false
				}
				info.localKeyID = id
			}
		}
		// The store writes localKeyID as its only attribute, and openssl
		// writes no attributes: attributes without it mean that damage
		// hit the attribute's OID, so the check cannot be skipped.
		if info.localKeyID == nil {
			return nil, false
		}
	}
	// A version 2 key may carry its public key, [1] IMPLICIT BIT STRING.
	pubTag := asn1.Tag(1).ContextSpecific()
	if seq.PeekASN1Tag(pubTag) {
		var pub cryptobyte.String
		if !seq.ReadASN1(&pub, pubTag) {
			return nil, false
		}
	}
	return &info, seq.Empty()
}

// checkPublic checks that the parsed key matches the public key its file
// records: the localKeyID attribute this store writes and, for ECDSA, the
// public point in the SEC 1 structure.
func checkPublic(signer crypto.Signer, info *privateKeyInfo) error {
	if len(info.localKeyID) == sha256.Size {
		spki, err := x509.MarshalPKIXPublicKey(signer.Public())
		if err != nil {
			return corrupt("cannot encode public key: " + err.Error())
		}
		if id := sha256.Sum256(spki); !bytes.Equal(id[:], info.localKeyID) {
			return corrupt("decrypted key is damaged: it does not match its localKeyID")
		}
	}
	if k, ok := signer.(*ecdsa.PrivateKey); ok {
		var sec1 struct {
			Version    int
			PrivateKey []byte
			Curve      encasn1.ObjectIdentifier `asn1:"optional,explicit,tag:0"`
			PublicKey  encasn1.BitString        `asn1:"optional,explicit,tag:1"`
		}
		if _, err := encasn1.Unmarshal(info.privateKey, &sec1); err != nil {
			return corrupt("decrypted key is damaged: " + err.Error())
		}
		if len(sec1.PublicKey.Bytes) != 0 {
			pub, err := k.PublicKey.Bytes()
			if err != nil || !bytes.Equal(pub, sec1.PublicKey.Bytes) {
				return corrupt("decrypted key is damaged: its public point does not match its private scalar")
			}
		}
	}
	return nil
}

// wipe overwrites the private parts of a key this package decrypted or
// generated. It is best effort: Go copies key material into internal
// structures (precomputed values, FIPS module keys) that it cannot reach.
func wipe(k crypto.Signer) {
	switch k := k.(type) {
	case *ecdsa.PrivateKey:
		// D is one of the copies of the scalar; the key is never used again.
		//lint:ignore SA1019 wiping, not using, the deprecated field
		if d := k.D; d != nil {
			clear(d.Bits())
		}
	case ed25519.PrivateKey:
		clear(k)
	case *rsa.PrivateKey:
		if k.D != nil {
			clear(k.D.Bits())
		}
		for _, p := range k.Primes {
			if p != nil {
				clear(p.Bits())
			}
		}
		for _, v := range []*big.Int{k.Precomputed.Dp, k.Precomputed.Dq, k.Precomputed.Qinv} {
			if v != nil {
				clear(v.Bits())
			}
		}
	}
}
