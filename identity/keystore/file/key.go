package file

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"io"

	"github.com/ztmkit/ztm/identity/keystore"
)

// Key is a key of a file [Store]. Its private part is decrypted in process
// memory only. It is safe for concurrent use.
type Key struct {
	s *Store
	e *entry
}

var _ keystore.Key = (*Key)(nil)

// Label returns the key's label: its file name without ".pem".
func (k *Key) Label() string { return k.e.label }

// Algorithm returns the algorithm the key signs with, derived from the key
// itself.
func (k *Key) Algorithm() keystore.Algorithm { return k.e.alg }

// Public returns the key's public key. It keeps working after the key is
// deleted.
func (k *Key) Public() crypto.PublicKey { return k.e.pub }

// Sign signs digest as [keystore.Key] describes. Before signing it checks,
// with one lstat of the key file, that the key has not been deleted (by any
// process) since it was fetched: it returns an error wrapping
// keystore.ErrNotFound if it was, and keystore.ErrClosed once the store is
// closed. PS256 always signs with a salt as long as the hash. If random is
// nil, crypto/rand is used.
func (k *Key) Sign(random io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	e := k.e
	e.mu.RLock()
	defer e.mu.RUnlock()
	if k.s.closed.Load() {
		return nil, fmt.Errorf("file: %w", keystore.ErrClosed)
	}
	if e.gone {
		return nil, fmt.Errorf("file: %w: %q was deleted", keystore.ErrNotFound, e.label)
	}
	if err := e.alg.CheckSign(digest, opts); err != nil {
		return nil, err
	}
	if err := e.current(); err != nil {
		return nil, err
	}
	if random == nil {
		random = rand.Reader
	}
	if e.alg == keystore.PS256 {
		opts = &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA256}
	}
	return e.signer.Sign(random, digest, opts)
}
