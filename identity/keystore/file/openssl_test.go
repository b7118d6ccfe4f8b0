package file

import (
	"context"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ztmkit/ztm/identity/keystore"
)

func runOpenssl(t *testing.T, stdin []byte, args ...string) ([]byte, error) {
	t.Helper()
	cmd := exec.Command(requireOpenssl(t), args...)
	if stdin != nil {
		cmd.Stdin = strings.NewReader(string(stdin))
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, errors.New("openssl " + strings.Join(args, " ") + ": " + err.Error() + ": " + stderr.String())
	}
	return out, nil
}

func writeSecret(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// opensslPublic returns the public key openssl reads from an encrypted key
// file.
func opensslPublic(t *testing.T, keyFile, passFile string) any {
	t.Helper()
	out, err := runOpenssl(t, nil, "pkey", "-in", keyFile, "-passin", "file:"+passFile, "-pubout")
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(out)
	if block == nil || block.Type != "PUBLIC KEY" {
		t.Fatalf("openssl -pubout printed %q", out)
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

// openssl reads every key file the store writes, under a passphrase and
// under a KEK (given to openssl in hex).
func TestOpensslReadsKeyFiles(t *testing.T) {
	t.Parallel()
	passFile := writeSecret(t, "pass", []byte(testPass+"\n"))
	kek := make([]byte, KEKSize)
	for i := range kek {
		kek[i] = byte(i * 7)
	}
	kekFile := writeSecret(t, "kek.hex", []byte(hex.EncodeToString(kek)+"\n"))
	wrongFile := writeSecret(t, "wrong", []byte("wrong\n"))
	for _, cred := range []struct {
		name     string
		cfg      Config
		passFile string
	}{
		{"passphrase", testConfig(), passFile},
		{"KEK", Config{KEK: kek}, kekFile},
	} {
		t.Run(cred.name, func(t *testing.T) {
			dir := t.TempDir()
			s := openTest(t, dir, cred.cfg)
			for _, alg := range keystore.Algorithms() {
				if cred.name == "KEK" && alg == keystore.PS256 {
					continue // one RSA key is enough
				}
				label := "interop-" + strings.ToLower(alg.String())
				k := create(t, s, label, alg)
				file := filepath.Join(dir, label+".pem")
				if _, err := runOpenssl(t, nil, "pkey", "-in", file, "-passin", "file:"+cred.passFile, "-noout"); err != nil {
					t.Fatalf("%v: %v", alg, err)
				}
				if pub := opensslPublic(t, file, cred.passFile); !publicEqual(k.Public(), pub) {
					t.Fatalf("%v: openssl reads another public key", alg)
				}
				if _, err := runOpenssl(t, nil, "pkey", "-in", file, "-passin", "file:"+wrongFile, "-noout"); err == nil {
					t.Fatalf("%v: openssl read the key with a wrong passphrase", alg)
				}
			}
			// openssl's view of the encryption parameters.
			out, err := runOpenssl(t, nil, "asn1parse", "-in", filepath.Join(dir, "interop-es256.pem"))
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{"PBES2", "PBKDF2", "hmacWithSHA256", "aes-256-cbc"} {
				if !strings.Contains(string(out), want) {
					t.Errorf("asn1parse output lacks %s:\n%s", want, out)
				}
			}
		})
	}
}

// The store reads encrypted keys openssl made, and refuses with typed errors
// those it should not use.
func TestStoreReadsOpensslKeys(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pass := "openssl pass"
	passFile := writeSecret(t, "pass", []byte(pass+"\n"))
	dir := t.TempDir()
	s := openTest(t, dir, Config{Passphrase: []byte(pass), Iterations: MinIterations})
	genpkey := func(label string, args ...string) string {
		t.Helper()
		out := filepath.Join(dir, label+".pem")
		args = append([]string{"genpkey"}, args...)
		args = append(args, "-pass", "file:"+passFile, "-out", out)
		if _, err := runOpenssl(t, nil, args...); err != nil {
			t.Fatal(err)
		}
		return out
	}
	topk8 := func(label, from string, args ...string) string {
		t.Helper()
		out := filepath.Join(dir, label+".pem")
		args = append([]string{"pkcs8", "-topk8", "-in", from, "-passout", "file:" + passFile, "-out", out}, args...)
		if _, err := runOpenssl(t, nil, args...); err != nil {
			t.Fatal(err)
		}
		return out
	}
	plain := filepath.Join(t.TempDir(), "plain.pem")
	if _, err := runOpenssl(t, nil, "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", plain); err != nil {
		t.Fatal(err)
	}

	good := []struct {
		label, file string
		alg         keystore.Algorithm
	}{
		{"ossl-p256", genpkey("ossl-p256", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-aes-256-cbc"), keystore.ES256},
		{"ossl-p384", genpkey("ossl-p384", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384", "-aes-256-cbc"), keystore.ES384},
		{"ossl-ed25519", genpkey("ossl-ed25519", "-algorithm", "ED25519", "-aes-256-cbc"), keystore.EdDSA},
		{"ossl-rsa3072", genpkey("ossl-rsa3072", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:3072", "-aes-256-cbc"), keystore.PS256},
		{"ossl-topk8", topk8("ossl-topk8", plain, "-v2", "aes-256-cbc"), keystore.ES256},
		{"ossl-aes128-sha512", topk8("ossl-aes128-sha512", plain, "-v2", "aes-128-cbc", "-v2prf", "hmacWithSHA512", "-iter", "5000"), keystore.ES256},
		{"ossl-aes192-sha1", topk8("ossl-aes192-sha1", plain, "-v2", "aes-192-cbc", "-v2prf", "hmacWithSHA1"), keystore.ES256},
	}
	for _, g := range good {
		k, err := s.Get(ctx, g.label)
		if err != nil {
			t.Fatalf("Get(%s): %v", g.label, err)
		}
		if k.Algorithm() != g.alg {
			t.Fatalf("%s: algorithm %v, want %v", g.label, k.Algorithm(), g.alg)
		}
		if !publicEqual(k.Public(), opensslPublic(t, g.file, passFile)) {
			t.Fatalf("%s: public key differs from openssl's", g.label)
		}
		if err := signCheck(k); err != nil {
			t.Fatalf("%s: %v", g.label, err)
		}
	}

	bad := []struct {
		label string
		make  func(label string) string
		want  error
	}{
		{"ossl-des3", func(l string) string { return topk8(l, plain, "-v2", "des3") }, ErrUnsupportedFormat},
		{"ossl-pbes1", func(l string) string { return topk8(l, plain, "-v1", "PBE-SHA1-3DES") }, ErrUnsupportedFormat},
		{"ossl-plain", func(l string) string {
			out := filepath.Join(dir, l+".pem")
			data, _ := os.ReadFile(plain)
			os.WriteFile(out, data, 0o600)
			return out
		}, ErrUnsupportedFormat},
		{"ossl-rsa2048", func(l string) string {
			return genpkey(l, "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-aes-256-cbc")
		}, keystore.ErrUnsupportedAlgorithm},
		{"ossl-p521", func(l string) string {
			return genpkey(l, "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-521", "-aes-256-cbc")
		}, keystore.ErrUnsupportedAlgorithm},
		{"ossl-x25519", func(l string) string { return genpkey(l, "-algorithm", "X25519", "-aes-256-cbc") }, keystore.ErrUnsupportedAlgorithm},
	}
	for _, b := range bad {
		path := b.make(b.label)
		_, err := s.Get(ctx, b.label)
		if !errors.Is(err, b.want) {
			t.Errorf("Get(%s): err = %v, want %v", b.label, err, b.want)
		}
		var fe *FormatError
		if errors.As(err, &fe) && fe.Path != path {
			t.Errorf("Get(%s): FormatError.Path = %q, want %q", b.label, fe.Path, path)
		}
	}

	// A wrong passphrase on an openssl key is ErrAuth.
	other := openTest(t, dir, Config{Passphrase: []byte("not it"), Iterations: MinIterations})
	for _, g := range good {
		if _, err := other.Get(ctx, g.label); !errors.Is(err, keystore.ErrAuth) {
			t.Errorf("Get(%s) with a wrong passphrase: err = %v, want ErrAuth", g.label, err)
		}
	}
}
