package file

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ztmkit/ztm/identity/keystore"
)

func TestParseURI(t *testing.T) {
	tmp := t.TempDir()
	passFile := writeSecret(t, "pass", []byte("from file\r\nsecond line ignored\n"))
	kek := bytes.Repeat([]byte{0xa5}, KEKSize)
	kekRaw := writeSecret(t, "kek.bin", kek)
	kekHex := writeSecret(t, "kek.hex", []byte(hex.EncodeToString(kek)+"\n"))
	t.Setenv("ZTM_FILE_TEST_PASS", "from env")
	t.Setenv("ZTM_FILE_TEST_KEK", hex.EncodeToString(kek))

	for _, tc := range []struct {
		uri, dir string
		pass     string
		kek      []byte
		iter     int
	}{
		{"file:" + tmp + "/k?passphrase-source=file:" + passFile, tmp + "/k", "from file", nil, 0},
		{"FILE:" + tmp + "/k?passphrase-source=env:ZTM_FILE_TEST_PASS", tmp + "/k", "from env", nil, 0},
		{"file://" + tmp + "/k?kek-source=file:" + kekRaw, tmp + "/k", "", kek, 0},
		{"file://localhost" + tmp + "/k?kek-source=file:" + kekHex + "&iterations=20000", tmp + "/k", "", kek, 20000},
		{"file:" + tmp + "/k?kek-source=env:ZTM_FILE_TEST_KEK", tmp + "/k", "", kek, 0},
		{"file:" + tmp + "/with%20space?passphrase=a%2Bb+c%26d", tmp + "/with space", "a+b+c&d", nil, 0},
		{"file:./keys?passphrase=x", "./keys", "x", nil, 0},
		{"file:../keys?passphrase=x", "../keys", "x", nil, 0},
	} {
		dir, cfg, err := parseURI(tc.uri)
		if err != nil {
			t.Errorf("parseURI(%q): %v", tc.uri, err)
			continue
		}
		if dir != tc.dir || string(cfg.Passphrase) != tc.pass || !bytes.Equal(cfg.KEK, tc.kek) || cfg.Iterations != tc.iter {
			t.Errorf("parseURI(%q) = %q, pass %q, KEK %x, iter %d", tc.uri, dir, cfg.Passphrase, cfg.KEK, cfg.Iterations)
		}
	}

	emptyFile := writeSecret(t, "empty", nil)
	badKEK := writeSecret(t, "bad.kek", []byte("not a key"))
	bigFile := writeSecret(t, "big", bytes.Repeat([]byte("x"), maxSecretFile+1))
	for _, tc := range []struct{ uri, part string }{
		{"mem:", "scheme"},
		{"file:", "path"},
		{"file:?passphrase=x", "path"},
		{"file:keys?passphrase=x", "path"},
		{"file://example.com/keys?passphrase=x", "host"},
		{"file:/k%zz?passphrase=x", "path"},
		{"file:/k%00?passphrase=x", "path"},
		{"file:/k?passphrase=x#frag", "fragment"},
		{"file:/k", "passphrase-source"},
		{"file:/k?iterations=20000", "passphrase-source"},
		{"file:/k?passphrase=x&passphrase=y", "passphrase"},
		{"file:/k?passphrase=x&kek-source=file:" + kekRaw, "kek-source"},
		{"file:/k?passphrase-source=file:/nonexistent/pass", "passphrase-source"},
		{"file:/k?passphrase-source=env:ZTM_FILE_TEST_UNSET", "passphrase-source"},
		{"file:/k?passphrase-source=" + passFile, "passphrase-source"},
		{"file:/k?passphrase-source=file:" + emptyFile, "passphrase-source"},
		{"file:/k?passphrase-source=file:" + bigFile, "passphrase-source"},
		{"file:/k?kek-source=file:" + badKEK, "kek-source"},
		{"file:/k?passphrase=", "passphrase"},
		{"file:/k?passphrase=a%0Ab", "passphrase"},
		{"file:/k?passphrase=x&iterations=10", "iterations"},
		{"file:/k?passphrase=x&iterations=lots", "iterations"},
		{"file:/k?passphrase=x&pin-value=1234", "pin-value"},
		{"file:/k?passphrase=x&flag", "flag"},
	} {
		_, _, err := parseURI(tc.uri)
		var ue *keystore.URIError
		if !errors.As(err, &ue) || !errors.Is(err, keystore.ErrInvalidURI) {
			t.Errorf("parseURI(%q): err = %v, want *keystore.URIError", tc.uri, err)
			continue
		}
		if ue.Part != tc.part {
			t.Errorf("parseURI(%q): Part %q, want %q (%v)", tc.uri, ue.Part, tc.part, err)
		}
	}
}

// A passphrase in the URI never appears in an error.
func TestURIErrorsRedactPassphrase(t *testing.T) {
	t.Parallel()
	const secret = "hunter2-very-secret"
	for _, uri := range []string{
		"file:/k?passphrase=" + secret + "&bogus=1",
		"file:keys?passphrase=" + secret,
		"file:/k?passphrase=" + secret + "&iterations=3",
	} {
		_, err := keystore.Open(context.Background(), uri)
		if err == nil {
			t.Fatalf("Open(%q) succeeded", uri)
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error reveals the passphrase: %v", err)
		}
	}
}

func TestOpenByURI(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "keys")
	passFile := writeSecret(t, "pass", []byte(testPass+"\n"))
	uri := "file:" + dir + "?passphrase-source=file:" + passFile + "&iterations=10000"
	s, err := keystore.Open(ctx, uri)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	k, err := s.Create(ctx, keystore.CreateRequest{Label: "by-uri", Algorithm: keystore.EdDSA})
	if err != nil {
		t.Fatal(err)
	}
	// The same directory opened through Open with the passphrase reads it.
	s2 := openTest(t, dir, testConfig())
	k2, err := s2.Get(ctx, "by-uri")
	if err != nil || !publicEqual(k.Public(), k2.Public()) {
		t.Fatalf("Get through Open: %v", err)
	}
	if p := split(t, mustRead(t, filepath.Join(dir, "by-uri.pem"))); p.iterations != 10000 {
		t.Fatalf("iterations attribute ignored: file has %d", p.iterations)
	}
	// An insecure directory is refused through the URI too.
	open := filepath.Join(t.TempDir(), "open")
	os.Mkdir(open, 0o700)
	os.Chmod(open, 0o777)
	if _, err := keystore.Open(ctx, "file:"+open+"?passphrase=x"); !errors.Is(err, ErrInsecureDir) {
		t.Fatalf("Open of a 0777 directory by URI: %v", err)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
