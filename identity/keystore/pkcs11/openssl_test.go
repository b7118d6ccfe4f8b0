//go:build cgo

package pkcs11_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	p11 "github.com/miekg/pkcs11"

	"github.com/ztmkit/ztm/identity/keystore"
	"github.com/ztmkit/ztm/internal/softhsmtest"
)

// Keys made by pkcs11-tool of every type: the ones ztm uses are found with
// the right algorithm and sign; the others are refused with
// ErrUnsupportedAlgorithm, and can still be listed and deleted.
func TestInteropToolKeyTypes(t *testing.T) {
	tok := softhsmtest.New(t)
	cases := []struct {
		keyType string
		alg     keystore.Algorithm
		ok      bool
	}{
		{"EC:prime256v1", keystore.ES256, true},
		{"EC:secp384r1", keystore.ES384, true},
		{"EC:edwards25519", keystore.EdDSA, true},
		{"RSA:3072", keystore.PS256, true},
		{"EC:secp521r1", 0, false},
		{"RSA:2048", 0, false},
	}
	label := func(kt string) string { return "tool-" + strings.NewReplacer(":", "-").Replace(strings.ToLower(kt)) }
	for i, c := range cases {
		tok.Tool(t, true, "--keypairgen", "--key-type", c.keyType, "--label", label(c.keyType), "--id", strings.Repeat("0", 3)+string(rune('1'+i)))
	}
	s := openToken(t, tok)
	ctx := context.Background()
	for _, c := range cases {
		k, err := s.Get(ctx, label(c.keyType))
		if !c.ok {
			if !errors.Is(err, keystore.ErrUnsupportedAlgorithm) {
				t.Errorf("Get(%s key): err = %v, want ErrUnsupportedAlgorithm", c.keyType, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("Get(%s key): %v", c.keyType, err)
			continue
		}
		if k.Algorithm() != c.alg {
			t.Errorf("%s key: algorithm %v, want %v", c.keyType, k.Algorithm(), c.alg)
		}
		msg := []byte("signed with a key pkcs11-tool made")
		sig, err := k.Sign(rand.Reader, digestOf(k.Algorithm(), msg), k.Algorithm().SignerOpts())
		if err != nil {
			t.Errorf("%s key: Sign: %v", c.keyType, err)
			continue
		}
		opensslVerify(t, k, msg, sig)
	}
	labels, err := s.List(ctx)
	if err != nil || len(labels) != len(cases) {
		t.Fatalf("List = %v, %v; want %d labels", labels, err, len(cases))
	}
	for _, c := range cases {
		if err := s.Delete(ctx, label(c.keyType)); err != nil {
			t.Errorf("Delete(%s key): %v", c.keyType, err)
		}
	}
	if out := tok.Tool(t, true, "--list-objects"); strings.Contains(out, "tool-") {
		t.Fatalf("objects left after Delete:\n%s", out)
	}
}

// What the store signs verifies with openssl, against the public key as
// the token holds it (read with pkcs11-tool, or for Ed25519, which
// pkcs11-tool 0.23 cannot export, with a plain C_GetAttributeValue).
func TestInteropOpenSSLVerifies(t *testing.T) {
	tok := softhsmtest.New(t)
	s := openToken(t, tok)
	ctx := context.Background()
	for _, alg := range keystore.Algorithms() {
		k, err := s.Create(ctx, keystore.CreateRequest{Label: "openssl-" + strings.ToLower(alg.String()), Algorithm: alg})
		if err != nil {
			t.Fatal(err)
		}
		msg := []byte("ztm signs, openssl verifies: " + alg.String())
		sig, err := k.Sign(rand.Reader, digestOf(alg, msg), alg.SignerOpts())
		if err != nil {
			t.Fatal(err)
		}
		pubDER := tokenPublicKey(t, tok, k)
		opensslVerifyWith(t, pubDER, alg, msg, sig)
		// A signature over another message fails.
		if err := runOpenSSLVerify(t, pubDER, alg, []byte("another message"), sig); err == nil {
			t.Fatalf("%v: openssl verified a signature over another message", alg)
		}
	}
}

func digestOf(alg keystore.Algorithm, msg []byte) []byte {
	if h := alg.Hash(); h != 0 {
		hh := h.New()
		hh.Write(msg)
		return hh.Sum(nil)
	}
	return msg
}

// tokenPublicKey returns the DER SubjectPublicKeyInfo of k's public key
// object, read from the token without the store: with pkcs11-tool, or,
// for the P-384 and Ed25519 keys that pkcs11-tool 0.23 fails to export
// ("cannot create EVP_PKEY", also for keys it made itself), with a plain
// C_GetAttributeValue of CKA_EC_POINT.
func tokenPublicKey(t *testing.T, tok softhsmtest.Token, k keystore.Key) []byte {
	t.Helper()
	if alg := k.Algorithm(); alg == keystore.EdDSA || alg == keystore.ES384 {
		r := openRaw(t, tok)
		hs := r.find(t, p11.CKO_PUBLIC_KEY, k.Label())
		if len(hs) != 1 {
			t.Fatalf("%d public keys labelled %q", len(hs), k.Label())
		}
		attrs, err := r.ctx.GetAttributeValue(r.sh, hs[0], []*p11.Attribute{p11.NewAttribute(p11.CKA_EC_POINT, nil)})
		if err != nil {
			t.Fatal(err)
		}
		var point []byte
		if rest, err := asn1.Unmarshal(attrs[0].Value, &point); err != nil || len(rest) != 0 {
			t.Fatalf("CKA_EC_POINT is not a DER OCTET STRING: %x", attrs[0].Value)
		}
		var pub crypto.PublicKey = ed25519.PublicKey(point)
		if alg == keystore.ES384 {
			if pub, err = ecdsa.ParseUncompressedPublicKey(elliptic.P384(), point); err != nil {
				t.Fatal(err)
			}
		}
		der, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	out := filepath.Join(t.TempDir(), "pub.der")
	tok.Tool(t, false, "--read-object", "--type", "pubkey", "--label", k.Label(), "--output-file", out)
	der, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func opensslVerify(t *testing.T, k keystore.Key, msg, sig []byte) {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	opensslVerifyWith(t, der, k.Algorithm(), msg, sig)
}

func opensslVerifyWith(t *testing.T, pubDER []byte, alg keystore.Algorithm, msg, sig []byte) {
	t.Helper()
	if err := runOpenSSLVerify(t, pubDER, alg, msg, sig); err != nil {
		t.Fatalf("%v: openssl does not verify our signature: %v", alg, err)
	}
}

func runOpenSSLVerify(t *testing.T, pubDER []byte, alg keystore.Algorithm, msg, sig []byte) error {
	t.Helper()
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Fatal("openssl is missing: install it with `apt-get install openssl` (or run scripts/install-deps.sh)")
	}
	dir := t.TempDir()
	files := map[string][]byte{
		"pub.pem": pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}),
		"msg":     msg,
		"sig":     sig,
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var args []string
	switch alg {
	case keystore.EdDSA:
		args = []string{"pkeyutl", "-verify", "-pubin", "-inkey", "pub.pem", "-rawin", "-in", "msg", "-sigfile", "sig"}
	case keystore.PS256:
		args = []string{"dgst", "-sha256", "-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:32", "-sigopt", "rsa_mgf1_md:sha256", "-verify", "pub.pem", "-signature", "sig", "msg"}
	default:
		h := "-sha256"
		if alg.Hash() == crypto.SHA384 {
			h = "-sha384"
		}
		args = []string{"dgst", h, "-verify", "pub.pem", "-signature", "sig", "msg"}
	}
	cmd := exec.Command(openssl, args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return errors.New(strings.TrimSpace(string(out)))
	}
	return nil
}
