package est_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ztmkit/ztm/attest"
	"github.com/ztmkit/ztm/ca"
	"github.com/ztmkit/ztm/ca/enroll"
	"github.com/ztmkit/ztm/internal/estline"
	"github.com/ztmkit/ztm/transport/est"
)

func TestEnrollIdempotent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, estline.Config{})
	st, key := e.Station("idevid")
	c := e.Client(st, key)
	before := e.Issuances()

	nonce, err := c.Nonce(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(nonce) != attest.NonceSize {
		t.Fatalf("nonce of %d bytes", len(nonce))
	}
	d := e.Devices[0]
	csr := d.CSR(t, "SN-0001")
	ev := d.Evidence(t, nonce)
	chain, err := c.Enroll(ctx, &enroll.Request{CSR: csr, Profile: "idevid", Evidence: ev})
	if err != nil {
		t.Fatal(err)
	}
	if len(chain) != 2 || !bytes.Equal(chain[1].Raw, e.PKI.Issuing.Raw) {
		t.Fatalf("chain of %d certificates, want leaf and intermediate", len(chain))
	}
	roots := x509.NewCertPool()
	roots.AddCert(e.PKI.Root)
	inter := x509.NewCertPool()
	inter.AddCert(chain[1])
	if _, err := chain[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		t.Fatal(err)
	}
	if got := e.Issuances(); got != before+1 {
		t.Fatalf("ledger grew by %d, want 1", got-before)
	}
	status, err := e.Ledger.Lookup(ctx, chain[0].SerialNumber)
	if err != nil {
		t.Fatal(err)
	}
	if len(status.Issuance.EvidenceDigest) != sha256.Size {
		t.Errorf("evidence digest %x not recorded", status.Issuance.EvidenceDigest)
	}
	if want := "station:"; !strings.HasPrefix(status.Issuance.Requester, want) {
		t.Errorf("requester %q", status.Issuance.Requester)
	}

	// The same request again (the evidence's nonce is spent) gives the
	// same certificate and records nothing.
	again, err := c.Enroll(ctx, &enroll.Request{CSR: csr, Profile: "idevid", Evidence: ev})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again[0].Raw, chain[0].Raw) {
		t.Fatal("second enrollment of one request gave another certificate")
	}
	if got := e.Issuances(); got != before+1 {
		t.Fatalf("ledger grew by %d, want 1", got-before)
	}
	// Another station sending the same request is refused.
	st2, key2 := e.Station("idevid")
	_, err = e.Client(st2, key2).Enroll(ctx, &enroll.Request{CSR: csr, Profile: "idevid", Evidence: ev})
	var se *est.StatusError
	if !errors.As(err, &se) || se.Code != http.StatusConflict || !errors.Is(err, est.ErrConflict) {
		t.Fatalf("other station: err = %v, want 409", err)
	}
	// Once the station is revoked, not even its repeat is answered.
	if err := e.Authority.Revoke(ctx, st.SerialNumber, ca.ReasonKeyCompromise, "admin"); err != nil {
		t.Fatal(err)
	}
	_, err = c.Enroll(ctx, &enroll.Request{CSR: csr, Profile: "idevid", Evidence: ev})
	if !errors.As(err, &se) || se.Code != http.StatusForbidden {
		t.Fatalf("revoked station's repeat: err = %v, want 403", err)
	}
}

func TestLocalEnroller(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, estline.Config{NoServer: true})
	st, _ := e.Station("idevid")
	var l enroll.Enroller = e.Service.Local(enroll.Requester{Certificate: st})
	nonce, err := l.Nonce(ctx)
	if err != nil {
		t.Fatal(err)
	}
	d := e.Devices[0]
	csr := d.CSR(t, "SN-L1")
	chain, err := l.Enroll(ctx, &enroll.Request{CSR: csr, Profile: "idevid", Evidence: d.Evidence(t, nonce)})
	if err != nil {
		t.Fatal(err)
	}
	if len(chain) != 2 {
		t.Fatalf("%d certificates", len(chain))
	}
	st2, _ := e.Station("ldevid")
	// Replayed evidence with a new request is refused before the CA.
	n := e.Issuances()
	_, err = l.Enroll(ctx, &enroll.Request{CSR: d.CSR(t, "SN-L2"), Profile: "idevid", Evidence: d.Evidence(t, nonce)})
	if !errors.Is(err, enroll.ErrRefused) || !errors.Is(err, attest.ErrNonceReused) {
		t.Fatalf("replay: err = %v", err)
	}
	// Evidence of another device than the request's is refused.
	e2 := newDevice(t, 99)
	nonce, _ = l.Nonce(ctx)
	_, err = l.Enroll(ctx, &enroll.Request{CSR: e2.CSR(t, "SN-L3"), Profile: "idevid", Evidence: d.Evidence(t, nonce)})
	if !errors.Is(err, enroll.ErrRefused) {
		t.Fatalf("foreign device: err = %v", err)
	}
	// No evidence at all.
	_, err = l.Enroll(ctx, &enroll.Request{CSR: d.CSR(t, "SN-L4"), Profile: "idevid"})
	if !errors.Is(err, enroll.ErrRefused) {
		t.Fatalf("no evidence: err = %v", err)
	}
	// A station not allowed the profile.
	nonce, _ = l.Nonce(ctx)
	_, err = e.Service.Local(enroll.Requester{Certificate: st2}).Enroll(ctx, &enroll.Request{CSR: d.CSR(t, "SN-L5"), Profile: "idevid", Evidence: d.Evidence(t, nonce)})
	if re := (*enroll.RefusalError)(nil); !errors.As(err, &re) || re.Reason != enroll.ReasonNotAuthorized {
		t.Fatalf("profile not allowed: err = %v", err)
	}
	if got := e.Issuances(); got != n {
		t.Fatalf("refusals recorded %d records", got-n)
	}
}

func TestCACertsCSRAttrsBootstrap(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, estline.Config{})
	c := e.Client(nil, nil)
	certs, err := c.CACerts(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(certs) != 2 || !certs[0].Equal(e.PKI.Issuing) || !certs[1].Equal(e.PKI.Root) {
		t.Fatalf("cacerts: %d certificates", len(certs))
	}
	attrs, err := c.CSRAttrs(ctx, "idevid")
	if err != nil {
		t.Fatal(err)
	}
	var oids []string
	for _, a := range attrs {
		oids = append(oids, a.OID.String())
	}
	if got := strings.Join(oids, " "); got != "1.2.840.113549.1.9.7 2.5.4.5 1.3.6.1.5.5.7.8.4" {
		t.Fatalf("csrattrs %s", got)
	}
	fp := sha256.Sum256(e.PKI.Root.Raw)
	boot, err := est.BootstrapCACerts(ctx, e.URL, "", fp[:])
	if err != nil {
		t.Fatal(err)
	}
	if !boot[len(boot)-1].Equal(e.PKI.Root) {
		t.Fatal("bootstrap: anchor not last")
	}
	fp[0] ^= 1
	if _, err := est.BootstrapCACerts(ctx, e.URL, "", fp[:]); !errors.Is(err, est.ErrFingerprint) {
		t.Fatalf("wrong fingerprint: err = %v", err)
	}
	// Without bootstrap, a client without the right anchor fails TLS.
	other := x509.NewCertPool()
	other.AddCert(e.PKI.Issuing)
	c2, err := est.NewClient(est.ClientConfig{URL: e.URL, Roots: other})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if _, err := c2.CACerts(ctx, ""); err == nil {
		t.Fatal("untrusted server accepted")
	}
}

func TestServerKeyGenNotOffered(t *testing.T) {
	t.Parallel()
	e := newEnv(t, estline.Config{})
	st, key := e.Station("idevid")
	resp := e.post(t, st, key, "/.well-known/est/serverkeygen", est.MediaTypePKCS10, []byte("x"), nil)
	if resp.code != http.StatusNotImplemented {
		t.Fatalf("serverkeygen: %d", resp.code)
	}
}

type answer struct {
	code int
	body string
	hdr  http.Header
}

// post sends a raw request over mTLS (cert may be nil).
func (e *env) post(t *testing.T, cert *x509.Certificate, key any, path, ctype string, body []byte, hdr http.Header) answer {
	t.Helper()
	tc := &tls.Config{RootCAs: e.Roots}
	if cert != nil {
		tc.Certificates = []tls.Certificate{{Certificate: [][]byte{cert.Raw}, PrivateKey: key}}
	}
	tr := &http.Transport{TLSClientConfig: tc}
	defer tr.CloseIdleConnections()
	req, _ := http.NewRequest(http.MethodPost, e.URL+path, bytes.NewReader(body))
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := (&http.Client{Transport: tr, Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{code: resp.StatusCode, body: string(b), hdr: resp.Header}
}

func b64(b []byte) []byte { return []byte(base64.StdEncoding.EncodeToString(b)) }

func TestBadInput(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, estline.Config{})
	st, key := e.Station("idevid")
	stOther, keyOther := e.Station("ldevid")
	d := e.Devices[0]
	// A certificate from a CA that is not ours, with a station
	// authorization of its own.
	foreign := newEnv(t, estline.Config{NoServer: true})
	fst, fkey := foreign.Station("idevid")

	evHdr := func() http.Header {
		n, err := e.Nonces.Issue()
		if err != nil {
			t.Fatal(err)
		}
		return http.Header{est.HeaderEvidence: {base64.StdEncoding.EncodeToString(d.Evidence(t, n))}}
	}
	good := d.CSR(t, "SN-BAD")
	badSig := bytes.Clone(good)
	badSig[len(badSig)-3] ^= 0x55
	spent, _ := e.Nonces.Issue()
	spentEv := d.Evidence(t, spent)
	if _, err := e.Verifier.Verify(ctx, spentEv); err != nil {
		t.Fatal(err)
	}

	const path = "/.well-known/est/simpleenroll"
	cases := []struct {
		name  string
		cert  *x509.Certificate
		key   any
		path  string
		ctype string
		body  []byte
		hdr   http.Header
		code  int
	}{
		{"malformed base64", st, key, path, est.MediaTypePKCS10, []byte("!!!not base64!!!"), evHdr(), 400},
		{"base64 of garbage", st, key, path, est.MediaTypePKCS10, b64([]byte("garbage")), evHdr(), 400},
		{"wrong content type", st, key, path, "application/json", b64(good), evHdr(), 415},
		{"no content type", st, key, path, "", b64(good), evHdr(), 415},
		{"bad CSR signature", st, key, path, est.MediaTypePKCS10, b64(badSig), evHdr(), 400},
		// A TLS-only server has no HTTP challenge to make: 403, not 401.
		{"no client certificate", nil, nil, path, est.MediaTypePKCS10, b64(good), evHdr(), 403},
		{"foreign client certificate", fst, fkey, path, est.MediaTypePKCS10, b64(good), evHdr(), 403},
		{"station not allowed the profile", stOther, keyOther, path, est.MediaTypePKCS10, b64(good), evHdr(), 403},
		{"replayed evidence", st, key, path, est.MediaTypePKCS10, b64(good), http.Header{est.HeaderEvidence: {base64.StdEncoding.EncodeToString(spentEv)}}, 403},
		{"no evidence", st, key, path, est.MediaTypePKCS10, b64(good), nil, 403},
		{"malformed evidence header", st, key, path, est.MediaTypePKCS10, b64(good), http.Header{est.HeaderEvidence: {"%%%"}}, 400},
		{"oversize body", st, key, path, est.MediaTypePKCS10, bytes.Repeat([]byte("A"), est.DefaultMaxBodySize+1), evHdr(), 413},
		{"unknown label", st, key, "/.well-known/est/nosuch/simpleenroll", est.MediaTypePKCS10, b64(good), evHdr(), 404},
		{"profile label not allowed", st, key, "/.well-known/est/ldevid/simpleenroll", est.MediaTypePKCS10, b64(good), evHdr(), 403},
		{"reenroll without matching certificate", st, key, "/.well-known/est/simplereenroll", est.MediaTypePKCS10, b64(good), evHdr(), 403},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := e.Issuances()
			a := e.post(t, tc.cert, tc.key, tc.path, tc.ctype, tc.body, tc.hdr)
			if a.code != tc.code {
				t.Fatalf("status %d (%q), want %d", a.code, a.body, tc.code)
			}
			if a.body == "" || len(a.body) > 200 {
				t.Errorf("error body %q: want short text", a.body)
			}
			if got := e.Issuances(); got != before {
				t.Fatalf("refused request recorded %d records", got-before)
			}
		})
	}
	// The good request still enrolls after all that.
	a := e.post(t, st, key, path, est.MediaTypePKCS10, b64(good), evHdr())
	if a.code != 200 {
		t.Fatalf("good request: %d %s", a.code, a.body)
	}
}

func TestReenroll(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, estline.Config{})
	st, key := e.Station("idevid", "ldevid")
	c := e.Client(st, key)
	d := e.Devices[0]
	devKey := newKey(t)
	nonce, _ := c.Nonce(ctx)
	chain, err := c.SimpleEnroll(ctx, "ldevid", d.CSRFor(t, devKey, "SN-RE"), d.Evidence(t, nonce))
	if err != nil {
		t.Fatal(err)
	}
	// The device renews with its current LDevID as TLS client
	// certificate and a request with the same subject and names.
	dc := e.Client(chain[0], devKey)
	key2 := newKey(t)
	nonce, _ = c.Nonce(ctx)
	renewed, err := dc.SimpleReenroll(ctx, "ldevid", d.CSRFor(t, key2, "SN-RE"), d.Evidence(t, nonce))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(renewed[0].RawSubject, chain[0].RawSubject) || renewed[0].SerialNumber.Cmp(chain[0].SerialNumber) == 0 {
		t.Fatal("renewal did not give a new certificate for the same subject")
	}
	// A different subject is refused.
	nonce, _ = c.Nonce(ctx)
	_, err = dc.SimpleReenroll(ctx, "ldevid", d.CSRFor(t, newKey(t), "SN-OTHER"), d.Evidence(t, nonce))
	if !errors.Is(err, est.ErrForbidden) {
		t.Fatalf("other subject: err = %v", err)
	}
	// Another profile than the current certificate's is refused.
	nonce, _ = c.Nonce(ctx)
	_, err = dc.SimpleReenroll(ctx, "idevid", d.CSRFor(t, newKey(t), "SN-RE"), d.Evidence(t, nonce))
	if !errors.Is(err, est.ErrForbidden) {
		t.Fatalf("other profile: err = %v", err)
	}
	// A revoked certificate cannot renew.
	if err := e.Authority.Revoke(ctx, chain[0].SerialNumber, ca.ReasonSuperseded, "test"); err != nil {
		t.Fatal(err)
	}
	nonce, _ = c.Nonce(ctx)
	_, err = dc.SimpleReenroll(ctx, "ldevid", d.CSRFor(t, newKey(t), "SN-RE"), d.Evidence(t, nonce))
	if !errors.Is(err, est.ErrForbidden) {
		t.Fatalf("revoked: err = %v", err)
	}
}
