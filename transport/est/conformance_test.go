package est_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/smallstep/pkcs7"
	"github.com/ztmkit/ztm/transport/est"
)

// countingTransport counts the requests to each EST operation.
type countingTransport struct {
	rt  http.RoundTripper
	ops map[string]*atomic.Int64
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	op := r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]
	if n, ok := c.ops[op]; ok {
		n.Add(1)
	}
	return c.rt.RoundTrip(r)
}

// TestEnrollAnswerIsTheIssuedCertificate checks RFC 7030 §4.2.3: the
// simpleenroll answer holds only the issued certificate, and the Client
// completes the chain from /cacerts, fetched once for many enrollments.
func TestEnrollAnswerIsTheIssuedCertificate(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, envOpts{})
	st, key := e.station("idevid")
	ct := &countingTransport{ops: map[string]*atomic.Int64{"cacerts": {}, "simpleenroll": {}}}
	ct.rt = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: e.tlsRoots,
		Certificates: []tls.Certificate{{Certificate: [][]byte{st.Raw}, PrivateKey: key}}}}
	c, err := est.NewClient(est.ClientConfig{URL: e.url, Transport: ct})
	if err != nil {
		t.Fatal(err)
	}
	d := e.devices[0]
	for i, serial := range []string{"SN-ONE-1", "SN-ONE-2"} {
		nonce, err := c.Nonce(ctx)
		if err != nil {
			t.Fatal(err)
		}
		chain, err := c.Enroll(ctx, &est.EnrollRequest{CSR: d.csr(t, serial), Profile: "idevid", Evidence: d.evidence(t, nonce)})
		if err != nil {
			t.Fatal(err)
		}
		if len(chain) != 2 || chain[0].Subject.SerialNumber != serial || !chain[1].Equal(e.inter) {
			t.Fatalf("enrollment %d: chain of %d certificates, want leaf and issuing CA", i, len(chain))
		}
	}
	if n := ct.ops["cacerts"].Load(); n != 1 {
		t.Fatalf("cacerts fetched %d times for 2 enrollments, want 1", n)
	}
	// The raw answer, as a strict client reads it.
	nonce, _ := e.nonces.Issue()
	body := b64(d.csr(t, "SN-ONE-3"))
	req, _ := http.NewRequest(http.MethodPost, e.url+"/.well-known/est/simpleenroll", bytes.NewReader(body))
	req.Header.Set("Content-Type", est.MediaTypePKCS10)
	req.Header.Set("Content-Transfer-Encoding", "base64")
	req.Header.Set(est.HeaderEvidence, string(b64(d.evidence(t, nonce))))
	resp, err := (&http.Client{Transport: ct.rt}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	der, err := base64.StdEncoding.DecodeString(strings.ReplaceAll(string(raw), "\r\n", ""))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("%d: %v", resp.StatusCode, err)
	}
	p7, err := pkcs7.Parse(der)
	if err != nil {
		t.Fatal(err)
	}
	if certs := p7.Certificates; len(certs) != 1 || certs[0].Subject.SerialNumber != "SN-ONE-3" {
		t.Fatalf("simpleenroll answered %d certificates, want only the one issued", len(p7.Certificates))
	}
}

// TestUnauthenticatedAnswers checks that every 401 carries a challenge the
// client can meet (RFC 9110 §15.5.2): a Basic challenge when Basic is
// configured, and 403 without a challenge when the server authenticates by
// TLS client certificate only.
func TestUnauthenticatedAnswers(t *testing.T) {
	for _, basic := range []bool{false, true} {
		e := newEnv(t, envOpts{noServer: true, server: func(c *est.ServerConfig) {
			if basic {
				c.BasicAuth = []est.BasicCredential{{Username: "tool", Password: "pw", Profiles: []string{"ldevid"}}}
			}
		}})
		d := e.devices[0]
		for _, path := range []string{"/.well-known/est/ztm-nonce", "/.well-known/est/simpleenroll", "/.well-known/est/ldevid/simplereenroll"} {
			method := http.MethodPost
			if strings.HasSuffix(path, "nonce") {
				method = http.MethodGet
			}
			r := httptest.NewRequest(method, path, bytes.NewReader(b64(d.csr(t, "SN-U"))))
			r.Header.Set("Content-Type", est.MediaTypePKCS10)
			w := httptest.NewRecorder()
			e.server.ServeHTTP(w, r)
			challenge := w.Header().Get("WWW-Authenticate")
			switch {
			case w.Code == http.StatusUnauthorized && challenge == `Basic realm="est", charset="UTF-8"` && basic && !strings.HasSuffix(path, "reenroll"):
			case w.Code == http.StatusForbidden && challenge == "" && (!basic || strings.HasSuffix(path, "reenroll")):
			default:
				t.Errorf("basic %v, %s: %d with WWW-Authenticate %q", basic, path, w.Code, challenge)
			}
		}
	}
	// The Client reports a TLS-only server's refusal as forbidden.
	e := newEnv(t, envOpts{})
	if _, err := e.client(nil, nil).Nonce(context.Background()); !errors.Is(err, est.ErrForbidden) {
		t.Fatalf("no client certificate: %v", err)
	}
}
