//go:build cgo

package pkcs11_test

import (
	"errors"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/ztmkit/ztm/identity/keystore"
	"github.com/ztmkit/ztm/identity/keystore/pkcs11"
)

// FuzzParseURI checks that ParseURI never panics, that every refusal is a
// *keystore.URIError with a Part and no PIN, and that what it accepts
// round-trips through Config.String (with the PIN redacted).
func FuzzParseURI(f *testing.F) {
	for _, seed := range []string{
		"pkcs11:token=line1;object=station?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/etc/line1/pin",
		"pkcs11:token=line1?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-value=1234",
		"pkcs11:token=Line%201;serial=0123;manufacturer=SoftHSM%20project;model=SoftHSM%20v2;slot-id=7;type=private;x-a=b?module-path=/m.so&max-sessions=4&x-c=d",
		"pkcs11:slot-id=18446744073709551615?module-path=/m.so&pin-source=file:///run/pin",
		"pkcs11:token=a;token=b?module-path=/m.so",
		"pkcs11:token=%zz?module-path=/m.so&PIN-VALUE=secret",
		"pkcs11:token=a?module-path=/m.so&pin%2Dvalue=secret&pin-value=other",
		"pkcs11:id=%01;token=a?module-path=/m.so",
		"pkcs11:token=a;object=station%20k%C3%A9y;id=%00%FF?module-path=/m.so",
		"pkcs11:?module-path=/m.so",
		"pkcs11:token=a?pin-value=secret",
		"pkcs11:;;;?&&&",
		"PKCS11:token=a?module-path=/m.so#x",
		"file:/x",
		"pkcs11:pin-value=1234?module-path=/m.so",
		":#PIN-VALUE=0",
		":&pin-vAlue=0",
		"",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, uri string) {
		cfg, err := pkcs11.ParseURI(uri)
		if err != nil {
			var ue *keystore.URIError
			if !errors.As(err, &ue) || ue.Part == "" {
				t.Fatalf("ParseURI(%q): err = %v, want a *keystore.URIError with a Part", uri, err)
			}
			// No pin-value attribute appears whole in the message. (As a
			// mere substring, the PIN "R" is in "REDACTED", and
			// "pin-value=0" in an attribute named "0pin-value=0".)
			for _, attr := range pinAttrs(uri) {
				if containsToken(err.Error(), attr) {
					t.Fatalf("ParseURI(%q): error shows %q: %v", uri, attr, err)
				}
			}
			return
		}
		if cfg.ModulePath == "" {
			t.Fatalf("ParseURI(%q) accepted a URI without module-path", uri)
		}
		s := cfg.String()
		back, err := pkcs11.ParseURI(s)
		if err != nil {
			t.Fatalf("ParseURI(String() = %q): %v", s, err)
		}
		want := *cfg
		if want.PIN != "" {
			if strings.Contains(s, "pin-value="+want.PIN) && want.PIN != "REDACTED" {
				t.Fatalf("String() = %q shows the PIN", s)
			}
			want.PIN = "REDACTED"
		}
		if !reflect.DeepEqual(*back, want) {
			t.Fatalf("round trip of %q: got %#v, want %#v", uri, back.String(), want.String())
		}
	})
}

// pinAttrs returns the pin-value attributes of uri, as written, whose value
// is not empty or "REDACTED".
func pinAttrs(uri string) []string {
	_, rest, _ := strings.Cut(uri, ":")
	var out []string
	for _, attr := range strings.FieldsFunc(rest, func(r rune) bool { return r == ';' || r == '?' || r == '&' || r == '#' }) {
		name, value, ok := strings.Cut(attr, "=")
		n, err := url.PathUnescape(name)
		if ok && err == nil && strings.EqualFold(n, "pin-value") && value != "" && value != "REDACTED" {
			out = append(out, attr)
		}
	}
	return out
}

// containsToken reports whether tok stands whole in the error message s:
// between the separators of a URI's attributes (";?&#", or the scheme's
// ":" before), or at an end of the quoted URI the message shows (an
// opening quote after a space, a closing quote after). An escaped quote
// inside the URI (\") separates nothing: the parser did not split there.
func containsToken(s, tok string) bool {
	for i := 0; ; {
		j := strings.Index(s[i:], tok)
		if j < 0 {
			return false
		}
		start, end := i+j, i+j+len(tok)
		before := start == 0 || strings.IndexByte(";?&#:", s[start-1]) >= 0 ||
			(s[start-1] == '"' && (start == 1 || s[start-2] == ' '))
		after := end == len(s) || strings.IndexByte(";?&#\"", s[end]) >= 0
		if before && after {
			return true
		}
		i = start + 1
	}
}
