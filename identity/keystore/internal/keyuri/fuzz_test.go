package keyuri

import (
	"errors"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/ztmkit/ztm/identity/keystore"
)

// FuzzParse checks that Parse never panics, that every refusal is a
// *keystore.URIError with a Part that shows no pin-value or passphrase
// whole, and that what it accepts has known, unique, lower-case names and
// reads back the same when written again with every byte escaped.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		"p11:token=Line%201;object=cl%C3%A9;id=%00%FF;x-v=1?module-path=/m.so&pin-value=12%2B4&n=3",
		"p11:token=a;;object=b?&&",
		"p11:?module-path=/a;b&pin-value=x",
		"p11:token=a#pin-value=1234",
		"P11:TOKEN=a?PIN-VALUE=1234&pin-value=1234",
		"p11:library-version=1",
		"dir:///var/lib/k?passphrase=x&n=2",
		"dir://host/k?passphrase=x",
		"dir:/k%00?passphrase-source=env:X",
		"dev://x/dev?n=1",
		"dev:/dev/tpmrm0?n=1",
		":",
		"",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, uri string) {
		for _, form := range []*Form{attrForm, pathForm, devForm} {
			u, err := Parse(uri, form)
			if err != nil {
				var ue *keystore.URIError
				if !errors.As(err, &ue) || ue.Part == "" {
					t.Fatalf("Parse(%q): err = %v, want a *keystore.URIError with a Part", uri, err)
				}
				for _, attr := range secretAttrs(uri) {
					if strings.Contains(err.Error(), attr) {
						t.Fatalf("Parse(%q): error shows %q: %v", uri, attr, err)
					}
				}
				continue
			}
			checkAccepted(t, form, uri, u)
		}
	})
}

func checkAccepted(t *testing.T, form *Form, uri string, u *URI) {
	var names []string
	for _, a := range u.Attrs() {
		known := slices.Contains(form.PathAttrs, a.Name) && a.InPath || slices.Contains(form.QueryAttrs, a.Name) && !a.InPath ||
			form.Vendor && strings.HasPrefix(a.Name, "x-")
		if !known || a.Name != strings.ToLower(a.Name) || slices.Contains(names, a.Name) {
			t.Fatalf("Parse(%q) accepted attribute %+v", uri, a)
		}
		names = append(names, a.Name)
	}
	if strings.ContainsRune(u.Path, 0) || form.AttrPath && u.Path != "" {
		t.Fatalf("Parse(%q) accepted path %q", uri, u.Path)
	}
	back, err := Parse(encode(form, u), form)
	if err != nil || !slices.Equal(back.Attrs(), u.Attrs()) || back.Path != u.Path {
		t.Fatalf("Parse(%q) = %+v, written again as %q reads %+v, %v", uri, u, encode(form, u), back, err)
	}
}

// encode writes u with every byte of every name and value escaped.
func encode(form *Form, u *URI) string {
	esc := func(s string) string {
		var b strings.Builder
		for i := 0; i < len(s); i++ {
			b.WriteString("%" + strings.ToUpper(string("0123456789abcdef"[s[i]>>4])+string("0123456789abcdef"[s[i]&15])))
		}
		return b.String()
	}
	var path, query []string
	for _, a := range u.Attrs() {
		if a.InPath {
			path = append(path, esc(a.Name)+"="+esc(a.Value))
		} else {
			query = append(query, esc(a.Name)+"="+esc(a.Value))
		}
	}
	s := form.Scheme + ":"
	if form.AttrPath {
		s += strings.Join(path, ";")
	} else {
		s += strings.ReplaceAll(url.PathEscape(u.Path), "%2F", "/")
		if strings.HasPrefix(u.Path, "//") {
			s = form.Scheme + "://" + strings.ReplaceAll(url.PathEscape(u.Path), "%2F", "/")
		}
	}
	if len(query) > 0 {
		s += "?" + strings.Join(query, "&")
	}
	return s
}

// secretAttrs returns the secret attributes of uri, as written, whose
// value is not empty or "REDACTED".
func secretAttrs(uri string) []string {
	var out []string
	for _, attr := range strings.FieldsFunc(uri, func(r rune) bool { return strings.ContainsRune(";?&#:", r) }) {
		name, value, ok := strings.Cut(attr, "=")
		n, err := url.PathUnescape(name)
		n = strings.ToLower(n)
		if ok && err == nil && (n == "pin-value" || n == "passphrase") && value != "" && !strings.HasPrefix("REDACTED", value) {
			out = append(out, attr)
		}
	}
	return out
}
