//go:build cgo

package pkcs11_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/ztmkit/ztm/identity/keystore"
	"github.com/ztmkit/ztm/identity/keystore/pkcs11"
	"github.com/ztmkit/ztm/internal/softhsmtest"
)

func TestOpenByURI(t *testing.T) {
	tok := softhsmtest.New(t)
	ctx := context.Background()
	if !slices.Contains(keystore.Schemes(), "pkcs11") {
		t.Fatal(`importing the package did not register "pkcs11"`)
	}
	pinFile := filepath.Join(t.TempDir(), "pin")
	if err := os.WriteFile(pinFile, []byte(tok.PIN+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, uri := range []string{
		tok.URI(),
		"pkcs11:token=" + tok.Label + ";object=station?module-path=" + tok.Module + "&pin-source=file:" + pinFile,
		"pkcs11:token=" + tok.Label + "?module-path=" + tok.Module + "&pin-source=" + pinFile + "&max-sessions=2",
	} {
		s, err := keystore.Open(ctx, uri)
		if err != nil {
			t.Fatalf("Open(%s): %v", keystore.RedactURI(uri), err)
		}
		if _, err := s.Create(ctx, keystore.CreateRequest{Label: "k"}); err != nil && !errors.Is(err, keystore.ErrExists) {
			t.Fatal(err)
		}
		if _, err := s.Get(ctx, "k"); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestOpenErrors(t *testing.T) {
	tok := softhsmtest.New(t)
	other := softhsmtest.New(t)
	ctx := context.Background()
	notLib := filepath.Join(t.TempDir(), "notalib.so")
	if err := os.WriteFile(notLib, []byte("not an ELF file"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(t.TempDir(), "no", "libmissing-pkcs11.so")
	for _, tc := range []struct {
		name  string
		cfg   pkcs11.Config
		is    error  // the error must wrap this, if set
		typed any    // the error must be of this type (errors.As), if set
		msg   string // the message must contain this
	}{
		{"wrong PIN", pkcs11.Config{ModulePath: tok.Module, TokenLabel: tok.Label, PIN: "0000wrong"}, keystore.ErrAuth, nil, "CKR_PIN_INCORRECT"},
		{"no PIN", pkcs11.Config{ModulePath: tok.Module, TokenLabel: tok.Label}, keystore.ErrAuth, nil, "needs a PIN"},
		{"missing module", pkcs11.Config{ModulePath: missing, TokenLabel: tok.Label, PIN: tok.PIN}, fs.ErrNotExist, new(*pkcs11.ModuleError), missing},
		{"missing module names the package", pkcs11.Config{ModulePath: missing, TokenLabel: tok.Label, PIN: tok.PIN}, nil, new(*pkcs11.ModuleError), "softhsm2"},
		{"not a library", pkcs11.Config{ModulePath: notLib, TokenLabel: tok.Label, PIN: tok.PIN}, nil, new(*pkcs11.ModuleError), "cannot load"},
		{"relative module", pkcs11.Config{ModulePath: "libsofthsm2.so", TokenLabel: tok.Label, PIN: tok.PIN}, nil, new(*pkcs11.ModuleError), "absolute"},
		{"no token", pkcs11.Config{ModulePath: tok.Module, TokenLabel: "no-such-token", PIN: tok.PIN}, pkcs11.ErrTokenNotFound, nil, "no-such-token"},
		{"no selector", pkcs11.Config{ModulePath: tok.Module, PIN: tok.PIN}, keystore.ErrInvalidURI, new(*keystore.URIError), "token"},
		{"no module path", pkcs11.Config{TokenLabel: tok.Label, PIN: tok.PIN}, keystore.ErrInvalidURI, new(*keystore.URIError), "module-path"},
		{"missing pin-source", pkcs11.Config{ModulePath: tok.Module, TokenLabel: tok.Label, PINSource: "file:" + missing}, fs.ErrNotExist, nil, "pin-source"},
		{"slot and label disagree", pkcs11.Config{ModulePath: tok.Module, TokenLabel: tok.Label, HasSlotID: true, SlotID: 1 << 30, PIN: tok.PIN}, pkcs11.ErrTokenNotFound, nil, ""},
		{"bad object", pkcs11.Config{ModulePath: tok.Module, TokenLabel: tok.Label, PIN: tok.PIN, Object: "a\x00b"}, keystore.ErrInvalidLabel, new(*keystore.URIError), "object"},
		{"negative max sessions", pkcs11.Config{ModulePath: tok.Module, TokenLabel: tok.Label, PIN: tok.PIN, MaxSessions: -1}, keystore.ErrInvalidURI, new(*keystore.URIError), "max-sessions"},
		{"other token's PIN", pkcs11.Config{ModulePath: tok.Module, TokenLabel: tok.Label, PIN: other.PIN}, keystore.ErrAuth, nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := pkcs11.Open(ctx, tc.cfg)
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			t.Log(err)
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("err = %v, want one wrapping %v", err, tc.is)
			}
			if tc.typed != nil && !errors.As(err, tc.typed) {
				t.Errorf("err = %v (%T), want a %T", err, err, tc.typed)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("err = %q, want it to mention %q", err, tc.msg)
			}
			for _, pin := range []string{tok.PIN, other.PIN, "0000wrong"} {
				if strings.Contains(err.Error(), pin) {
					t.Errorf("error message carries a PIN: %q", err)
				}
			}
		})
	}

	// With a store open (and so the process logged in), a second store
	// with a wrong PIN is still refused.
	s := openToken(t, tok)
	if _, err := s.Create(ctx, keystore.CreateRequest{Label: "k"}); err != nil {
		t.Fatal(err)
	}
	if s2, err := pkcs11.Open(ctx, pkcs11.Config{ModulePath: tok.Module, TokenLabel: tok.Label, PIN: "0000wrong"}); !errors.Is(err, keystore.ErrAuth) {
		if s2 != nil {
			s2.Close()
		}
		t.Fatalf("second store with a wrong PIN: err = %v, want ErrAuth", err)
	}
	// The refusal did not disturb the open store.
	if _, err := s.Get(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	// The URI form reports a wrong PIN the same way, and redacts it.
	_, err := keystore.Open(ctx, "pkcs11:token="+tok.Label+"?module-path="+tok.Module+"&pin-value=0000wrong")
	if !errors.Is(err, keystore.ErrAuth) || strings.Contains(err.Error(), "0000wrong") {
		t.Fatalf("keystore.Open with a wrong pin-value: err = %v", err)
	}
}

func TestParseURIErrors(t *testing.T) {
	const mod = "?module-path=/usr/lib/softhsm/libsofthsm2.so"
	for _, tc := range []struct{ uri, part string }{
		{"file:/x", "scheme"},
		{"pkcs11", "scheme"},
		{"pkcs11:token=a" + mod + "#frag", "fragment"},
		{"pkcs11:object=k" + mod, "token"},
		{"pkcs11:token=a", "module-path"},
		{"pkcs11:token=a?module-path=", "module-path"},
		{"pkcs11:token=a;token=b" + mod, "token"},
		{"pkcs11:token=a" + mod + "&module-path=/x", "module-path"},
		{"pkcs11:token=a%2" + mod, "token"},
		{"pkcs11:token=a%zz" + mod, "token"},
		{"pkcs11:token=a" + mod + "&pin-value=%g1", "pin-value"},
		{"pkcs11:token=a;colour=red" + mod, "colour"},
		{"pkcs11:token=a" + mod + "&colour=red", "colour"},
		{"pkcs11:token=a;id=" + mod, "id"},
		{"pkcs11:token=a;id=%0" + mod, "id"},
		{"pkcs11:token=a;object=%ff" + mod, "object"},
		{"pkcs11:token=a;object=a%00b" + mod, "object"},
		{"pkcs11:token=a;object=" + mod, "object"},
		{"pkcs11:token=a;library-description=x" + mod, "library-description"},
		{"pkcs11:token=a;type=cert" + mod, "type"},
		{"pkcs11:token=a;slot-id=x" + mod, "slot-id"},
		{"pkcs11:token=a;slot-id=-1" + mod, "slot-id"},
		{"pkcs11:token=a;module-path=/x", "module-path"},
		{"pkcs11:token=a" + mod + "&token=b", "token"},
		{"pkcs11:token=a;;serial=1" + mod, "attribute"},
		{"pkcs11:token" + mod, "token"},
		{"pkcs11:=x" + mod, "attribute"},
		{"pkcs11:token=a" + mod + "&module-name=softhsm2", "module-name"},
		{"pkcs11:token=a" + mod + "&pin-source=relative/pin", "pin-source"},
		{"pkcs11:token=a" + mod + "&pin-source=file://host/pin", "pin-source"},
		{"pkcs11:token=a" + mod + "&pin-source=file:/p&pin-value=1234", "pin-source"},
		{"pkcs11:token=a" + mod + "&max-sessions=0", "max-sessions"},
		{"pkcs11:pin-value=1234" + mod, "pin-value"},
		{"pkcs11:token=a;pin-value=1234" + mod, "pin-value"},
		{"pkcs11:token=a" + mod + "&pin-value=1234&pin-value=1234", "pin-value"},
	} {
		_, err := pkcs11.ParseURI(tc.uri)
		var ue *keystore.URIError
		if !errors.As(err, &ue) || !errors.Is(err, keystore.ErrInvalidURI) {
			t.Errorf("ParseURI(%q): err = %v, want a *keystore.URIError", tc.uri, err)
			continue
		}
		if ue.Part != tc.part {
			t.Errorf("ParseURI(%q): Part = %q, want %q (%v)", tc.uri, ue.Part, tc.part, err)
		}
		if strings.Contains(err.Error(), "1234") {
			t.Errorf("ParseURI(%q): error carries the PIN: %v", tc.uri, err)
		}
	}
}

func TestParseURI(t *testing.T) {
	cfg, err := pkcs11.ParseURI("pkcs11:token=Line%201;serial=0123;manufacturer=SoftHSM%20project;model=SoftHSM%20v2;slot-id=7;object=station%20k%C3%A9y;id=%01%ff;type=private;x-vendor=1" +
		"?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-value=12%2B4&max-sessions=4&x-other=y")
	if err != nil {
		t.Fatal(err)
	}
	want := pkcs11.Config{ModulePath: "/usr/lib/softhsm/libsofthsm2.so", TokenLabel: "Line 1", TokenSerial: "0123",
		TokenManufacturer: "SoftHSM project", TokenModel: "SoftHSM v2", SlotID: 7, HasSlotID: true, Object: "station kéy", ID: []byte{1, 0xff}, PIN: "12+4", MaxSessions: 4}
	if !reflect.DeepEqual(*cfg, want) {
		t.Fatalf("ParseURI = %#v\nwant        %#v", *cfg, want)
	}
	s := cfg.String()
	if strings.Contains(s, "12+4") || strings.Contains(s, "12%2B4") || strings.Contains(fmtAll(*cfg), "12+4") {
		t.Fatalf("the PIN shows in %q", s)
	}
	// String round-trips, the PIN aside.
	cfg.PIN = ""
	cfg.PINSource = "file:/etc/ztm/pin"
	back, err := pkcs11.ParseURI(cfg.String())
	if err != nil || !reflect.DeepEqual(*back, *cfg) {
		t.Fatalf("ParseURI(%q) = %#v, %v; want %#v", cfg.String(), back, err, cfg)
	}
}

func fmtAll(c pkcs11.Config) string {
	return fmt.Sprintf("%v %+v %#v %s", c, c, c, c) + fmt.Sprint(&c)
}
