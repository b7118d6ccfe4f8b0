package attest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math/big"

	"github.com/go-jose/go-jose/v4"
	"github.com/veraison/go-cose"

	"github.com/ztmkit/ztm/identity/keystore"
	"github.com/ztmkit/ztm/internal/detcbor"
	"github.com/ztmkit/ztm/internal/sign1"
)

// SignOptions says how a token is signed and how its signer is named. The
// zero value signs with the algorithm of the key and names no signer, which
// a [Verifier] refuses: set KeyID or Chain.
type SignOptions struct {
	// Algorithm is the signature algorithm. If nil, it is derived from
	// the signer's public key with [keystore.AlgorithmOf].
	Algorithm *keystore.Algorithm
	// KeyID names a key registered with the verifier (the COSE kid or
	// JOSE kid header, in the protected header).
	KeyID []byte
	// Chain is the signer's certificate chain, leaf first, sent as the
	// COSE x5chain (label 33, protected) or JOSE x5c header. The leaf's
	// key must be the signer's.
	Chain []*x509.Certificate
}

func (o *SignOptions) algorithm(signer crypto.Signer) (keystore.Algorithm, error) {
	if signer == nil {
		return 0, errors.New("attest: nil signer")
	}
	alg, err := keystore.AlgorithmOf(signer.Public())
	if err != nil {
		return 0, fmt.Errorf("attest: %w", err)
	}
	if o != nil && o.Algorithm != nil && *o.Algorithm != alg {
		return 0, fmt.Errorf("%w: signer key is %v, asked for %v", ErrAlgorithmMismatch, alg, *o.Algorithm)
	}
	if o != nil && len(o.Chain) > 0 {
		if !keystore.PublicKeysEqual(o.Chain[0].PublicKey, signer.Public()) {
			return 0, errors.New("attest: the chain's leaf certificate is not the signer's key")
		}
	}
	return alg, nil
}

func coseAlg(a keystore.Algorithm) cose.Algorithm { return cose.Algorithm(a.COSE()) }

// signCOSE produces a tagged COSE_Sign1 over payload, with alg and the
// signer's name (kid or x5chain) in the protected header.
func signCOSE(rnd io.Reader, signer crypto.Signer, payload []byte, opts *SignOptions) ([]byte, error) {
	alg, err := opts.algorithm(signer)
	if err != nil {
		return nil, err
	}
	prot := map[int64]any{sign1.HeaderAlg: alg.COSE()}
	if opts != nil && len(opts.KeyID) > 0 {
		prot[sign1.HeaderKid] = opts.KeyID
	}
	if opts != nil && len(opts.Chain) > 0 {
		prot[sign1.HeaderX5Chain] = sign1.X5Chain(opts.Chain)
	}
	protBytes, err := detcbor.Marshal(prot)
	if err != nil {
		return nil, err
	}
	cs, err := sign1.NewSigner(signer, alg)
	if err != nil {
		return nil, fmt.Errorf("attest: %w", err)
	}
	raw, _, err := sign1.Sign(rnd, cs, protBytes, payload)
	if err != nil {
		return nil, fmt.Errorf("attest: signing: %w", err)
	}
	return raw, nil
}

// SignCWT signs claims as a CWT: a tagged COSE_Sign1 (RFC 9052 §4.2, tag
// 18) whose payload is the deterministic CBOR claims map, with alg and the
// signer's kid or x5chain in the protected header. rand may be nil
// (crypto/rand). signer may be any [crypto.Signer], a [keystore.Key] among
// them. It is meant for device firmware simulators and test jigs.
func SignCWT(rand io.Reader, signer crypto.Signer, c *Claims, opts *SignOptions) ([]byte, error) {
	payload, err := c.MarshalCBOR()
	if err != nil {
		return nil, err
	}
	return signCOSE(rand, signer, payload, opts)
}

// joseAlg maps a ztm algorithm to its JOSE name.
func joseAlg(a keystore.Algorithm) jose.SignatureAlgorithm {
	switch a {
	case keystore.ES256:
		return jose.ES256
	case keystore.ES384:
		return jose.ES384
	case keystore.EdDSA:
		return jose.EdDSA
	case keystore.PS256:
		return jose.PS256
	}
	return ""
}

// opaque adapts a crypto.Signer (which may live in an HSM or TPM) to
// go-jose's OpaqueSigner.
type opaque struct {
	signer crypto.Signer
	alg    keystore.Algorithm
	rand   io.Reader
}

var _ jose.OpaqueSigner = (*opaque)(nil)

// Public returns the signer's public key as a JWK.
func (o *opaque) Public() *jose.JSONWebKey {
	return &jose.JSONWebKey{Key: o.signer.Public()}
}

// Algs returns the one algorithm the key signs with.
func (o *opaque) Algs() []jose.SignatureAlgorithm { return []jose.SignatureAlgorithm{joseAlg(o.alg)} }

// SignPayload signs payload (the JWS signing input) as alg.
func (o *opaque) SignPayload(payload []byte, alg jose.SignatureAlgorithm) ([]byte, error) {
	if alg != joseAlg(o.alg) {
		return nil, fmt.Errorf("%w: %s", ErrAlgorithmMismatch, alg)
	}
	return signRaw(o.rand, o.signer, o.alg, payload)
}

// signRaw signs msg with signer as alg and returns the signature in the form
// COSE and JOSE share: r||s for ECDSA (RFC 9053 §2.1, RFC 7518 §3.4), the
// PSS or Ed25519 signature otherwise. The signer gets alg's SignerOpts, as
// keystore keys require.
func signRaw(rnd io.Reader, signer crypto.Signer, alg keystore.Algorithm, msg []byte) ([]byte, error) {
	var digest []byte
	switch alg.Hash() {
	case crypto.SHA256:
		d := sha256.Sum256(msg)
		digest = d[:]
	case crypto.SHA384:
		d := sha512.Sum384(msg)
		digest = d[:]
	default:
		digest = msg
	}
	sig, err := signer.Sign(rnd, digest, alg.SignerOpts())
	if err != nil {
		return nil, err
	}
	if pub, ok := signer.Public().(*ecdsa.PublicKey); ok {
		return ecdsaASN1ToRaw(sig, (pub.Curve.Params().BitSize+7)/8)
	}
	return sig, nil
}

func ecdsaASN1ToRaw(sig []byte, size int) ([]byte, error) {
	var rs struct{ R, S *big.Int }
	rest, err := asn1.Unmarshal(sig, &rs)
	if err != nil || len(rest) != 0 || rs.R == nil || rs.S == nil {
		return nil, errors.New("attest: signer returned a malformed ECDSA signature")
	}
	out := make([]byte, 2*size)
	if rs.R.BitLen() > 8*size || rs.S.BitLen() > 8*size {
		return nil, errors.New("attest: signer returned an oversize ECDSA signature")
	}
	rs.R.FillBytes(out[:size])
	rs.S.FillBytes(out[size:])
	return out, nil
}

func signJOSE(rnd io.Reader, signer crypto.Signer, payload []byte, typ string, opts *SignOptions) ([]byte, error) {
	alg, err := opts.algorithm(signer)
	if err != nil {
		return nil, err
	}
	if rnd == nil {
		rnd = rand.Reader
	}
	so := (&jose.SignerOptions{}).WithType(jose.ContentType(typ))
	if opts != nil && len(opts.KeyID) > 0 {
		so = so.WithHeader(jose.HeaderKey("kid"), string(opts.KeyID))
	}
	if opts != nil && len(opts.Chain) > 0 {
		x5c := make([]string, len(opts.Chain))
		for i, c := range opts.Chain {
			x5c[i] = base64.StdEncoding.EncodeToString(c.Raw)
		}
		so = so.WithHeader(jose.HeaderKey("x5c"), x5c)
	}
	js, err := jose.NewSigner(jose.SigningKey{Algorithm: joseAlg(alg), Key: &opaque{signer: signer, alg: alg, rand: rnd}}, so)
	if err != nil {
		return nil, fmt.Errorf("attest: %w", err)
	}
	obj, err := js.Sign(payload)
	if err != nil {
		return nil, fmt.Errorf("attest: signing: %w", err)
	}
	s, err := obj.CompactSerialize()
	if err != nil {
		return nil, fmt.Errorf("attest: %w", err)
	}
	return []byte(s), nil
}

// SignJWT signs claims as a JWT in JWS compact serialization (RFC 7515),
// with the registered JWT claim names, alg from the key, and the signer's
// kid or x5c in the (protected) JOSE header. rand may be nil (crypto/rand).
func SignJWT(rand io.Reader, signer crypto.Signer, c *Claims, opts *SignOptions) ([]byte, error) {
	payload, err := c.MarshalJSON()
	if err != nil {
		return nil, err
	}
	return signJOSE(rand, signer, payload, "JWT", opts)
}
