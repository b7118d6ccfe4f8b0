//go:build cgo

package pkcs11_test

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"

	p11 "github.com/miekg/pkcs11"

	"github.com/ztmkit/ztm/identity/keystore"
	"github.com/ztmkit/ztm/internal/softhsmtest"
)

// Keys ztm makes have the least rights a signing key needs, as
// pkcs11-tool --list-objects shows them (Usage: sign / verify only) and as
// the attributes read back say; every private key is wrappable only under
// a trusted key.
func TestLeastRights(t *testing.T) {
	tok := softhsmtest.New(t)
	s := openToken(t, tok)
	ctx := context.Background()
	var labels []string
	for _, alg := range keystore.Algorithms() {
		for _, exp := range []bool{false, true} {
			label := "rights-" + strings.ToLower(alg.String())
			if exp {
				label += "-exp"
			}
			if _, err := s.Create(ctx, keystore.CreateRequest{Label: label, Algorithm: alg, Exportable: exp}); err != nil {
				t.Fatal(err)
			}
			labels = append(labels, label)
		}
	}
	out := tok.Tool(t, true, "--list-objects")
	objects := regexp.MustCompile(`(?m)^(Private|Public) Key Object;`).Split(out, -1)[1:]
	kinds := regexp.MustCompile(`(?m)^(Private|Public) Key Object;`).FindAllStringSubmatch(out, -1)
	if len(objects) != 2*len(labels) {
		t.Fatalf("pkcs11-tool shows %d key objects, want %d:\n%s", len(objects), 2*len(labels), out)
	}
	usage := regexp.MustCompile(`(?m)^\s*Usage:\s*(.*)$`)
	for i, obj := range objects {
		want := "verify"
		if kinds[i][1] == "Private" {
			want = "sign"
		}
		m := usage.FindStringSubmatch(obj)
		if m == nil || strings.TrimSpace(m[1]) != want {
			t.Errorf("%s key object: Usage %q, want %q:\n%s", kinds[i][1], m, want, obj)
		}
	}
	r := openRaw(t, tok)
	for _, label := range labels {
		f := r.flags(t, label)
		exp := strings.HasSuffix(label, "-exp")
		want := map[string]bool{"sign": true, "decrypt": false, "unwrap": false, "derive": false, "sign-recover": false,
			"sensitive": true, "extractable": exp, "wrap-with-trusted": true}
		for name, v := range want {
			if f[name] != v {
				t.Errorf("%s: CKA %s = %v, want %v", label, name, f[name], v)
			}
		}
	}
}

// The wrap attack: someone with the user PIN makes a session AES key whose
// value they can read and wraps an exportable private key under it. The
// token refuses (CKA_WRAP_WITH_TRUSTED: the session key is not trusted),
// and the user cannot make a trusted key.
func TestWrapAttackFails(t *testing.T) {
	tok := softhsmtest.New(t)
	s := openToken(t, tok)
	ctx := context.Background()
	for _, alg := range keystore.Algorithms() {
		if _, err := s.Create(ctx, keystore.CreateRequest{Label: "victim-" + strings.ToLower(alg.String()), Algorithm: alg, Exportable: true}); err != nil {
			t.Fatal(err)
		}
	}
	r := openRaw(t, tok)
	aes := func(trusted bool) (p11.ObjectHandle, error) {
		return r.ctx.GenerateKey(r.sh, []*p11.Mechanism{p11.NewMechanism(p11.CKM_AES_KEY_GEN, nil)}, []*p11.Attribute{
			p11.NewAttribute(p11.CKA_CLASS, p11.CKO_SECRET_KEY),
			p11.NewAttribute(p11.CKA_KEY_TYPE, p11.CKK_AES),
			p11.NewAttribute(p11.CKA_VALUE_LEN, 32),
			p11.NewAttribute(p11.CKA_TOKEN, false),
			p11.NewAttribute(p11.CKA_SENSITIVE, false),
			p11.NewAttribute(p11.CKA_EXTRACTABLE, true),
			p11.NewAttribute(p11.CKA_WRAP, true),
			p11.NewAttribute(p11.CKA_ENCRYPT, true),
			p11.NewAttribute(p11.CKA_TRUSTED, trusted),
		})
	}
	if _, err := aes(true); err == nil {
		t.Fatal("a user session made a trusted wrapping key")
	}
	wk, err := aes(false)
	if err != nil {
		t.Fatal(err)
	}
	for _, alg := range keystore.Algorithms() {
		label := "victim-" + strings.ToLower(alg.String())
		hs := r.find(t, p11.CKO_PRIVATE_KEY, label)
		if len(hs) != 1 {
			t.Fatalf("%d keys labelled %s", len(hs), label)
		}
		// CKM_AES_KEY_WRAP_PAD is the mechanism SoftHSM wraps private
		// keys with (as PKCS#8).
		wrapped, err := r.ctx.WrapKey(r.sh, []*p11.Mechanism{p11.NewMechanism(p11.CKM_AES_KEY_WRAP_PAD, nil)}, wk, hs[0])
		if err == nil {
			t.Fatalf("%s: wrapped under a session key whose value the user can read: %d bytes out", label, len(wrapped))
		}
		if !errors.Is(err, p11.Error(p11.CKR_KEY_NOT_WRAPPABLE)) {
			t.Fatalf("%s: wrap under a session key: err = %v, want CKR_KEY_NOT_WRAPPABLE", label, err)
		}
	}
}
