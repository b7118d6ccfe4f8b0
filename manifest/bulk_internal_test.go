package manifest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"testing"
	"time"
)

func selfSigned(t *testing.T, notBefore, notAfter time.Time) *x509.Certificate {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "station"},
		NotBefore: notBefore, NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestCertCacheShares: a certificate is decoded once, and what does not
// decode is not kept.
func TestCertCacheShares(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cert := selfSigned(t, start, start.AddDate(1, 0, 0))
	cc := newCertCache()
	a, err := cc.parse(append([]byte(nil), cert.Raw...))
	if err != nil {
		t.Fatal(err)
	}
	b, err := cc.parse(append([]byte(nil), cert.Raw...))
	if err != nil || a != b {
		t.Fatalf("second parse: %p, %p, %v", a, b, err)
	}
	if _, err := cc.parse(cert.Raw[:len(cert.Raw)-1]); err == nil || len(cc.m) != 1 {
		t.Fatalf("truncated certificate: %v, %d cached", err, len(cc.m))
	}
	var nilCache *certCache
	if c, err := nilCache.parse(cert.Raw); err != nil || c == a {
		t.Fatalf("nil cache: %p, %v", c, err)
	}
}

// TestTrustCacheSpan: a trusted chain is trusted again only within the
// validity of every certificate of its path, bounds included, and callers
// get copies.
func TestTrustCacheSpan(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	root := selfSigned(t, start, start.AddDate(10, 0, 0))
	leaf := selfSigned(t, start.AddDate(0, 1, 0), start.AddDate(1, 0, 0))
	tc := newTrustCache()
	key := trustKey(leaf, nil)
	if key == trustKey(leaf, []*x509.Certificate{root}) {
		t.Fatal("intermediates do not change the key")
	}
	tc.put(key, &signer{name: "cert:station", valid: true}, [][]*x509.Certificate{{leaf, root}})
	for when, want := range map[time.Time]bool{
		leaf.NotBefore: true, leaf.NotAfter: true, start.AddDate(0, 6, 0): true,
		leaf.NotBefore.Add(-time.Second): false, leaf.NotAfter.Add(time.Second): false, start: false,
	} {
		sg := tc.get(key, when)
		if (sg != nil) != want {
			t.Errorf("at %v: %v, want trusted %v", when, sg, want)
		}
		if sg != nil {
			if sg.valid || sg.name != "cert:station" {
				t.Errorf("at %v: cached signer %+v (valid must start false)", when, sg)
			}
			sg.valid = true
		}
	}
	if sg := tc.get(trustKey(leaf, []*x509.Certificate{root}), start.AddDate(0, 6, 0)); sg != nil {
		t.Error("another chain is trusted by the cache")
	}
}
