package pkcs11

import (
	"bytes"
	"encoding/hex"
	"testing"
)

// The examples of RFC 5649 §6, and altered ciphertexts.
func TestUnwrapKWP(t *testing.T) {
	h := func(s string) []byte {
		b, err := hex.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	kek := h("5840df6e29b02af1ab493b705bf16ea1ae8338f4dcc176a8")
	for _, tc := range []struct{ wrapped, key string }{
		{"138bdeaa9b8fa7fc61f97742e72248ee5ae6ae5360d1ae6a5f54f373fa543b6a", "c37b7e6492584340bed12207808941155068f738"},
		{"afbeb0f07dfbf5419200f2ccb50bb24f", "466f7250617369"},
	} {
		got, err := unwrapKWP(kek, h(tc.wrapped))
		if err != nil || !bytes.Equal(got, h(tc.key)) {
			t.Fatalf("unwrap %s = %x, %v; want %s", tc.wrapped, got, err, tc.key)
		}
		for i := range len(tc.wrapped) / 2 {
			bad := h(tc.wrapped)
			bad[i] ^= 1
			if got, err := unwrapKWP(kek, bad); err == nil {
				t.Fatalf("ciphertext altered at byte %d unwrapped to %x", i, got)
			}
		}
		other := bytes.Clone(kek)
		other[0] ^= 1
		if _, err := unwrapKWP(other, h(tc.wrapped)); err == nil {
			t.Fatal("unwrapped under another KEK")
		}
	}
	for _, bad := range []string{"", "00", "0001020304050607", "000102030405060708090a0b0c0d0e0f10"} {
		if _, err := unwrapKWP(kek, h(bad)); err == nil {
			t.Fatalf("unwrapped %q", bad)
		}
	}
	if _, err := unwrapKWP([]byte("short"), h("afbeb0f07dfbf5419200f2ccb50bb24f")); err == nil {
		t.Fatal("a 5-byte KEK was accepted")
	}
}

// FuzzUnwrapKWP checks that unwrapKWP never panics and never returns more
// bytes than the ciphertext carries.
func FuzzUnwrapKWP(f *testing.F) {
	f.Add([]byte("0123456789abcdef"), []byte{0x13, 0x8b, 0xde, 0xaa, 0x9b, 0x8f, 0xa7, 0xfc, 0x61, 0xf9, 0x77, 0x42, 0xe7, 0x22, 0x48, 0xee, 0x5a, 0xe6, 0xae, 0x53, 0x60, 0xd1, 0xae, 0x6a})
	f.Add([]byte("0123456789abcdef0123456789abcdef"), make([]byte, 16))
	f.Fuzz(func(t *testing.T, kek, ct []byte) {
		out, err := unwrapKWP(kek, ct)
		if err == nil && len(out) > len(ct)-8 {
			t.Fatalf("unwrapped %d bytes from %d", len(out), len(ct))
		}
	})
}
