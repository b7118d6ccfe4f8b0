package keyseal_test

import (
	"bytes"
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"testing"

	"github.com/ztmkit/ztm/identity/keyseal"
)

func TestSealOpen(t *testing.T) {
	t.Parallel()
	ueid := []byte{2, 0, 0, 0x5e, 0xfe, 0, 0, 0, 1}
	injected, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	x, _ := ecdh.X25519().GenerateKey(rand.Reader)
	for name, tc := range map[string]struct {
		pub  crypto.PublicKey
		priv any
		kem  uint16
	}{
		"P-256":  {p256.Public(), p256, 0x0010},
		"P-384":  {p384.Public(), p384, 0x0011},
		"X25519": {x.PublicKey(), x, 0x0020},
	} {
		s, err := keyseal.Seal(tc.pub, ueid, injected)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if s.KEM != tc.kem || s.AEAD != 0x0001 {
			t.Errorf("%s: suite %#x/%#x/%#x", name, s.KEM, s.KDF, s.AEAD)
		}
		got, err := keyseal.Open(tc.priv, ueid, s)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !got.Public().(*ecdsa.PublicKey).Equal(injected.Public()) {
			t.Fatalf("%s: opened another key", name)
		}
	}

	s, err := keyseal.Seal(p256.Public(), ueid, injected)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	flip := func(b []byte) []byte { c := bytes.Clone(b); c[len(c)/2] ^= 1; return c }
	for name, open := range map[string]func() (crypto.Signer, error){
		"other device's key": func() (crypto.Signer, error) { return keyseal.Open(other, ueid, s) },
		"other ueid": func() (crypto.Signer, error) {
			return keyseal.Open(p256, []byte{2, 0, 0, 0x5e, 0xfe, 0, 0, 0, 2}, s)
		},
		"wrong curve": func() (crypto.Signer, error) { return keyseal.Open(p384, ueid, s) },
		"flipped ciphertext": func() (crypto.Signer, error) {
			c := *s
			c.Ciphertext = flip(s.Ciphertext)
			return keyseal.Open(p256, ueid, &c)
		},
		"flipped enc": func() (crypto.Signer, error) {
			c := *s
			c.Enc = flip(s.Enc)
			return keyseal.Open(p256, ueid, &c)
		},
		"unknown aead": func() (crypto.Signer, error) {
			c := *s
			c.AEAD = 0x7777
			return keyseal.Open(p256, ueid, &c)
		},
		"algorithm mislabeled": func() (crypto.Signer, error) {
			c := *s
			c.Algorithm = 1 // ES384
			return keyseal.Open(p256, ueid, &c)
		},
		"nil":       func() (crypto.Signer, error) { return keyseal.Open(p256, ueid, nil) },
		"not a key": func() (crypto.Signer, error) { return keyseal.Open("key", ueid, s) },
	} {
		if k, err := open(); !errors.Is(err, keyseal.ErrOpen) || k != nil {
			t.Errorf("%s: err = %v", name, err)
		}
	}

	_, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	if _, err := keyseal.Seal(edPriv.Public(), ueid, injected); !errors.Is(err, keyseal.ErrUnsupportedKey) {
		t.Errorf("Ed25519 recipient: err = %v", err)
	}
	if _, err := keyseal.Seal(p256.Public(), ueid, "key"); !errors.Is(err, keyseal.ErrUnsupportedKey) {
		t.Errorf("non-key: err = %v", err)
	}
}

// FuzzOpen feeds arbitrary sealed blobs to the device side: it must
// refuse them with ErrOpen, never panic.
func FuzzOpen(f *testing.F) {
	ueid := []byte{2, 0, 0, 0x5e, 0xfe, 0, 0, 0, 1}
	dev, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	injected, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	s, err := keyseal.Seal(dev.Public(), ueid, injected)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(s.KEM, s.KDF, s.AEAD, s.Enc, s.Ciphertext)
	f.Add(uint16(0x20), uint16(1), uint16(3), make([]byte, 32), make([]byte, 16))
	f.Fuzz(func(t *testing.T, kem, kdf, aead uint16, enc, ct []byte) {
		got, err := keyseal.Open(dev, ueid, &keyseal.Sealed{KEM: kem, KDF: kdf, AEAD: aead, Info: s.Info, Enc: enc, Ciphertext: ct})
		if err == nil {
			if !bytes.Equal(ct, s.Ciphertext) || !got.Public().(*ecdsa.PublicKey).Equal(injected.Public()) {
				t.Fatal("opened a blob that was not sealed")
			}
			return
		}
		if !errors.Is(err, keyseal.ErrOpen) {
			t.Fatalf("err = %v", err)
		}
	})
}
