package postgres_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"math/big"
	mrand "math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ztmkit/ztm/ca"
	"github.com/ztmkit/ztm/identity"
	"github.com/ztmkit/ztm/identity/keystore"
	"github.com/ztmkit/ztm/identity/keystore/mem"
)

var (
	recKeyOnce sync.Once
	recKey     *ecdsa.PrivateKey
)

// issuance returns an issuance record for a fresh random serial with a
// real self-signed certificate, as ca.ChainVerifier requires.
func issuance(t testing.TB, requester string, at time.Time) *ca.Record {
	t.Helper()
	recKeyOnce.Do(func() {
		var err error
		if recKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			panic(err)
		}
	})
	var b [16]byte
	rand.Read(b[:])
	b[0] |= 1
	serial := new(big.Int).SetBytes(b[:])
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{SerialNumber: serial.Text(16)},
		NotBefore:    at.Truncate(time.Second),
		NotAfter:     at.Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, recKey.Public(), recKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pkh := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return &ca.Record{
		Kind:          ca.KindIssuance,
		Serial:        serial,
		Subject:       cert.Subject.String(),
		PublicKeyHash: pkh[:],
		Profile:       "idevid",
		Requester:     requester,
		Time:          at,
		Certificate:   der,
	}
}

// testPKI is a root and an intermediate whose key signs for every CA
// instance of a test, as instances behind one load balancer share the
// issuing CA's key (in an HSM).
type testPKI struct {
	root, inter *x509.Certificate
	key         crypto.Signer
}

func newPKI(t testing.TB) *testPKI {
	t.Helper()
	ctx := context.Background()
	store := mem.New()
	t.Cleanup(func() { store.Close() })
	rootKey, err := store.Create(ctx, keystore.CreateRequest{Label: "root", Algorithm: keystore.ES256})
	if err != nil {
		t.Fatal(err)
	}
	interKey, err := store.Create(ctx, keystore.CreateRequest{Label: "line1", Algorithm: keystore.ES256})
	if err != nil {
		t.Fatal(err)
	}
	root, err := ca.NewRoot(ca.RootRequest{
		Subject: pkix.Name{Organization: []string{"Example OEM"}, CommonName: "Example OEM Root CA"},
		Signer:  rootKey,
	})
	if err != nil {
		t.Fatal(err)
	}
	inter, err := ca.NewIntermediate(ca.IntermediateRequest{
		Subject:      pkix.Name{Organization: []string{"Example OEM"}, CommonName: "Line 1 Issuing CA"},
		PublicKey:    interKey.Public(),
		Parent:       root,
		ParentSigner: rootKey,
	})
	if err != nil {
		t.Fatal(err)
	}
	return &testPKI{root: root, inter: inter, key: interKey}
}

// authority makes a CA instance over l.
func (p *testPKI) authority(t testing.TB, l ca.Ledger, quota ca.QuotaPolicy) *ca.Authority {
	t.Helper()
	a, err := ca.New(ca.Config{
		Signer: p.key,
		Chain:  []*x509.Certificate{p.inter, p.root},
		Ledger: l,
		Quota:  quota,
	})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

var hwType = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 99999, 1, 1}

// deviceN numbers the devices of newDeviceCSR, after a random prefix.
var (
	deviceN      atomic.Int64
	devicePrefix = mrand.Int64()
)

// newDeviceCSR is an IDevID request of another device each call: a device
// holds one live IDevID, so tests that issue many make many devices.
func newDeviceCSR(t testing.TB, prefix string) []byte {
	return idevidCSR(t, fmt.Sprintf("%s-%x-%d", prefix, devicePrefix, deviceN.Add(1)))
}

// idevidCSR is what a device sends for its IDevID: a fresh P-256 key,
// subject serialNumber and a hardwareModuleName.
func idevidCSR(t testing.TB, serial string) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	san, err := identity.HardwareModuleNameExtension(ca.HardwareModuleName{Type: hwType, SerialNumber: []byte(serial)}, false)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject:         pkix.Name{SerialNumber: serial, CommonName: "Sensor " + serial},
		ExtraExtensions: []pkix.Extension{san},
	}, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}
