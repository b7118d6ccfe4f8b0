package keystore

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"strings"
	"testing"
)

func TestValidateLabel(t *testing.T) {
	t.Parallel()
	good := []string{"a", "A9", "station-1", "device_0042.idevid", "x.y.z", strings.Repeat("k", MaxLabelLen)}
	for _, l := range good {
		if err := ValidateLabel(l); err != nil {
			t.Errorf("ValidateLabel(%q) = %v", l, err)
		}
	}
	bad := []string{"", ".", "..", "../x", "a/b", `a\b`, "a..b", "-a", "_a", ".a", "a b", "a\x00", "ä", strings.Repeat("k", MaxLabelLen+1)}
	for _, l := range bad {
		err := ValidateLabel(l)
		var le *LabelError
		if !errors.Is(err, ErrInvalidLabel) || !errors.As(err, &le) || le.Label != l {
			t.Errorf("ValidateLabel(%q) = %v, want a *LabelError wrapping ErrInvalidLabel", l, err)
		}
	}
}

func TestAlgorithm(t *testing.T) {
	t.Parallel()
	tests := []struct {
		alg  Algorithm
		name string
		cose int64
		hash crypto.Hash
	}{
		{ES256, "ES256", -7, crypto.SHA256},
		{ES384, "ES384", -35, crypto.SHA384},
		{EdDSA, "EdDSA", -8, 0},
		{PS256, "PS256", -37, crypto.SHA256},
	}
	for _, tt := range tests {
		if tt.alg.String() != tt.name || tt.alg.COSE() != tt.cose || tt.alg.Hash() != tt.hash || !tt.alg.Valid() {
			t.Errorf("%v: String %q COSE %d Hash %v", tt.alg, tt.alg.String(), tt.alg.COSE(), tt.alg.Hash())
		}
		got, err := ParseAlgorithm(strings.ToLower(tt.name))
		if err != nil || got != tt.alg {
			t.Errorf("ParseAlgorithm(%q) = %v, %v", tt.name, got, err)
		}
	}
	if _, err := ParseAlgorithm("none"); !errors.Is(err, ErrUnsupportedAlgorithm) {
		t.Errorf("ParseAlgorithm(none) = %v", err)
	}
	var zero Algorithm
	if zero != ES256 {
		t.Error("the zero Algorithm is not ES256")
	}
	if Algorithm(-1).Valid() || maxAlgorithm.Valid() {
		t.Error("out-of-range algorithms are valid")
	}
}

func TestAlgorithmOf(t *testing.T) {
	t.Parallel()
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p224, _ := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	p521, _ := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	rsa1024, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		pub  crypto.PublicKey
		want Algorithm
		ok   bool
	}{
		{"P-256", &p256.PublicKey, ES256, true},
		{"P-384", &p384.PublicKey, ES384, true},
		{"Ed25519", edPub, EdDSA, true},
		{"P-224", &p224.PublicKey, 0, false},
		{"P-521", &p521.PublicKey, 0, false},
		{"RSA-1024", &rsa1024.PublicKey, 0, false},
		{"short Ed25519", ed25519.PublicKey(edPub[:5]), 0, false},
		{"RSA without modulus", &rsa.PublicKey{}, 0, false},
		{"nil", nil, 0, false},
	}
	for _, tt := range tests {
		got, err := AlgorithmOf(tt.pub)
		if tt.ok != (err == nil) || (tt.ok && got != tt.want) {
			t.Errorf("%s: AlgorithmOf = %v, %v", tt.name, got, err)
		}
		if !tt.ok && !errors.Is(err, ErrUnsupportedAlgorithm) {
			t.Errorf("%s: err = %v, want ErrUnsupportedAlgorithm", tt.name, err)
		}
	}
}

func TestCheckSign(t *testing.T) {
	t.Parallel()
	d32, d48 := make([]byte, 32), make([]byte, 48)
	pss := &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA256}
	tests := []struct {
		alg    Algorithm
		digest []byte
		opts   crypto.SignerOpts
		ok     bool
	}{
		{ES256, d32, crypto.SHA256, true},
		{ES256, d48, crypto.SHA384, false},
		{ES256, d32[:20], crypto.SHA256, false},
		{ES256, d32, nil, false},
		{ES384, d48, crypto.SHA384, true},
		{ES384, d32, crypto.SHA256, false},
		{EdDSA, []byte("any length message"), crypto.Hash(0), true},
		{EdDSA, d32, crypto.SHA256, false},
		{PS256, d32, pss, true},
		{PS256, d32, crypto.SHA256, false}, // PKCS#1 v1.5
		{PS256, d32, &rsa.PSSOptions{SaltLength: 7, Hash: crypto.SHA256}, false},
		{Algorithm(42), d32, crypto.SHA256, false},
	}
	for i, tt := range tests {
		err := tt.alg.CheckSign(tt.digest, tt.opts)
		if tt.ok != (err == nil) {
			t.Errorf("%d: %v.CheckSign = %v", i, tt.alg, err)
		}
		if err != nil && !errors.Is(err, ErrUnsupportedAlgorithm) {
			t.Errorf("%d: err %v does not wrap ErrUnsupportedAlgorithm", i, err)
		}
	}
}

func TestRegistry(t *testing.T) {
	t.Parallel()
	open := func(ctx context.Context, uri string) (Store, error) { return nil, errors.New("opened " + uri) }
	Register("testscheme", open)
	if _, err := Open(t.Context(), "TestScheme:x"); err == nil || err.Error() != "opened TestScheme:x" {
		t.Errorf("Open through a registered scheme: %v", err)
	}
	found := false
	for _, s := range Schemes() {
		found = found || s == "testscheme"
	}
	if !found {
		t.Errorf("Schemes() = %v", Schemes())
	}
	mustPanic := func(name string, f func()) {
		t.Helper()
		defer func() {
			if recover() == nil {
				t.Errorf("%s did not panic", name)
			}
		}()
		f()
	}
	mustPanic("duplicate", func() { Register("testscheme", open) })
	mustPanic("nil", func() { Register("other", nil) })
	mustPanic("bad scheme", func() { Register("1bad", open) })

	for _, uri := range []string{"", "noscheme", ":x", "9p:x", "unknown:x?pin-value=1234"} {
		_, err := Open(t.Context(), uri)
		var ue *URIError
		if !errors.Is(err, ErrInvalidURI) || !errors.As(err, &ue) || ue.Part != "scheme" {
			t.Errorf("Open(%q) = %v, want a *URIError about the scheme", uri, err)
		}
		if strings.Contains(err.Error(), "1234") {
			t.Errorf("Open(%q) error leaks the PIN: %v", uri, err)
		}
	}
}

func TestRedactURI(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"pkcs11:token=a;pin-value=1234":                   "pkcs11:token=a;pin-value=REDACTED",
		"pkcs11:token=a?pin-value=1234&module-path=/m.so": "pkcs11:token=a?pin-value=REDACTED&module-path=/m.so",
		"file:/k?passphrase=hunter2":                      "file:/k?passphrase=REDACTED",
		"file:/k?Passphrase=x&kek=y":                      "file:/k?Passphrase=REDACTED&kek=REDACTED",
		"pkcs11:token=a?pin-source=file:/etc/pin":         "pkcs11:token=a?pin-source=file:/etc/pin",
		"pkcs11:token=a;pin%2Dvalue=1234":                 "pkcs11:token=a;pin%2Dvalue=REDACTED",
		"mem:":                                            "mem:",
		// After the ':' or '#' of a malformed URI, and a value cut there.
		"file:/k#passphrase=hunter2": "file:/k#passphrase=REDACTED",
		"pkcs11::pin-value=1234":     "pkcs11::pin-value=REDACTED",
		"tpm:x?pin-value=12:34#56":   "tpm:x?pin-value=REDACTED",
	} {
		if got := RedactURI(in); got != want {
			t.Errorf("RedactURI(%q) = %q, want %q", in, got, want)
		}
	}
}
