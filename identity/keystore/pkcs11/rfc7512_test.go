//go:build cgo

package pkcs11_test

import (
	"context"
	"crypto"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ztmkit/ztm/identity/keystore"
	"github.com/ztmkit/ztm/internal/softhsmtest"
)

// Keys that pkcs11-tool made with an id and no label, with a label that
// has a space, and with a UTF-8 label and an id, are opened by RFC 7512
// URI (also the store's own URI with the key's attributes added), listed
// under names that reopen them, sign verifiably (openssl, against the
// public key pkcs11-tool exports), and are deleted by URI.
func TestInteropRFC7512Keys(t *testing.T) {
	tok := softhsmtest.New(t)
	tok.Tool(t, true, "--keypairgen", "--key-type", "EC:prime256v1", "--id", "0a0b")
	tok.Tool(t, true, "--keypairgen", "--key-type", "EC:prime256v1", "--label", "station key")
	tok.Tool(t, true, "--keypairgen", "--key-type", "EC:prime256v1", "--label", "clé ligne", "--id", "0c")
	tok.Tool(t, true, "--keypairgen", "--key-type", "EC:prime256v1", "--label", "plain", "--id", "0d")
	ctx := context.Background()
	s, err := keystore.Open(ctx, strings.Replace(tok.URI(), "?", ";object=plain;id=%0D?", 1))
	if err != nil {
		t.Fatalf("Open with object= and id=: %v", err)
	}
	defer s.Close()

	names, err := s.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	idOnly := "pkcs11:id=%0A%0B"
	utf := "pkcs11:object=cl%C3%A9%20ligne;id=%0C"
	var space string
	for _, n := range names {
		if strings.HasPrefix(n, "pkcs11:object=station%20key") {
			space = n // pkcs11-tool may or may not have given it an id
		}
	}
	for _, want := range []string{idOnly, utf, "plain"} {
		if !slices.Contains(names, want) {
			t.Errorf("List = %q: %q missing", names, want)
		}
	}
	if len(names) != 4 || space == "" {
		t.Fatalf("List = %q, want 4 names, one for the key labelled %q", names, "station key")
	}

	for _, tc := range []struct {
		name   string // what Get is given
		label  string // the Label of the key
		toolID string // the key's id for pkcs11-tool, "" to select it by label
	}{
		{"pkcs11:id=%0a%0B", idOnly, "0a0b"},
		{"pkcs11:object=station%20key", space, ""},
		{space, space, ""},
		{"pkcs11:object=cl%C3%A9%20ligne", utf, "0c"},
		{"pkcs11:id=%0c;type=private", utf, "0c"},
		{utf, utf, "0c"},
		{"plain", "plain", "0d"},
		{strings.Replace(tok.URI(), "?", ";object=plain;id=%0D?", 1), "plain", "0d"},
	} {
		k, err := s.Get(ctx, tc.name)
		if err != nil {
			t.Errorf("Get(%q): %v", tc.name, err)
			continue
		}
		if k.Label() != tc.label {
			t.Errorf("Get(%q).Label() = %q, want %q", tc.name, k.Label(), tc.label)
		}
		msg := []byte("RFC 7512: " + tc.name)
		sig, err := k.Sign(rand.Reader, digestOf(k.Algorithm(), msg), k.Algorithm().SignerOpts())
		if err != nil {
			t.Errorf("Get(%q).Sign: %v", tc.name, err)
			continue
		}
		sel := []string{"--label", "station key"}
		if tc.toolID != "" {
			sel = []string{"--id", tc.toolID}
		}
		out := filepath.Join(t.TempDir(), "pub.der")
		tok.Tool(t, false, append([]string{"--read-object", "--type", "pubkey", "--output-file", out}, sel...)...)
		der, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		opensslVerifyWith(t, der, k.Algorithm(), msg, sig)
	}

	for _, tc := range []struct {
		name string
		want error
	}{
		{"pkcs11:object=no%20such%20key", keystore.ErrNotFound},
		{"pkcs11:id=%ff", keystore.ErrNotFound},
		{"pkcs11:object=plain;id=%0c", keystore.ErrNotFound},
		{"pkcs11:token=another;object=plain", keystore.ErrInvalidURI},
		{"pkcs11:", keystore.ErrInvalidURI},
		{"pkcs11:type=private", keystore.ErrInvalidURI},
		{"pkcs11:object=%ff", keystore.ErrInvalidURI},
		{"station key", keystore.ErrInvalidLabel},
		{"file:/x", keystore.ErrInvalidLabel},
	} {
		if _, err := s.Get(ctx, tc.name); !errors.Is(err, tc.want) {
			t.Errorf("Get(%q): err = %v, want %v", tc.name, err, tc.want)
		}
	}

	if err := s.Delete(ctx, "pkcs11:id=%0A%0B"); err != nil {
		t.Fatalf("Delete by id: %v", err)
	}
	if err := s.Delete(ctx, space); err != nil {
		t.Fatalf("Delete by label with a space: %v", err)
	}
	names, err = s.List(ctx)
	if err != nil || !slices.Equal(names, []string{utf, "plain"}) {
		t.Fatalf("List after Delete = %q, %v", names, err)
	}
	if out := tok.Tool(t, true, "--list-objects"); strings.Contains(out, "0a0b") || strings.Contains(out, "station key") {
		t.Fatalf("objects left after Delete:\n%s", out)
	}
}

// Two private keys with one label are listed by URI each, and each URI
// opens its own key; the bare label is refused as ambiguous.
func TestSharedLabelListedByID(t *testing.T) {
	tok := softhsmtest.New(t)
	tok.Tool(t, true, "--keypairgen", "--key-type", "EC:prime256v1", "--label", "twin", "--id", "01")
	tok.Tool(t, true, "--keypairgen", "--key-type", "EC:prime256v1", "--label", "twin", "--id", "02")
	s := openToken(t, tok)
	ctx := context.Background()
	names, err := s.List(ctx)
	want := []string{"pkcs11:object=twin;id=%01", "pkcs11:object=twin;id=%02"}
	if err != nil || !slices.Equal(names, want) {
		t.Fatalf("List = %q, %v; want %q", names, err, want)
	}
	if _, err := s.Get(ctx, "twin"); err == nil || errors.Is(err, keystore.ErrNotFound) {
		t.Fatalf("Get of a shared label: err = %v, want an ambiguity error", err)
	}
	k1, err1 := s.Get(ctx, names[0])
	k2, err2 := s.Get(ctx, names[1])
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	if k1.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(k2.Public()) {
		t.Fatal("the two URIs opened the same key")
	}
}
