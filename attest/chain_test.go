package attest_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"testing"
	"time"

	"github.com/ztmkit/ztm/attest"
)

// certify issues a certificate for pub from parent (nil: self-signed).
func certify(t *testing.T, cn string, pub crypto.PublicKey, parent *x509.Certificate, parentKey crypto.Signer, ca bool, notAfter time.Time) *x509.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial.Add(1)),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    t0.Add(-time.Hour),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	if ca {
		tmpl.IsCA, tmpl.BasicConstraintsValid, tmpl.KeyUsage = true, true, x509.KeyUsageCertSign
	}
	if parent == nil {
		parent = tmpl
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func p256(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestVerifyChainShapes covers the chain shapes verifyChain takes two
// ways: a leaf a root issued (checked against the anchors alone) and a
// leaf an intermediate issued (checked with the chain's certificates).
// Each refusal must hold whichever way is tried first.
func TestVerifyChainShapes(t *testing.T) {
	t.Parallel()
	far := t0.Add(10 * 365 * 24 * time.Hour)
	rootKey, interKey, otherKey, leafKey := p256(t), p256(t), p256(t), p256(t)
	root := certify(t, "AK Root", rootKey.Public(), nil, rootKey, true, far)
	inter := certify(t, "AK Intermediate", interKey.Public(), root, rootKey, true, far)
	// An impostor intermediate: same name, another key, self-signed.
	impostor := certify(t, "AK Intermediate", otherKey.Public(), nil, otherKey, true, far)
	leafOfRoot := certify(t, "ak-1", leafKey.Public(), root, rootKey, false, far)
	leafOfInter := certify(t, "ak-2", leafKey.Public(), inter, interKey, false, far)
	leafOfImpostor := certify(t, "ak-3", leafKey.Public(), impostor, otherKey, false, far)
	roots := x509.NewCertPool()
	roots.AddCert(root)

	// An expired root: the same key and name, validity over at t0.
	expiredRoot := certify(t, "AK Root", rootKey.Public(), nil, rootKey, true, t0.Add(-time.Minute))
	expiredRoots := x509.NewCertPool()
	expiredRoots.AddCert(expiredRoot)

	for _, tc := range []struct {
		name  string
		certs []*x509.Certificate
		roots *x509.CertPool
		want  []*x509.Certificate // nil: refused
	}{
		{"leaf alone", []*x509.Certificate{leafOfRoot}, roots, []*x509.Certificate{leafOfRoot, root}},
		{"leaf and its root", []*x509.Certificate{leafOfRoot, root}, roots, []*x509.Certificate{leafOfRoot, root}},
		{"leaf, intermediate", []*x509.Certificate{leafOfInter, inter}, roots, []*x509.Certificate{leafOfInter, inter, root}},
		{"leaf, intermediate, root", []*x509.Certificate{leafOfInter, inter, root}, roots, []*x509.Certificate{leafOfInter, inter, root}},
		{"leaf of an intermediate not sent", []*x509.Certificate{leafOfInter}, roots, nil},
		{"leaf of an intermediate, impostor sent", []*x509.Certificate{leafOfInter, impostor, root}, roots, nil},
		{"leaf of the impostor", []*x509.Certificate{leafOfImpostor, impostor, root}, roots, nil},
		{"leaf and its root, root expired", []*x509.Certificate{leafOfRoot, root}, expiredRoots, nil},
		{"leaf, intermediate, root expired", []*x509.Certificate{leafOfInter, inter, root}, expiredRoots, nil},
		{"leaf under an untrusted root", []*x509.Certificate{leafOfRoot, root}, x509.NewCertPool(), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := attest.VerifyChain(tc.certs, tc.roots, t0)
			if tc.want == nil {
				if err == nil {
					t.Fatalf("accepted, chain of %d", len(got))
				}
				var ve *attest.VerificationError
				if !errors.As(err, &ve) || ve.Reason != attest.ReasonUntrustedSigner {
					t.Fatalf("error %v, want ReasonUntrustedSigner", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("chain of %d, want %d", len(got), len(tc.want))
			}
			for i := range got {
				if !got[i].Equal(tc.want[i]) {
					t.Fatalf("chain[%d] is %q, want %q", i, got[i].Subject.CommonName, tc.want[i].Subject.CommonName)
				}
			}
		})
	}
}

// TestVerifyAKNamesDevice: an attestation-key certificate that names its
// device (hardwareModuleName = UEID) vouches for that device's evidence,
// CWT and JWT alike; TestVerifyRefuses has the other device's.
func TestVerifyAKNamesDevice(t *testing.T) {
	t.Parallel()
	vendor := newPKI(t, "vendor attestation CA")
	e := newEnv(t, envOpts{chain: func(pub crypto.PublicKey) ([]*x509.Certificate, *x509.CertPool) {
		return vendor.issue(t, pub, leafOpts{exts: []pkix.Extension{akName(t, testUEID)}}), vendor.pool
	}})
	for name, sign := range map[string]func([]byte) ([]byte, error){"CWT": e.dev.EvidenceCWT, "JWT": e.dev.EvidenceJWT} {
		ev, err := sign(e.nonce(t))
		if err != nil {
			t.Fatal(err)
		}
		r, err := e.ver.Verify(context.Background(), ev)
		if err != nil || r.Status() != attest.StatusAffirming {
			t.Fatalf("%s: %v", name, err)
		}
		if !e.key.Public().(*ecdsa.PublicKey).Equal(r.Evidence.PublicKey) {
			t.Fatalf("%s: Evidence.PublicKey is not the leaf's key", name)
		}
	}
	// By kid: the registered key.
	k := newEnv(t, envOpts{})
	ev, err := k.dev.EvidenceCWT(k.nonce(t))
	if err != nil {
		t.Fatal(err)
	}
	r, err := k.ver.Verify(context.Background(), ev)
	if err != nil || !k.key.Public().(*ecdsa.PublicKey).Equal(r.Evidence.PublicKey) {
		t.Fatalf("kid: Evidence.PublicKey is not the registered key (%v)", err)
	}
}
