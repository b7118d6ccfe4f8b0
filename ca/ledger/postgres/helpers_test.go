package postgres_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"sync"
	"testing"
	"time"

	"github.com/ztmkit/ztm/internal/testpki"

	"github.com/ztmkit/ztm/ca"
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
	p := testpki.New(t, testpki.Config{})
	return &testPKI{root: p.Root, inter: p.Issuing, key: p.IssuingKey}
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

// hwType is the hardwareModuleName type of the devices' requests.
var hwType = testpki.HWType

// newDeviceCSR is an IDevID request of another device each call: a device
// holds one live IDevID, so tests that issue many make many devices.
func newDeviceCSR(t testing.TB, prefix string) []byte {
	return idevidCSR(t, testpki.NewDeviceSerial(prefix))
}

// idevidCSR is what a device sends for its IDevID: a fresh P-256 key,
// subject serialNumber and a hardwareModuleName.
func idevidCSR(t testing.TB, serial string) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return testpki.DeviceCSR(t, key, serial)
}
