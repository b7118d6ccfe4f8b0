package est_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ztmkit/ztm/identity"
	"github.com/ztmkit/ztm/internal/estline"
	"github.com/ztmkit/ztm/transport/est"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// boundCSR builds an IDevID request for d with a challengePassword, the
// way a device that supports channel binding does.
func boundCSR(t *testing.T, d *device, key *ecdsa.PrivateKey, serial, password string) []byte {
	t.Helper()
	d.Sim.BindKey(key.Public())
	subject, err := asn1.Marshal(pkix.Name{ExtraNames: []pkix.AttributeTypeAndValue{{Type: asn1.ObjectIdentifier{2, 5, 4, 5}, Value: serial}}}.ToRDNSequence())
	if err != nil {
		t.Fatal(err)
	}
	spki, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	san, err := identity.HardwareModuleNameExtension(identity.HardwareModuleName{Type: hwType, SerialNumber: d.UEID}, false)
	if err != nil {
		t.Fatal(err)
	}
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1Int64(0)
		b.AddBytes(subject)
		b.AddBytes(spki)
		b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddASN1ObjectIdentifier(asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 7})
				b.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) {
					b.AddASN1(cbasn1.UTF8String, func(b *cryptobyte.Builder) { b.AddBytes([]byte(password)) })
				})
			})
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddASN1ObjectIdentifier(asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 14})
				b.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) {
					b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
						b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
							b.AddASN1ObjectIdentifier(san.Id)
							b.AddASN1OctetString(san.Value)
						})
					})
				})
			})
		})
	})
	tbs, err := b.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(tbs)
	sig, err := key.Sign(rand.Reader, sum[:], crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	var out cryptobyte.Builder
	out.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddBytes(tbs)
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1ObjectIdentifier(asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2})
		})
		b.AddASN1BitString(sig)
	})
	der, err := out.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := x509.ParseCertificateRequest(der); err != nil {
		t.Fatal(err)
	}
	return der
}

func TestChannelBinding(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, estline.Config{Server: func(c *est.ServerConfig) { c.RequireChannelBinding = true }})
	st, key := e.Station("idevid")
	c := e.Client(st, key)
	d := e.Devices[0]

	// Bound to this connection: issued.
	nonce, _ := c.Nonce(ctx)
	k1 := newKey(t)
	d.Sim.BindKey(k1.Public())
	chain, err := c.EnrollBound(ctx, "", func(pw string) ([]byte, error) {
		return boundCSR(t, d, k1, "SN-CB-1", pw), nil
	}, d.Evidence(t, nonce))
	if err != nil {
		t.Fatal(err)
	}
	if chain[0].Subject.SerialNumber != "SN-CB-1" {
		t.Fatalf("subject %v", chain[0].Subject)
	}
	before := e.Issuances()
	// Bound to another connection (a relayed request): refused.
	var captured string
	nonce, _ = c.Nonce(ctx)
	if _, err := c.EnrollBound(ctx, "", func(pw string) ([]byte, error) { captured = pw; return nil, errors.New("stop") }, nil); err == nil {
		t.Fatal("makeCSR error ignored")
	}
	k2 := newKey(t)
	d.Sim.BindKey(k2.Public())
	_, err = c.EnrollBound(ctx, "", func(string) ([]byte, error) {
		return boundCSR(t, d, k2, "SN-CB-2", captured), nil
	}, d.Evidence(t, nonce))
	if !errors.Is(err, est.ErrForbidden) {
		t.Fatalf("relayed binding: err = %v", err)
	}
	// Unbound while the server requires binding: refused.
	nonce, _ = c.Nonce(ctx)
	_, err = c.SimpleEnroll(ctx, "", d.CSR(t, "SN-CB-3"), d.Evidence(t, nonce))
	var se *est.StatusError
	if !errors.As(err, &se) || se.Code != http.StatusForbidden || !strings.Contains(se.Body, "channel binding") {
		t.Fatalf("unbound: err = %v", err)
	}
	if got := e.Issuances(); got != before {
		t.Fatalf("refusals recorded %d records", got-before)
	}
}

// TestClientRetryAfter runs the Client against a server that answers 503
// and 202 with Retry-After before answering.
func TestClientRetryAfter(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, estline.Config{})
	var calls atomic.Int32
	var busy atomic.Int32
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if busy.Add(-1) >= 0 {
			w.Header().Set("Retry-After", "1")
			code := http.StatusServiceUnavailable
			if strings.HasSuffix(r.URL.Path, "/simpleenroll") {
				code = http.StatusAccepted
			}
			w.WriteHeader(code)
			return
		}
		e.Server.ServeHTTP(w, r)
	}))
	ts.StartTLS()
	defer ts.Close()
	roots := x509.NewCertPool()
	roots.AddCert(ts.Certificate())
	c, err := est.NewClient(est.ClientConfig{URL: ts.URL, Roots: roots, MaxRetries: 2, MaxRetryAfter: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	busy.Store(2)
	start := time.Now()
	if _, err := c.CACerts(ctx, ""); err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 3 || time.Since(start) < 2*time.Second {
		t.Fatalf("%d calls in %v, want 3 after two 1 s waits", calls.Load(), time.Since(start))
	}
	// More refusals than retries: a RetryLaterError.
	busy.Store(5)
	calls.Store(0)
	_, err = c.CACerts(ctx, "")
	var rl *est.RetryLaterError
	if !errors.As(err, &rl) || rl.After != time.Second || !errors.Is(err, est.ErrRetryLater) || calls.Load() != 3 {
		t.Fatalf("err = %v after %d calls", err, calls.Load())
	}
	// A deadline shorter than Retry-After: no wait at all.
	busy.Store(1)
	calls.Store(0)
	dctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	_, err = c.CACerts(dctx, "")
	if !errors.Is(err, est.ErrRetryLater) || dctx.Err() != nil || calls.Load() != 1 {
		t.Fatalf("deadline: err = %v, ctx %v, %d calls; want an immediate RetryLaterError", err, dctx.Err(), calls.Load())
	}
	busy.Store(0)
}
