package est_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/smallstep/pkcs7"
	"github.com/ztmkit/ztm/ca/enroll"
	"github.com/ztmkit/ztm/internal/estline"
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
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, estline.Config{})
	st, key := e.Station("idevid")
	ct := &countingTransport{ops: map[string]*atomic.Int64{"cacerts": {}, "simpleenroll": {}}}
	ct.rt = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: e.Roots,
		Certificates: []tls.Certificate{{Certificate: [][]byte{st.Raw}, PrivateKey: key}}}}
	c, err := est.NewClient(est.ClientConfig{URL: e.URL, Transport: ct})
	if err != nil {
		t.Fatal(err)
	}
	d := e.Devices[0]
	for i, serial := range []string{"SN-ONE-1", "SN-ONE-2"} {
		nonce, err := c.Nonce(ctx)
		if err != nil {
			t.Fatal(err)
		}
		tw := d.Twin(t) // one device, one IDevID
		chain, err := c.Enroll(ctx, &enroll.Request{CSR: tw.CSR(t, serial), Profile: "idevid", Evidence: tw.Evidence(t, nonce)})
		if err != nil {
			t.Fatal(err)
		}
		if len(chain) != 2 || chain[0].Subject.SerialNumber != serial || !chain[1].Equal(e.PKI.Issuing) {
			t.Fatalf("enrollment %d: chain of %d certificates, want leaf and issuing CA", i, len(chain))
		}
	}
	if n := ct.ops["cacerts"].Load(); n != 1 {
		t.Fatalf("cacerts fetched %d times for 2 enrollments, want 1", n)
	}
	// The raw answer, as a strict client reads it.
	nonce, _ := e.Nonces.Issue()
	d = d.Twin(t)
	body := b64(d.CSR(t, "SN-ONE-3"))
	req, _ := http.NewRequest(http.MethodPost, e.URL+"/.well-known/est/simpleenroll", bytes.NewReader(body))
	req.Header.Set("Content-Type", est.MediaTypePKCS10)
	req.Header.Set("Content-Transfer-Encoding", "base64")
	req.Header.Set(est.HeaderEvidence, string(b64(d.Evidence(t, nonce))))
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
	t.Parallel()
	for _, basic := range []bool{false, true} {
		e := newEnv(t, estline.Config{NoServer: true, Server: func(c *est.ServerConfig) {
			if basic {
				c.BasicAuth = []est.BasicCredential{{Username: "tool", Password: "pw", Profiles: []string{"ldevid"}}}
			}
		}})
		d := e.Devices[0]
		for _, path := range []string{"/.well-known/est/ztm-nonce", "/.well-known/est/simpleenroll", "/.well-known/est/ldevid/simplereenroll"} {
			method := http.MethodPost
			if strings.HasSuffix(path, "nonce") {
				method = http.MethodGet
			}
			r := httptest.NewRequest(method, path, bytes.NewReader(b64(d.CSR(t, "SN-U"))))
			r.Header.Set("Content-Type", est.MediaTypePKCS10)
			w := httptest.NewRecorder()
			e.Server.ServeHTTP(w, r)
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
	e := newEnv(t, estline.Config{})
	if _, err := e.Client(nil, nil).Nonce(context.Background()); !errors.Is(err, est.ErrForbidden) {
		t.Fatalf("no client certificate: %v", err)
	}
}

// lookAlikes returns n CA certificates that name like the issuing CA
// (subject and subject key identifier) but are signed by keys of their
// own, as a client would send to make the server try each.
func lookAlikes(t testing.TB, e *env, n int) []*x509.Certificate {
	t.Helper()
	out := make([]*x509.Certificate, n)
	for i := range out {
		k := newKey(t)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(int64(i + 1)), Subject: e.PKI.Issuing.Subject, SubjectKeyId: e.PKI.Issuing.SubjectKeyId,
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			BasicConstraintsValid: true, IsCA: true, KeyUsage: x509.KeyUsageCertSign}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
		if err != nil {
			t.Fatal(err)
		}
		out[i], _ = x509.ParseCertificate(der)
	}
	return out
}

// TestClientChainCapped checks that a client chain over the Server's
// limits is refused before any of it is verified: even a genuine station
// certificate, sent with 110 look-alike intermediates, or with a chain
// over the byte limit.
func TestClientChainCapped(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, estline.Config{})
	st, key := e.Station("idevid")
	nonceWith := func(chain ...*x509.Certificate) error {
		cert := tls.Certificate{PrivateKey: key}
		for _, c := range chain {
			cert.Certificate = append(cert.Certificate, c.Raw)
		}
		c, err := est.NewClient(est.ClientConfig{URL: e.URL, Roots: e.Roots, Certificate: &cert})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_, err = c.Nonce(ctx)
		return err
	}
	if err := nonceWith(st, e.PKI.Issuing, e.PKI.Root); err != nil {
		t.Fatalf("station with its chain: %v", err)
	}
	err := nonceWith(append([]*x509.Certificate{st}, lookAlikes(t, e, 110)...)...)
	var se *est.StatusError
	if !errors.As(err, &se) || !strings.Contains(se.Body, "chain of 111 certificates, at most 4") {
		t.Fatalf("111 certificates: %v", err)
	}
	// The byte limit, with the count limit raised.
	s2, err := est.NewServer(est.ServerConfig{Service: e.Service, MaxClientCertificates: 200, MaxClientChainBytes: 4 << 10})
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodGet, "/.well-known/est/ztm-nonce", nil)
	r.TLS = &tls.ConnectionState{PeerCertificates: append([]*x509.Certificate{st}, lookAlikes(t, e, 20)...)}
	w := httptest.NewRecorder()
	s2.ServeHTTP(w, r)
	if !strings.Contains(w.Body.String(), "over 4096 bytes") {
		t.Fatalf("over the byte limit: %d %s", w.Code, w.Body)
	}
	r.TLS.PeerCertificates = []*x509.Certificate{st, e.PKI.Issuing}
	w = httptest.NewRecorder()
	s2.ServeHTTP(w, r)
	if w.Code != http.StatusOK {
		t.Fatalf("under the limits: %d %s", w.Code, w.Body)
	}
	if _, err := est.NewServer(est.ServerConfig{Service: e.Service, MaxClientCertificates: -1}); !errors.Is(err, est.ErrInvalidConfig) {
		t.Fatalf("negative limit: %v", err)
	}
}

// BenchmarkRefuseLookAlikeChain measures what an unauthenticated request
// with a foreign certificate and 110 look-alike intermediates costs the
// Server (TLS handshake aside).
func BenchmarkRefuseLookAlikeChain(b *testing.B) {
	e := newEnv(b, estline.Config{NoServer: true})
	foreign := newEnv(b, estline.Config{NoServer: true})
	fst, _ := foreign.Station("idevid")
	chain := append([]*x509.Certificate{fst}, lookAlikes(b, e, 110)...)
	for b.Loop() {
		r := httptest.NewRequest(http.MethodGet, "/.well-known/est/ztm-nonce", nil)
		r.TLS = &tls.ConnectionState{PeerCertificates: chain}
		w := httptest.NewRecorder()
		e.Server.ServeHTTP(w, r)
		if w.Code == http.StatusOK {
			b.Fatal("accepted")
		}
	}
}

// TestHTTP2OffByDefault checks that the EST http.Server does not offer
// HTTP/2 unless configured to (rapid reset, CVE-2023-44487).
func TestHTTP2OffByDefault(t *testing.T) {
	t.Parallel()
	e := newEnv(t, estline.Config{})
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: e.Roots}, ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Get(e.URL + "/.well-known/est/cacerts")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.ProtoMajor != 1 {
		t.Fatalf("negotiated %s by default", resp.Proto)
	}
}

// TestHTTP2Config checks that the EST http.Server speaks HTTP/1.1 only by
// default and HTTP/2, with the configured limits, when asked.
func TestHTTP2Config(t *testing.T) {
	t.Parallel()
	for _, h2 := range []bool{false, true} {
		e := newEnv(t, estline.Config{Server: func(c *est.ServerConfig) { c.HTTP = est.HTTPConfig{HTTP2: h2, MaxConcurrentStreams: 8} }})
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: e.Roots}, ForceAttemptHTTP2: true}
		resp, err := (&http.Client{Transport: tr}).Get(e.URL + "/.well-known/est/cacerts")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		tr.CloseIdleConnections()
		if want := map[bool]int{false: 1, true: 2}[h2]; resp.ProtoMajor != want {
			t.Errorf("HTTP2 %v: negotiated %s", h2, resp.Proto)
		}
		srv := est.NewHTTPServer("", e.Server, nil)
		if h2 && (srv.HTTP2 == nil || srv.HTTP2.MaxConcurrentStreams != 8 || srv.HTTP2.MaxReceiveBufferPerConnection != est.DefaultHTTP2MaxReceiveBuffer) {
			t.Errorf("HTTP/2 limits: %+v", srv.HTTP2)
		}
	}
	if _, err := est.NewServer(est.ServerConfig{Service: newEnv(t, estline.Config{NoServer: true}).Service,
		HTTP: est.HTTPConfig{HTTP2: true, MaxReceiveBufferPerConnection: 1000}}); !errors.Is(err, est.ErrInvalidConfig) {
		t.Fatalf("receive buffer under 64 KiB: %v", err)
	}
}
