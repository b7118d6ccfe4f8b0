package attest

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"math/big"

	"github.com/ztmkit/ztm/identity/keystore"
)

// KeyConfirmation is the CWT key of the cnf claim. Reference: RFC 8747 §3.1.
const KeyConfirmation int64 = 8

// Confirmation is the cnf claim: the key the evidence confirms, the key the
// device itself generated and holds (its identity key, for which a CSR asks
// a certificate). In a CWT it is the map of RFC 8747 §3.1 with a COSE_Key
// (label 1); in a JWT the object of RFC 7800 §3 with "jwk", or "jkt", the
// RFC 7638 SHA-256 JWK thumbprint (RFC 9449 §6.1). Exactly one of Key and
// JWKThumbprint is set.
//
// The RFC 9679 COSE key thumbprint (ckt) is not read: the label the CWT
// Confirmation Methods registry gives it is not one ztm could confirm, and a
// CWT has room for the whole key. Any other confirmation method (an
// encrypted key, a kid) is refused, as is a key with private parameters.
//
// A verifier compares the confirmed key with the key of the request with
// [Evidence.ConfirmKey].
type Confirmation struct {
	// Key is the confirmed public key: *ecdsa.PublicKey (P-256, P-384,
	// P-521), ed25519.PublicKey or *rsa.PublicKey.
	Key crypto.PublicKey
	// JWKThumbprint is the jkt member: the SHA-256 thumbprint (RFC 7638)
	// of the confirmed key. JWT form only.
	JWKThumbprint []byte
}

// Confirms reports whether pub is the confirmed key: equal to Key, or
// whose RFC 7638 SHA-256 thumbprint is JWKThumbprint.
func (c *Confirmation) Confirms(pub crypto.PublicKey) bool {
	if c == nil || pub == nil {
		return false
	}
	if c.Key != nil {
		return keystore.PublicKeysEqual(c.Key, pub)
	}
	if len(c.JWKThumbprint) == 0 {
		return false
	}
	t, err := JWKThumbprint(pub)
	return err == nil && subtle.ConstantTimeCompare(t, c.JWKThumbprint) == 1
}

func (c *Confirmation) validate() error {
	switch {
	case c.Key != nil && c.JWKThumbprint != nil:
		return errors.New("cnf: both a key and a thumbprint")
	case c.Key != nil:
		// A type check only: decoding checked the key, and encoding
		// checks it again as it writes it.
		switch k := c.Key.(type) {
		case *ecdsa.PublicKey:
			if _, _, ok := coseCurve(k.Curve); !ok {
				return errors.New("cnf: unsupported curve")
			}
		case ed25519.PublicKey:
			if len(k) != ed25519.PublicKeySize {
				return errors.New("cnf: bad Ed25519 key")
			}
		case *rsa.PublicKey:
			if k.N == nil || k.N.BitLen() < 2048 {
				return errors.New("cnf: RSA key under 2048 bits")
			}
		default:
			return fmt.Errorf("cnf: unsupported key type %T", c.Key)
		}
	case len(c.JWKThumbprint) != sha256.Size:
		return fmt.Errorf("cnf: jkt of %d bytes (want %d)", len(c.JWKThumbprint), sha256.Size)
	}
	return nil
}

// ConfirmKey checks that the evidence's cnf claim confirms pub, the public
// key of the request the evidence comes with. It returns nil if it does,
// and otherwise a [*VerificationError] wrapping [ErrVerification]: with
// [ReasonMissingClaim] when the evidence carries no cnf, and
// [ReasonKeyNotConfirmed] (wrapping [ErrKeyNotConfirmed]) when its cnf
// names another key.
func (e *Evidence) ConfirmKey(pub crypto.PublicKey) error {
	if e == nil || e.Claims == nil || e.Claims.Confirmation == nil {
		return verr(ReasonMissingClaim, nil, "cnf: the evidence confirms no key")
	}
	if pub == nil {
		return verr(ReasonKeyNotConfirmed, nil, "no key to confirm")
	}
	if !e.Claims.Confirmation.Confirms(pub) {
		return verr(ReasonKeyNotConfirmed, nil, "the key the evidence confirms (cnf) is not the request's")
	}
	return nil
}

// JWKThumbprint returns the RFC 7638 SHA-256 thumbprint of pub, the jkt
// of a JWT cnf: the hash of the JSON object of the key's required members
// in lexicographic order, without white space.
func JWKThumbprint(pub crypto.PublicKey) ([]byte, error) {
	var s string
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		crv, size, ok := jwkCurve(k.Curve)
		if !ok {
			return nil, errors.New("attest: unsupported curve")
		}
		b, err := k.Bytes()
		if err != nil {
			return nil, fmt.Errorf("attest: %w", err)
		}
		s = fmt.Sprintf(`{"crv":%q,"kty":"EC","x":%q,"y":%q}`, crv, b64.EncodeToString(b[1:1+size]), b64.EncodeToString(b[1+size:]))
	case ed25519.PublicKey:
		if len(k) != ed25519.PublicKeySize {
			return nil, errors.New("attest: bad Ed25519 key")
		}
		s = fmt.Sprintf(`{"crv":"Ed25519","kty":"OKP","x":%q}`, b64.EncodeToString(k))
	case *rsa.PublicKey:
		s = fmt.Sprintf(`{"e":%q,"kty":"RSA","n":%q}`, b64.EncodeToString(big.NewInt(int64(k.E)).Bytes()), b64.EncodeToString(k.N.Bytes()))
	default:
		return nil, fmt.Errorf("attest: unsupported key type %T", pub)
	}
	h := sha256.Sum256([]byte(s))
	return h[:], nil
}

func jwkCurve(c elliptic.Curve) (string, int, bool) {
	switch c {
	case elliptic.P256():
		return "P-256", 32, true
	case elliptic.P384():
		return "P-384", 48, true
	case elliptic.P521():
		return "P-521", 66, true
	}
	return "", 0, false
}

// COSE_Key labels and values. Reference: RFC 9052 §7.1, RFC 9053 §7.
const (
	coseKeyKty   = 1
	coseKeyKid   = 2
	coseKeyAlg   = 3
	coseKeyCrv   = -1 // RSA: n
	coseKeyX     = -2 // RSA: e
	coseKeyY     = -3
	coseKtyOKP   = 1
	coseKtyEC2   = 2
	coseKtyRSA   = 3
	coseCrvP256  = 1
	coseCrvP384  = 2
	coseCrvP521  = 3
	coseCrvEd255 = 6
	cnfCOSEKey   = 1 // RFC 8747 §3.1
)

func coseCurve(c elliptic.Curve) (int64, int, bool) {
	switch c {
	case elliptic.P256():
		return coseCrvP256, 32, true
	case elliptic.P384():
		return coseCrvP384, 48, true
	case elliptic.P521():
		return coseCrvP521, 66, true
	}
	return 0, 0, false
}

// coseKeyParams returns the required parameters of pub's COSE_Key (RFC
// 9052 §7, RFC 9053 §7.1–2, RFC 8230 §4): the same set RFC 9679 hashes.
func coseKeyParams(pub crypto.PublicKey) (map[int64]any, error) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		crv, size, ok := coseCurve(k.Curve)
		if !ok {
			return nil, errors.New("cnf: unsupported curve")
		}
		b, err := k.Bytes()
		if err != nil {
			return nil, fmt.Errorf("cnf: %w", err)
		}
		return map[int64]any{coseKeyKty: coseKtyEC2, coseKeyCrv: crv, coseKeyX: b[1 : 1+size], coseKeyY: b[1+size:]}, nil
	case ed25519.PublicKey:
		if len(k) != ed25519.PublicKeySize {
			return nil, errors.New("cnf: bad Ed25519 key")
		}
		return map[int64]any{coseKeyKty: coseKtyOKP, coseKeyCrv: coseCrvEd255, coseKeyX: []byte(k)}, nil
	case *rsa.PublicKey:
		if k.N == nil || k.N.BitLen() < 2048 || k.E < 3 {
			return nil, errors.New("cnf: RSA key under 2048 bits or bad exponent")
		}
		return map[int64]any{coseKeyKty: coseKtyRSA, coseKeyCrv: k.N.Bytes(), coseKeyX: big.NewInt(int64(k.E)).Bytes()}, nil
	}
	return nil, fmt.Errorf("cnf: unsupported key type %T", pub)
}

func (c *Confirmation) cborValue() (map[int64]any, error) {
	if c.Key == nil {
		return nil, errors.New("attest: cnf: a CWT confirms a COSE_Key (jkt is the JWT form's)")
	}
	p, err := coseKeyParams(c.Key)
	if err != nil {
		return nil, fmt.Errorf("attest: %w", err)
	}
	return map[int64]any{cnfCOSEKey: p}, nil
}

// decodeConfirmationCBOR reads a CWT cnf: a map with exactly one member,
// COSE_Key (1). v is one well-formed CBOR item. It reads the heads by
// hand, as it runs on every verification.
func decodeConfirmationCBOR(v []byte) (*Confirmation, error) {
	r := cborReader(v)
	if n, ok := r.head(5); !ok || n != 1 {
		return nil, errors.New("cnf: want a map with exactly one COSE_Key (1); other confirmation methods are not supported")
	}
	if label, ok := r.int(); !ok || label != cnfCOSEKey {
		return nil, errors.New("cnf: confirmation method other than COSE_Key (1) not supported")
	}
	pub, err := decodeCOSEKey(&r)
	if err != nil {
		return nil, err
	}
	if len(r) != 0 {
		return nil, errors.New("cnf: trailing bytes")
	}
	return &Confirmation{Key: pub}, nil
}

// coseKey is what decodeCOSEKey reads of a COSE_Key.
type coseKey struct {
	kty, crv, alg int64
	x, y, n       []byte
	seen          map[int64]bool
}

// decodeCOSEKey reads a public COSE_Key strictly: kty and the parameters
// its type requires, an optional kid (bstr) and alg (which must fit the
// key); any other parameter, a private one above all, is refused, as are
// duplicate labels and indefinite lengths.
func decodeCOSEKey(r *cborReader) (crypto.PublicKey, error) {
	n, ok := r.head(5)
	if !ok || n > 6 {
		return nil, errors.New("cnf: COSE_Key is not a map of at most 6 parameters")
	}
	k := coseKey{seen: make(map[int64]bool, n)}
	for range n {
		label, ok := r.int()
		if !ok {
			return nil, errors.New("cnf: COSE_Key label is not an integer")
		}
		if k.seen[label] {
			return nil, fmt.Errorf("cnf: COSE_Key parameter %d appears twice", label)
		}
		k.seen[label] = true
		switch label {
		case coseKeyKty:
			k.kty, ok = r.int()
		case coseKeyKid:
			_, ok = r.bytes(2)
		case coseKeyAlg:
			k.alg, ok = r.int()
		case coseKeyCrv: // crv (EC2, OKP) or n (RSA)
			if len(*r) > 0 && (*r)[0]>>5 == 2 {
				k.n, ok = r.bytes(2)
			} else {
				k.crv, ok = r.int()
			}
		case coseKeyX:
			k.x, ok = r.bytes(2)
		case coseKeyY:
			k.y, ok = r.bytes(2)
		default:
			return nil, fmt.Errorf("cnf: COSE_Key parameter %d not allowed (a public key has only kty, crv, x, y or n, e, kid, alg)", label)
		}
		if !ok {
			return nil, fmt.Errorf("cnf: COSE_Key parameter %d of the wrong type (a compressed point is not supported)", label)
		}
	}
	pub, err := k.public()
	if err != nil {
		return nil, err
	}
	if k.seen[coseKeyAlg] && !algorithmFits(k.alg, pub) {
		return nil, fmt.Errorf("cnf: COSE_Key alg %d does not fit the key", k.alg)
	}
	return pub, nil
}

func (k *coseKey) public() (crypto.PublicKey, error) {
	switch k.kty {
	case coseKtyEC2:
		if k.x == nil || k.y == nil || k.n != nil || !k.seen[coseKeyCrv] {
			return nil, errors.New("cnf: EC2 COSE_Key wants crv, x and y")
		}
		return ec2Key(k.crv, k.x, k.y)
	case coseKtyOKP:
		if k.x == nil || k.seen[coseKeyY] || k.n != nil || !k.seen[coseKeyCrv] {
			return nil, errors.New("cnf: OKP COSE_Key wants crv and x")
		}
		return okpKey(k.crv, k.x)
	case coseKtyRSA:
		// RFC 8230 §4: n is -1, e is -2.
		if k.n == nil || k.x == nil || k.seen[coseKeyY] {
			return nil, errors.New("cnf: RSA COSE_Key wants n (-1) and e (-2) only")
		}
		return rsaKey(k.n, k.x)
	}
	return nil, fmt.Errorf("cnf: COSE_Key kty %d not supported", k.kty)
}

// algorithmFits reports whether the COSE signature algorithm alg is one a
// key like pub signs with.
func algorithmFits(alg int64, pub crypto.PublicKey) bool {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		crv, _, _ := coseCurve(k.Curve)
		return (alg == -7 && crv == coseCrvP256) || (alg == -35 && crv == coseCrvP384) || (alg == -36 && crv == coseCrvP521)
	case ed25519.PublicKey:
		return alg == -8
	case *rsa.PublicKey:
		return alg == -37 || alg == -38 || alg == -39 || alg == -257 || alg == -258 || alg == -259
	}
	return false
}

func ec2Key(crv int64, x, y []byte) (*ecdsa.PublicKey, error) {
	var c elliptic.Curve
	switch crv {
	case coseCrvP256:
		c = elliptic.P256()
	case coseCrvP384:
		c = elliptic.P384()
	case coseCrvP521:
		c = elliptic.P521()
	default:
		return nil, fmt.Errorf("cnf: EC2 curve %d not supported", crv)
	}
	return ecPoint(c, x, y)
}

// ecPoint builds a public key from coordinates of exactly the field size
// (RFC 9053 §7.1.1, RFC 7518 §6.2.1.2: leading zeros are kept), refusing
// a point not on the curve or the point at infinity.
func ecPoint(c elliptic.Curve, x, y []byte) (*ecdsa.PublicKey, error) {
	size := (c.Params().BitSize + 7) / 8
	if len(x) != size || len(y) != size {
		return nil, fmt.Errorf("cnf: EC coordinates of %d and %d bytes (want %d)", len(x), len(y), size)
	}
	pt := make([]byte, 0, 1+2*size)
	pt = append(append(append(pt, 4), x...), y...)
	pub, err := ecdsa.ParseUncompressedPublicKey(c, pt)
	if err != nil {
		return nil, fmt.Errorf("cnf: EC point: %w", err)
	}
	return pub, nil
}

func okpKey(crv int64, x []byte) (ed25519.PublicKey, error) {
	if crv != coseCrvEd255 {
		return nil, fmt.Errorf("cnf: OKP curve %d not supported", crv)
	}
	if len(x) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("cnf: Ed25519 key of %d bytes", len(x))
	}
	return ed25519.PublicKey(bytes.Clone(x)), nil
}

// rsaKey builds an RSA key from big-endian n and e without leading zero
// bytes (RFC 8230 §4, RFC 7518 §6.3.1), of at least 2048 bits.
func rsaKey(n, e []byte) (*rsa.PublicKey, error) {
	if len(n) == 0 || n[0] == 0 || len(e) == 0 || e[0] == 0 || len(e) > 4 {
		return nil, errors.New("cnf: RSA n or e empty, with a leading zero, or e over 32 bits")
	}
	k := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
	if k.N.BitLen() < 2048 || k.E < 3 || k.E%2 == 0 {
		return nil, errors.New("cnf: RSA key under 2048 bits or bad exponent")
	}
	return k, nil
}

func (c *Confirmation) jsonValue() (map[string]any, error) {
	if c.Key == nil {
		return map[string]any{"jkt": b64.EncodeToString(c.JWKThumbprint)}, nil
	}
	jwk, err := jwkMembers(c.Key)
	if err != nil {
		return nil, err
	}
	return map[string]any{"jwk": jwk}, nil
}

func jwkMembers(pub crypto.PublicKey) (map[string]string, error) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		crv, size, ok := jwkCurve(k.Curve)
		if !ok {
			return nil, errors.New("attest: cnf: unsupported curve")
		}
		b, err := k.Bytes()
		if err != nil {
			return nil, fmt.Errorf("attest: cnf: %w", err)
		}
		return map[string]string{"kty": "EC", "crv": crv, "x": b64.EncodeToString(b[1 : 1+size]), "y": b64.EncodeToString(b[1+size:])}, nil
	case ed25519.PublicKey:
		return map[string]string{"kty": "OKP", "crv": "Ed25519", "x": b64.EncodeToString(k)}, nil
	case *rsa.PublicKey:
		return map[string]string{"kty": "RSA", "n": b64.EncodeToString(k.N.Bytes()), "e": b64.EncodeToString(big.NewInt(int64(k.E)).Bytes())}, nil
	}
	return nil, fmt.Errorf("attest: cnf: unsupported key type %T", pub)
}

// decodeConfirmationJSON reads a JWT cnf: an object with exactly one
// member, "jwk" or "jkt".
func decodeConfirmationJSON(v []byte) (*Confirmation, error) {
	members, err := scanObject(v)
	if err != nil {
		return nil, fmt.Errorf("cnf: %w", err)
	}
	if len(members) != 1 {
		return nil, errors.New(`cnf: want exactly one of "jwk" and "jkt"`)
	}
	switch m := members[0]; string(m.name) {
	case "jkt":
		var t []byte
		if err := unmarshalB64(m.value, &t); err != nil {
			return nil, fmt.Errorf("cnf: jkt: %w", err)
		}
		if len(t) != sha256.Size {
			return nil, fmt.Errorf("cnf: jkt of %d bytes (want %d)", len(t), sha256.Size)
		}
		return &Confirmation{JWKThumbprint: t}, nil
	case "jwk":
		pub, err := decodeJWK(m.value)
		if err != nil {
			return nil, err
		}
		return &Confirmation{Key: pub}, nil
	default:
		return nil, fmt.Errorf("cnf: confirmation method %.20q not supported", m.name)
	}
}

// decodeJWK reads a public JWK strictly (RFC 7517, RFC 7518 §6): kty and
// the members its type requires, optional "kid", "alg" and "use" strings;
// any other member, a private one above all, is refused.
func decodeJWK(v []byte) (crypto.PublicKey, error) {
	members, err := scanObject(v)
	if err != nil {
		return nil, fmt.Errorf("cnf: jwk: %w", err)
	}
	s := make(map[string]string, len(members))
	for _, m := range members {
		switch name := string(m.name); name {
		case "kty", "crv", "x", "y", "n", "e", "kid", "alg", "use":
			if s[name], err = jsonString(m.value); err != nil {
				return nil, fmt.Errorf("cnf: jwk %q: %w", name, err)
			}
		default:
			return nil, fmt.Errorf("cnf: jwk member %.20q not allowed (a public key has only kty, crv, x, y or n, e, kid, alg, use)", name)
		}
	}
	if u, ok := s["use"]; ok && u != "sig" {
		return nil, fmt.Errorf("cnf: jwk use %.20q", u)
	}
	field := func(name string) ([]byte, error) {
		val, ok := s[name]
		if !ok {
			return nil, fmt.Errorf("cnf: jwk without %q", name)
		}
		b, err := decodeB64(val)
		if err != nil {
			return nil, fmt.Errorf("cnf: jwk %q: %w", name, err)
		}
		return b, nil
	}
	var pub crypto.PublicKey
	switch s["kty"] {
	case "EC":
		if _, ok := s["n"]; ok {
			return nil, errors.New("cnf: EC jwk with n")
		}
		var c elliptic.Curve
		switch s["crv"] {
		case "P-256":
			c = elliptic.P256()
		case "P-384":
			c = elliptic.P384()
		case "P-521":
			c = elliptic.P521()
		default:
			return nil, fmt.Errorf("cnf: jwk curve %.20q not supported", s["crv"])
		}
		x, err := field("x")
		if err != nil {
			return nil, err
		}
		y, err := field("y")
		if err != nil {
			return nil, err
		}
		if pub, err = ecPoint(c, x, y); err != nil {
			return nil, err
		}
	case "OKP":
		if s["crv"] != "Ed25519" {
			return nil, fmt.Errorf("cnf: jwk OKP curve %.20q not supported", s["crv"])
		}
		if _, ok := s["y"]; ok {
			return nil, errors.New("cnf: OKP jwk with y")
		}
		x, err := field("x")
		if err != nil {
			return nil, err
		}
		if pub, err = okpKey(coseCrvEd255, x); err != nil {
			return nil, err
		}
	case "RSA":
		if _, ok := s["crv"]; ok {
			return nil, errors.New("cnf: RSA jwk with crv")
		}
		n, err := field("n")
		if err != nil {
			return nil, err
		}
		e, err := field("e")
		if err != nil {
			return nil, err
		}
		if pub, err = rsaKey(n, e); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("cnf: jwk kty %.20q not supported", s["kty"])
	}
	if a, ok := s["alg"]; ok && !jwsAlgFits(a, pub) {
		return nil, fmt.Errorf("cnf: jwk alg %.20q does not fit the key", a)
	}
	return pub, nil
}

func jwsAlgFits(alg string, pub crypto.PublicKey) bool {
	cose := map[string]int64{"ES256": -7, "ES384": -35, "ES512": -36, "EdDSA": -8, "PS256": -37, "PS384": -38, "PS512": -39, "RS256": -257, "RS384": -258, "RS512": -259}
	a, ok := cose[alg]
	return ok && algorithmFits(a, pub)
}
