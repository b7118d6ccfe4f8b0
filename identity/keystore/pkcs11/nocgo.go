//go:build !cgo

package pkcs11

// This file is the package without cgo: it compiles everywhere, so that a
// program that imports the package (say, a jig cross-compiled with
// CGO_ENABLED=0) builds, and it says at run time what is missing. Store and
// Key have the methods of the cgo build; none can be reached, since Open
// always fails.

import (
	"context"
	"crypto"
	"io"

	"github.com/ztmkit/ztm/identity/keystore"
)

func init() {
	keystore.Register(Scheme, func(ctx context.Context, uri string) (keystore.Store, error) {
		if _, err := ParseURI(uri); err != nil {
			return nil, err
		}
		return nil, ErrCgoRequired
	})
}

// codeName returns the CK_RV in hex: without cgo no PKCS#11 call is made,
// so no [*Error] exists.
func codeName(code uint) string { return "CK_RV " + hexCode(code) }

func codeError(uint) error { return nil }

func hexCode(code uint) string {
	const digits = "0123456789abcdef"
	b := []byte("0x00000000")
	for i := len(b) - 1; i >= 2 && code > 0; i-- {
		b[i] = digits[code&15]
		code >>= 4
	}
	return string(b)
}

// Store is a [keystore.Store] over a token of a PKCS#11 module. In this
// build, without cgo, no Store can be opened: [Open] returns
// [ErrCgoRequired].
type Store struct{ cfg Config }

var _ keystore.Store = (*Store)(nil)

// Open returns [ErrCgoRequired] in a build without cgo, after checking cfg
// as the cgo build does.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := cfg.check(); err != nil {
		return nil, err
	}
	return nil, ErrCgoRequired
}

// Config returns the configuration the store was opened with.
func (s *Store) Config() Config { return s.cfg }

// Algorithms returns nil: without cgo there is no token.
func (s *Store) Algorithms() []keystore.Algorithm { return nil }

// Login returns [ErrCgoRequired].
func (s *Store) Login(context.Context, string) error { return ErrCgoRequired }

// Create returns [ErrCgoRequired].
func (s *Store) Create(context.Context, keystore.CreateRequest) (keystore.Key, error) {
	return nil, ErrCgoRequired
}

// Get returns [ErrCgoRequired].
func (s *Store) Get(context.Context, string) (keystore.Key, error) { return nil, ErrCgoRequired }

// List returns [ErrCgoRequired].
func (s *Store) List(context.Context) ([]string, error) { return nil, ErrCgoRequired }

// Delete returns [ErrCgoRequired].
func (s *Store) Delete(context.Context, string) error { return ErrCgoRequired }

// Close does nothing.
func (s *Store) Close() error { return nil }

// Key is a private key on a token. In this build, without cgo, no Key
// exists.
type Key struct {
	label string
	alg   keystore.Algorithm
	pub   crypto.PublicKey
	id    []byte
}

var _ keystore.Key = (*Key)(nil)

// Label returns the key's CKA_LABEL.
func (k *Key) Label() string { return k.label }

// Algorithm returns the algorithm the key signs with.
func (k *Key) Algorithm() keystore.Algorithm { return k.alg }

// Public returns the public key.
func (k *Key) Public() crypto.PublicKey { return k.pub }

// ID returns the key's CKA_ID.
func (k *Key) ID() []byte { return append([]byte(nil), k.id...) }

// Sign returns [ErrCgoRequired].
func (k *Key) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) {
	return nil, ErrCgoRequired
}

// Exporter hands out the private part of exportable keys of a [Store].
// In this build, without cgo, it exports nothing.
type Exporter struct {
	// Store is the store whose keys are exported.
	Store *Store
	// WrappingKey is the CKA_LABEL of the trusted wrapping key.
	WrappingKey string
	// KEK is the wrapping key's value.
	KEK []byte
}

// ExportKey returns [ErrCgoRequired].
func (e *Exporter) ExportKey(context.Context, keystore.Key) (crypto.PrivateKey, error) {
	return nil, ErrCgoRequired
}

// InstallWrappingKey returns [ErrCgoRequired].
func InstallWrappingKey(ctx context.Context, cfg Config, soPIN, label string, kek []byte) error {
	return ErrCgoRequired
}
