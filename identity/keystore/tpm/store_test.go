package tpm_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/ztmkit/ztm/identity/keystore"
	"github.com/ztmkit/ztm/identity/keystore/keystoretest"
	"github.com/ztmkit/ztm/identity/keystore/tpm"
	"github.com/ztmkit/ztm/internal/tpmtest"
)

// simAlgorithms are the algorithms the reference simulator supports: it
// has P-256 and P-384 but is built without RSA-3072.
var simAlgorithms = []keystore.Algorithm{keystore.ES256, keystore.ES384}

func TestConformanceSimulator(t *testing.T) {
	keystoretest.Run(t, func(t *testing.T) keystoretest.Opener {
		sim := tpmtest.Open(t)
		dir := t.TempDir()
		return func() (keystore.Store, error) {
			// Two stores share the simulator's 3 object slots in the
			// kit's concurrent-stores check: each keeps one loaded.
			return tpm.New(context.Background(), sim, tpm.Config{Dir: dir, MaxLoaded: 1})
		}
	}, keystoretest.Config{Persistent: true, Algorithms: simAlgorithms})
}

// TestConformanceSwtpm runs the kit on swtpm over loopback TCP, opened by
// URI. swtpm has RSA-3072, so PS256 is covered too. swtpm serves one
// connection at a time, so the kit's two-stores-at-once check is skipped.
func TestConformanceSwtpm(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: swtpm and RSA-3072 key generation are slow")
	}
	keystoretest.Run(t, func(t *testing.T) keystoretest.Opener {
		sw := tpmtest.StartSwtpm(t)
		uri := fmt.Sprintf("tpm:swtpm?host=127.0.0.1&port=%d&dir=%s", sw.Port, t.TempDir())
		return func() (keystore.Store, error) { return keystore.Open(context.Background(), uri) }
	}, keystoretest.Config{Persistent: true, SkipConcurrentStores: true, Algorithms: []keystore.Algorithm{keystore.ES256, keystore.ES384, keystore.PS256}})
}

func newStore(t *testing.T, sim *tpmtest.TPM, cfg tpm.Config) *tpm.Store {
	t.Helper()
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir()
	}
	s, err := tpm.New(context.Background(), sim, cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func signVerify(t *testing.T, k keystore.Key) {
	t.Helper()
	digest := sha256.Sum256([]byte("ztm tpm test"))
	sig, err := k.Sign(rand.Reader, digest[:], crypto.SHA256)
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	if !ecdsa.VerifyASN1(k.Public().(*ecdsa.PublicKey), digest[:], sig) {
		t.Fatal("signature does not verify")
	}
}

func TestSupports(t *testing.T) {
	s := newStore(t, tpmtest.Open(t), tpm.Config{})
	for _, alg := range keystore.Algorithms() {
		if got, want := s.Supports(alg), slices.Contains(simAlgorithms, alg); got != want {
			t.Errorf("Supports(%v) = %v, want %v", alg, got, want)
		}
	}
	ctx := context.Background()
	for _, alg := range []keystore.Algorithm{keystore.EdDSA, keystore.PS256} {
		if _, err := s.Create(ctx, keystore.CreateRequest{Label: "x", Algorithm: alg}); !errors.Is(err, keystore.ErrUnsupportedAlgorithm) {
			t.Errorf("Create(%v): err = %v, want ErrUnsupportedAlgorithm", alg, err)
		}
	}
	if _, err := s.Create(ctx, keystore.CreateRequest{Label: "x", Exportable: true}); !errors.Is(err, tpm.ErrNotExportable) {
		t.Errorf("Create(Exportable): err = %v, want ErrNotExportable", err)
	}
	if labels, _ := s.List(ctx); len(labels) != 0 {
		t.Fatalf("refused Creates left keys: %v", labels)
	}
}

// TestManyKeysFewSlots signs in turn with more keys than the TPM has object
// slots: the store must flush and reload.
func TestManyKeysFewSlots(t *testing.T) {
	s := newStore(t, tpmtest.Open(t), tpm.Config{})
	ctx := context.Background()
	var keys []keystore.Key
	for i := range 5 {
		k, err := s.Create(ctx, keystore.CreateRequest{Label: fmt.Sprintf("k%d", i)})
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	for range 2 {
		for _, k := range keys {
			signVerify(t, k)
		}
	}
	// Endorsement key creation needs a slot too.
	if _, err := s.EndorsementKey(ctx, tpm.EKECC); err != nil {
		t.Fatal(err)
	}
	signVerify(t, keys[0])
}

// TestTPMReset checks that the store recovers when the TPM is reset under
// it (loaded handles vanish; the seeds, and so the keys, survive).
func TestTPMReset(t *testing.T) {
	sim := tpmtest.Open(t)
	s := newStore(t, sim, tpm.Config{})
	k, err := s.Create(context.Background(), keystore.CreateRequest{Label: "survivor"})
	if err != nil {
		t.Fatal(err)
	}
	signVerify(t, k)
	reset := func() {
		t.Helper()
		if err := sim.Reset(); err != nil {
			t.Fatal(err)
		}
	}
	reset()
	signVerify(t, k)
	reset() // the SRK handle is stale now: Create must recover too
	ctx := context.Background()
	k2, err := s.Create(ctx, keystore.CreateRequest{Label: "after-reset"})
	if err != nil {
		t.Fatalf("Create after reset: %v", err)
	}
	signVerify(t, k2)
	if _, err := s.CreateAttestationKey(ctx, "ak"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Quote(ctx, "ak", []byte("n"), []int{0}); err != nil {
		t.Fatal(err)
	}
	reset()
	if _, err := s.Quote(ctx, "ak", []byte("n"), []int{0}); err != nil {
		t.Fatalf("Quote after reset: %v", err)
	}
	reset() // Close after a reset finds its handles gone: not an error
	if err := s.Close(); err != nil {
		t.Fatalf("Close after reset: %v", err)
	}
}

// TestCreateRaceLeavesNothing makes the key file's name taken between
// TPM2_Create and installing the file: Create must fail with ErrExists,
// keep the other file, and leave no temporary file.
func TestCreateRaceLeavesNothing(t *testing.T) {
	s := newStore(t, tpmtest.Open(t), tpm.Config{})
	dir := s.Dir()
	tpm.SetTestOnlyBeforeInstall(t, func(dir, label string) {
		if err := os.WriteFile(filepath.Join(dir, label+".tpmkey"), []byte("other"), 0o600); err != nil {
			t.Error(err)
		}
	})
	_, err := s.Create(context.Background(), keystore.CreateRequest{Label: "contested"})
	if !errors.Is(err, keystore.ErrExists) {
		t.Fatalf("Create: err = %v, want ErrExists", err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 || ents[0].Name() != "contested.tpmkey" {
		t.Fatalf("index holds %v, want only the other file", ents)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "contested.tpmkey")); string(b) != "other" {
		t.Fatal("the other file was replaced")
	}
}

func TestCorruptKeyFiles(t *testing.T) {
	s := newStore(t, tpmtest.Open(t), tpm.Config{})
	ctx := context.Background()
	k, err := s.Create(ctx, keystore.CreateRequest{Label: "victim"})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(s.Dir(), "victim.tpmkey")
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	write := func(b []byte) {
		t.Helper()
		// Replace the file (new inode), as a restore from backup would.
		os.Remove(path)
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}

	// Garbage: Get says the file is corrupt; List still shows the label.
	write([]byte("not a key"))
	if _, err := s.Get(ctx, "victim"); !errors.Is(err, tpm.ErrCorruptKeyFile) {
		t.Fatalf("Get(garbage): err = %v, want ErrCorruptKeyFile", err)
	}
	var kfe *tpm.KeyFileError
	if _, err := s.Get(ctx, "victim"); !errors.As(err, &kfe) || kfe.Label != "victim" {
		t.Fatalf("Get(garbage): err = %v, want a *KeyFileError for victim", err)
	}
	if labels, _ := s.List(ctx); !slices.Equal(labels, []string{"victim"}) {
		t.Fatalf("List = %v", labels)
	}
	// The key fetched before no longer matches the file: it stops.
	if _, err := k.Sign(rand.Reader, make([]byte, 32), crypto.SHA256); !errors.Is(err, keystore.ErrNotFound) {
		t.Fatalf("Sign after the file was replaced: err = %v, want ErrNotFound", err)
	}

	// Another parent's name: the key belongs to another TPM.
	other := slices.Clone(good)
	other[len("ZTMTPMK1")+2+5] ^= 0xff // a byte of the parent name's digest
	write(other)
	if _, err := s.Get(ctx, "victim"); !errors.Is(err, tpm.ErrWrongTPM) {
		t.Fatalf("Get(foreign): err = %v, want ErrWrongTPM", err)
	}

	// A flipped bit in the private blob: the TPM's integrity check
	// refuses it at load.
	tampered := slices.Clone(good)
	tampered[len(tampered)-5] ^= 0x01
	write(tampered)
	k2, err := s.Get(ctx, "victim")
	if err != nil {
		t.Fatalf("Get(tampered): %v", err)
	}
	if _, err := k2.Sign(rand.Reader, make([]byte, 32), crypto.SHA256); !errors.Is(err, tpm.ErrCorruptKeyFile) {
		t.Fatalf("Sign(tampered): err = %v, want ErrCorruptKeyFile", err)
	}

	write(good)
	k3, err := s.Get(ctx, "victim")
	if err != nil {
		t.Fatal(err)
	}
	signVerify(t, k3)
}

func TestNewBadConfig(t *testing.T) {
	sim := tpmtest.Open(t)
	ctx := context.Background()
	if _, err := tpm.New(ctx, sim, tpm.Config{}); err == nil {
		t.Error("New without Dir succeeded")
	}
	if _, err := tpm.New(ctx, nil, tpm.Config{Dir: t.TempDir()}); err == nil {
		t.Error("New with a nil transport succeeded")
	}
	if _, err := tpm.New(ctx, sim, tpm.Config{Dir: t.TempDir(), MaxLoaded: -1}); err == nil {
		t.Error("New with a negative MaxLoaded succeeded")
	}
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, nil, 0o600)
	if _, err := tpm.New(ctx, sim, tpm.Config{Dir: file}); err == nil {
		t.Error("New with Dir naming a file succeeded")
	}
	// A wrong owner authorization is refused by the TPM.
	if _, err := tpm.New(ctx, sim, tpm.Config{Dir: t.TempDir(), OwnerAuth: []byte("wrong")}); err == nil {
		t.Error("New with a wrong owner auth succeeded")
	}
}

// The key index is 0700 whether the store made it or found it with
// looser permissions, and key files are 0600.
func TestIndexPermissions(t *testing.T) {
	for _, existing := range []bool{false, true} {
		t.Run(fmt.Sprint("existing=", existing), func(t *testing.T) { indexPermissions(t, existing) })
	}
}

func indexPermissions(t *testing.T, existing bool) {
	dir := filepath.Join(t.TempDir(), "keys")
	if existing {
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dir, 0o755); err != nil { // whatever the umask
			t.Fatal(err)
		}
	}
	s := newStore(t, tpmtest.Open(t), tpm.Config{Dir: dir})
	if _, err := s.Create(context.Background(), keystore.CreateRequest{Label: "perm"}); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]os.FileMode{dir: 0o700, filepath.Join(dir, "perm.tpmkey"): 0o600} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s has mode %v, want %v", filepath.Base(path), fi.Mode().Perm(), want)
		}
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
