package pkcs11

import (
	"context"
	"crypto"
	"fmt"
	"io"
	"slices"

	p11 "github.com/miekg/pkcs11"

	"github.com/ztmkit/ztm/identity/keystore"
)

// Key is a private key on a token, fetched through a [Store]. It is a
// [keystore.Key]: a [crypto.Signer] whose private part never leaves the
// token. It is safe for concurrent use; signatures run on the store's
// session pool.
type Key struct {
	store *Store
	label string
	alg   keystore.Algorithm
	pub   crypto.PublicKey
	obj   *object
}

var _ keystore.Key = (*Key)(nil)

// Label returns the key's CKA_LABEL.
func (k *Key) Label() string { return k.label }

// Algorithm returns the algorithm the key signs with.
func (k *Key) Algorithm() keystore.Algorithm { return k.alg }

// Public returns the public key: an *ecdsa.PublicKey, ed25519.PublicKey or
// *rsa.PublicKey.
func (k *Key) Public() crypto.PublicKey { return k.pub }

// ID returns a copy of the key's CKA_ID, which tools such as pkcs11-tool
// use to name it (--id, in hex).
func (k *Key) ID() []byte { return slices.Clone(k.obj.id) }

// Sign signs digest inside the token. opts must be the key algorithm's
// [keystore.Algorithm.SignerOpts] (any PSS salt length equal to the hash
// size is accepted for PS256; the token always uses 32 bytes). rand is
// not used: the token makes its own randomness. ECDSA signatures are
// returned ASN.1 DER encoded, as crypto.Signer requires.
//
// Sign returns an error wrapping [keystore.ErrUnsupportedAlgorithm] for
// other options or a digest of the wrong size, [keystore.ErrNotFound]
// once the key has been deleted (through any store of the process, or by
// another process when the module reports the handle invalid), and
// [keystore.ErrClosed] once its store is closed.
func (k *Key) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	if err := k.alg.CheckSign(digest, opts); err != nil {
		return nil, err
	}
	s := k.store
	if err := s.begin(); err != nil {
		return nil, err
	}
	defer s.end()
	if k.obj.gone.Load() {
		return nil, fmt.Errorf("pkcs11: %w: key %q was deleted", keystore.ErrNotFound, k.label)
	}
	mech := signMechanism(k.alg)
	var raw []byte
	err := s.do(context.Background(), func(sh p11.SessionHandle) error {
		if err := s.mod.ctx.SignInit(sh, mech, k.obj.handle); err != nil {
			return wrap("C_SignInit", err)
		}
		var err error
		raw, err = s.mod.ctx.Sign(sh, digest)
		return wrap("C_Sign", err)
	})
	if err != nil {
		switch rv(err) {
		case p11.CKR_KEY_HANDLE_INVALID, p11.CKR_OBJECT_HANDLE_INVALID:
			s.tok.forget(k.obj.handle)
			return nil, fmt.Errorf("pkcs11: key %q was deleted: %w", k.label, err)
		}
		return nil, fmt.Errorf("pkcs11: key %q: %w", k.label, err)
	}
	if k.alg == keystore.ES256 || k.alg == keystore.ES384 {
		return ecdsaDER(raw)
	}
	return raw, nil
}
