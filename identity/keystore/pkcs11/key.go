//go:build cgo

package pkcs11

import (
	"context"
	"crypto"
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
	raw, err := k.sign(digest)
	if err != nil {
		return nil, err
	}
	if k.alg == keystore.ES256 || k.alg == keystore.ES384 {
		return ecdsaDER(raw)
	}
	return raw, nil
}

// sign signs digest with the token. A handle that no longer names an
// object is looked up again (after logging in again, if the module dropped
// the login), and the key counts as deleted only when its label and
// CKA_ID are gone from the token.
func (k *Key) sign(digest []byte) ([]byte, error) {
	s, o := k.store, k.obj
	if o.gone.Load() {
		return nil, errorf("pkcs11: %w: key %q was deleted", keystore.ErrNotFound, k.label)
	}
	at := o.at.Load()
	if at.epoch != s.tok.epoch.Load() {
		var err error
		if at, err = s.locate(o); err != nil {
			return nil, err
		}
	}
	mech := signMechanism(k.alg)
	for attempt := 0; ; attempt++ {
		var raw []byte
		err := s.do(context.Background(), func(sh p11.SessionHandle) error {
			if err := s.mod.ctx.SignInit(sh, mech, at.handle); err != nil {
				return wrap("C_SignInit", err)
			}
			var err error
			raw, err = s.mod.ctx.Sign(sh, digest)
			return wrap("C_Sign", err)
		})
		if err == nil {
			return raw, nil
		}
		if !handleInvalid(err) || attempt > 0 {
			return nil, errorf("pkcs11: key %q: %w", k.label, err)
		}
		if _, lerr := s.tok.ensureLogin(); lerr != nil {
			// The login failed: its error alone, so that a refused PIN
			// (ErrAuth) does not also look like a deleted key.
			return nil, errorf("pkcs11: key %q: %w (after %v)", k.label, lerr, err)
		}
		if at, err = s.locate(o); err != nil {
			return nil, err
		}
	}
}
