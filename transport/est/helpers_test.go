package est_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"testing"

	"github.com/ztmkit/ztm/internal/estline"
)

// env is the line these tests run against (internal/estline): a test PKI
// and an Authority with a ledger in memory, an attestation verifier, an
// enroll.Service, and an EST server on 127.0.0.1 over TLS.
type env struct{ *estline.Line }

func newEnv(t testing.TB, cfg estline.Config) *env {
	t.Helper()
	return &env{estline.New(t, cfg)}
}

// device is a simulated device with its attestation key and a UEID.
type device = estline.Device

// newDevice is a device of a new model, one the env's verifier does not
// know.
func newDevice(t testing.TB, i int) *device { return estline.NewDevice(t, i) }

var hwType = estline.HWType

func newKey(t testing.TB) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

type x509Cert = x509.Certificate

func parseCert(der []byte) (*x509.Certificate, error) { return x509.ParseCertificate(der) }

func mustSigner(t testing.TB, e *env) crypto.Signer { return e.PKI.IssuingKey }

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }
