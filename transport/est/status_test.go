package est_test

import (
	"context"
	"crypto"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/ztmkit/ztm/attest"
	"github.com/ztmkit/ztm/ca"
	"github.com/ztmkit/ztm/ca/enroll"
	"github.com/ztmkit/ztm/internal/estline"
	"github.com/ztmkit/ztm/transport/est"
)

func TestQuotaIs429(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, estline.Config{Quota: ca.QuotaPolicy{Limit: 1, Period: time.Hour}})
	st, key := e.Station("idevid")
	c := e.Client(st, key)
	d := e.Devices[0]
	nonce, _ := c.Nonce(ctx)
	if _, err := c.SimpleEnroll(ctx, "", d.CSR(t, "SN-Q1"), d.Evidence(t, nonce)); err != nil {
		t.Fatal(err)
	}
	before := e.Issuances()
	nonce, _ = c.Nonce(ctx)
	d2 := d.Twin(t)
	_, err := c.SimpleEnroll(ctx, "", d2.CSR(t, "SN-Q2"), d2.Evidence(t, nonce))
	var se *est.StatusError
	if !errors.As(err, &se) || se.Code != http.StatusTooManyRequests || !errors.Is(err, est.ErrQuotaExceeded) {
		t.Fatalf("over quota: err = %v", err)
	}
	if e.Issuances() != before {
		t.Fatal("refusal recorded")
	}
}

func TestStatusCodes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, estline.Config{NoServer: true, Server: func(c *est.ServerConfig) {
		c.BasicAuth = []est.BasicCredential{{Username: "tool", Password: "pw", Profiles: []string{"ldevid"}}}
	}})
	d := e.Devices[0]
	n, _ := e.Nonces.Issue()
	ev := base64.StdEncoding.EncodeToString(d.Evidence(t, n))
	do := func(method, path, user, pass string, body []byte) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, path, nil)
		if body != nil {
			r = httptest.NewRequest(method, path, bytesReader(body))
			r.Header.Set("Content-Type", est.MediaTypePKCS10)
			r.Header.Set(est.HeaderEvidence, ev)
		}
		if user != "" {
			r.SetBasicAuth(user, pass)
		}
		w := httptest.NewRecorder()
		e.Server.ServeHTTP(w, r)
		return w
	}
	before := e.Issuances()
	csr := b64(d.CSR(t, "SN-S"))
	for _, tc := range []struct {
		name, method, path, user, pass string
		body                           []byte
		code                           int
	}{
		{"csrattrs", "GET", "/.well-known/est/csrattrs", "", "", nil, 200},
		{"cacerts POST", "POST", "/.well-known/est/cacerts", "", "", nil, 405},
		{"enroll GET", "GET", "/.well-known/est/simpleenroll", "", "", nil, 405},
		{"unknown operation", "GET", "/.well-known/est/fullcmc", "", "", nil, 404},
		{"not EST", "GET", "/other", "", "", nil, 404},
		{"nonce unauthenticated", "GET", "/.well-known/est/ztm-nonce", "", "", nil, 401},
		{"nonce wrong password", "GET", "/.well-known/est/ztm-nonce", "tool", "nope", nil, 401},
		{"nonce with Basic", "GET", "/.well-known/est/ztm-nonce", "tool", "pw", nil, 200},
		{"Basic user not allowed idevid", "POST", "/.well-known/est/simpleenroll", "tool", "pw", csr, 403},
		{"Basic wrong password", "POST", "/.well-known/est/ldevid/simpleenroll", "tool", "x", csr, 401},
		// No HTTP credential renews a certificate: no challenge to make.
		{"reenroll with Basic", "POST", "/.well-known/est/ldevid/simplereenroll", "tool", "pw", csr, 403},
	} {
		w := do(tc.method, tc.path, tc.user, tc.pass, tc.body)
		if w.Code != tc.code {
			t.Errorf("%s: %d %q, want %d", tc.name, w.Code, w.Body.String(), tc.code)
		}
		if got := w.Header().Get("WWW-Authenticate"); tc.code == 401 && got != `Basic realm="est", charset="UTF-8"` {
			t.Errorf("%s: 401 with WWW-Authenticate %q", tc.name, got)
		} else if tc.code != 401 && got != "" {
			t.Errorf("%s: %d with WWW-Authenticate %q", tc.name, tc.code, got)
		}
	}
	if e.Issuances() != before {
		t.Fatal("refusals recorded")
	}
	// The CA failing (its ledger closed) is a 503 with Retry-After.
	e.Ledger.Close()
	w := do("POST", "/.well-known/est/ldevid/simpleenroll", "tool", "pw", csr)
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" {
		t.Fatalf("ledger closed: %d %q, Retry-After %q", w.Code, w.Body.String(), w.Header().Get("Retry-After"))
	}
}

func TestLabels(t *testing.T) {
	t.Parallel()
	e := newEnv(t, estline.Config{NoServer: true})
	if _, err := est.NewServer(est.ServerConfig{Service: e.Service, Labels: map[string]string{"line1": "nosuch"}}); !errors.Is(err, est.ErrInvalidConfig) {
		t.Fatalf("label to unknown profile: %v", err)
	}
	s, err := est.NewServer(est.ServerConfig{Service: e.Service, Labels: map[string]string{"line1": "idevid"}})
	if err != nil {
		t.Fatal(err)
	}
	for path, code := range map[string]int{
		"/.well-known/est/line1/csrattrs":  200,
		"/.well-known/est/line1/cacerts":   200,
		"/.well-known/est/idevid/csrattrs": 404,
		"/.well-known/est/csrattrs":        200,
		"/.well-known/est/a/b/csrattrs":    404,
	} {
		w := httptest.NewRecorder()
		s.ServeHTTP(w, httptest.NewRequest("GET", path, nil))
		if w.Code != code {
			t.Errorf("%s: %d, want %d", path, w.Code, code)
		}
	}
}

func TestNewLocal(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, estline.Config{NoServer: true})
	st, _ := e.Station("idevid")
	if _, err := enroll.NewLocal(enroll.LocalConfig{Config: enroll.Config{Authority: e.Authority}}); !errors.Is(err, enroll.ErrInvalidConfig) {
		t.Fatalf("no verifier: %v", err)
	}
	// A Verifier that spends other nonces (or none) than the Service hands out
	// would let evidence be replayed.
	for name, n := range map[string]*attest.Nonces{"no nonces": nil, "other nonces": attest.NewNonces(attest.NonceConfig{})} {
		v, err := attest.NewVerifier(attest.Config{Keys: map[string]crypto.PublicKey{"k": e.Devices[0].AttKey.Public()}, Nonces: n})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := enroll.New(enroll.Config{Authority: e.Authority, Verifier: v, Nonces: e.Nonces}); !errors.Is(err, enroll.ErrInvalidConfig) {
			t.Errorf("verifier with %s: %v", name, err)
		}
	}
	// A second Service on the same Authority keeps one certificate per request.
	l, err := enroll.NewLocal(enroll.LocalConfig{Config: enroll.Config{Authority: e.Authority, Verifier: e.Verifier, Nonces: e.Nonces},
		Requester: enroll.Requester{Certificate: st}})
	if err != nil {
		t.Fatal(err)
	}
	d := e.Devices[0]
	csr := d.CSR(t, "SN-NL")
	nonce, _ := l.Nonce(ctx)
	first, err := l.Enroll(ctx, &enroll.Request{CSR: csr, Profile: "idevid", Evidence: d.Evidence(t, nonce)})
	if err != nil {
		t.Fatal(err)
	}
	again, err := e.Service.Local(enroll.Requester{Certificate: st}).Enroll(ctx, &enroll.Request{CSR: csr, Profile: "idevid"})
	if err != nil || !again[0].Equal(first[0]) {
		t.Fatalf("other gate, same ledger: %v", err)
	}
}

func TestTLSVersions(t *testing.T) {
	t.Parallel()
	e := newEnv(t, estline.Config{})
	get := func(maxV uint16) (*http.Response, error) {
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: e.Roots, MaxVersion: maxV}}
		defer tr.CloseIdleConnections()
		return (&http.Client{Transport: tr}).Get(e.URL + "/.well-known/est/cacerts")
	}
	resp, err := get(0)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.TLS.Version != tls.VersionTLS13 {
		t.Fatalf("negotiated %s, want TLS 1.3", tls.VersionName(resp.TLS.Version))
	}
	resp, err = get(tls.VersionTLS12)
	if err != nil {
		t.Fatalf("TLS 1.2 refused: %v", err)
	}
	resp.Body.Close()
	if _, err := get(tls.VersionTLS11); err == nil {
		t.Fatal("TLS 1.1 accepted")
	}
}
