package est_test

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/ztmkit/ztm/ca"
	"github.com/ztmkit/ztm/transport/est"
)

func TestQuotaIs429(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, envOpts{quota: ca.QuotaPolicy{Limit: 1, Period: time.Hour}})
	st, key := e.station("idevid")
	c := e.client(st, key)
	d := e.devices[0]
	nonce, _ := c.Nonce(ctx)
	if _, err := c.SimpleEnroll(ctx, "", d.csr(t, "SN-Q1"), d.evidence(t, nonce)); err != nil {
		t.Fatal(err)
	}
	before := e.issuances()
	nonce, _ = c.Nonce(ctx)
	_, err := c.SimpleEnroll(ctx, "", d.csr(t, "SN-Q2"), d.evidence(t, nonce))
	var se *est.StatusError
	if !errors.As(err, &se) || se.Code != http.StatusTooManyRequests || !errors.Is(err, est.ErrQuotaExceeded) {
		t.Fatalf("over quota: err = %v", err)
	}
	if e.issuances() != before {
		t.Fatal("refusal recorded")
	}
}

func TestStatusCodes(t *testing.T) {
	e := newEnv(t, envOpts{noServer: true, server: func(c *est.ServerConfig) {
		c.BasicAuth = []est.BasicCredential{{Username: "tool", Password: "pw", Profiles: []string{"ldevid"}}}
	}})
	d := e.devices[0]
	n, _ := e.nonces.Issue()
	ev := base64.StdEncoding.EncodeToString(d.evidence(t, n))
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
		e.server.ServeHTTP(w, r)
		return w
	}
	before := e.issuances()
	csr := b64(d.csr(t, "SN-S"))
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
		{"reenroll with Basic", "POST", "/.well-known/est/ldevid/simplereenroll", "tool", "pw", csr, 401},
	} {
		w := do(tc.method, tc.path, tc.user, tc.pass, tc.body)
		if w.Code != tc.code {
			t.Errorf("%s: %d %q, want %d", tc.name, w.Code, w.Body.String(), tc.code)
		}
		if tc.code == 401 && w.Header().Get("WWW-Authenticate") == "" {
			t.Errorf("%s: 401 without WWW-Authenticate", tc.name)
		}
	}
	if e.issuances() != before {
		t.Fatal("refusals recorded")
	}
	// The CA failing (its ledger closed) is a 503 with Retry-After.
	e.ledger.Close()
	w := do("POST", "/.well-known/est/ldevid/simpleenroll", "tool", "pw", csr)
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" {
		t.Fatalf("ledger closed: %d %q, Retry-After %q", w.Code, w.Body.String(), w.Header().Get("Retry-After"))
	}
}
