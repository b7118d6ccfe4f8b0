package file

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/ztmkit/ztm/identity/keystore"
	"github.com/ztmkit/ztm/identity/keystore/keystoretest"
)

const testPass = "correct horse battery staple"

func testConfig() Config {
	return Config{Passphrase: []byte(testPass), Iterations: MinIterations}
}

func openTest(t testing.TB, dir string, cfg Config) *Store {
	t.Helper()
	s, err := Open(dir, cfg)
	if err != nil {
		t.Fatalf("Open(%q): %v", dir, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func create(t testing.TB, s *Store, label string, alg keystore.Algorithm) keystore.Key {
	t.Helper()
	k, err := s.Create(context.Background(), keystore.CreateRequest{Label: label, Algorithm: alg})
	if err != nil {
		t.Fatalf("Create(%q, %v): %v", label, alg, err)
	}
	return k
}

// signCheck signs a message with k and verifies the signature.
func signCheck(k keystore.Key) error {
	return signVerify(k, []byte("file store test"))
}

func signVerify(k crypto.Signer, msg []byte) error {
	alg, err := keystore.AlgorithmOf(k.Public())
	if err != nil {
		return err
	}
	digest := msg
	if h := alg.Hash(); h != 0 {
		hh := h.New()
		hh.Write(msg)
		digest = hh.Sum(nil)
	}
	sig, err := k.Sign(rand.Reader, digest, alg.SignerOpts())
	if err != nil {
		return err
	}
	return verifySig(k.Public(), alg, digest, sig)
}

// dirNames lists a directory's entries.
func dirNames(t testing.TB, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func requireOpenssl(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("openssl")
	if err != nil {
		t.Fatalf("openssl is needed for the interoperability tests: install the Debian package \"openssl\" (scripts/install-deps.sh does): %v", err)
	}
	return p
}

func TestConformance(t *testing.T) {
	t.Parallel()
	keystoretest.Run(t, func(t *testing.T) keystoretest.Opener {
		dir := filepath.Join(t.TempDir(), "keys")
		return func() (keystore.Store, error) { return Open(dir, testConfig()) }
	}, keystoretest.Config{Persistent: true})
}

func TestConformanceKEKByURI(t *testing.T) {
	t.Parallel()
	kek := make([]byte, KEKSize)
	rand.Read(kek)
	kekFile := filepath.Join(t.TempDir(), "kek")
	if err := os.WriteFile(kekFile, kek, 0o600); err != nil {
		t.Fatal(err)
	}
	keystoretest.Run(t, func(t *testing.T) keystoretest.Opener {
		dir := filepath.Join(t.TempDir(), "keys")
		return func() (keystore.Store, error) {
			return keystore.Open(context.Background(), "file:"+dir+"?kek-source=file:"+kekFile)
		}
	}, keystoretest.Config{Persistent: true})
}

func TestPermissions(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "keys")
	s := openTest(t, dir, testConfig())
	create(t, s, "station", keystore.ES256)
	mode := func(p string) fs.FileMode {
		fi, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Mode()
	}
	if m := mode(dir); m != fs.ModeDir|0o700 {
		t.Errorf("directory mode %v, want drwx------", m)
	}
	for _, name := range []string{"station.pem", ".lock"} {
		if m := mode(filepath.Join(dir, name)); m != 0o600 {
			t.Errorf("%s mode %v, want -rw-------", name, m)
		}
	}
	if names := dirNames(t, dir); !slices.Equal(names, []string{".lock", "station.pem"}) {
		t.Errorf("directory holds %v, want [.lock station.pem]", names)
	}

	// An existing directory readable by others is tightened to 0700.
	loose := filepath.Join(t.TempDir(), "loose")
	if err := os.Mkdir(loose, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chmod(loose, 0o755)
	openTest(t, loose, testConfig())
	if m := mode(loose); m != fs.ModeDir|0o700 {
		t.Errorf("0755 directory became %v, want drwx------", m)
	}

	// One others may write to is refused, and left alone.
	for _, perm := range []fs.FileMode{0o777, 0o720, 0o702, 0o1777} {
		open := filepath.Join(t.TempDir(), "open")
		if err := os.Mkdir(open, 0o700); err != nil {
			t.Fatal(err)
		}
		os.Chmod(open, perm)
		_, err := Open(open, testConfig())
		var de *DirError
		if !errors.As(err, &de) || !errors.Is(err, ErrInsecureDir) {
			t.Errorf("Open of a %v directory: err = %v, want *DirError wrapping ErrInsecureDir", perm, err)
		}
		if names := dirNames(t, open); len(names) != 0 {
			t.Errorf("refused Open wrote %v", names)
		}
	}

	// A file in place of the directory is refused.
	notDir := filepath.Join(t.TempDir(), "file")
	os.WriteFile(notDir, nil, 0o600)
	if _, err := Open(notDir, testConfig()); err == nil {
		t.Error("Open of a regular file succeeded")
	}

	// One another user owns is refused (only root can make one).
	if os.Geteuid() == 0 {
		other := filepath.Join(t.TempDir(), "other")
		if err := os.Mkdir(other, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(other, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		if _, err := Open(other, testConfig()); !errors.Is(err, ErrInsecureDir) {
			t.Errorf("Open of a directory owned by uid 65534: err = %v, want ErrInsecureDir", err)
		}
	} else {
		t.Log("not root: the foreign-owner check is not exercised")
	}
}

func TestConfigRefused(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"zero", Config{}},
		{"both", Config{Passphrase: []byte("x"), KEK: make([]byte, KEKSize)}},
		{"empty passphrase", Config{Passphrase: []byte{}}},
		{"newline", Config{Passphrase: []byte("a\nb")}},
		{"NUL", Config{Passphrase: []byte("a\x00b")}},
		{"short KEK", Config{KEK: make([]byte, 16)}},
	} {
		if _, err := Open(dir, tc.cfg); !errors.Is(err, ErrNoCredential) {
			t.Errorf("%s: err = %v, want ErrNoCredential", tc.name, err)
		}
	}
	for _, n := range []int{1, MinIterations - 1, MaxIterations + 1, -5} {
		if _, err := Open(dir, Config{Passphrase: []byte("x"), Iterations: n}); err == nil {
			t.Errorf("Iterations %d accepted", n)
		}
	}
}

func TestWrongCredential(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	s := openTest(t, dir, testConfig())
	for _, alg := range []keystore.Algorithm{keystore.ES256, keystore.ES384, keystore.EdDSA} {
		create(t, s, "k-"+strings.ToLower(alg.String()), alg)
	}
	kek := make([]byte, KEKSize)
	for _, cfg := range []Config{
		{Passphrase: []byte(testPass + "!"), Iterations: MinIterations},
		{Passphrase: []byte("x"), Iterations: MinIterations},
		{KEK: kek},
	} {
		other := openTest(t, dir, cfg)
		labels, err := other.List(ctx)
		if err != nil || len(labels) != 3 {
			t.Fatalf("List = %v, %v", labels, err)
		}
		for _, l := range labels {
			_, err := other.Get(ctx, l)
			if !errors.Is(err, keystore.ErrAuth) || errors.Is(err, ErrCorrupt) {
				t.Errorf("Get(%q) with the wrong credential: err = %v, want ErrAuth only", l, err)
			}
			keystoretest.CheckErrorMessage(t, err)
		}
	}
}

func TestLabelTraversal(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	root := t.TempDir()
	dir := filepath.Join(root, "keys")
	s := openTest(t, dir, testConfig())
	for _, l := range []string{"../x", "..", "a/../../x", "/etc/passwd"} {
		if _, err := s.Create(ctx, keystore.CreateRequest{Label: l}); !errors.Is(err, keystore.ErrInvalidLabel) {
			t.Errorf("Create(%q): err = %v, want ErrInvalidLabel", l, err)
		}
		if _, err := s.Get(ctx, l); !errors.Is(err, keystore.ErrInvalidLabel) {
			t.Errorf("Get(%q): err = %v, want ErrInvalidLabel", l, err)
		}
	}
	if names := dirNames(t, root); !slices.Equal(names, []string{"keys"}) {
		t.Errorf("files outside the key directory: %v", names)
	}
	if names := dirNames(t, dir); !slices.Equal(names, []string{".lock"}) {
		t.Errorf("key directory holds %v", names)
	}
}

func TestFailedWriteLeavesNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	s := openTest(t, dir, testConfig())
	boom := errors.New("injected failure")
	s.testHookBeforeLink = func() error { return boom }
	if _, err := s.Create(ctx, keystore.CreateRequest{Label: "doomed"}); !errors.Is(err, boom) {
		t.Fatalf("Create: err = %v, want the injected failure", err)
	}
	if names := dirNames(t, dir); !slices.Equal(names, []string{".lock"}) {
		t.Errorf("failed Create left %v", names)
	}
	if _, err := s.Get(ctx, "doomed"); !errors.Is(err, keystore.ErrNotFound) {
		t.Errorf("Get after failed Create: err = %v, want ErrNotFound", err)
	}

	// A refused write (the label was taken between the early check and the
	// link) leaves no temporary file either.
	// The competing writer ignores the lock (it could be any program):
	// link(2) still refuses to replace its file.
	other := openTest(t, t.TempDir(), testConfig())
	create(t, other, "taken", keystore.EdDSA)
	winner, err := os.ReadFile(filepath.Join(other.Dir(), "taken.pem"))
	if err != nil {
		t.Fatal(err)
	}
	s.testHookBeforeLink = func() error {
		return os.WriteFile(filepath.Join(dir, "taken.pem"), winner, 0o600)
	}
	if _, err := s.Create(ctx, keystore.CreateRequest{Label: "taken"}); !errors.Is(err, keystore.ErrExists) {
		t.Fatalf("Create of a label taken meanwhile: err = %v, want ErrExists", err)
	}
	if names := dirNames(t, dir); !slices.Equal(names, []string{".lock", "taken.pem"}) {
		t.Errorf("refused Create left %v", names)
	}
	k, err := s.Get(ctx, "taken")
	if err != nil || k.Algorithm() != keystore.EdDSA {
		t.Fatalf("the winning key was replaced: %v, %v", k, err)
	}

	// A cancelled context stops Create before it writes.
	s.testHookBeforeLink = nil
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.Create(cctx, keystore.CreateRequest{Label: "late"}); !errors.Is(err, context.Canceled) {
		t.Errorf("Create with a cancelled context: err = %v", err)
	}
	if names := dirNames(t, dir); !slices.Equal(names, []string{".lock", "taken.pem"}) {
		t.Errorf("cancelled Create left %v", names)
	}
}

func TestDeleteSeenByOtherStore(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	a := openTest(t, dir, testConfig())
	b := openTest(t, dir, testConfig())
	create(t, a, "shared", keystore.ES256)
	kb, err := b.Get(ctx, "shared")
	if err != nil {
		t.Fatal(err)
	}
	if err := signCheck(kb); err != nil {
		t.Fatal(err)
	}
	if err := a.Delete(ctx, "shared"); err != nil {
		t.Fatal(err)
	}
	if err := signCheck(kb); !errors.Is(err, keystore.ErrNotFound) {
		t.Fatalf("Sign after another store deleted the key: err = %v, want ErrNotFound", err)
	}
	if _, err := b.Get(ctx, "shared"); !errors.Is(err, keystore.ErrNotFound) {
		t.Fatalf("Get of a cached key another store deleted: err = %v, want ErrNotFound", err)
	}
	// The label is re-used for a new key: the old handle stays dead, a new
	// Get returns the new key.
	ka2 := create(t, a, "shared", keystore.ES256)
	if err := signCheck(kb); !errors.Is(err, keystore.ErrNotFound) {
		t.Fatalf("old handle after re-create: err = %v, want ErrNotFound", err)
	}
	kb2, err := b.Get(ctx, "shared")
	if err != nil {
		t.Fatal(err)
	}
	if !kb2.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(ka2.Public()) {
		t.Fatal("Get after re-create returned the old key")
	}
	if err := signCheck(kb2); err != nil {
		t.Fatal(err)
	}
}

// A file whose identity changes without its content changing (touched,
// copied back from a backup) still signs.
func TestTouchedFileStillSigns(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := openTest(t, dir, testConfig())
	k := create(t, s, "touched", keystore.ES256)
	path := filepath.Join(dir, "touched.pem")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Replace the file by a copy: new inode, new mtime, same bytes.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := signCheck(k); err != nil {
		t.Fatalf("Sign after the file was copied back: %v", err)
	}
	// Replace it by another key's file: the handle stops signing.
	other := openTest(t, t.TempDir(), testConfig())
	create(t, other, "touched", keystore.ES256)
	data2, _ := os.ReadFile(filepath.Join(other.Dir(), "touched.pem"))
	os.Remove(path)
	os.WriteFile(path, data2, 0o600)
	if err := signCheck(k); !errors.Is(err, keystore.ErrNotFound) {
		t.Fatalf("Sign after the file was replaced by another key: err = %v, want ErrNotFound", err)
	}
}

func TestCloseWipes(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := openTest(t, dir, testConfig())
	k := create(t, s, "wiped", keystore.EdDSA)
	e := k.(*Key).e
	priv := e.signer.(ed25519.PrivateKey)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if e.signer != nil {
		t.Fatal("Close left the signer in place")
	}
	for _, c := range priv {
		if c != 0 {
			t.Fatal("Close did not wipe the Ed25519 private key")
		}
	}
	if len(s.password) != len(testPass) {
		t.Fatal("unexpected password length")
	}
	for _, c := range s.password {
		if c != 0 {
			t.Fatal("Close did not wipe the passphrase")
		}
	}
	if err := signCheck(k); !errors.Is(err, keystore.ErrClosed) {
		t.Fatalf("Sign after Close: %v", err)
	}
}

func TestConcurrentStoresOneDir(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	const stores, labels = 4, 6
	var wg sync.WaitGroup
	wins := make([]int, labels)
	var mu sync.Mutex
	for i := range stores {
		s := openTest(t, dir, testConfig())
		wg.Add(1)
		go func() {
			defer wg.Done()
			for l := range labels {
				label := "k" + string(rune('a'+l))
				_, err := s.Create(ctx, keystore.CreateRequest{Label: label})
				switch {
				case err == nil:
					mu.Lock()
					wins[l]++
					mu.Unlock()
				case !errors.Is(err, keystore.ErrExists):
					t.Errorf("store %d Create(%s): %v", i, label, err)
				}
				k, err := s.Get(ctx, label)
				if err != nil {
					t.Errorf("store %d Get(%s): %v", i, label, err)
					continue
				}
				if err := signCheck(k); err != nil {
					t.Errorf("store %d sign %s: %v", i, label, err)
				}
			}
		}()
	}
	wg.Wait()
	for l, w := range wins {
		if w != 1 {
			t.Errorf("label %d created %d times, want once", l, w)
		}
	}
	if names := dirNames(t, dir); len(names) != labels+1 {
		t.Errorf("directory holds %v", names)
	}
}

// Goroutines fetching one key for the first time at once share one
// decrypted copy, and all their handles stop at Delete.
func TestConcurrentFirstGet(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	create(t, openTest(t, dir, testConfig()), "popular", keystore.ES256)
	s := openTest(t, dir, testConfig())
	const n = 8
	keys := make([]keystore.Key, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k, err := s.Get(ctx, "popular")
			if err != nil {
				t.Error(err)
				return
			}
			if err := signCheck(k); err != nil {
				t.Error(err)
			}
			keys[i] = k
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	for _, k := range keys {
		if err := signCheck(k); err != nil {
			t.Fatalf("handle after concurrent Gets: %v", err)
		}
	}
	if err := s.Delete(ctx, "popular"); err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if err := signCheck(k); !errors.Is(err, keystore.ErrNotFound) {
			t.Fatalf("handle after Delete: err = %v, want ErrNotFound", err)
		}
	}
}
