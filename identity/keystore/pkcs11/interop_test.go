//go:build cgo

package pkcs11_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"strings"
	"sync"
	"testing"

	p11 "github.com/miekg/pkcs11"

	"github.com/ztmkit/ztm/identity/keystore"
	"github.com/ztmkit/ztm/internal/softhsmtest"
)

// raw is a plain miekg/pkcs11 session on a token, with no ztm code, for
// checking what the store wrote. It shares the module with the store (the
// module is initialized once per process).
type raw struct {
	ctx  *p11.Ctx
	slot uint
	sh   p11.SessionHandle
}

func openRaw(tb testing.TB, tok softhsmtest.Token) *raw {
	tb.Helper()
	ctx := p11.New(tok.Module)
	if ctx == nil {
		tb.Fatalf("cannot load %s", tok.Module)
	}
	owner := true
	if err := ctx.Initialize(); err != nil {
		if !errors.Is(err, p11.Error(p11.CKR_CRYPTOKI_ALREADY_INITIALIZED)) {
			tb.Fatal(err)
		}
		owner = false
	}
	slots, err := ctx.GetSlotList(true)
	if err != nil {
		tb.Fatal(err)
	}
	slot, found := uint(0), false
	for _, s := range slots {
		if info, err := ctx.GetTokenInfo(s); err == nil && info.Label == tok.Label {
			slot, found = s, true
		}
	}
	if !found {
		tb.Fatalf("token %q not visible", tok.Label)
	}
	sh, err := ctx.OpenSession(slot, p11.CKF_SERIAL_SESSION|p11.CKF_RW_SESSION)
	if err != nil {
		tb.Fatal(err)
	}
	if err := ctx.Login(sh, p11.CKU_USER, tok.PIN); err != nil && !errors.Is(err, p11.Error(p11.CKR_USER_ALREADY_LOGGED_IN)) {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		ctx.CloseSession(sh)
		if owner {
			ctx.Finalize()
		}
		ctx.Destroy()
	})
	return &raw{ctx: ctx, slot: slot, sh: sh}
}

// find returns the objects of a class with a label.
func (r *raw) find(tb testing.TB, class uint, label string) []p11.ObjectHandle {
	tb.Helper()
	if err := r.ctx.FindObjectsInit(r.sh, []*p11.Attribute{p11.NewAttribute(p11.CKA_CLASS, class), p11.NewAttribute(p11.CKA_LABEL, label)}); err != nil {
		tb.Fatal(err)
	}
	hs, _, err := r.ctx.FindObjects(r.sh, 100)
	if err != nil {
		tb.Fatal(err)
	}
	if err := r.ctx.FindObjectsFinal(r.sh); err != nil {
		tb.Fatal(err)
	}
	return hs
}

// flags reads boolean attributes of the one private key labelled label.
func (r *raw) flags(t *testing.T, label string) map[string]bool {
	t.Helper()
	hs := r.find(t, p11.CKO_PRIVATE_KEY, label)
	if len(hs) != 1 {
		t.Fatalf("%d private keys labelled %q, want 1", len(hs), label)
	}
	names := map[uint]string{p11.CKA_EXTRACTABLE: "extractable", p11.CKA_SENSITIVE: "sensitive", p11.CKA_TOKEN: "token",
		p11.CKA_PRIVATE: "private", p11.CKA_NEVER_EXTRACTABLE: "never-extractable", p11.CKA_ALWAYS_SENSITIVE: "always-sensitive", p11.CKA_SIGN: "sign",
		p11.CKA_DECRYPT: "decrypt", p11.CKA_UNWRAP: "unwrap", p11.CKA_DERIVE: "derive", p11.CKA_SIGN_RECOVER: "sign-recover",
		p11.CKA_WRAP_WITH_TRUSTED: "wrap-with-trusted"}
	var tmpl []*p11.Attribute
	for typ := range names {
		tmpl = append(tmpl, p11.NewAttribute(typ, nil))
	}
	attrs, err := r.ctx.GetAttributeValue(r.sh, hs[0], tmpl)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, a := range attrs {
		out[names[a.Type]] = len(a.Value) == 1 && a.Value[0] == 1
	}
	// The private value itself must not be readable.
	secret := uint(p11.CKA_VALUE)
	if _, err := r.ctx.GetAttributeValue(r.sh, hs[0], []*p11.Attribute{p11.NewAttribute(p11.CKA_MODULUS, nil)}); err == nil {
		secret = p11.CKA_PRIVATE_EXPONENT // an RSA key
	}
	if _, err := r.ctx.GetAttributeValue(r.sh, hs[0], []*p11.Attribute{p11.NewAttribute(secret, nil)}); !errors.Is(err, p11.Error(p11.CKR_ATTRIBUTE_SENSITIVE)) {
		t.Errorf("reading CKA_VALUE of %q: err = %v, want CKR_ATTRIBUTE_SENSITIVE", label, err)
	}
	return out
}

func TestInteropKeyFromTool(t *testing.T) {
	tok := softhsmtest.New(t)
	tok.Tool(t, true, "--keypairgen", "--key-type", "EC:prime256v1", "--label", "fromtool", "--id", "01")
	s := openToken(t, tok)
	ctx := context.Background()
	k, err := s.Get(ctx, "fromtool")
	if err != nil {
		t.Fatalf("Get of the key pkcs11-tool made: %v", err)
	}
	if k.Algorithm() != keystore.ES256 {
		t.Fatalf("algorithm %v, want ES256", k.Algorithm())
	}
	digest := sha256.Sum256([]byte("made by pkcs11-tool"))
	sig, err := k.Sign(rand.Reader, digest[:], crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	if !ecdsa.VerifyASN1(k.Public().(*ecdsa.PublicKey), digest[:], sig) {
		t.Fatal("signature by the pkcs11-tool key does not verify")
	}
	if labels, err := s.List(ctx); err != nil || len(labels) != 1 || labels[0] != "fromtool" {
		t.Fatalf("List = %v, %v", labels, err)
	}
	// Delete removes both objects pkcs11-tool made.
	if err := s.Delete(ctx, "fromtool"); err != nil {
		t.Fatal(err)
	}
	if out := tok.Tool(t, true, "--list-objects"); strings.Contains(out, "fromtool") {
		t.Fatalf("objects left after Delete:\n%s", out)
	}
}

func TestInteropToolSeesOurKey(t *testing.T) {
	tok := softhsmtest.New(t)
	s := openToken(t, tok)
	ctx := context.Background()
	k, err := s.Create(ctx, keystore.CreateRequest{Label: "station"})
	if err != nil {
		t.Fatal(err)
	}
	out := tok.Tool(t, true, "--list-objects")
	if !strings.Contains(out, "Private Key Object; EC") || !strings.Contains(out, "Public Key Object; EC") || strings.Count(out, `label:      station`) != 2 {
		t.Fatalf("pkcs11-tool --list-objects does not show the key pair labelled station:\n%s", out)
	}
	r := openRaw(t, tok)
	f := r.flags(t, "station")
	want := map[string]bool{"extractable": false, "sensitive": true, "token": true, "private": true, "never-extractable": true, "always-sensitive": true, "sign": true}
	for name, v := range want {
		if f[name] != v {
			t.Errorf("CKA %s = %v, want %v", name, f[name], v)
		}
	}
	if id := k.(interface{ ID() []byte }).ID(); len(id) != 16 {
		t.Errorf("CKA_ID of %d bytes, want 16", len(id))
	}

	// An exportable key is extractable, and still sensitive: it can leave
	// the token only wrapped.
	if _, err := s.Create(ctx, keystore.CreateRequest{Label: "inject", Exportable: true}); err != nil {
		t.Fatal(err)
	}
	f = r.flags(t, "inject")
	if !f["extractable"] || !f["sensitive"] {
		t.Errorf("exportable key: extractable %v sensitive %v, want true true", f["extractable"], f["sensitive"])
	}
}

// A key deleted by another process stops signing.
func TestDeletedByTool(t *testing.T) {
	tok := softhsmtest.New(t)
	s := openToken(t, tok)
	ctx := context.Background()
	k, err := s.Create(ctx, keystore.CreateRequest{Label: "victim"})
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256([]byte("x"))
	if _, err := k.Sign(rand.Reader, digest[:], crypto.SHA256); err != nil {
		t.Fatal(err)
	}
	tok.Tool(t, true, "--delete-object", "--type", "privkey", "--label", "victim")
	if _, err := k.Sign(rand.Reader, digest[:], crypto.SHA256); !errors.Is(err, keystore.ErrNotFound) {
		t.Fatalf("Sign after pkcs11-tool deleted the key: err = %v, want ErrNotFound", err)
	}
	if _, err := s.Get(ctx, "victim"); !errors.Is(err, keystore.ErrNotFound) {
		t.Fatalf("Get after pkcs11-tool deleted the key: err = %v, want ErrNotFound", err)
	}
}

// Another library in the process may log the process out, or close all its
// sessions: the store logs in again, and its keys keep working (and are
// not taken for deleted, though private objects are hidden while logged
// out).
func TestSurvivesLogoutAndClosedSessions(t *testing.T) {
	tok := softhsmtest.New(t)
	s := openToken(t, tok)
	ctx := context.Background()
	k, err := s.Create(ctx, keystore.CreateRequest{Label: "steady"})
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256([]byte("steady"))
	signs := func(when string) {
		t.Helper()
		sig, err := k.Sign(rand.Reader, digest[:], crypto.SHA256)
		if err != nil {
			t.Fatalf("Sign %s: %v", when, err)
		}
		if !ecdsa.VerifyASN1(k.Public().(*ecdsa.PublicKey), digest[:], sig) {
			t.Fatalf("Sign %s: bad signature", when)
		}
	}
	signs("before")
	for _, tc := range []struct {
		name   string
		break_ func(r *raw) error
	}{
		{"C_Logout", func(r *raw) error { return r.ctx.Logout(r.sh) }},
		{"C_CloseAllSessions", func(r *raw) error { return r.ctx.CloseAllSessions(r.slot) }},
	} {
		for _, use := range []string{"Sign", "Get", "List", "Create"} {
			// Fill the session pool with idle sessions first.
			var wg sync.WaitGroup
			for range 8 {
				wg.Go(func() {
					if _, err := k.Sign(rand.Reader, digest[:], crypto.SHA256); err != nil {
						t.Error(err)
					}
				})
			}
			wg.Wait()
			r := openRaw(t, tok)
			if err := tc.break_(r); err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			switch use {
			case "Sign":
				signs("after " + tc.name)
			case "Get":
				if _, err := s.Get(ctx, "steady"); err != nil {
					t.Fatalf("Get after %s: %v", tc.name, err)
				}
			case "List":
				if labels, err := s.List(ctx); err != nil || len(labels) != 1 {
					t.Fatalf("List after %s = %v, %v", tc.name, labels, err)
				}
			case "Create":
				if _, err := s.Create(ctx, keystore.CreateRequest{Label: "steady"}); !errors.Is(err, keystore.ErrExists) {
					t.Fatalf("Create of a taken label after %s: err = %v, want ErrExists", tc.name, err)
				}
			}
		}
	}
	signs("at the end")
}
