package pkcs11

import (
	"bytes"
	"errors"
	"testing"

	"github.com/ztmkit/ztm/identity/keystore"
)

// FuzzParseKeyURI checks the parse of a URI that names a key (what Get
// and Delete accept): it never panics, refuses with a *keystore.URIError,
// and what it accepts round-trips through Config.String.
func FuzzParseKeyURI(f *testing.F) {
	for _, seed := range []string{
		"pkcs11:id=%01%02",
		"pkcs11:object=station%20key",
		"pkcs11:object=cl%C3%A9%20ligne;id=%0C",
		"pkcs11:token=line1;object=plain;id=%0D?module-path=/m.so&pin-value=1234",
		"pkcs11:id=",
		"pkcs11:object=%ff",
		"pkcs11:object=a%00b",
		"pkcs11:type=private",
		"pkcs11:",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, uri string) {
		cfg, err := parseURI(uri, false)
		if err != nil {
			var ue *keystore.URIError
			if !errors.As(err, &ue) || ue.Part == "" {
				t.Fatalf("parseURI(%q): err = %v, want a *keystore.URIError with a Part", uri, err)
			}
			return
		}
		key := Config{Object: cfg.Object, ID: cfg.ID}
		back, err := parseURI(key.String(), false)
		if err != nil || back.Object != cfg.Object || !bytes.Equal(back.ID, cfg.ID) {
			t.Fatalf("round trip of %q through %q: %+v, %v", uri, key.String(), back, err)
		}
	})
}
