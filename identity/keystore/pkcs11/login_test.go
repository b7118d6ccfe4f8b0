//go:build cgo

package pkcs11_test

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"sync"
	"testing"

	p11 "github.com/miekg/pkcs11"

	"github.com/ztmkit/ztm/identity/keystore"
	"github.com/ztmkit/ztm/identity/keystore/pkcs11"
	"github.com/ztmkit/ztm/internal/softhsmtest"
)

// faultyToken makes a token, a fault-injecting module over it and a store
// opened through that module, with one key.
func faultyToken(t *testing.T) (*softhsmtest.Faulty, softhsmtest.Token, *pkcs11.Store, keystore.Key) {
	t.Helper()
	f := softhsmtest.NewFaulty(t)
	tok := softhsmtest.New(t)
	tok.Module = f.Module
	s := openToken(t, tok)
	k, err := s.Create(context.Background(), keystore.CreateRequest{Label: "station"})
	if err != nil {
		t.Fatal(err)
	}
	return f, tok, s, k
}

// logout logs the process out of the token, as a token that was pulled
// and put back, or reset, does.
func logout(t *testing.T, tok softhsmtest.Token) {
	t.Helper()
	r := openRaw(t, tok)
	if err := r.ctx.Logout(r.sh); err != nil {
		t.Fatal(err)
	}
}

// wantRefused checks that err is the token's refusal: ErrAuth with the
// CK_RV, and not ErrNotFound.
func wantRefused(t *testing.T, what string, err error, code uint) {
	t.Helper()
	var pe *pkcs11.Error
	switch {
	case err == nil:
		t.Fatalf("%s succeeded with a refused PIN", what)
	case errors.Is(err, keystore.ErrNotFound):
		t.Fatalf("%s: a refused PIN looks like a deleted key: %v", what, err)
	case !errors.Is(err, keystore.ErrAuth):
		t.Fatalf("%s: err = %v, want ErrAuth", what, err)
	case !errors.As(err, &pe) || pe.Code != code:
		t.Fatalf("%s: err = %v, want the token's CK_RV %#x", what, err, code)
	}
}

// A token that drops the login and then refuses the cached PIN gets one
// C_Login, not one per operation: 64 goroutines signing, and Get, List,
// Create and Delete, all fail with ErrAuth and the CK_RV. No further login
// is tried, even once the token would accept the PIN, until Store.Login.
func TestStalePINOneLogin(t *testing.T) {
	for _, tc := range []struct {
		name string
		code uint
	}{
		{"incorrect", p11.CKR_PIN_INCORRECT},
		{"locked", p11.CKR_PIN_LOCKED},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, tok, s, k := faultyToken(t)
			ctx := context.Background()
			digest := sha256.Sum256([]byte("stale"))
			logout(t, tok)
			base := len(f.Logins(t))
			f.RefuseLogin(t, tc.code)

			var wg sync.WaitGroup
			errs := make(chan error, 64*20)
			for range 64 {
				wg.Go(func() {
					for range 20 {
						_, err := k.Sign(rand.Reader, digest[:], crypto.SHA256)
						errs <- err
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				wantRefused(t, "Sign", err, tc.code)
			}
			_, err := s.Get(ctx, "station")
			wantRefused(t, "Get", err, tc.code)
			_, err = s.List(ctx)
			wantRefused(t, "List", err, tc.code)
			_, err = s.Create(ctx, keystore.CreateRequest{Label: "other"})
			wantRefused(t, "Create", err, tc.code)
			wantRefused(t, "Delete", s.Delete(ctx, "station"), tc.code)
			if n := len(f.Logins(t)) - base; n != 1 {
				t.Fatalf("%d C_Login calls after the logout, want 1", n)
			}

			// The token would take the PIN now, but no login is tried
			// until the caller asks.
			f.RefuseLogin(t, 0)
			_, err = k.Sign(rand.Reader, digest[:], crypto.SHA256)
			wantRefused(t, "Sign after the token was fixed", err, tc.code)
			if n := len(f.Logins(t)) - base; n != 1 {
				t.Fatalf("%d C_Login calls before Store.Login, want 1", n)
			}
			if err := s.Login(ctx, tok.PIN); err != nil {
				t.Fatalf("Login: %v", err)
			}
			if n := len(f.Logins(t)) - base; n != 2 {
				t.Fatalf("%d C_Login calls after Store.Login, want 2", n)
			}
			// The key was not taken for deleted.
			if _, err := k.Sign(rand.Reader, digest[:], crypto.SHA256); err != nil {
				t.Fatalf("Sign after Login: %v", err)
			}
			if _, err := s.Get(ctx, "station"); err != nil {
				t.Fatalf("Get after Login: %v", err)
			}
		})
	}
}

// Store.Login with a PIN the token refuses is one C_Login, and ErrAuth;
// while logged in, a PIN other than the login's is refused without a
// C_Login.
func TestLoginExplicit(t *testing.T) {
	f, tok, s, _ := faultyToken(t)
	ctx := context.Background()
	base := len(f.Logins(t))
	if err := s.Login(ctx, "not-the-pin"); !errors.Is(err, keystore.ErrAuth) {
		t.Fatalf("Login with another PIN while logged in: err = %v, want ErrAuth", err)
	}
	if err := s.Login(ctx, tok.PIN); err != nil {
		t.Fatalf("Login with the PIN while logged in: %v", err)
	}
	if n := len(f.Logins(t)) - base; n != 0 {
		t.Fatalf("%d C_Login calls while logged in, want 0", n)
	}
	logout(t, tok)
	base = len(f.Logins(t))
	wantRefused(t, "Login with a wrong PIN", s.Login(ctx, "not-the-pin"), p11.CKR_PIN_INCORRECT)
	if n := len(f.Logins(t)) - base; n != 1 {
		t.Fatalf("%d C_Login calls for one Login, want 1", n)
	}
	// A second store with the right PIN is an explicit attempt too.
	s2, err := pkcs11.Open(ctx, config(tok))
	if err != nil {
		t.Fatalf("Open with the right PIN after a refusal: %v", err)
	}
	defer s2.Close()
	if n := len(f.Logins(t)) - base; n != 2 {
		t.Fatalf("%d C_Login calls, want 2", n)
	}
	if _, err := s.Get(ctx, "station"); err != nil {
		t.Fatalf("Get: %v", err)
	}
}

// A removed token fails operations without a login attempt and without
// ErrNotFound; put back (and logged out, as a re-inserted token is), the
// cached PIN, never refused, logs in again once.
func TestRemovedToken(t *testing.T) {
	f, tok, s, k := faultyToken(t)
	ctx := context.Background()
	digest := sha256.Sum256([]byte("removed"))
	base := len(f.Logins(t))
	f.Remove(t, true)
	for range 10 {
		if _, err := k.Sign(rand.Reader, digest[:], crypto.SHA256); err == nil || errors.Is(err, keystore.ErrNotFound) {
			t.Fatalf("Sign on a removed token: err = %v, want an error other than ErrNotFound", err)
		}
		if _, err := s.Get(ctx, "station"); err == nil || errors.Is(err, keystore.ErrNotFound) {
			t.Fatalf("Get on a removed token: err = %v, want an error other than ErrNotFound", err)
		}
	}
	if n := len(f.Logins(t)) - base; n != 0 {
		t.Fatalf("%d C_Login calls on a removed token, want 0", n)
	}
	f.Remove(t, false)
	logout(t, tok)
	base = len(f.Logins(t))
	for range 5 {
		if _, err := k.Sign(rand.Reader, digest[:], crypto.SHA256); err != nil {
			t.Fatalf("Sign after the token is back: %v", err)
		}
	}
	if n := len(f.Logins(t)) - base; n != 1 {
		t.Fatalf("%d C_Login calls after the token came back, want 1", n)
	}
}
