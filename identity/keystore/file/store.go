package file

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ztmkit/ztm/identity/keystore"
	"github.com/ztmkit/ztm/internal/softkey"
)

// KEKSize is the size in bytes of a key-encryption key.
const KEKSize = 32

const (
	keySuffix  = ".pem"
	lockName   = ".lock"
	tempPrefix = ".tmp-"
)

// Config says how a [Store] protects its keys. Exactly one of Passphrase and
// KEK must be set: the zero Config is refused with [ErrNoCredential], as
// there is no default passphrase. The other fields' zero values work.
type Config struct {
	// Passphrase encrypts every key file of the store. It must not be empty
	// and must not contain a line break or NUL byte, so that
	// `openssl pkey -passin file:<passphrase-file>` reads the same
	// passphrase from a one-line file. Open copies it.
	Passphrase []byte
	// KEK is a 32-byte key-encryption key, for stations that keep a
	// full-entropy key (in a TPM-sealed blob, a secrets manager) rather
	// than a passphrase. The PBKDF2 password is then the KEK's 64
	// lowercase hexadecimal digits, so that openssl reads the files with
	// `-passin file:<file holding the hex KEK>`. Open copies it.
	KEK []byte
	// Iterations is the PBKDF2-HMAC-SHA-256 iteration count for key files
	// the store writes. If zero, [DefaultIterations] is used with a
	// passphrase and [MinIterations] with a KEK. Counts below
	// [MinIterations] are refused. Files written with other counts (up to
	// [MaxIterations]), by this store or by openssl, are read.
	Iterations int
	// Rand is the source of the salts, IVs and temporary file names. If
	// nil, crypto/rand is used. Key generation always uses crypto/rand,
	// as Go's key generators do since Go 1.26.
	Rand io.Reader
}

// Store is a [keystore.Store] over a directory of encrypted key files. It is
// safe for concurrent use, and several Stores, in this process or in others,
// may use one directory at once.
type Store struct {
	dir      string
	lockPath string
	password []byte
	iter     int
	rand     io.Reader

	closed atomic.Bool
	mu     sync.Mutex        // guards cache, and closed's transition
	cache  map[string]*entry // decrypted keys, by label

	// testHookBeforeLink, when set, runs after the temporary file is
	// written and before it is linked into place; an error aborts Create.
	testHookBeforeLink func() error
}

var _ keystore.Store = (*Store)(nil)

// Open opens the key directory dir, creating it (mode 0700) if it does not
// exist. A relative dir is made absolute against the working directory.
//
// An existing directory must be owned by the effective user and writable by
// no one else; otherwise Open returns a [*DirError] wrapping
// [ErrInsecureDir], since others may already have planted or removed files.
// Read or search permission for group or others is removed (the directory
// is set to 0700). A Config without a usable credential gives an error
// wrapping [ErrNoCredential].
func Open(dir string, cfg Config) (*Store, error) {
	password, err := cfg.password()
	if err != nil {
		return nil, err
	}
	iter := cfg.Iterations
	switch {
	case iter == 0 && cfg.KEK != nil:
		iter = MinIterations
	case iter == 0:
		iter = DefaultIterations
	case iter < MinIterations || iter > MaxIterations:
		clear(password)
		return nil, fmt.Errorf("file: iteration count %d is outside [%d, %d]", iter, MinIterations, MaxIterations)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		clear(password)
		return nil, fmt.Errorf("file: key directory: %w", err)
	}
	if err := prepareDir(abs); err != nil {
		clear(password)
		return nil, err
	}
	s := &Store{
		dir:      abs,
		lockPath: filepath.Join(abs, lockName),
		password: password,
		iter:     iter,
		rand:     cfg.Rand,
		cache:    make(map[string]*entry),
	}
	if s.rand == nil {
		s.rand = rand.Reader
	}
	// Make sure the lock file can be created and locked.
	unlock, err := s.lock(context.Background(), syscall.LOCK_SH)
	if err != nil {
		clear(password)
		return nil, err
	}
	unlock()
	return s, nil
}

// password returns the PBKDF2 password cfg gives, in a fresh slice.
func (cfg *Config) password() ([]byte, error) {
	switch {
	case cfg.Passphrase == nil && cfg.KEK == nil:
		return nil, fmt.Errorf("%w: set Config.Passphrase or Config.KEK (there is no default passphrase)", ErrNoCredential)
	case cfg.Passphrase != nil && cfg.KEK != nil:
		return nil, fmt.Errorf("%w: set only one of Config.Passphrase and Config.KEK", ErrNoCredential)
	case cfg.KEK != nil:
		if len(cfg.KEK) != KEKSize {
			return nil, fmt.Errorf("%w: key-encryption key of %d bytes, want %d", ErrNoCredential, len(cfg.KEK), KEKSize)
		}
		pw := make([]byte, hex.EncodedLen(KEKSize))
		hex.Encode(pw, cfg.KEK)
		return pw, nil
	}
	if len(cfg.Passphrase) == 0 {
		return nil, fmt.Errorf("%w: empty passphrase", ErrNoCredential)
	}
	if bytes.ContainsAny(cfg.Passphrase, "\n\r\x00") {
		return nil, fmt.Errorf("%w: passphrase contains a line break or NUL byte (openssl could not read it from a file)", ErrNoCredential)
	}
	return bytes.Clone(cfg.Passphrase), nil
}

// prepareDir creates dir with mode 0700, or checks an existing one.
func prepareDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("file: cannot create key directory: %w", err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("file: key directory: %w", err)
	}
	if !fi.IsDir() {
		return &DirError{Dir: dir, Reason: "not a directory"}
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() {
		return &DirError{Dir: dir, Reason: fmt.Sprintf("owned by uid %d, not by this process's uid %d", st.Uid, os.Geteuid())}
	}
	perm := fi.Mode().Perm()
	if perm&0o022 != 0 {
		return &DirError{Dir: dir, Reason: fmt.Sprintf("mode %#o lets group or others write to it (want 0700)", perm)}
	}
	if perm != 0o700 {
		if err := os.Chmod(dir, 0o700); err != nil {
			return fmt.Errorf("file: cannot set key directory mode to 0700: %w", err)
		}
	}
	return nil
}

// Dir returns the store's directory, as an absolute path.
func (s *Store) Dir() string { return s.dir }

func (s *Store) path(label string) string { return filepath.Join(s.dir, label+keySuffix) }

// Create generates a key of req.Algorithm, encrypts it and writes it to
// <label>.pem. The file appears atomically and complete, or not at all; of
// several Creates of one label, in any number of processes, exactly one
// succeeds and the others return an error wrapping keystore.ErrExists.
func (s *Store) Create(ctx context.Context, req keystore.CreateRequest) (keystore.Key, error) {
	if err := keystore.ValidateLabel(req.Label); err != nil {
		return nil, err
	}
	if !req.Algorithm.Valid() {
		return nil, fmt.Errorf("file: %w: %v", keystore.ErrUnsupportedAlgorithm, req.Algorithm)
	}
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	path := s.path(req.Label)
	// Fail fast, before the costly key generation and PBKDF2; the link
	// below is what decides.
	if _, err := os.Lstat(path); err == nil {
		return nil, fmt.Errorf("file: %w: %q", keystore.ErrExists, req.Label)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("file: %w", err)
	}
	signer, err := softkey.Generate(nil, req.Algorithm)
	if err != nil {
		return nil, fmt.Errorf("file: cannot generate %v key: %w", req.Algorithm, err)
	}
	data, err := marshalKeyFile(s.rand, signer, s.password, s.iter)
	if err != nil {
		wipe(signer)
		return nil, err
	}
	id, err := s.writeNew(ctx, req.Label, data)
	if err != nil {
		wipe(signer)
		return nil, err
	}
	e := &entry{label: req.Label, path: path, alg: req.Algorithm, signer: signer, pub: signer.Public(), sum: sha256.Sum256(data)}
	e.id.Store(&id)
	return s.remember(e)
}

// writeNew writes data to a temporary file and links it to label's path,
// holding the directory lock. Nothing is left behind on error.
func (s *Store) writeNew(ctx context.Context, label string, data []byte) (id fileID, err error) {
	unlock, err := s.lock(ctx, syscall.LOCK_EX)
	if err != nil {
		return id, err
	}
	defer unlock()
	var rnd [12]byte
	if _, err := io.ReadFull(s.rand, rnd[:]); err != nil {
		return id, fmt.Errorf("file: cannot read random bytes: %w", err)
	}
	tmp := filepath.Join(s.dir, tempPrefix+hex.EncodeToString(rnd[:8]))
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return id, fmt.Errorf("file: cannot create temporary key file: %w", err)
	}
	defer func() {
		if f != nil {
			f.Close()
		}
		if rerr := os.Remove(tmp); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) && err == nil {
			err = fmt.Errorf("file: cannot remove temporary key file: %w", rerr)
		}
	}()
	if _, err := f.Write(data); err != nil {
		return id, fmt.Errorf("file: cannot write key file: %w", err)
	}
	if err := f.Chmod(0o600); err != nil {
		return id, fmt.Errorf("file: %w", err)
	}
	// A modification time with random nanoseconds makes the file's identity
	// (device, inode, size, mtime) unique even when the file system reuses
	// the inode of a deleted key at once; keys check it before signing.
	mtime := time.Now().Truncate(time.Second).Add(time.Duration(uint32(rnd[8])|uint32(rnd[9])<<8|uint32(rnd[10])<<16|uint32(rnd[11])<<24) % time.Second)
	if err := os.Chtimes(tmp, mtime, mtime); err != nil {
		return id, fmt.Errorf("file: %w", err)
	}
	if err := f.Sync(); err != nil {
		return id, fmt.Errorf("file: cannot sync key file: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		return id, fmt.Errorf("file: %w", err)
	}
	id = idOf(fi)
	err = f.Close()
	f = nil
	if err != nil {
		return id, fmt.Errorf("file: cannot write key file: %w", err)
	}
	if s.testHookBeforeLink != nil {
		if err := s.testHookBeforeLink(); err != nil {
			return id, err
		}
	}
	// link(2) fails if the name exists: the label is taken atomically,
	// even against processes that ignore the lock.
	if err := os.Link(tmp, s.path(label)); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return id, fmt.Errorf("file: %w: %q", keystore.ErrExists, label)
		}
		return id, fmt.Errorf("file: cannot link key file into place: %w", err)
	}
	if err := os.Remove(tmp); err != nil {
		return id, fmt.Errorf("file: cannot remove temporary key file: %w", err)
	}
	if err := syncDir(s.dir); err != nil {
		return id, err
	}
	return id, nil
}

// Get returns the key with the given label. The first Get of a key (in this
// Store) reads and decrypts its file; the decrypted key then stays cached in
// process memory until it is deleted or the store closed. Later Gets only
// check, with one stat, that the file is still the one decrypted.
//
// Errors: keystore.ErrNotFound; keystore.ErrAuth if the file does not
// decrypt under the store's credential; a [*FormatError] for a file that is
// not a readable key file; keystore.ErrUnsupportedAlgorithm for a key ztm
// does not use (RSA below 3072 bits, P-521…).
func (s *Store) Get(ctx context.Context, label string) (keystore.Key, error) {
	if err := keystore.ValidateLabel(label); err != nil {
		return nil, err
	}
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	path := s.path(label)
	fi, err := os.Lstat(path)
	if err != nil {
		return nil, notFound(label, err)
	}
	s.mu.Lock()
	e := s.cache[label]
	s.mu.Unlock()
	if e != nil && !e.isGone() && idOf(fi) == *e.id.Load() {
		return &Key{s: s, e: e}, nil
	}

	unlock, err := s.lock(ctx, syscall.LOCK_SH)
	if err != nil {
		return nil, err
	}
	data, id, err := readKeyFile(path)
	unlock()
	if err != nil {
		return nil, notFound(label, err)
	}
	signer, err := parseKeyFile(data, s.password, MaxIterations)
	if err != nil {
		var fe *FormatError
		if errors.As(err, &fe) {
			fe.Path = path
			return nil, fe
		}
		return nil, fmt.Errorf("file: key %q: %w", label, err)
	}
	alg, _ := keystore.AlgorithmOf(signer.Public()) // checked by parseKeyFile
	e = &entry{label: label, path: path, alg: alg, signer: signer, pub: signer.Public(), sum: sha256.Sum256(data)}
	e.id.Store(&id)
	return s.remember(e)
}

// remember caches e under its label, replacing (and wiping) an entry for a
// file that no longer exists, and returns a key over the cached entry.
func (s *Store) remember(e *entry) (keystore.Key, error) {
	s.mu.Lock()
	if s.closed.Load() {
		s.mu.Unlock()
		e.kill()
		return nil, fmt.Errorf("file: %w", keystore.ErrClosed)
	}
	old := s.cache[e.label]
	if old != nil && !old.isGone() && *old.id.Load() == *e.id.Load() {
		// Another Get decrypted the same file first; use its entry.
		s.mu.Unlock()
		e.kill()
		return &Key{s: s, e: old}, nil
	}
	s.cache[e.label] = e
	s.mu.Unlock()
	if old != nil {
		old.kill()
	}
	return &Key{s: s, e: e}, nil
}

// List returns the labels of all keys in the directory, sorted. Files whose
// names are not <label>.pem for a valid label are ignored.
func (s *Store) List(ctx context.Context) ([]string, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	unlock, err := s.lock(ctx, syscall.LOCK_SH)
	if err != nil {
		return nil, err
	}
	ents, err := os.ReadDir(s.dir)
	unlock()
	if err != nil {
		return nil, fmt.Errorf("file: %w", err)
	}
	labels := []string{}
	for _, de := range ents {
		label, ok := strings.CutSuffix(de.Name(), keySuffix)
		if !ok || !de.Type().IsRegular() || keystore.ValidateLabel(label) != nil {
			continue
		}
		labels = append(labels, label)
	}
	slices.Sort(labels)
	return labels, nil
}

// Delete removes the key file of label and syncs the directory, then wipes
// the decrypted key from this Store's memory. Keys already fetched, from
// this Store or from any other over the same directory, stop signing: they
// check that their file still exists before each signature.
//
// Deletion unlinks the file; it does not overwrite it, as overwriting gives
// no guarantee on journaling file systems and flash. The key stays
// encrypted wherever its bytes persist: to destroy every copy, destroy the
// passphrase or KEK.
func (s *Store) Delete(ctx context.Context, label string) error {
	if err := keystore.ValidateLabel(label); err != nil {
		return err
	}
	if err := s.check(ctx); err != nil {
		return err
	}
	path := s.path(label)
	unlock, err := s.lock(ctx, syscall.LOCK_EX)
	if err != nil {
		return err
	}
	fi, err := os.Lstat(path)
	switch {
	case err != nil:
	case fi.IsDir():
		err = &FormatError{Path: path, Reason: "is a directory", Err: ErrCorrupt}
	default:
		if err = os.Remove(path); err == nil {
			err = syncDir(s.dir)
		}
	}
	unlock()
	if err != nil {
		return notFound(label, err)
	}
	s.mu.Lock()
	e := s.cache[label]
	delete(s.cache, label)
	s.mu.Unlock()
	if e != nil {
		e.kill()
	}
	return nil
}

// Close wipes every decrypted key and the credential from memory, as far
// as Go allows (see the package documentation's Memory section). Keys fetched from the store stop signing.
// Close is idempotent and never fails.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed.Swap(true) {
		s.mu.Unlock()
		return nil
	}
	cache := s.cache
	s.cache = nil
	clear(s.password)
	s.mu.Unlock()
	for _, e := range cache {
		e.kill()
	}
	return nil
}

func (s *Store) check(ctx context.Context) error {
	if s.dir == "" || s.rand == nil {
		return errors.New("file: Store not made by Open")
	}
	if s.closed.Load() {
		return fmt.Errorf("file: %w", keystore.ErrClosed)
	}
	return ctx.Err()
}

// notFound maps a missing file to keystore.ErrNotFound.
func notFound(label string, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("file: %w: %q", keystore.ErrNotFound, label)
	}
	return fmt.Errorf("file: key %q: %w", label, err)
}

// readKeyFile reads a key file (not following a symbolic link) and returns
// its bytes with the identity of the file they were read from.
func readKeyFile(path string) ([]byte, fileID, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, syscall.ELOOP) {
			return nil, fileID{}, &FormatError{Path: path, Reason: "is a symbolic link", Err: ErrCorrupt}
		}
		return nil, fileID{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fileID{}, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fileID{}, &FormatError{Path: path, Reason: "not a regular file", Err: ErrCorrupt}
	}
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, fileID{}, err
	}
	return data, idOf(fi), nil
}

// entry is a decrypted key cached by a Store. Its RWMutex is held for
// reading while the key signs, and for writing while it is wiped.
type entry struct {
	label string
	path  string
	alg   keystore.Algorithm
	pub   crypto.PublicKey
	sum   [sha256.Size]byte      // SHA-256 of the key file's bytes
	id    atomic.Pointer[fileID] // the key file's identity when last checked

	mu     sync.RWMutex
	gone   bool // deleted, replaced or closed: signer is wiped
	signer crypto.Signer
}

func (e *entry) isGone() bool {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.gone
}

// kill marks e gone and wipes its key once no signature is in progress.
func (e *entry) kill() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.gone {
		e.gone = true
		wipe(e.signer)
		e.signer = nil
	}
}

// current checks, with one lstat, that e's file is still the file e was
// decrypted from. If the identity changed (the file was touched or
// copied back), the file's bytes are compared with e's; any other content
// means the key was deleted.
func (e *entry) current() error {
	fi, err := os.Lstat(e.path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("file: %w: %q was deleted", keystore.ErrNotFound, e.label)
		}
		return fmt.Errorf("file: key %q: %w", e.label, err)
	}
	if idOf(fi) == *e.id.Load() {
		return nil
	}
	data, id, err := readKeyFile(e.path)
	if err != nil {
		return notFound(e.label, err)
	}
	if sha256.Sum256(data) != e.sum {
		return fmt.Errorf("file: %w: %q was deleted (the label now names another key)", keystore.ErrNotFound, e.label)
	}
	e.id.Store(&id)
	return nil
}

// fileID identifies a file's content cheaply: a new file under the same
// name differs in inode or, since the store writes random nanoseconds into
// it, in modification time.
type fileID struct {
	dev, ino uint64
	size     int64
	mtime    int64
}

func idOf(fi fs.FileInfo) fileID {
	id := fileID{size: fi.Size(), mtime: fi.ModTime().UnixNano()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		id.dev, id.ino = uint64(st.Dev), uint64(st.Ino)
	}
	return id
}
