package postgres_test

import (
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
