package tpm

import (
	"bytes"
	"context"
	"crypto"
	"errors"
	"io"
	"net"
	"os"
	"slices"
	"sync"
	"syscall"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"

	"github.com/ztmkit/ztm/identity/keystore"
)

// DefaultMaxLoaded is the number of objects (the storage root key
// included) a store keeps loaded in the TPM when [Config.MaxLoaded] is 0.
// It matches the three transient objects the Linux kernel's resource
// manager (/dev/tpmrm0) allows each connection, and the three object slots
// of the reference TPM simulator.
const DefaultMaxLoaded = 3

// Config configures a [Store]. Only Dir is required.
type Config struct {
	// Dir is the key index: the directory holding one file per key (see
	// the package documentation). It is created, mode 0700, if missing,
	// and an existing directory is given mode 0700. Required.
	Dir string
	// MaxLoaded bounds the objects the store keeps loaded in the TPM
	// between calls, the storage root key included; the least recently
	// used is flushed first, before a command that loads another, so the
	// store never holds more. Keeping a key loaded makes signing one TPM
	// command. If 0, DefaultMaxLoaded is used. Through /dev/tpmrm0 it
	// must not exceed 3, the kernel's limit per connection. Lower it when
	// several stores share one TPM connection without a resource manager
	// (the simulator, a TCP TPM): the TPM's object slots are shared.
	MaxLoaded int
	// OwnerAuth is the owner hierarchy's authorization value, under
	// which the storage root key is created. If nil, the empty value is
	// used, which is how operating systems leave the owner hierarchy.
	OwnerAuth []byte
	// EndorsementAuth is the endorsement hierarchy's authorization value,
	// used to create the endorsement key. If nil, the empty value is used.
	EndorsementAuth []byte
}

// Store is a [keystore.Store] over a TPM 2.0. It is safe for concurrent
// use; calls are serialized, since a TPM runs one command at a time.
// It also implements [Attester].
type Store struct {
	mu     sync.Mutex
	tpm    transport.TPM
	closer io.Closer // non-nil when the store owns the connection
	// reopen, set when the store owns the connection, opens a new one
	// after the old one broke (a TPM simulator restarted: EOF, broken
	// pipe); nil when the caller owns the transport.
	reopen    func() (transport.TPMCloser, error)
	retries   int // resends on a transient TPM warning
	dir       string
	maxLoaded int
	ownerAuth []byte
	endorseAu []byte
	srkName   []byte
	supported map[keystore.Algorithm]bool // immutable after New
	loaded    []*loadedObject             // least recently used first
	deleted   map[string]uint64           // per-label Delete count, for fetched keys
	closed    bool
}

// loadedObject is an object the store holds loaded in the TPM.
type loadedObject struct {
	label  string // "" for the storage root key
	file   []byte // the key file it was loaded from
	handle tpm2.TPMHandle
	name   tpm2.TPM2BName
}

var (
	_ keystore.Store = (*Store)(nil)
	_ Attester       = (*Store)(nil)
	_ keystore.Key   = (*key)(nil)
)

// New returns a store over the TPM reached through t, with its key index in
// cfg.Dir. It creates the storage root key (ECC P-256, the TCG reference
// template, in the owner hierarchy) and asks the TPM which of ztm's
// algorithms it supports.
//
// The store does not own t: Close flushes what the store loaded but leaves
// t open. t may be shared with other users if its Send is safe for
// concurrent use.
func New(ctx context.Context, t transport.TPM, cfg Config) (*Store, error) {
	if t == nil {
		return nil, errors.New("tpm: nil TPM transport")
	}
	if cfg.Dir == "" {
		return nil, errors.New("tpm: Config.Dir (the key index directory) is required")
	}
	if cfg.MaxLoaded < 0 {
		return nil, errorf("tpm: Config.MaxLoaded %d is negative", cfg.MaxLoaded)
	}
	if err := privateDir(cfg.Dir); err != nil {
		return nil, err
	}
	s := &Store{
		tpm:       t,
		dir:       cfg.Dir,
		maxLoaded: cfg.MaxLoaded,
		ownerAuth: bytes.Clone(cfg.OwnerAuth),
		endorseAu: bytes.Clone(cfg.EndorsementAuth),
		supported: make(map[keystore.Algorithm]bool),
		deleted:   make(map[string]uint64),
		retries:   defaultRetries,
	}
	if s.maxLoaded == 0 {
		s.maxLoaded = DefaultMaxLoaded
	}
	for _, alg := range []keystore.Algorithm{keystore.ES256, keystore.ES384, keystore.PS256} {
		_, err := execute(ctx, s, tpm2.TestParms{Parameters: supportParms(alg)})
		var rc tpm2.TPMRC
		switch {
		case err == nil:
			s.supported[alg] = true
		case errors.As(err, &rc) && !rc.IsWarning():
			// The TPM refuses the parameters (TPM_RC_CURVE,
			// TPM_RC_KEY_SIZE, TPM_RC_SCHEME…): not supported.
		default:
			return nil, errorf("tpm: failed to query TPM capabilities: %w", err)
		}
	}
	if !s.supported[keystore.ES256] {
		return nil, errorf("tpm: %w: the TPM does not support ECC P-256, needed for the storage root key", keystore.ErrUnsupportedAlgorithm)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.srkLocked(ctx); err != nil {
		s.flushAllLocked()
		return nil, err
	}
	return s, nil
}

// Dir returns the key index directory.
func (s *Store) Dir() string { return s.dir }

// Supports reports whether the TPM can make keys of alg. EdDSA is never
// supported: TPM 2.0 profiles in use have no Ed25519.
func (s *Store) Supports(alg keystore.Algorithm) bool { return s.supported[alg] }

// Create makes a key of req.Algorithm inside the TPM (TPM2_Create under the
// storage root key) and records it in the key index under req.Label.
// It returns an error wrapping [keystore.ErrUnsupportedAlgorithm] for EdDSA
// and for algorithms the TPM lacks (PS256 needs RSA-3072, which many TPMs do
// not have), and [ErrNotExportable] if req.Exportable is set. If Create
// fails, no key file is left in the index.
func (s *Store) Create(ctx context.Context, req keystore.CreateRequest) (keystore.Key, error) {
	return s.create(ctx, req.Label, req.Algorithm, req.Exportable, false)
}

func (s *Store) create(ctx context.Context, label string, alg keystore.Algorithm, exportable, restricted bool) (keystore.Key, error) {
	if err := keystore.ValidateLabel(label); err != nil {
		return nil, err
	}
	if !alg.Valid() || !s.supported[alg] {
		return nil, errorf("tpm: %w: %v is not supported by this TPM", keystore.ErrUnsupportedAlgorithm, alg)
	}
	if exportable {
		return nil, ErrNotExportable
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, keystore.ErrClosed
	}
	if _, err := os.Lstat(keyPath(s.dir, label)); err == nil {
		return nil, errorf("tpm: %w: %q", keystore.ErrExists, label)
	}
	var rsp *tpm2.CreateResponse
	err := s.staleRetryLocked(func() error {
		srk, err := s.srkLocked(ctx)
		if err != nil {
			return err
		}
		return s.withRoomLocked(srk, func() (err error) {
			rsp, err = execute(ctx, s, tpm2.Create{
				ParentHandle: s.authHandle(srk),
				InPublic:     tpm2.New2B(keyTemplate(alg, restricted)),
			})
			return err
		})
	})
	if err != nil {
		return nil, errorf("tpm: failed to create %v key: %w", alg, err)
	}
	kf, err := parseKeyFile((&keyFile{parentName: s.srkName, public: rsp.OutPublic.Bytes(), private: rsp.OutPrivate.Buffer}).marshal())
	if err != nil {
		return nil, errorf("tpm: TPM returned an unusable key: %s", err)
	}
	if testOnlyBeforeInstall != nil {
		testOnlyBeforeInstall(s.dir, label)
	}
	if err := writeKeyFileExcl(s.dir, label, kf.raw); err != nil {
		return nil, err
	}
	return &key{s: s, label: label, kf: kf, gen: s.deleted[label]}, nil
}

// Get returns the key stored under label. It returns an error wrapping
// [keystore.ErrNotFound] if there is none, and a [*KeyFileError] if the key
// file is corrupt or belongs to another TPM ([ErrWrongTPM]).
func (s *Store) Get(ctx context.Context, label string) (keystore.Key, error) {
	if err := keystore.ValidateLabel(label); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, keystore.ErrClosed
	}
	return s.getLocked(label)
}

func (s *Store) getLocked(label string) (*key, error) {
	kf, err := readKeyFile(s.dir, label)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(kf.parentName, s.srkName) {
		return nil, &KeyFileError{Label: label, Reason: "made under another storage root key", Err: ErrWrongTPM}
	}
	return &key{s: s, label: label, kf: kf, gen: s.deleted[label]}, nil
}

// List returns the labels of all keys in the index, attestation keys
// included, sorted.
func (s *Store) List(ctx context.Context) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, keystore.ErrClosed
	}
	labels, err := listKeyFiles(s.dir)
	if err != nil {
		return nil, err
	}
	slices.Sort(labels)
	return labels, nil
}

// Delete removes label's key file and flushes the key from the TPM. Since
// the TPM keeps no copy of a key it is not holding loaded, the key is then
// destroyed (backups of the index aside). Keys fetched before stop signing.
func (s *Store) Delete(ctx context.Context, label string) error {
	if err := keystore.ValidateLabel(label); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return keystore.ErrClosed
	}
	if err := removeKeyFile(s.dir, label); err != nil {
		return err
	}
	s.deleted[label]++
	for _, o := range s.loaded {
		if o.label == label {
			s.flushLocked(o)
			break
		}
	}
	return nil
}

// Close flushes every object the store loaded, and closes the TPM
// connection if the store opened it (through [keystore.Open]). Keys fetched
// from the store stop signing. Close is idempotent.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	err := s.flushAllLocked()
	if s.closer != nil {
		err = errors.Join(err, s.closer.Close())
	}
	if err != nil {
		return errorf("tpm: close: %w", err)
	}
	return nil
}

// authHandle returns o as a handle authorized with its (empty) auth value.
func (s *Store) authHandle(o *loadedObject) tpm2.AuthHandle {
	return tpm2.AuthHandle{Handle: o.handle, Name: o.name, Auth: tpm2.PasswordAuth(nil)}
}

// srkLocked returns the loaded storage root key, creating it if needed.
func (s *Store) srkLocked(ctx context.Context) (*loadedObject, error) {
	for _, o := range s.loaded {
		if o.label == "" {
			s.touchLocked(o)
			return o, nil
		}
	}
	var rsp *tpm2.CreatePrimaryResponse
	s.makeRoomLocked(nil)
	err := s.withRoomLocked(nil, func() (err error) {
		rsp, err = execute(ctx, s, tpm2.CreatePrimary{
			PrimaryHandle: tpm2.AuthHandle{Handle: tpm2.TPMRHOwner, Auth: tpm2.PasswordAuth(s.ownerAuth)},
			InPublic:      tpm2.New2B(srkTemplate()),
		})
		return err
	})
	if err != nil {
		return nil, errorf("tpm: failed to create the storage root key: %w", err)
	}
	o := &loadedObject{handle: rsp.ObjectHandle, name: rsp.Name}
	if s.srkName == nil {
		s.srkName = bytes.Clone(rsp.Name.Buffer)
	} else if !bytes.Equal(s.srkName, rsp.Name.Buffer) {
		// The owner hierarchy's seed changed under us (TPM2_Clear):
		// the keys in the index are gone for good.
		s.flushLocked(o)
		return nil, errorf("tpm: %w: the storage root key changed (was the TPM cleared?)", ErrWrongTPM)
	}
	s.loaded = append(s.loaded, o)
	s.trimLocked(o)
	return o, nil
}

// loadLocked returns k loaded in the TPM, loading it under the storage
// root key if it is not.
func (s *Store) loadLocked(ctx context.Context, k *key) (*loadedObject, error) {
	for _, o := range s.loaded {
		if o.label != k.label {
			continue
		}
		if bytes.Equal(o.file, k.kf.raw) {
			s.touchLocked(o)
			return o, nil
		}
		s.flushLocked(o) // an older key under the same label
		break
	}
	srk, err := s.srkLocked(ctx)
	if err != nil {
		return nil, err
	}
	var rsp *tpm2.LoadResponse
	s.makeRoomLocked(srk)
	err = s.withRoomLocked(srk, func() (err error) {
		rsp, err = execute(ctx, s, tpm2.Load{
			ParentHandle: s.authHandle(srk),
			InPrivate:    tpm2.TPM2BPrivate{Buffer: k.kf.private},
			InPublic:     tpm2.BytesAs2B[tpm2.TPMTPublic](k.kf.public),
		})
		return err
	})
	if errors.Is(err, tpm2.TPMRCIntegrity) {
		return nil, &KeyFileError{Label: k.label, Reason: "the TPM refuses the private blob (integrity check failed: the file was altered)", Err: ErrCorruptKeyFile}
	}
	if err != nil {
		return nil, errorf("tpm: failed to load key %q: %w", k.label, err)
	}
	o := &loadedObject{label: k.label, file: k.kf.raw, handle: rsp.ObjectHandle, name: rsp.Name}
	s.loaded = append(s.loaded, o)
	s.trimLocked(o)
	return o, nil
}

// withRoomLocked runs f, and while the TPM answers TPM_RC_OBJECT_MEMORY
// flushes the store's least recently used object other than keep and runs
// f again.
func (s *Store) withRoomLocked(keep *loadedObject, f func() error) error {
	for {
		err := f()
		if !errors.Is(err, tpm2.TPMRCObjectMemory) || !s.evictLocked(keep) {
			return err
		}
	}
}

// evictLocked flushes the least recently used object other than keep and
// reports whether there was one.
func (s *Store) evictLocked(keep *loadedObject) bool {
	for _, o := range s.loaded {
		if o != keep {
			s.flushLocked(o)
			return true
		}
	}
	return false
}

// makeRoomLocked flushes least recently used objects, never keep, until
// one more object fits in maxLoaded, before a command that loads one. This
// matters beyond the TPM's own slots: the Linux resource manager refuses a
// connection's fourth transient object with ENOMEM, not with a TPM code the
// store could react to.
func (s *Store) makeRoomLocked(keep *loadedObject) {
	for len(s.loaded) >= s.maxLoaded && s.evictLocked(keep) {
	}
}

// trimLocked flushes least recently used objects, never keep, until at
// most maxLoaded remain.
func (s *Store) trimLocked(keep *loadedObject) {
	for len(s.loaded) > s.maxLoaded && s.evictLocked(keep) {
	}
}

func (s *Store) touchLocked(o *loadedObject) {
	if i := slices.Index(s.loaded, o); i >= 0 {
		s.loaded = append(append(s.loaded[:i:i], s.loaded[i+1:]...), o)
	}
}

// flushLocked flushes o from the TPM and forgets it. A failed flush is
// ignored: the handle is gone either way (a TPM reset flushes everything).
func (s *Store) flushLocked(o *loadedObject) error {
	s.loaded = slices.DeleteFunc(s.loaded, func(x *loadedObject) bool { return x == o })
	_, err := tpm2.FlushContext{FlushHandle: o.handle}.Execute(s.tpm)
	return err
}

func (s *Store) flushAllLocked() error {
	var errs []error
	for len(s.loaded) > 0 {
		if err := s.flushLocked(s.loaded[0]); err != nil && !staleHandle(err) && !connLost(err) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// staleRetryLocked runs f, and once more if it failed because a handle
// the store held is gone (the TPM was reset), or because the connection
// to the TPM broke and the store could open a new one (it owns the
// connection): the store then forgets all its handles, so that f loads
// afresh. Every f given here is safe to run again: signing, quoting,
// reading PCRs and NV, deriving the endorsement key (always the same),
// and TPM2_Create before its key file is written (a key created whose
// response was lost is never recorded, so it does not exist).
func (s *Store) staleRetryLocked(f func() error) error {
	err := f()
	switch {
	case err == nil:
	case staleHandle(err):
		s.forgetAllLocked()
		err = f()
	case connLost(err) && s.reopen != nil:
		if rerr := s.reconnectLocked(); rerr != nil {
			return errorf("tpm: the TPM connection broke and reopening it failed: %w (after %v)", rerr, err)
		}
		err = f()
	}
	return err
}

// reconnectLocked replaces a broken connection with a new one, once per
// call, and forgets the handles of the old one: transient objects do not
// outlive a resource manager connection, nor a simulator restart.
func (s *Store) reconnectLocked() error {
	if s.closer != nil {
		_ = s.closer.Close()
	}
	t, err := s.reopen()
	if err != nil {
		s.tpm, s.closer = brokenTPM{}, nil
		return err
	}
	s.tpm, s.closer = t, t
	s.forgetAllLocked()
	return nil
}

// brokenTPM stands for a connection that broke and could not be reopened:
// every command fails, with an error that makes the next operation try to
// reopen it.
type brokenTPM struct{}

func (brokenTPM) Send([]byte) ([]byte, error) { return nil, errConnClosed }

// errConnClosed is the error of a TPM connection that is closed.
var errConnClosed = errors.New("tpm: TPM connection closed")

// connLost reports whether err is a broken connection to the TPM, not an
// answer from it.
func connLost(err error) bool {
	var rc tpm2.TPMRC
	if errors.As(err, &rc) {
		return false
	}
	return errors.Is(err, errConnClosed) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNABORTED) || errors.Is(err, net.ErrClosed)
}

// privateDir makes dir, mode 0700, if it is missing, and gives an
// existing directory mode 0700 too: the key index names every key and
// holds their (TPM-wrapped) blobs.
func privateDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return errorf("tpm: failed to create key index: %w", err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return errorf("tpm: key index: %w", err)
	}
	if !fi.IsDir() {
		return errorf("tpm: key index %q is not a directory", dir)
	}
	if fi.Mode().Perm() != 0o700 {
		if err := os.Chmod(dir, 0o700); err != nil {
			return errorf("tpm: key index %q has mode %v and cannot be made 0700: %w", dir, fi.Mode().Perm(), err)
		}
	}
	return nil
}

// forgetAllLocked drops every cached handle without flushing, after the TPM
// reported that a handle no longer exists (a TPM reset).
func (s *Store) forgetAllLocked() { s.loaded = nil }

// staleHandle reports whether err says a handle the store held no longer
// refers to a loaded object.
func staleHandle(err error) bool {
	return errors.Is(err, tpm2.TPMRCReferenceH0) || errors.Is(err, tpm2.TPMRCHandle)
}

// testOnlyBeforeInstall, when set by a test, runs in Create between
// TPM2_Create and writing the key file.
var testOnlyBeforeInstall func(dir, label string)

// key is a key in a Store.
type key struct {
	s     *Store
	label string
	kf    *keyFile
	gen   uint64 // s.deleted[label] when fetched
}

func (k *key) Label() string                 { return k.label }
func (k *key) Algorithm() keystore.Algorithm { return k.kf.alg }
func (k *key) Public() crypto.PublicKey      { return k.kf.pub }

// Sign signs digest with TPM2_Sign. The result is an ASN.1 DER signature
// for ES256 and ES384 and a PSS signature (salt as long as the hash) for
// PS256. An attestation key refuses with [ErrRestricted].
func (k *key) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	if err := k.kf.alg.CheckSign(digest, opts); err != nil {
		return nil, err
	}
	if k.kf.restricted {
		return nil, ErrRestricted
	}
	s := k.s
	s.mu.Lock()
	defer s.mu.Unlock()
	ctx := context.Background()
	if err := s.liveLocked(k); err != nil {
		return nil, err
	}
	var rsp *tpm2.SignResponse
	err := s.staleRetryLocked(func() error {
		o, err := s.loadLocked(ctx, k)
		if err != nil {
			return err
		}
		rsp, err = execute(ctx, s, tpm2.Sign{
			KeyHandle:  tpm2.NamedHandle{Handle: o.handle, Name: o.name},
			Digest:     tpm2.TPM2BDigest{Buffer: digest},
			InScheme:   sigScheme(k.kf.alg),
			Validation: tpm2.TPMTTKHashCheck{Tag: tpm2.TPMSTHashCheck, Hierarchy: tpm2.TPMRHNull},
		})
		return err
	})
	if err != nil {
		return nil, errorf("tpm: failed to sign with %q: %w", k.label, err)
	}
	sig, err := signatureBytes(&rsp.Signature)
	if err != nil {
		return nil, errorf("tpm: failed to sign with %q: %w", k.label, err)
	}
	return sig, nil
}

// liveLocked checks that the store is open and k's key file is still the
// one k was read from. It compares the file's contents: a file deleted and
// re-created (by this store or another, in this process or not) is a
// different key, even if the new file reuses the old inode.
func (s *Store) liveLocked(k *key) error {
	if s.closed {
		return keystore.ErrClosed
	}
	if s.deleted[k.label] != k.gen {
		return errorf("tpm: %w: %q was deleted", keystore.ErrNotFound, k.label)
	}
	same, err := fileHas(keyPath(s.dir, k.label), k.kf.raw)
	if err != nil {
		return errorf("tpm: failed to check key file: %w", err)
	}
	if !same {
		return errorf("tpm: %w: %q was deleted", keystore.ErrNotFound, k.label)
	}
	return nil
}
