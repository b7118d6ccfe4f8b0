package keystoretest

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ztmkit/ztm/identity/keystore"
)

// Opener opens a store over one storage. For a persistent store, every call
// on the same Opener opens the same storage, so keys created through one
// Store are visible through the next.
type Opener func() (keystore.Store, error)

// Config describes the store under test. The zero value tests a
// non-persistent store that claims every algorithm.
type Config struct {
	// Algorithms lists the algorithms the store claims to support. If nil,
	// every algorithm in [keystore.Algorithms] is claimed. The kit checks
	// that the others are refused with keystore.ErrUnsupportedAlgorithm.
	Algorithms []keystore.Algorithm
	// Persistent says that keys survive Close and reopen through the same
	// Opener.
	Persistent bool
	// SkipConcurrentStores skips the check that two stores open at once
	// over one storage see each other's keys (for backends that allow one
	// open store per storage).
	SkipConcurrentStores bool
}

// Run runs the conformance kit as subtests of t. newStorage is called once
// per subtest; it prepares fresh, empty storage (removed by t's cleanup) and
// returns an Opener over it.
func Run(t *testing.T, newStorage func(t *testing.T) Opener, cfg Config) {
	t.Helper()
	k := &kit{newStorage: newStorage, cfg: cfg, claimed: cfg.Algorithms}
	if k.claimed == nil {
		k.claimed = keystore.Algorithms()
	}
	for _, sub := range []struct {
		name string
		run  func(t *testing.T)
	}{
		{"SignVerify", k.signVerify},
		{"DefaultAlgorithm", k.defaultAlgorithm},
		{"DuplicateLabel", k.duplicateLabel},
		{"MissingLabel", k.missingLabel},
		{"List", k.list},
		{"DeleteThenUse", k.deleteThenUse},
		{"Persistence", k.persistence},
		{"ConcurrentSign", k.concurrentSign},
		{"ConcurrentCreate", k.concurrentCreate},
		{"BadLabels", k.badLabels},
		{"UnknownAlgorithm", k.unknownAlgorithm},
		{"ErrorMessages", k.errorMessages},
		{"UseAfterClose", k.useAfterClose},
	} {
		t.Run(sub.name, sub.run)
	}
}

// kit is one run of the conformance kit: each method is one subtest.
type kit struct {
	newStorage func(t *testing.T) Opener
	cfg        Config
	claimed    []keystore.Algorithm // the algorithms the store claims
}

var ctx = context.Background()

// open prepares fresh storage and opens a store over it, closed by t's
// cleanup.
func (k *kit) open(t *testing.T) (keystore.Store, Opener) {
	t.Helper()
	opener := k.newStorage(t)
	s, err := opener()
	require.NoError(t, err, "open store")
	t.Cleanup(func() { s.Close() })
	return s, opener
}

// create makes a key of the first claimed algorithm.
func (k *kit) create(t *testing.T, s keystore.Store, label string) keystore.Key {
	t.Helper()
	key, err := s.Create(ctx, keystore.CreateRequest{Label: label, Algorithm: k.claimed[0]})
	require.NoError(t, err, "Create(%q)", label)
	return key
}

// signVerify creates a key of every algorithm: the claimed ones sign and
// are found again, the others are refused.
func (k *kit) signVerify(t *testing.T) {
	for _, alg := range keystore.Algorithms() {
		t.Run(alg.String(), func(t *testing.T) {
			s, _ := k.open(t)
			label := "sign-" + strings.ToLower(alg.String())
			key, err := s.Create(ctx, keystore.CreateRequest{Label: label, Algorithm: alg})
			if !slices.Contains(k.claimed, alg) {
				require.ErrorIs(t, err, keystore.ErrUnsupportedAlgorithm, "Create(%v) on a store not claiming it", alg)
				labels, _ := s.List(ctx)
				require.Empty(t, labels, "refused Create left keys behind")
				return
			}
			require.NoError(t, err, "Create(%v)", alg)
			require.Equal(t, label, key.Label(), "key's label")
			require.Equal(t, alg, key.Algorithm(), "key's algorithm")
			got, err := keystore.AlgorithmOf(key.Public())
			require.NoError(t, err, "AlgorithmOf(Public())")
			require.Equal(t, alg, got, "AlgorithmOf(Public())")
			checkSigns(t, key, "create")
			g, err := s.Get(ctx, key.Label())
			require.NoError(t, err, "Get")
			require.True(t, publicEqual(g.Public(), key.Public()) && g.Algorithm() == alg, "Get returned a different key")
			checkSigns(t, g, "get")
			checkRefusesWrongOpts(t, g)
		})
	}
}

// defaultAlgorithm checks that a zero CreateRequest.Algorithm makes ES256.
func (k *kit) defaultAlgorithm(t *testing.T) {
	if !slices.Contains(k.claimed, keystore.ES256) {
		t.Skip("store does not claim ES256")
	}
	s, _ := k.open(t)
	key, err := s.Create(ctx, keystore.CreateRequest{Label: "default"})
	require.NoError(t, err)
	require.Equal(t, keystore.ES256, key.Algorithm(), "zero CreateRequest.Algorithm")
}

// duplicateLabel checks that a second Create of a label is refused and
// leaves the first key alone.
func (k *kit) duplicateLabel(t *testing.T) {
	s, _ := k.open(t)
	key := k.create(t, s, "dup")
	_, err := s.Create(ctx, keystore.CreateRequest{Label: "dup", Algorithm: k.claimed[0]})
	require.ErrorIs(t, err, keystore.ErrExists, "second Create")
	g, err := s.Get(ctx, "dup")
	require.NoError(t, err)
	require.True(t, publicEqual(g.Public(), key.Public()), "refused duplicate Create replaced the first key")
	checkSigns(t, key, "original after refused duplicate")
}

// missingLabel checks ErrNotFound from Get and Delete.
func (k *kit) missingLabel(t *testing.T) {
	s, _ := k.open(t)
	_, err := s.Get(ctx, "missing")
	require.ErrorIs(t, err, keystore.ErrNotFound, "Get(missing)")
	require.ErrorIs(t, s.Delete(ctx, "missing"), keystore.ErrNotFound, "Delete(missing)")
}

// list checks that List returns the labels sorted.
func (k *kit) list(t *testing.T) {
	s, _ := k.open(t)
	labels, err := s.List(ctx)
	require.NoError(t, err, "List on empty store")
	require.Empty(t, labels, "List on empty store")
	for _, l := range []string{"c_key", "a-key", "b.key"} {
		k.create(t, s, l)
	}
	got, err := s.List(ctx)
	require.NoError(t, err, "List")
	require.Equal(t, []string{"a-key", "b.key", "c_key"}, got, "List")
}

// deleteThenUse checks that a deleted key is gone, its handle refuses to
// sign, and its label can be used again for a new key.
func (k *kit) deleteThenUse(t *testing.T) {
	s, _ := k.open(t)
	key := k.create(t, s, "doomed")
	keep := k.create(t, s, "kept")
	require.NoError(t, s.Delete(ctx, "doomed"), "Delete")
	_, err := s.Get(ctx, "doomed")
	require.ErrorIs(t, err, keystore.ErrNotFound, "Get after Delete")
	_, err = sign(key, []byte("after delete"))
	require.ErrorIs(t, err, keystore.ErrNotFound, "Sign with a deleted key")
	require.ErrorIs(t, s.Delete(ctx, "doomed"), keystore.ErrNotFound, "second Delete")
	labels, _ := s.List(ctx)
	require.Equal(t, []string{"kept"}, labels, "List after Delete")
	checkSigns(t, keep, "other key after delete")
	// The label can be used again, for a new key.
	k2, err := s.Create(ctx, keystore.CreateRequest{Label: "doomed", Algorithm: k.claimed[0]})
	require.NoError(t, err, "Create after Delete")
	require.False(t, publicEqual(k2.Public(), key.Public()), "re-created key has the deleted key's public key")
	_, err = sign(key, []byte("old handle"))
	require.Error(t, err, "handle to the deleted key signs with the re-created one")
	checkSigns(t, k2, "re-created")
}

// persistence checks that keys survive Close and reopen, that deletes
// do too, and that two stores open on one storage see each other's keys.
func (k *kit) persistence(t *testing.T) {
	if !k.cfg.Persistent {
		t.Skip("store is not persistent")
	}
	s, opener := k.open(t)
	var made []keystore.Key
	for i, alg := range k.claimed {
		key, err := s.Create(ctx, keystore.CreateRequest{Label: fmt.Sprintf("persist-%d", i), Algorithm: alg})
		require.NoError(t, err)
		made = append(made, key)
	}
	require.NoError(t, s.Delete(ctx, "persist-0"))
	require.NoError(t, s.Close(), "Close")
	s2, err := opener()
	require.NoError(t, err, "reopen")
	defer s2.Close()
	_, err = s2.Get(ctx, "persist-0")
	require.ErrorIs(t, err, keystore.ErrNotFound, "deleted key after reopen")
	for _, key := range made[1:] {
		g, err := s2.Get(ctx, key.Label())
		require.NoError(t, err, "Get(%q) after reopen", key.Label())
		require.True(t, publicEqual(g.Public(), key.Public()) && g.Algorithm() == key.Algorithm(), "key %q changed across reopen", key.Label())
		checkSigns(t, g, "after reopen")
	}
	if !k.cfg.SkipConcurrentStores {
		k.concurrentStores(t, opener, s2)
	}
}

// concurrentStores checks that a key created through a second store open
// on the storage of s is visible through s, and its label taken.
func (k *kit) concurrentStores(t *testing.T, opener Opener, s keystore.Store) {
	s3, err := opener()
	require.NoError(t, err, "second concurrent open")
	defer s3.Close()
	k.create(t, s3, "from-s3")
	_, err = s.Get(ctx, "from-s3")
	require.NoError(t, err, "key created through one store is not visible through another open on the same storage")
	_, err = s.Create(ctx, keystore.CreateRequest{Label: "from-s3", Algorithm: k.claimed[0]})
	require.ErrorIs(t, err, keystore.ErrExists, "Create of a label another store made")
}

// concurrentSign signs from many goroutines while the store creates, lists
// and deletes other keys.
func (k *kit) concurrentSign(t *testing.T) {
	s, _ := k.open(t)
	key := k.create(t, s, "busy")
	const workers, each = 16, 8
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				msg := fmt.Appendf(nil, "worker %d message %d", w, i)
				sig, err := sign(key, msg)
				if err == nil {
					err = verify(key.Public(), key.Algorithm(), msg, sig)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	// Store operations run while the key signs.
	for i := range 4 {
		l := fmt.Sprintf("side-%d", i)
		_, err := s.Create(ctx, keystore.CreateRequest{Label: l, Algorithm: k.claimed[0]})
		assert.NoError(t, err)
		_, err = s.List(ctx)
		assert.NoError(t, err)
		assert.NoError(t, s.Delete(ctx, l))
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		assert.NoError(t, err, "concurrent sign")
	}
}

// concurrentCreate races Creates of one label: exactly one wins.
func (k *kit) concurrentCreate(t *testing.T) {
	s, _ := k.open(t)
	const workers = 16
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.Create(ctx, keystore.CreateRequest{Label: "race", Algorithm: k.claimed[0]})
			if err == nil {
				mu.Lock()
				wins++
				mu.Unlock()
				return
			}
			// assert, not require: this goroutine is not the test's.
			assert.ErrorIs(t, err, keystore.ErrExists, "racing Create")
		}()
	}
	wg.Wait()
	require.Equal(t, 1, wins, "racing Creates of one label that succeeded")
}

// badLabels checks that every label of [BadLabels] is refused by Create,
// Get and Delete.
func (k *kit) badLabels(t *testing.T) {
	s, _ := k.open(t)
	for _, label := range BadLabels() {
		_, err := s.Create(ctx, keystore.CreateRequest{Label: label, Algorithm: k.claimed[0]})
		assert.ErrorIs(t, err, keystore.ErrInvalidLabel, "Create(%q)", label)
		_, err = s.Get(ctx, label)
		assert.ErrorIs(t, err, keystore.ErrInvalidLabel, "Get(%q)", label)
		assert.ErrorIs(t, s.Delete(ctx, label), keystore.ErrInvalidLabel, "Delete(%q)", label)
	}
	labels, err := s.List(ctx)
	require.NoError(t, err)
	require.Empty(t, labels, "bad labels left keys")
}

// unknownAlgorithm checks that algorithms outside the enum are refused.
func (k *kit) unknownAlgorithm(t *testing.T) {
	s, _ := k.open(t)
	for _, alg := range []keystore.Algorithm{-1, keystore.Algorithm(99)} {
		_, err := s.Create(ctx, keystore.CreateRequest{Label: "odd", Algorithm: alg})
		assert.ErrorIs(t, err, keystore.ErrUnsupportedAlgorithm, "Create(%v)", alg)
	}
	labels, _ := s.List(ctx)
	require.Empty(t, labels, "refused Create left keys")
}

// errorMessages checks the messages of the errors a store returns.
func (k *kit) errorMessages(t *testing.T) {
	s, _ := k.open(t)
	errorCases(t, s, k.claimed)
}

// useAfterClose checks that Close is idempotent and that the store and
// its keys then refuse every operation with ErrClosed.
func (k *kit) useAfterClose(t *testing.T) {
	s, _ := k.open(t)
	key := k.create(t, s, "closing")
	require.NoError(t, s.Close(), "Close")
	require.NoError(t, s.Close(), "second Close")
	_, err := s.Create(ctx, keystore.CreateRequest{Label: "late", Algorithm: k.claimed[0]})
	assert.ErrorIs(t, err, keystore.ErrClosed, "Create after Close")
	_, err = s.Get(ctx, "closing")
	assert.ErrorIs(t, err, keystore.ErrClosed, "Get after Close")
	_, err = s.List(ctx)
	assert.ErrorIs(t, err, keystore.ErrClosed, "List after Close")
	assert.ErrorIs(t, s.Delete(ctx, "closing"), keystore.ErrClosed, "Delete after Close")
	_, err = sign(key, []byte("late"))
	assert.ErrorIs(t, err, keystore.ErrClosed, "Sign after Close")
}

// errorCases provokes the errors every store returns and checks their
// messages with [CheckErrorMessage].
func errorCases(t *testing.T, s keystore.Store, claimed []keystore.Algorithm) {
	var errs []error
	note := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	k, err := s.Create(ctx, keystore.CreateRequest{Label: "msg", Algorithm: claimed[0]})
	require.NoError(t, err)
	_, err = s.Create(ctx, keystore.CreateRequest{Label: "msg", Algorithm: claimed[0]})
	note(err)
	_, err = s.Create(ctx, keystore.CreateRequest{Label: "odd", Algorithm: -1})
	note(err)
	for _, alg := range keystore.Algorithms() {
		if !slices.Contains(claimed, alg) {
			_, err = s.Create(ctx, keystore.CreateRequest{Label: "unclaimed", Algorithm: alg})
			note(err)
		}
	}
	for _, label := range []string{"a b", ""} {
		_, err = s.Create(ctx, keystore.CreateRequest{Label: label})
		note(err)
		_, err = s.Get(ctx, label)
		note(err)
		note(s.Delete(ctx, label))
	}
	_, err = s.Get(ctx, "missing")
	note(err)
	note(s.Delete(ctx, "missing"))
	_, err = k.Sign(rand.Reader, []byte("not a digest"), k.Algorithm().SignerOpts())
	note(err)
	note(s.Delete(ctx, "msg"))
	_, err = sign(k, []byte("deleted"))
	note(err)
	note(s.Close())
	_, err = s.Get(ctx, "msg")
	note(err)
	_, err = s.List(ctx)
	note(err)
	_, err = sign(k, []byte("closed"))
	note(err)
	require.GreaterOrEqual(t, len(errs), 10, "errors provoked: %v", errs)
	for _, err := range errs {
		CheckErrorMessage(t, err)
	}
}

// modulePackages are the prefixes of ztm's packages' error messages.
var modulePackages = []string{"keystore", "pkcs11", "tpm", "file", "mem", "ztm", "est", "ca", "enroll", "attest", "manifest", "identity"}

// CheckErrorMessage reports a test error if err's message carries one
// package prefix more than once, as in "keystore: keystore: unsupported
// algorithm": each layer that wraps an error adds its context, not the
// prefix the wrapped error already has. The prefixes checked are those of
// ztm's packages ("keystore: ", "pkcs11: "…) and the message's own first
// one (a third-party backend's).
func CheckErrorMessage(tb testing.TB, err error) {
	tb.Helper()
	if err == nil {
		return
	}
	msg := err.Error()
	segs := strings.Split(msg, ": ")
	own := ""
	if len(segs) > 1 && isWord(segs[0]) {
		own = segs[0]
	}
	seen := map[string]bool{}
	for _, seg := range segs {
		seg = strings.TrimSpace(seg)
		if seg != own && !slices.Contains(modulePackages, seg) {
			continue
		}
		if seen[seg] {
			tb.Errorf("error message carries the prefix %q twice: %s", seg+":", msg)
			return
		}
		seen[seg] = true
	}
}

// isWord reports whether s is a package-name-like word: a lowercase letter
// and then lowercase letters and digits.
func isWord(s string) bool {
	for i, c := range s {
		if !('a' <= c && c <= 'z' || i > 0 && '0' <= c && c <= '9') {
			return false
		}
	}
	return s != ""
}

// BadLabels returns labels every store must refuse with
// keystore.ErrInvalidLabel.
func BadLabels() []string {
	return []string{
		"", "../x", "..", ".", "a/b", `a\b`, "/abs", "a b", "-lead", ".hidden",
		"a..b", "nul\x00", "tab\t", "ünï", strings.Repeat("x", keystore.MaxLabelLen+1),
	}
}

func sign(k keystore.Key, msg []byte) ([]byte, error) {
	alg := k.Algorithm()
	digest := msg
	if h := alg.Hash(); h != 0 {
		hh := h.New()
		hh.Write(msg)
		digest = hh.Sum(nil)
	}
	return k.Sign(rand.Reader, digest, alg.SignerOpts())
}

func verify(pub crypto.PublicKey, alg keystore.Algorithm, msg, sig []byte) error {
	digest := msg
	if h := alg.Hash(); h != 0 {
		hh := h.New()
		hh.Write(msg)
		digest = hh.Sum(nil)
	}
	switch p := pub.(type) {
	case *ecdsa.PublicKey:
		if !ecdsa.VerifyASN1(p, digest, sig) {
			return errors.New("ECDSA signature does not verify")
		}
		return nil
	case ed25519.PublicKey:
		if !ed25519.Verify(p, msg, sig) {
			return errors.New("Ed25519 signature does not verify")
		}
		return nil
	case *rsa.PublicKey:
		// Verify with the exact salt length COSE PS256 requires.
		return rsa.VerifyPSS(p, crypto.SHA256, digest, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
	}
	return fmt.Errorf("unexpected public key type %T", pub)
}

func checkSigns(t *testing.T, k keystore.Key, when string) {
	t.Helper()
	msg := []byte("ztm conformance: " + when)
	sig, err := sign(k, msg)
	require.NoError(t, err, "%s: Sign", when)
	require.NoError(t, verify(k.Public(), k.Algorithm(), msg, sig), when)
	// A signature over another message must not verify.
	require.Error(t, verify(k.Public(), k.Algorithm(), []byte("other"), sig), "%s: signature verifies for another message", when)
}

func checkRefusesWrongOpts(t *testing.T, k keystore.Key) {
	t.Helper()
	var bad []struct {
		name   string
		digest []byte
		opts   crypto.SignerOpts
	}
	add := func(name string, digest []byte, opts crypto.SignerOpts) {
		bad = append(bad, struct {
			name   string
			digest []byte
			opts   crypto.SignerOpts
		}{name, digest, opts})
	}
	switch k.Algorithm() {
	case keystore.ES256:
		add("SHA-384 digest", make([]byte, 48), crypto.SHA384)
		add("short digest", make([]byte, 20), crypto.SHA256)
	case keystore.ES384:
		add("SHA-256 digest", make([]byte, 32), crypto.SHA256)
	case keystore.EdDSA:
		add("prehashed", make([]byte, 32), crypto.SHA256)
	case keystore.PS256:
		add("PKCS#1 v1.5", make([]byte, 32), crypto.SHA256)
		add("short digest", make([]byte, 20), &rsa.PSSOptions{Hash: crypto.SHA256, SaltLength: rsa.PSSSaltLengthEqualsHash})
	}
	for _, b := range bad {
		_, err := k.Sign(rand.Reader, b.digest, b.opts)
		assert.ErrorIs(t, err, keystore.ErrUnsupportedAlgorithm, "%v key signing with %s", k.Algorithm(), b.name)
	}
}

func publicEqual(a, b crypto.PublicKey) bool {
	type equaler interface{ Equal(crypto.PublicKey) bool }
	e, ok := a.(equaler)
	return ok && e.Equal(b)
}
