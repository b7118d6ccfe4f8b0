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
	claimed := cfg.Algorithms
	if claimed == nil {
		claimed = keystore.Algorithms()
	}
	open := func(t *testing.T) (keystore.Store, Opener) {
		t.Helper()
		opener := newStorage(t)
		s, err := opener()
		if err != nil {
			t.Fatalf("open store: %v", err)
		}
		t.Cleanup(func() { s.Close() })
		return s, opener
	}
	ctx := context.Background()

	t.Run("SignVerify", func(t *testing.T) {
		for _, alg := range keystore.Algorithms() {
			t.Run(alg.String(), func(t *testing.T) {
				s, _ := open(t)
				k, err := s.Create(ctx, keystore.CreateRequest{Label: "sign-" + strings.ToLower(alg.String()), Algorithm: alg})
				if !slices.Contains(claimed, alg) {
					if !errors.Is(err, keystore.ErrUnsupportedAlgorithm) {
						t.Fatalf("Create(%v) on a store not claiming it: err = %v, want ErrUnsupportedAlgorithm", alg, err)
					}
					if labels, _ := s.List(ctx); len(labels) != 0 {
						t.Fatalf("refused Create left keys behind: %v", labels)
					}
					return
				}
				if err != nil {
					t.Fatalf("Create(%v): %v", alg, err)
				}
				if k.Label() != "sign-"+strings.ToLower(alg.String()) || k.Algorithm() != alg {
					t.Fatalf("key says label %q alg %v", k.Label(), k.Algorithm())
				}
				if got, err := keystore.AlgorithmOf(k.Public()); err != nil || got != alg {
					t.Fatalf("AlgorithmOf(Public()) = %v, %v; want %v", got, err, alg)
				}
				checkSigns(t, k, "create")
				g, err := s.Get(ctx, k.Label())
				if err != nil {
					t.Fatalf("Get: %v", err)
				}
				if !publicEqual(g.Public(), k.Public()) || g.Algorithm() != alg {
					t.Fatalf("Get returned a different key")
				}
				checkSigns(t, g, "get")
				checkRefusesWrongOpts(t, g)
			})
		}
	})

	t.Run("DefaultAlgorithm", func(t *testing.T) {
		if !slices.Contains(claimed, keystore.ES256) {
			t.Skip("store does not claim ES256")
		}
		s, _ := open(t)
		k, err := s.Create(ctx, keystore.CreateRequest{Label: "default"})
		if err != nil {
			t.Fatal(err)
		}
		if k.Algorithm() != keystore.ES256 {
			t.Fatalf("zero CreateRequest.Algorithm made %v, want ES256", k.Algorithm())
		}
	})

	t.Run("DuplicateLabel", func(t *testing.T) {
		s, _ := open(t)
		alg := claimed[0]
		k, err := s.Create(ctx, keystore.CreateRequest{Label: "dup", Algorithm: alg})
		if err != nil {
			t.Fatal(err)
		}
		_, err = s.Create(ctx, keystore.CreateRequest{Label: "dup", Algorithm: alg})
		if !errors.Is(err, keystore.ErrExists) {
			t.Fatalf("second Create: err = %v, want ErrExists", err)
		}
		g, err := s.Get(ctx, "dup")
		if err != nil {
			t.Fatal(err)
		}
		if !publicEqual(g.Public(), k.Public()) {
			t.Fatal("refused duplicate Create replaced the first key")
		}
		checkSigns(t, k, "original after refused duplicate")
	})

	t.Run("MissingLabel", func(t *testing.T) {
		s, _ := open(t)
		if _, err := s.Get(ctx, "missing"); !errors.Is(err, keystore.ErrNotFound) {
			t.Fatalf("Get(missing): err = %v, want ErrNotFound", err)
		}
		if err := s.Delete(ctx, "missing"); !errors.Is(err, keystore.ErrNotFound) {
			t.Fatalf("Delete(missing): err = %v, want ErrNotFound", err)
		}
	})

	t.Run("List", func(t *testing.T) {
		s, _ := open(t)
		if labels, err := s.List(ctx); err != nil || len(labels) != 0 {
			t.Fatalf("List on empty store = %v, %v", labels, err)
		}
		want := []string{"a-key", "b.key", "c_key"}
		for _, l := range []string{"c_key", "a-key", "b.key"} {
			if _, err := s.Create(ctx, keystore.CreateRequest{Label: l, Algorithm: claimed[0]}); err != nil {
				t.Fatal(err)
			}
		}
		got, err := s.List(ctx)
		if err != nil || !slices.Equal(got, want) {
			t.Fatalf("List = %v, %v; want %v", got, err, want)
		}
	})

	t.Run("DeleteThenUse", func(t *testing.T) {
		s, _ := open(t)
		k, err := s.Create(ctx, keystore.CreateRequest{Label: "doomed", Algorithm: claimed[0]})
		if err != nil {
			t.Fatal(err)
		}
		keep, err := s.Create(ctx, keystore.CreateRequest{Label: "kept", Algorithm: claimed[0]})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Delete(ctx, "doomed"); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		if _, err := s.Get(ctx, "doomed"); !errors.Is(err, keystore.ErrNotFound) {
			t.Fatalf("Get after Delete: err = %v, want ErrNotFound", err)
		}
		if _, err := sign(k, []byte("after delete")); !errors.Is(err, keystore.ErrNotFound) {
			t.Fatalf("Sign with a deleted key: err = %v, want ErrNotFound", err)
		}
		if err := s.Delete(ctx, "doomed"); !errors.Is(err, keystore.ErrNotFound) {
			t.Fatalf("second Delete: err = %v, want ErrNotFound", err)
		}
		if labels, _ := s.List(ctx); !slices.Equal(labels, []string{"kept"}) {
			t.Fatalf("List after Delete = %v, want [kept]", labels)
		}
		checkSigns(t, keep, "other key after delete")
		// The label can be used again, for a new key.
		k2, err := s.Create(ctx, keystore.CreateRequest{Label: "doomed", Algorithm: claimed[0]})
		if err != nil {
			t.Fatalf("Create after Delete: %v", err)
		}
		if publicEqual(k2.Public(), k.Public()) {
			t.Fatal("re-created key has the deleted key's public key")
		}
		if _, err := sign(k, []byte("old handle")); err == nil {
			t.Fatal("handle to the deleted key signs with the re-created one")
		}
		checkSigns(t, k2, "re-created")
	})

	t.Run("Persistence", func(t *testing.T) {
		if !cfg.Persistent {
			t.Skip("store is not persistent")
		}
		s, opener := open(t)
		var made []keystore.Key
		for i, alg := range claimed {
			k, err := s.Create(ctx, keystore.CreateRequest{Label: fmt.Sprintf("persist-%d", i), Algorithm: alg})
			if err != nil {
				t.Fatal(err)
			}
			made = append(made, k)
		}
		if err := s.Delete(ctx, "persist-0"); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		s2, err := opener()
		if err != nil {
			t.Fatalf("reopen: %v", err)
		}
		defer s2.Close()
		if _, err := s2.Get(ctx, "persist-0"); !errors.Is(err, keystore.ErrNotFound) {
			t.Fatalf("deleted key after reopen: err = %v, want ErrNotFound", err)
		}
		for _, k := range made[1:] {
			g, err := s2.Get(ctx, k.Label())
			if err != nil {
				t.Fatalf("Get(%q) after reopen: %v", k.Label(), err)
			}
			if !publicEqual(g.Public(), k.Public()) || g.Algorithm() != k.Algorithm() {
				t.Fatalf("key %q changed across reopen", k.Label())
			}
			checkSigns(t, g, "after reopen")
		}
		if !cfg.SkipConcurrentStores {
			s3, err := opener()
			if err != nil {
				t.Fatalf("second concurrent open: %v", err)
			}
			defer s3.Close()
			if _, err := s3.Create(ctx, keystore.CreateRequest{Label: "from-s3", Algorithm: claimed[0]}); err != nil {
				t.Fatal(err)
			}
			if _, err := s2.Get(ctx, "from-s3"); err != nil {
				t.Fatalf("key created through one store is not visible through another open on the same storage: %v", err)
			}
			if _, err := s2.Create(ctx, keystore.CreateRequest{Label: "from-s3", Algorithm: claimed[0]}); !errors.Is(err, keystore.ErrExists) {
				t.Fatalf("Create of a label another store made: err = %v, want ErrExists", err)
			}
		}
	})

	t.Run("ConcurrentSign", func(t *testing.T) {
		s, _ := open(t)
		k, err := s.Create(ctx, keystore.CreateRequest{Label: "busy", Algorithm: claimed[0]})
		if err != nil {
			t.Fatal(err)
		}
		const workers, each = 16, 8
		var wg sync.WaitGroup
		errs := make(chan error, workers)
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range each {
					msg := fmt.Appendf(nil, "worker %d message %d", w, i)
					sig, err := sign(k, msg)
					if err == nil {
						err = verify(k.Public(), k.Algorithm(), msg, sig)
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
			if _, err := s.Create(ctx, keystore.CreateRequest{Label: l, Algorithm: claimed[0]}); err != nil {
				t.Error(err)
			}
			if _, err := s.List(ctx); err != nil {
				t.Error(err)
			}
			if err := s.Delete(ctx, l); err != nil {
				t.Error(err)
			}
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("concurrent sign: %v", err)
		}
	})

	t.Run("ConcurrentCreate", func(t *testing.T) {
		s, _ := open(t)
		const workers = 16
		var wg sync.WaitGroup
		var mu sync.Mutex
		wins := 0
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := s.Create(ctx, keystore.CreateRequest{Label: "race", Algorithm: claimed[0]})
				switch {
				case err == nil:
					mu.Lock()
					wins++
					mu.Unlock()
				case !errors.Is(err, keystore.ErrExists):
					t.Errorf("racing Create: %v", err)
				}
			}()
		}
		wg.Wait()
		if wins != 1 {
			t.Fatalf("%d racing Creates of one label succeeded, want 1", wins)
		}
	})

	t.Run("BadLabels", func(t *testing.T) {
		s, _ := open(t)
		for _, label := range BadLabels() {
			if _, err := s.Create(ctx, keystore.CreateRequest{Label: label, Algorithm: claimed[0]}); !errors.Is(err, keystore.ErrInvalidLabel) {
				t.Errorf("Create(%q): err = %v, want ErrInvalidLabel", label, err)
			}
			if _, err := s.Get(ctx, label); !errors.Is(err, keystore.ErrInvalidLabel) {
				t.Errorf("Get(%q): err = %v, want ErrInvalidLabel", label, err)
			}
			if err := s.Delete(ctx, label); !errors.Is(err, keystore.ErrInvalidLabel) {
				t.Errorf("Delete(%q): err = %v, want ErrInvalidLabel", label, err)
			}
		}
		if labels, err := s.List(ctx); err != nil || len(labels) != 0 {
			t.Fatalf("bad labels left keys: %v, %v", labels, err)
		}
	})

	t.Run("UnknownAlgorithm", func(t *testing.T) {
		s, _ := open(t)
		for _, alg := range []keystore.Algorithm{-1, keystore.Algorithm(99)} {
			if _, err := s.Create(ctx, keystore.CreateRequest{Label: "odd", Algorithm: alg}); !errors.Is(err, keystore.ErrUnsupportedAlgorithm) {
				t.Errorf("Create(%v): err = %v, want ErrUnsupportedAlgorithm", alg, err)
			}
		}
		if labels, _ := s.List(ctx); len(labels) != 0 {
			t.Fatalf("refused Create left keys: %v", labels)
		}
	})

	t.Run("ErrorMessages", func(t *testing.T) {
		s, _ := open(t)
		errorCases(t, s, claimed)
	})

	t.Run("UseAfterClose", func(t *testing.T) {
		s, _ := open(t)
		k, err := s.Create(ctx, keystore.CreateRequest{Label: "closing", Algorithm: claimed[0]})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
		if _, err := s.Create(ctx, keystore.CreateRequest{Label: "late", Algorithm: claimed[0]}); !errors.Is(err, keystore.ErrClosed) {
			t.Errorf("Create after Close: err = %v, want ErrClosed", err)
		}
		if _, err := s.Get(ctx, "closing"); !errors.Is(err, keystore.ErrClosed) {
			t.Errorf("Get after Close: err = %v, want ErrClosed", err)
		}
		if _, err := s.List(ctx); !errors.Is(err, keystore.ErrClosed) {
			t.Errorf("List after Close: err = %v, want ErrClosed", err)
		}
		if err := s.Delete(ctx, "closing"); !errors.Is(err, keystore.ErrClosed) {
			t.Errorf("Delete after Close: err = %v, want ErrClosed", err)
		}
		if _, err := sign(k, []byte("late")); !errors.Is(err, keystore.ErrClosed) {
			t.Errorf("Sign after Close: err = %v, want ErrClosed", err)
		}
	})
}

// errorCases provokes the errors every store returns and checks their
// messages with [CheckErrorMessage].
func errorCases(t *testing.T, s keystore.Store, claimed []keystore.Algorithm) {
	ctx := context.Background()
	var errs []error
	note := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	k, err := s.Create(ctx, keystore.CreateRequest{Label: "msg", Algorithm: claimed[0]})
	if err != nil {
		t.Fatal(err)
	}
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
	if len(errs) < 10 {
		t.Fatalf("only %d errors provoked: %v", len(errs), errs)
	}
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
	if err != nil {
		t.Fatalf("%s: Sign: %v", when, err)
	}
	if err := verify(k.Public(), k.Algorithm(), msg, sig); err != nil {
		t.Fatalf("%s: %v", when, err)
	}
	// A signature over another message must not verify.
	if err := verify(k.Public(), k.Algorithm(), []byte("other"), sig); err == nil {
		t.Fatalf("%s: signature verifies for another message", when)
	}
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
		if _, err := k.Sign(rand.Reader, b.digest, b.opts); !errors.Is(err, keystore.ErrUnsupportedAlgorithm) {
			t.Errorf("%v key signing with %s: err = %v, want ErrUnsupportedAlgorithm", k.Algorithm(), b.name, err)
		}
	}
}

func publicEqual(a, b crypto.PublicKey) bool {
	type equaler interface{ Equal(crypto.PublicKey) bool }
	e, ok := a.(equaler)
	return ok && e.Equal(b)
}
