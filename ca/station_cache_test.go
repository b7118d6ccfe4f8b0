package ca_test

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/ztmkit/ztm/ca"
	"github.com/ztmkit/ztm/identity/keystore"
)

// testClock is a settable clock.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

// TestStationVerificationRemembered checks that an Authority that
// remembers a station certificate's verified chain still refuses it when
// it is revoked, expired or not yet valid, and does not take another
// certificate for it.
func TestStationVerificationRemembered(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clk := &testClock{now: time.Now().UTC().Add(time.Minute)}
	p := newPKI(t, keystore.ES256, func(c *ca.Config) { c.Time = clk.Now })
	newStation := func(t *testing.T) *x509.Certificate {
		t.Helper()
		c, err := p.auth.Issue(ctx, &ca.Request{
			CSR:       csr(t, deviceKey(t, "P-256"), pkix.Name{CommonName: "station"}),
			Profile:   "station",
			Requester: "admin",
			Station:   &ca.StationAuthorization{Profiles: []string{"idevid"}},
		})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	n := 0
	enroll := func(station *x509.Certificate) error {
		n++
		_, err := p.auth.Issue(ctx, &ca.Request{
			CSR: idevidCSR(t, deviceKey(t, "P-256"), "R"+string(rune('A'+n))), Profile: "idevid", RequesterCertificate: station,
		})
		return err
	}
	refused := func(t *testing.T, err error, reason string) {
		t.Helper()
		var ae *ca.AuthorizationError
		if !errors.As(err, &ae) || !errors.Is(err, ca.ErrNotAuthorized) || ae.Reason != reason {
			t.Fatalf("got %v, want refusal %q", err, reason)
		}
	}
	const doesNotVerify = "station certificate does not verify"

	t.Run("revoked after use", func(t *testing.T) {
		st := newStation(t)
		for range 2 {
			if err := enroll(st); err != nil {
				t.Fatal(err)
			}
		}
		if err := p.auth.Revoke(ctx, st.SerialNumber, ca.ReasonKeyCompromise, "admin"); err != nil {
			t.Fatal(err)
		}
		refused(t, enroll(st), "station certificate revoked")
	})

	t.Run("expired after use", func(t *testing.T) {
		start := clk.Now()
		defer clk.Set(start)
		st := newStation(t)
		if err := enroll(st); err != nil {
			t.Fatal(err)
		}
		clk.Set(st.NotAfter)
		if err := enroll(st); err != nil {
			t.Fatalf("at NotAfter: %v", err)
		}
		clk.Set(st.NotAfter.Add(time.Second))
		refused(t, enroll(st), doesNotVerify)
		// Back in its window it verifies again.
		clk.Set(start)
		if err := enroll(st); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("not yet valid after use", func(t *testing.T) {
		start := clk.Now()
		defer clk.Set(start)
		st := newStation(t)
		if err := enroll(st); err != nil {
			t.Fatal(err)
		}
		clk.Set(st.NotBefore.Add(-time.Second))
		refused(t, enroll(st), doesNotVerify)
	})

	t.Run("same certificate, other signature", func(t *testing.T) {
		st := newStation(t)
		if err := enroll(st); err != nil {
			t.Fatal(err)
		}
		// Everything the certificate says (issuer name and key ID,
		// serial, subject, key, extensions) signed by another key.
		forger := caKey(t, keystore.ES256)
		parent := *p.auth.Chain()[0]
		parent.PublicKey = forger.Public()
		forged := resign(t, st, &parent, forger)
		if forged.Equal(st) || forged.SerialNumber.Cmp(st.SerialNumber) != 0 || string(forged.RawTBSCertificate) == "" {
			t.Fatal("forgery not made as intended")
		}
		refused(t, enroll(forged), doesNotVerify)
		if err := enroll(st); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("another Authority", func(t *testing.T) {
		st := newStation(t)
		if err := enroll(st); err != nil {
			t.Fatal(err)
		}
		other := newPKI(t, keystore.ES256, nil)
		_, err := other.auth.Issue(ctx, &ca.Request{
			CSR: idevidCSR(t, deviceKey(t, "P-256"), "X1"), Profile: "idevid", RequesterCertificate: st,
		})
		refused(t, err, doesNotVerify)
	})
}

// resign returns cert with its contents signed by key as parent.
func resign(t *testing.T, cert, parent *x509.Certificate, key crypto.Signer) *x509.Certificate {
	t.Helper()
	tmpl := *cert
	tmpl.ExtraExtensions = cert.Extensions
	tmpl.Extensions = nil
	der, err := x509.CreateCertificate(rand.Reader, &tmpl, parent, cert.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
