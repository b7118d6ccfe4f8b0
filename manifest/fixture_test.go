package manifest_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"testing"
	"time"

	"github.com/ztmkit/ztm/manifest"
)

// t0 is the fixed time of the fixtures' first step.
var t0 = time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)

type party struct {
	name   string
	key    *ecdsa.PrivateKey
	signer *manifest.StepSigner
}

// fixture is a line with three partners and an OEM: chipco (die sort and
// key generation), cm (firmware load, ship), a test house whose station
// signs with a certificate (role test-station), and three OEM release
// signers of which two must sign.
type fixture struct {
	tb      testing.TB
	parties map[string]*party
	root    *x509.Certificate
	rootKey *ecdsa.PrivateKey
	policy  *manifest.Policy
	subject []byte
	// testhouseLeaf is the test house station's certificate. Party
	// "testhouse" sends it as x5chain, "testhouse-x5t" names it by digest.
	testhouseLeaf *x509.Certificate
}

func mustKey(tb testing.TB) *ecdsa.PrivateKey {
	tb.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

// newCA makes a self-signed root.
func newCA(tb testing.TB, cn string) (*x509.Certificate, *ecdsa.PrivateKey) {
	tb.Helper()
	key := mustKey(tb)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn, Organization: []string{"ACME"}},
		NotBefore: t0.Add(-24 * time.Hour), NotAfter: t0.Add(5 * 365 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		tb.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	return c, key
}

// issue makes a leaf certificate for pub with the given OU (role) and
// extensions.
func issue(tb testing.TB, ca *x509.Certificate, caKey crypto.Signer, cn, ou string, pub crypto.PublicKey, exts ...pkix.Extension) *x509.Certificate {
	tb.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn, Organization: []string{"TestHouse"}, OrganizationalUnit: []string{ou}},
		NotBefore:    t0.Add(-time.Hour), NotAfter: t0.Add(365 * 24 * time.Hour),
		KeyUsage:        x509.KeyUsageDigitalSignature,
		ExtraExtensions: exts,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, pub, caKey)
	if err != nil {
		tb.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

func newFixture(tb testing.TB) *fixture {
	tb.Helper()
	f := &fixture{tb: tb, parties: map[string]*party{}}
	f.root, f.rootKey = newCA(tb, "ACME Partner Root")
	for _, n := range []string{"chipco", "cm", "qa", "plant", "security"} {
		k := mustKey(tb)
		s, err := manifest.NewStepSigner(k, manifest.SignOptions{Issuer: n})
		if err != nil {
			tb.Fatal(err)
		}
		f.parties[n] = &party{name: n, key: k, signer: s}
	}
	tk := mustKey(tb)
	leaf := issue(tb, f.root, f.rootKey, "testhouse-line2", "test-station", tk.Public())
	ts, err := manifest.NewStepSigner(tk, manifest.SignOptions{Issuer: "testhouse", CertChain: []*x509.Certificate{leaf}})
	if err != nil {
		tb.Fatal(err)
	}
	f.parties["testhouse"] = &party{name: "testhouse", key: tk, signer: ts}
	f.testhouseLeaf = leaf
	tsd, err := manifest.NewStepSigner(tk, manifest.SignOptions{Issuer: "testhouse", CertChain: []*x509.Certificate{leaf}, CertChainByDigest: true})
	if err != nil {
		tb.Fatal(err)
	}
	f.parties["testhouse-x5t"] = &party{name: "testhouse", key: tk, signer: tsd}

	f.policy = &manifest.Policy{
		Name: "acme-widget-line", Version: 1, Issuer: "ACME",
		Expires: t0.Add(365 * 24 * time.Hour),
		Roots:   []*x509.Certificate{f.root},
		Steps: []manifest.StepRule{
			{Name: manifest.StepDieSort, Signers: []string{"chipco"}},
			{Name: manifest.StepKeyGeneration, Signers: []string{"chipco"}},
			{Name: manifest.StepFirmwareLoad, Signers: []string{"cm"}},
			{Name: manifest.StepFinalTest, Roles: []string{"test-station"}},
			{Name: "release", Signers: []string{"qa", "plant", "security"}, Threshold: 2},
			{Name: manifest.StepShip, Signers: []string{"cm"}},
			{Name: manifest.StepKeyDestroyed, Signers: []string{"chipco"}, Optional: true},
		},
	}
	for _, n := range []string{"chipco", "cm", "qa", "plant", "security"} {
		f.policy.Keys = append(f.policy.Keys, manifest.PolicyKey{Name: n, Public: f.parties[n].key.Public()})
	}
	// A UEID of type RAND (0x01) and 16 bytes.
	f.subject = append([]byte{0x01}, sha256.New().Sum([]byte("device-0001"))[:16]...)
	return f
}

// stepSpec is one step of a chain to build: its name and who signs it.
type stepSpec struct{ name, by string }

// goodSpecs is the line's normal history.
var goodSpecs = []stepSpec{
	{manifest.StepDieSort, "chipco"},
	{manifest.StepKeyGeneration, "chipco"},
	{manifest.StepFirmwareLoad, "cm"},
	{manifest.StepFinalTest, "testhouse"},
	{"release", "qa"},
	{"release", "plant"},
	{manifest.StepShip, "cm"},
}

// newStep returns the unsigned step that would follow prev.
func (f *fixture) newStep(name string, seq uint64, prev *manifest.SignedStep) *manifest.Step {
	s := &manifest.Step{
		Name: name, Subject: f.subject, Sequence: seq,
		Time: t0.Add(time.Duration(seq) * time.Hour), Lot: "LOT-2026-03-A",
		Artifacts: map[string]manifest.Digest{"log": manifest.Sum(manifest.SHA256, []byte(name+" log"))},
		Predicate: manifest.Claims{1: "pass", "station": "line-2"},
	}
	if prev != nil {
		d := manifest.Sum(manifest.SHA256, prev.Raw)
		s.Prev = &d
	}
	return s
}

func (f *fixture) sign(s *manifest.Step, by string) *manifest.SignedStep {
	f.tb.Helper()
	p := f.parties[by]
	if p == nil {
		f.tb.Fatalf("no party %q", by)
	}
	ss, err := p.signer.Sign(rand.Reader, s)
	if err != nil {
		f.tb.Fatal(err)
	}
	return ss
}

// build signs a chain from specs; key generation hands custody to cm.
func (f *fixture) build(specs []stepSpec) manifest.Chain {
	f.tb.Helper()
	var c manifest.Chain
	var prev *manifest.SignedStep
	for i, sp := range specs {
		s := f.newStep(sp.name, uint64(i), prev)
		if sp.name == manifest.StepKeyGeneration {
			t := f.parties["cm"].signer.Thumbprint()
			s.NextCustodian = &t
		}
		prev = f.sign(s, sp.by)
		c = append(c, prev)
	}
	return c
}
