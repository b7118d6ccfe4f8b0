package pkcs11_test

import (
	"context"
	"os"
	"slices"
	"testing"

	"github.com/ztmkit/ztm/identity/keystore"
	"github.com/ztmkit/ztm/identity/keystore/keystoretest"
	"github.com/ztmkit/ztm/identity/keystore/pkcs11"
	"github.com/ztmkit/ztm/internal/softhsmtest"
)

func TestMain(m *testing.M) { os.Exit(softhsmtest.Main(m)) }

// softHSMAlgorithms is what SoftHSM 2.6.1 (Debian's softhsm2, built with
// EdDSA) offers: every algorithm ztm defines.
var softHSMAlgorithms = []keystore.Algorithm{keystore.ES256, keystore.ES384, keystore.EdDSA, keystore.PS256}

func config(tok softhsmtest.Token) pkcs11.Config {
	return pkcs11.Config{ModulePath: tok.Module, TokenLabel: tok.Label, PIN: tok.PIN}
}

func openToken(t *testing.T, tok softhsmtest.Token) *pkcs11.Store {
	t.Helper()
	s, err := pkcs11.Open(context.Background(), config(tok))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	keystoretest.Run(t, func(t *testing.T) keystoretest.Opener {
		tok := softhsmtest.New(t)
		return func() (keystore.Store, error) { return pkcs11.Open(context.Background(), config(tok)) }
	}, keystoretest.Config{Persistent: true, Algorithms: softHSMAlgorithms})
}

func TestAlgorithmsOfSoftHSM(t *testing.T) {
	s := openToken(t, softhsmtest.New(t))
	if got := s.Algorithms(); !slices.Equal(got, softHSMAlgorithms) {
		t.Fatalf("Algorithms() = %v, want %v", got, softHSMAlgorithms)
	}
}
