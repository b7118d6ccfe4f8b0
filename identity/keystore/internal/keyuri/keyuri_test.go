package keyuri

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ztmkit/ztm/identity/keystore"
)

var (
	attrForm = &Form{
		Scheme:     "p11",
		AttrPath:   true,
		PathAttrs:  []string{"token", "object", "id"},
		QueryAttrs: []string{"module-path", "pin-value", "pin-source", "n"},
		Refused:    map[string]string{"library-version": "not supported"},
		Vendor:     true,
	}
	pathForm = &Form{
		Scheme:     "dir",
		Authority:  true,
		QueryAttrs: []string{"passphrase", "passphrase-source", "n"},
	}
	devForm = &Form{Scheme: "dev", Example: "dev:/dev/x?n=1", QueryAttrs: []string{"n"}}
)

func TestParse(t *testing.T) {
	u, err := Parse("P11:token=Line%201;object=cl%C3%A9%20a+b;id=%00%FF;x-vendor=1?module-path=/m.so&PIN-VALUE=12%2B4&n=3", attrForm)
	require.NoError(t, err)
	require.Equal(t, []Attr{
		{Name: "token", Value: "Line 1", InPath: true},
		{Name: "object", Value: "clé a+b", InPath: true},
		{Name: "id", Value: "\x00\xff", InPath: true},
		{Name: "x-vendor", Value: "1", InPath: true},
		{Name: "module-path", Value: "/m.so"},
		{Name: "pin-value", Value: "12+4"},
		{Name: "n", Value: "3"},
	}, u.Attrs())
	n, ok, err := u.Int("n", 1, 5)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, 3, n)
	_, ok, err = u.Int("missing", 1, 5)
	require.NoError(t, err)
	require.False(t, ok)

	for uri, want := range map[string]string{
		"dir:/var/lib/k%20s?n=1":         "/var/lib/k s",
		"dir:///var/lib/k":               "/var/lib/k",
		"dir://localhost/var/lib/k?n=1":  "/var/lib/k",
		"dir:./k;not-an-attribute=1?n=1": "./k;not-an-attribute=1",
		"dir:/a+b":                       "/a+b",
		"dev:":                           "",
		"dev:/dev/tpmrm0?n=1":            "/dev/tpmrm0",
		"dev:/dev/tpmrm0?":               "/dev/tpmrm0",
	} {
		f := pathForm
		if strings.HasPrefix(uri, "dev:") {
			f = devForm
		}
		u, err := Parse(uri, f)
		require.NoError(t, err, uri)
		require.Equal(t, want, u.Path, uri)
	}
}

// Each malformed URI is refused with a *keystore.URIError naming the part
// at fault, and the secret in it is never shown.
func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		f         *Form
		uri, part string
	}{
		{attrForm, "dir:/x", "scheme"},
		{attrForm, "p11", "scheme"},
		{attrForm, "p11:token=a#pin-value=sekrit", "fragment"},
		{attrForm, "p11:token=a;;object=b", "attribute"},
		{attrForm, "p11:token=a?n=1&", "attribute"},
		{attrForm, "p11:=x", "attribute"},
		{attrForm, "p11:token", "token"},
		{attrForm, "p11:token=%zz", "token"},
		{attrForm, "p11:tok%zz=a", "tok%zz"},
		{attrForm, "p11:token=a;TOKEN=b", "token"},
		{attrForm, "p11:token=a?token=b", "token"},
		{attrForm, "p11:x-a=1;x-a=2", "x-a"},
		{attrForm, "p11:token=a;module-path=/m", "module-path"},
		{attrForm, "p11:token=a?object=b", "object"},
		{attrForm, "p11:colour=red", "colour"},
		{attrForm, "p11:?colour=red", "colour"},
		{attrForm, "p11:library-version=1", "library-version"},
		{attrForm, "p11:?module-path=/a;b", "query"},
		{attrForm, "p11:?pin-value=sekrit;x", "query"},
		{attrForm, "p11:?n=x", "n"},
		{attrForm, "p11:?n=9", "n"},
		{pathForm, "dir://host/k", "host"},
		{pathForm, "dir:/k%zz", "path"},
		{pathForm, "dir:/k%00", "path"},
		{pathForm, "dir:/k?x-vendor=1", "x-vendor"},
		{pathForm, "dir:/k?passphrase=sekrit&passphrase=sekrit", "passphrase"},
		{pathForm, "dir:/k?passphrase", "passphrase"},
		{devForm, "dev://x/dev", "path"},
	} {
		u, err := Parse(tc.uri, tc.f)
		if err == nil {
			_, _, err = u.Int("n", 1, 5)
		}
		var ue *keystore.URIError
		require.ErrorAs(t, err, &ue, tc.uri)
		require.ErrorIs(t, err, keystore.ErrInvalidURI, tc.uri)
		require.Equal(t, tc.part, ue.Part, "%s: %v", tc.uri, err)
		require.NotContains(t, err.Error(), "sekrit", tc.uri)
	}
}

func TestOneOf(t *testing.T) {
	u, err := Parse("dir:/k?passphrase=a", pathForm)
	require.NoError(t, err)
	got, err := u.OneOf("passphrase", "passphrase-source")
	require.NoError(t, err)
	require.Equal(t, "passphrase", got)
	u, err = Parse("dir:/k?passphrase=a&passphrase-source=env:X", pathForm)
	require.NoError(t, err)
	_, err = u.OneOf("passphrase", "passphrase-source")
	var ue *keystore.URIError
	require.ErrorAs(t, err, &ue)
	require.Equal(t, "passphrase-source", ue.Part)
	require.NotContains(t, err.Error(), "=a")
}

func TestSource(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "pin")
	require.NoError(t, os.WriteFile(file, []byte("1234\r\nignored\n"), 0o600))
	big := filepath.Join(dir, "big")
	require.NoError(t, os.WriteFile(big, make([]byte, MaxSecret+1), 0o600))
	t.Setenv("KEYURI_TEST_PIN", "from env")

	for src, want := range map[string]string{
		"file:" + file:            "1234\r\nignored\n",
		"file://" + file:          "1234\r\nignored\n",
		"file://localhost" + file: "1234\r\nignored\n",
		"env:KEYURI_TEST_PIN":     "from env",
	} {
		s, err := ParseSource(src)
		require.NoError(t, err, src)
		got, err := s.Read()
		require.NoError(t, err, src)
		require.Equal(t, want, string(got), src)
		if s.File != "" {
			require.Equal(t, "1234", string(FirstLine(got)), src)
		}
	}
	for _, src := range []string{"", "/abs/path", "pin", "file:", "file:pin", "file://host/pin", "file:/a\x00b", "env:", "env:A=B", "vault:x"} {
		_, err := ParseSource(src)
		require.Error(t, err, src)
	}
	for _, src := range []string{"file:" + filepath.Join(dir, "missing"), "file:" + big, "env:KEYURI_TEST_UNSET"} {
		s, err := ParseSource(src)
		require.NoError(t, err, src)
		_, err = s.Read()
		require.Error(t, err, src)
	}
	_, err := Source{}.Read()
	require.Error(t, err)

	u, err := Parse("p11:?pin-source=env:KEYURI_TEST_PIN", attrForm)
	require.NoError(t, err)
	s, ok, err := u.Source("pin-source")
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, "env:KEYURI_TEST_PIN", s.String())
	u, err = Parse("p11:?pin-source=pin", attrForm)
	require.NoError(t, err)
	_, _, err = u.Source("pin-source")
	require.True(t, errors.Is(err, keystore.ErrInvalidURI))
}
