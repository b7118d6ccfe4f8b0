//go:build cgo

package pkcs11_test

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"os"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ztmkit/ztm/identity/keystore"
	"github.com/ztmkit/ztm/identity/keystore/keystoretest"
	"github.com/ztmkit/ztm/identity/keystore/pkcs11"
	"github.com/ztmkit/ztm/internal/softhsmtest"
)

func TestMain(m *testing.M) { os.Exit(softhsmtest.Main(m)) }

// softHSMAlgorithms is what SoftHSM 2.6.1 (Debian's softhsm2, built with
// EdDSA) offers: every algorithm ztm defines.
var softHSMAlgorithms = []keystore.Algorithm{keystore.ES256, keystore.ES384, keystore.EdDSA, keystore.PS256}

func config(tok softhsmtest.Token) pkcs11.Config {
	return pkcs11.Config{ModulePath: tok.Module, TokenLabel: tok.Label, PIN: tok.PIN}
}

func openToken(t *testing.T, tok softhsmtest.Token) *pkcs11.Store {
	t.Helper()
	s, err := pkcs11.Open(context.Background(), config(tok))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	keystoretest.Run(t, func(t *testing.T) keystoretest.Opener {
		tok := softhsmtest.New(t)
		return func() (keystore.Store, error) { return pkcs11.Open(context.Background(), config(tok)) }
	}, keystoretest.Config{Persistent: true, Algorithms: softHSMAlgorithms})
}

func TestAlgorithmsOfSoftHSM(t *testing.T) {
	s := openToken(t, softhsmtest.New(t))
	if got := s.Algorithms(); !slices.Equal(got, softHSMAlgorithms) {
		t.Fatalf("Algorithms() = %v, want %v", got, softHSMAlgorithms)
	}
}

// Two stores of the process on one token share the label lock: racing
// Creates of one label through both make exactly one key.
func TestTwoStoresRacingCreate(t *testing.T) {
	tok := softhsmtest.New(t)
	a, b := openToken(t, tok), openToken(t, tok)
	ctx := context.Background()
	var wg sync.WaitGroup
	var wins atomic.Int32
	for i := range 16 {
		s := a
		if i%2 == 1 {
			s = b
		}
		wg.Go(func() {
			_, err := s.Create(ctx, keystore.CreateRequest{Label: "race"})
			switch {
			case err == nil:
				wins.Add(1)
			case !errors.Is(err, keystore.ErrExists):
				t.Errorf("Create: %v", err)
			}
		})
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d Creates won, want 1", wins.Load())
	}
	// Closing one store leaves the other, and the login, working.
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	k, err := b.Get(ctx, "race")
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256([]byte("still here"))
	if _, err := k.Sign(rand.Reader, digest[:], crypto.SHA256); err != nil {
		t.Fatal(err)
	}
}

// Close while keys sign: signatures in flight finish, later ones fail with
// ErrClosed, nothing else goes wrong.
func TestCloseWhileSigning(t *testing.T) {
	tok := softhsmtest.New(t)
	s, err := pkcs11.Open(context.Background(), config(tok))
	if err != nil {
		t.Fatal(err)
	}
	k, err := s.Create(context.Background(), keystore.CreateRequest{Label: "busy"})
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256([]byte("busy"))
	var wg sync.WaitGroup
	var signed atomic.Int32
	for range 8 {
		wg.Go(func() {
			for {
				_, err := k.Sign(rand.Reader, digest[:], crypto.SHA256)
				if err != nil {
					if !errors.Is(err, keystore.ErrClosed) {
						t.Errorf("Sign during Close: %v", err)
					}
					return
				}
				signed.Add(1)
			}
		})
	}
	stopped := make(chan struct{})
	go func() { wg.Wait(); close(stopped) }()
	for signed.Load() < 20 {
		select {
		case <-stopped:
			t.Fatal("the signers stopped before Close")
		default:
			runtime.Gosched()
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
}

// With one session, concurrent operations wait for it in turn.
func TestOneSession(t *testing.T) {
	tok := softhsmtest.New(t)
	cfg := config(tok)
	cfg.MaxSessions = 1
	s, err := pkcs11.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	k, err := s.Create(ctx, keystore.CreateRequest{Label: "one", Algorithm: keystore.EdDSA})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for range 5 {
				if i%2 == 0 {
					if _, err := k.Sign(rand.Reader, []byte("message"), crypto.Hash(0)); err != nil {
						t.Error(err)
					}
				} else if _, err := s.Get(ctx, "one"); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	// A canceled context stops a wait for the session.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.Get(cctx, "one"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Get with a canceled context: err = %v", err)
	}
}
