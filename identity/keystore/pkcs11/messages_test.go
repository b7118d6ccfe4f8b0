//go:build cgo

package pkcs11_test

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"testing"

	p11 "github.com/miekg/pkcs11"

	"github.com/ztmkit/ztm/identity/keystore"
	"github.com/ztmkit/ztm/identity/keystore/keystoretest"
	"github.com/ztmkit/ztm/identity/keystore/pkcs11"
	"github.com/ztmkit/ztm/internal/softhsmtest"
)

// Every error the package returns carries the "pkcs11:" prefix once, also
// when it wraps a failed PKCS#11 call, a refused login or a module error.
func TestErrorMessagesOnePrefix(t *testing.T) {
	ctx := context.Background()
	var errs []error
	note := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	digest := sha256.Sum256([]byte("messages"))

	// A refused PIN, a removed token.
	f, tok, s, k := faultyToken(t)
	logout(t, tok)
	f.RefuseLogin(t, p11.CKR_PIN_INCORRECT)
	_, err := k.Sign(rand.Reader, digest[:], crypto.SHA256)
	note(err)
	_, err = k.Sign(rand.Reader, digest[:], crypto.SHA256)
	note(err)
	_, err = s.Get(ctx, "station")
	note(err)
	_, err = s.List(ctx)
	note(err)
	_, err = s.Create(ctx, keystore.CreateRequest{Label: "x"})
	note(err)
	note(s.Login(ctx, "wrong"))
	f.RefuseLogin(t, 0)
	if err := s.Login(ctx, tok.PIN); err != nil {
		t.Fatal(err)
	}
	f.Remove(t, true)
	_, err = k.Sign(rand.Reader, digest[:], crypto.SHA256)
	note(err)
	_, err = s.Get(ctx, "station")
	note(err)
	f.Remove(t, false)

	// Keys and URIs.
	_, err = s.Get(ctx, "pkcs11:token=other;object=x")
	note(err)
	_, err = s.Get(ctx, "pkcs11:object=missing")
	note(err)
	_, err = pkcs11.ParseURI("pkcs11:token=a;id=")
	note(err)
	_, err = pkcs11.Open(ctx, pkcs11.Config{ModulePath: "/nonexistent/lib.so", TokenLabel: "x"})
	note(err)
	_, err = pkcs11.Open(ctx, pkcs11.Config{ModulePath: tok.Module, TokenLabel: tok.Label, PIN: "wrong"})
	note(err)
	_, err = pkcs11.Open(ctx, pkcs11.Config{ModulePath: tok.Module, TokenLabel: "no-such-token", PIN: "1"})
	note(err)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// Export refusals.
	_, s2, e := exportToken(t)
	fixed, err := s2.Create(ctx, keystore.CreateRequest{Label: "fixed"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.ExportKey(ctx, fixed)
	note(err)
	ed, err := s2.Create(ctx, keystore.CreateRequest{Label: "ed", Algorithm: keystore.EdDSA, Exportable: true})
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.ExportKey(ctx, ed)
	note(err)
	bad := *e
	bad.KEK = make([]byte, 16)
	exp, err := s2.Create(ctx, keystore.CreateRequest{Label: "exp", Exportable: true})
	if err != nil {
		t.Fatal(err)
	}
	_, err = bad.ExportKey(ctx, exp)
	note(err)
	bad = *e
	bad.WrappingKey = "none"
	_, err = bad.ExportKey(ctx, exp)
	note(err)
	note(pkcs11.InstallWrappingKey(ctx, config(softhsmtest.Token{Module: tok.Module, Label: "no-such-token"}), "so", "w", make([]byte, 16)))

	if len(errs) < 18 {
		t.Fatalf("only %d errors provoked: %v", len(errs), errs)
	}
	for _, err := range errs {
		keystoretest.CheckErrorMessage(t, err)
	}
}
