// Package testpki holds the test fixtures that the SDK's tests share: a
// device CA (root and issuing intermediate), an Authority over it with a
// ledger in memory, a station's identity, and a device's IDevID request.
// It is internal: only this module's tests use it.
//
// It imports no database driver (its ledger is ca/ledger/memledger): the
// tests of the packages a jig imports use it, and a jig's `go mod tidy`
// loads those tests. Tests whose subject is a durable ledger open it
// themselves, in that ledger's package.
//
// Every function takes a testing.TB and fails the test on error, and
// everything it opens is closed by the test's cleanup.
package testpki

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	mrand "math/rand/v2"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ztmkit/ztm/ca"
	"github.com/ztmkit/ztm/ca/ledger/memledger"
	"github.com/ztmkit/ztm/identity"
	"github.com/ztmkit/ztm/identity/keystore"
	"github.com/ztmkit/ztm/identity/keystore/mem"
)

// Config names the CA a [New] PKI has. The zero value is an ES256 CA of
// "Example OEM".
type Config struct {
	// Algorithm is the CA keys' algorithm. If zero, ES256.
	Algorithm keystore.Algorithm
	// Organization is the subjects' O. If empty, "Example OEM"; "-" for
	// none.
	Organization string
	// RootName and IssuingName are the subjects' CN. If empty, "Example
	// OEM Root CA" and "Line 1 Issuing CA".
	RootName, IssuingName string
}

// PKI is a device CA: a root and an issuing intermediate, with their keys
// (in a memory key store).
type PKI struct {
	Root, Issuing       *x509.Certificate
	RootKey, IssuingKey crypto.Signer
}

var keyN atomic.Int64

// Key returns a new CA key of alg from a memory key store.
func Key(t testing.TB, alg keystore.Algorithm) crypto.Signer {
	t.Helper()
	store := mem.New()
	t.Cleanup(func() { store.Close() })
	k, err := store.Create(context.Background(), keystore.CreateRequest{
		Label:     "ca-" + strings.ToLower(alg.String()) + "-" + strconv.FormatInt(keyN.Add(1), 10),
		Algorithm: alg,
	})
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// New makes a root and an issuing intermediate under it.
func New(t testing.TB, cfg Config) *PKI {
	t.Helper()
	if cfg.Algorithm == 0 {
		cfg.Algorithm = keystore.ES256
	}
	var org []string
	switch cfg.Organization {
	case "":
		org = []string{"Example OEM"}
	case "-":
	default:
		org = []string{cfg.Organization}
	}
	rootName, issuingName := cfg.RootName, cfg.IssuingName
	if rootName == "" {
		rootName = "Example OEM Root CA"
	}
	if issuingName == "" {
		issuingName = "Line 1 Issuing CA"
	}
	p := &PKI{RootKey: Key(t, cfg.Algorithm), IssuingKey: Key(t, cfg.Algorithm)}
	var err error
	p.Root, err = ca.NewRoot(ca.RootRequest{Subject: pkix.Name{Organization: org, CommonName: rootName}, Signer: p.RootKey})
	if err != nil {
		t.Fatal(err)
	}
	p.Issuing, err = ca.NewIntermediate(ca.IntermediateRequest{
		Subject:   pkix.Name{Organization: org, CommonName: issuingName},
		PublicKey: p.IssuingKey.Public(), Parent: p.Root, ParentSigner: p.RootKey,
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Chain returns the issuing CA's chain: the intermediate, then the root.
func (p *PKI) Chain() []*x509.Certificate { return []*x509.Certificate{p.Issuing, p.Root} }

// Roots returns a pool holding the root.
func (p *PKI) Roots() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(p.Root)
	return pool
}

// Authority returns an Authority on the issuing CA over ledger; edit, if
// not nil, changes its configuration first.
func (p *PKI) Authority(t testing.TB, ledger ca.Ledger, edit func(*ca.Config)) *ca.Authority {
	t.Helper()
	cfg := ca.Config{Signer: p.IssuingKey, Chain: p.Chain(), Ledger: ledger}
	if edit != nil {
		edit(&cfg)
	}
	a, err := ca.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// Ledger returns a new, empty ledger in memory, closed by the test's
// cleanup. It is not durable: a test of crash safety or of the database
// file opens ca/ledger/sqlite or ca/ledger/postgres itself.
func Ledger(t testing.TB) *memledger.Ledger {
	t.Helper()
	l := memledger.New()
	t.Cleanup(func() { l.Close() })
	return l
}

var stationN atomic.Int64

// Station issues a station certificate from a, authorized for steps and
// profiles, to a new P-256 key, and returns both.
func Station(t testing.TB, a *ca.Authority, steps, profiles []string) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: fmt.Sprintf("station-%d", stationN.Add(1))},
	}, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := a.Issue(context.Background(), &ca.Request{CSR: csr, Profile: "station", Requester: "test-admin",
		Station: &ca.StationAuthorization{Steps: steps, Profiles: profiles}})
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

// HWType is the hardwareModuleName type (a device model's OID) of
// [DeviceCSR].
var HWType = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 99999, 1, 1}

// deviceN numbers the devices of NewDeviceSerial, after a random prefix
// of this process (so that processes sharing a ledger, as a crash test's
// children do, name other devices).
var (
	deviceN      atomic.Int64
	devicePrefix = mrand.Int64()
)

// NewDeviceSerial returns another device's serial number each call,
// starting with prefix: a device holds one live IDevID, so tests that
// issue many make many devices.
func NewDeviceSerial(prefix string) string {
	return fmt.Sprintf("%s-%x-%d", prefix, devicePrefix, deviceN.Add(1))
}

// DeviceCSR is what a device sends for its IDevID, signed by key: subject
// serialNumber and CN "Sensor <serial>", and a subjectAltName with a
// hardwareModuleName of [HWType] and serial.
func DeviceCSR(t testing.TB, key crypto.Signer, serial string) []byte {
	t.Helper()
	san, err := identity.HardwareModuleNameExtension(identity.HardwareModuleName{Type: HWType, SerialNumber: []byte(serial)}, false)
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
