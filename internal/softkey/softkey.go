// Package softkey holds what the software key stores (mem and file) share:
// generating a private key for a [keystore.Algorithm] and a [keystore.Key]
// over an in-process crypto.Signer whose use the owning store can revoke.
package softkey

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"io"

	"github.com/ztmkit/ztm/identity/keystore"
)

// Generate makes a new private key for alg. If random is nil, crypto/rand is
// used.
func Generate(random io.Reader, alg keystore.Algorithm) (crypto.Signer, error) {
	if random == nil {
		random = rand.Reader
	}
	switch alg {
	case keystore.ES256:
		return ecdsa.GenerateKey(elliptic.P256(), random)
	case keystore.ES384:
		return ecdsa.GenerateKey(elliptic.P384(), random)
	case keystore.EdDSA:
		_, priv, err := ed25519.GenerateKey(random)
		return priv, err
	case keystore.PS256:
		return rsa.GenerateKey(random, keystore.RSABits)
	}
	return nil, fmt.Errorf("%w: %v", keystore.ErrUnsupportedAlgorithm, alg)
}

// Key is a [keystore.Key] over an in-process signer. Before each signature
// it asks its store, through Live, whether it may still sign.
type Key struct {
	label  string
	alg    keystore.Algorithm
	signer crypto.Signer
	live   func() error
}

var _ keystore.Key = (*Key)(nil)

// New returns a key. live is called before every signature and must return
// nil while the key may sign: an error wrapping keystore.ErrNotFound after
// deletion, keystore.ErrClosed after the store is closed.
func New(label string, alg keystore.Algorithm, signer crypto.Signer, live func() error) *Key {
	return &Key{label: label, alg: alg, signer: signer, live: live}
}

// Label returns the key's label.
func (k *Key) Label() string { return k.label }

// Algorithm returns the key's algorithm.
func (k *Key) Algorithm() keystore.Algorithm { return k.alg }

// Public returns the key's public key.
func (k *Key) Public() crypto.PublicKey { return k.signer.Public() }

// Sign signs digest after checking that the key is still live and that opts
// fit its algorithm. PS256 always signs with a salt as long as the hash.
func (k *Key) Sign(random io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	if err := k.live(); err != nil {
		return nil, err
	}
	if err := k.alg.CheckSign(digest, opts); err != nil {
		return nil, err
	}
	if random == nil {
		random = rand.Reader
	}
	if k.alg == keystore.PS256 {
		opts = &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA256}
	}
	return k.signer.Sign(random, digest, opts)
}

// Signer returns the underlying signer, for the store that owns the key.
func (k *Key) Signer() crypto.Signer { return k.signer }
