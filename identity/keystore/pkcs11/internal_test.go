//go:build cgo

package pkcs11

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/asn1"
	"errors"
	"math/big"
	"testing"

	p11 "github.com/miekg/pkcs11"

	"github.com/ztmkit/ztm/identity/keystore"
	"github.com/ztmkit/ztm/internal/softhsmtest"
)

// A Create that fails after the token generated the key pair leaves no
// object behind.
func TestCreateFailureLeavesNothing(t *testing.T) {
	tok := softhsmtest.New(t)
	ctx := context.Background()
	s, err := Open(ctx, Config{ModulePath: tok.Module, TokenLabel: tok.Label, PIN: tok.PIN})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	boom := errors.New("boom")
	s.testOnlyAfterGenerate = func() error { return boom }
	for _, alg := range keystore.Algorithms() {
		if _, err := s.Create(ctx, keystore.CreateRequest{Label: "half", Algorithm: alg}); !errors.Is(err, boom) {
			t.Fatalf("Create(%v): err = %v, want boom", alg, err)
		}
	}
	// No object of any class is left on the token.
	err = s.do(ctx, func(sh p11.SessionHandle) error {
		hs, err := s.find(sh, nil, 0)
		if err != nil {
			return err
		}
		if len(hs) != 0 {
			t.Errorf("%d objects left on the token after failed Creates", len(hs))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	s.testOnlyAfterGenerate = nil
	if _, err := s.Create(ctx, keystore.CreateRequest{Label: "half"}); err != nil {
		t.Fatalf("Create after the failures: %v", err)
	}
}

func TestECDSADER(t *testing.T) {
	check := func(raw []byte) {
		t.Helper()
		n := len(raw) / 2
		want, err := asn1.Marshal(struct{ R, S *big.Int }{new(big.Int).SetBytes(raw[:n]), new(big.Int).SetBytes(raw[n:])})
		if err != nil {
			t.Fatal(err)
		}
		got, err := ecdsaDER(raw)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("ecdsaDER(%x) = %x, %v; want %x", raw, got, err, want)
		}
	}
	for _, size := range []int{32, 48} {
		for i := range 200 {
			raw := make([]byte, 2*size)
			rand.Read(raw)
			switch i % 4 {
			case 1:
				raw[0], raw[1] = 0, 0 // leading zero bytes
			case 2:
				raw[0] |= 0x80 // high bit: needs a zero prefix
			case 3:
				clear(raw[size:]) // s = 0
			}
			check(raw)
		}
	}
	for _, bad := range [][]byte{nil, {1, 2, 3}, make([]byte, 2*67)} {
		if _, err := ecdsaDER(bad); err == nil {
			t.Errorf("ecdsaDER accepted %d bytes", len(bad))
		}
	}
}
