package est

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ztmkit/ztm/ca/enroll"
)

// maxResponse bounds the answers the Client reads.
const maxResponse = 1 << 20

// ClientConfig configures a [Client]. URL and Roots are required.
type ClientConfig struct {
	// URL is the server's base URL, "https://host:port" (a path, if any,
	// is replaced by /.well-known/est/…).
	URL string
	// Roots are the trust anchors for the server's TLS certificate
	// (explicit: the system roots are never used). Obtain them out of band
	// or with BootstrapCACerts.
	Roots *x509.CertPool
	// Certificate is the client certificate (the station's, with its key
	// as a crypto.Signer in PrivateKey) for mutual TLS. Optional when
	// Username is set.
	Certificate *tls.Certificate
	// Username and Password are HTTP Basic credentials (RFC 7030 §3.2.3),
	// sent only over TLS.
	Username, Password string
	// MaxRetries bounds the retries after a 202 or 503 with Retry-After
	// (RFC 7030 §4.2.3). If zero, 3; negative means none.
	MaxRetries int
	// MaxRetryAfter caps one wait. If zero, 60 seconds. A Retry-After
	// longer than this, or one that would pass the context's deadline,
	// ends the call with a *RetryLaterError.
	MaxRetryAfter time.Duration
	// Transport, if set, replaces the HTTP transport (tests, proxies). Its
	// TLS configuration is then the caller's.
	Transport http.RoundTripper
	// Timeout bounds each HTTP exchange. If zero, 60 seconds.
	Timeout time.Duration
}

// Client is an EST client (RFC 7030) and an [Enroller] over EST. It is safe
// for concurrent use and keeps connections alive between calls.
type Client struct {
	base       *url.URL
	hc         *http.Client
	tr         *http.Transport
	user, pass string
	retries    int
	maxWait    time.Duration
	sleep      func(ctx context.Context, d time.Duration) error

	// caMu guards cacerts: the last /cacerts answer under each label,
	// which completes enrollment answers (RFC 7030 §4.2.3 sends only the
	// issued certificate).
	caMu    sync.Mutex
	cacerts map[string][]*x509.Certificate
}

// NewClient returns a Client for cfg. Errors wrap [ErrInvalidConfig].
func NewClient(cfg ClientConfig) (*Client, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("%w: URL must be https://host[:port]", ErrInvalidConfig)
	}
	if cfg.Roots == nil && cfg.Transport == nil {
		return nil, fmt.Errorf("%w: Roots required (explicit trust anchors)", ErrInvalidConfig)
	}
	c := &Client{base: &url.URL{Scheme: u.Scheme, Host: u.Host}, user: cfg.Username, pass: cfg.Password,
		retries: cfg.MaxRetries, maxWait: cfg.MaxRetryAfter, sleep: sleepCtx}
	if c.retries == 0 {
		c.retries = 3
	} else if c.retries < 0 {
		c.retries = 0
	}
	if c.maxWait <= 0 {
		c.maxWait = 60 * time.Second
	}
	rt := cfg.Transport
	if rt == nil {
		tc := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: cfg.Roots}
		if cfg.Certificate != nil {
			tc.Certificates = []tls.Certificate{*cfg.Certificate}
		}
		c.tr = &http.Transport{
			TLSClientConfig:     tc,
			ForceAttemptHTTP2:   true,
			MaxIdleConnsPerHost: 64,
			IdleConnTimeout:     90 * time.Second,
			TLSHandshakeTimeout: 10 * time.Second,
		}
		rt = c.tr
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = 60 * time.Second
	}
	c.hc = &http.Client{Transport: rt, Timeout: timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return c, nil
}

// Close closes the Client's idle connections.
func (c *Client) Close() {
	if c.tr != nil {
		c.tr.CloseIdleConnections()
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *Client) url(label, op string) string {
	u := *c.base
	if label == "" {
		u.Path = PathPrefix + op
	} else {
		u.Path = PathPrefix + label + "/" + op
	}
	return u.String()
}

// do runs one EST exchange with the Retry-After loop and returns the
// decoded base64 body of a 200 answer of media type want.
func (c *Client) do(ctx context.Context, method, label, op string, body []byte, hdr http.Header, want string) ([]byte, error) {
	if c == nil || c.hc == nil || c.base == nil {
		return nil, fmt.Errorf("%w: Client not made by NewClient", ErrInvalidConfig)
	}
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, method, c.url(label, op), bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		if body == nil {
			req.Body = http.NoBody
		}
		for k, v := range hdr {
			req.Header[k] = v
		}
		if c.user != "" {
			req.SetBasicAuth(c.user, c.pass)
		}
		resp, err := c.hc.Do(req)
		if err != nil {
			return nil, fmt.Errorf("est: %s: %w", op, err)
		}
		out, se, err := readAnswer(resp, op, want)
		if se == nil {
			return out, err
		}
		if resp.StatusCode != http.StatusAccepted && resp.StatusCode != http.StatusServiceUnavailable {
			return nil, se
		}
		after, ok := retryAfter(resp.Header.Get("Retry-After"), time.Now())
		if !ok {
			if resp.StatusCode == http.StatusAccepted {
				return nil, &RetryLaterError{Err: se}
			}
			return nil, se
		}
		if attempt >= c.retries || after > c.maxWait {
			return nil, &RetryLaterError{After: after, Err: se}
		}
		if dl, ok := ctx.Deadline(); ok && time.Now().Add(after).After(dl) {
			return nil, &RetryLaterError{After: after, Err: se}
		}
		if err := c.sleep(ctx, after); err != nil {
			return nil, &RetryLaterError{After: after, Err: errors.Join(se, err)}
		}
	}
}

// readAnswer reads and closes resp: the decoded base64 body of a 200
// answer of media type want, or the *StatusError of another status.
func readAnswer(resp *http.Response, op, want string) ([]byte, *StatusError, error) {
	data, rerr := io.ReadAll(io.LimitReader(resp.Body, maxResponse+1))
	resp.Body.Close()
	if rerr != nil {
		return nil, nil, fmt.Errorf("est: %s: reading answer: %w", op, rerr)
	}
	if resp.StatusCode != http.StatusOK {
		if len(data) > 1024 {
			data = data[:1024]
		}
		return nil, newStatusError(resp.StatusCode, resp.Header.Get(HeaderRefusal), string(data)), nil
	}
	if len(data) > maxResponse {
		return nil, nil, fmt.Errorf("%w: %s answer over %d bytes", ErrBadResponse, op, maxResponse)
	}
	mt, params, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	wmt, wparams, _ := mime.ParseMediaType(want)
	if err != nil || mt != wmt || (wparams["smime-type"] != "" && params["smime-type"] != "" && params["smime-type"] != wparams["smime-type"]) {
		return nil, nil, fmt.Errorf("%w: %s answered %q, want %q", ErrBadResponse, op, resp.Header.Get("Content-Type"), want)
	}
	out, err := decodeBase64Body(data)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrBadResponse, err)
	}
	return out, nil, nil
}

// EnrollBound enrolls a request bound to its TLS connection (RFC 9266
// tls-exporter, RFC 7030 §3.5). It opens a new TLS 1.3 connection with the
// Client's credentials, calls makeCSR with the base64 of the
// connection's exporter value, which the request must carry as its
// challengePassword (PrintableString or UTF8String), and sends it to
// simpleenroll under label on that connection. The device must therefore
// sign its request while the station holds the connection open. A 202 or
// 503 is returned as a *RetryLaterError: a retry needs a new connection
// and so a new request. The Client must have been made without a custom
// Transport. It returns what [Client.SimpleEnroll] returns.
func (c *Client) EnrollBound(ctx context.Context, label string, makeCSR func(challengePassword string) ([]byte, error), evidence []byte) ([]*x509.Certificate, error) {
	if c.tr == nil {
		return nil, fmt.Errorf("%w: EnrollBound needs the Client's own transport", ErrInvalidConfig)
	}
	tc := c.tr.TLSClientConfig.Clone()
	tc.MinVersion = tls.VersionTLS13
	tc.NextProtos = []string{"http/1.1"}
	d := &tls.Dialer{Config: tc}
	conn, err := d.DialContext(ctx, "tcp", canonicalAddr(c.base))
	if err != nil {
		return nil, fmt.Errorf("est: simpleenroll: %w", err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	cs := conn.(*tls.Conn).ConnectionState()
	ekm, err := cs.ExportKeyingMaterial("EXPORTER-Channel-Binding", nil, 32)
	if err != nil {
		return nil, fmt.Errorf("est: channel binding: %w", err)
	}
	csr, err := makeCSR(base64.StdEncoding.EncodeToString(ekm))
	if err != nil {
		return nil, err
	}
	spki, err := csrPublicKeyInfo(csr)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url(label, "simpleenroll"), bytes.NewReader(encodeBase64Body(csr)))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", MediaTypePKCS10)
	req.Header.Set("Content-Transfer-Encoding", "base64")
	req.Close = true
	if len(evidence) > 0 {
		req.Header.Set(HeaderEvidence, base64.StdEncoding.EncodeToString(evidence))
	}
	if c.user != "" {
		req.SetBasicAuth(c.user, c.pass)
	}
	if err := req.Write(conn); err != nil {
		return nil, fmt.Errorf("est: simpleenroll: %w", err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), req)
	if err != nil {
		return nil, fmt.Errorf("est: simpleenroll: %w", err)
	}
	der, se, err := readAnswer(resp, "simpleenroll", MediaTypeCertsOnly)
	if se != nil {
		if se.Code == http.StatusAccepted || se.Code == http.StatusServiceUnavailable {
			after, _ := retryAfter(resp.Header.Get("Retry-After"), time.Now())
			return nil, &RetryLaterError{After: after, Err: se}
		}
		return nil, se
	}
	if err != nil {
		return nil, err
	}
	return c.completeChain(ctx, label, der, spki)
}

// canonicalAddr is host:port of u, port 443 by default.
func canonicalAddr(u *url.URL) string {
	if u.Port() != "" {
		return u.Host
	}
	return net.JoinHostPort(u.Hostname(), "443")
}

// retryAfter parses a Retry-After value: delta-seconds or an HTTP-date
// (RFC 9110 §10.2.3).
func retryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if n, err := strconv.ParseUint(v, 10, 32); err == nil {
		return time.Duration(n) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		d := t.Sub(now)
		if d < 0 {
			d = 0
		}
		return d, true
	}
	return 0, false
}

// CACerts fetches the CA certificates (/cacerts, RFC 7030 §4.1) from a
// server already trusted through Roots.
func (c *Client) CACerts(ctx context.Context, label string) ([]*x509.Certificate, error) {
	der, err := c.do(ctx, http.MethodGet, label, "cacerts", nil, nil, MediaTypeCertsOnly)
	if err != nil {
		return nil, err
	}
	certs, err := parseCertsOnly(der)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadResponse, err)
	}
	return certs, nil
}

// CSRAttrs fetches what the server wants in a request (/csrattrs, RFC
// 7030 §4.5).
func (c *Client) CSRAttrs(ctx context.Context, label string) ([]CSRAttr, error) {
	der, err := c.do(ctx, http.MethodGet, label, "csrattrs", nil, nil, MediaTypeCSRAttrs)
	if err != nil {
		return nil, err
	}
	return ParseCSRAttrs(der)
}

// Nonce implements Enroller: it fetches a fresh attestation nonce from the
// ztm-nonce extension endpoint of the default label.
func (c *Client) Nonce(ctx context.Context) ([]byte, error) { return c.NonceFor(ctx, "") }

// NonceFor fetches a nonce under label.
func (c *Client) NonceFor(ctx context.Context, label string) ([]byte, error) {
	n, err := c.do(ctx, http.MethodGet, label, "ztm-nonce", nil, nil, MediaTypeNonce)
	if err != nil {
		return nil, err
	}
	if len(n) < 8 || len(n) > 64 {
		return nil, fmt.Errorf("%w: nonce of %d bytes", ErrBadResponse, len(n))
	}
	return n, nil
}

// SimpleEnroll sends csr (DER) to /simpleenroll under label, with the
// device's evidence in the ZTM-Evidence header when not nil, and returns
// the certificate issued for csr's key followed by its issuing CA
// certificates without the root, taken from /cacerts under label (fetched
// once and kept; see the package documentation).
func (c *Client) SimpleEnroll(ctx context.Context, label string, csr, evidence []byte) ([]*x509.Certificate, error) {
	return c.enroll(ctx, label, "simpleenroll", csr, evidence)
}

// SimpleReenroll sends csr to /simplereenroll under label. The Client's
// Certificate must be the certificate being renewed, and csr must carry
// its subject and subjectAltName (RFC 7030 §4.2.2).
func (c *Client) SimpleReenroll(ctx context.Context, label string, csr, evidence []byte) ([]*x509.Certificate, error) {
	return c.enroll(ctx, label, "simplereenroll", csr, evidence)
}

func (c *Client) enroll(ctx context.Context, label, op string, csr, evidence []byte, extra ...string) ([]*x509.Certificate, error) {
	spki, err := csrPublicKeyInfo(csr)
	if err != nil {
		return nil, err
	}
	hdr := http.Header{
		"Content-Type":              {MediaTypePKCS10},
		"Content-Transfer-Encoding": {"base64"},
	}
	for i := 0; i+1 < len(extra); i += 2 {
		hdr.Set(extra[i], extra[i+1])
	}
	if len(evidence) > 0 {
		hdr.Set(HeaderEvidence, base64.StdEncoding.EncodeToString(evidence))
	}
	der, err := c.do(ctx, http.MethodPost, label, op, encodeBase64Body(csr), hdr, MediaTypeCertsOnly)
	if err != nil {
		return nil, err
	}
	return c.completeChain(ctx, label, der, spki)
}

// completeChain reads an enrollment answer (DER certs-only) and returns
// the certificate for spki followed by its issuing CA certificates up to,
// without, the root. RFC 7030 §4.2.3 has the answer hold only the issued
// certificate; the issuers come from /cacerts under label, fetched once
// and kept, and fetched again when they do not hold the leaf's issuer (a
// CA that changed keys). An answer that carries more certificates, as
// some servers send, is taken as the chain if it holds the issuer.
func (c *Client) completeChain(ctx context.Context, label string, der, spki []byte) ([]*x509.Certificate, error) {
	certs, err := parseCertsOnly(der)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadResponse, err)
	}
	certs, err = leafFirst(certs, spki)
	if err != nil {
		return nil, err
	}
	leaf := certs[0]
	if chain, ok := issuerChain(leaf, certs[1:]); ok {
		return chain, nil
	}
	for fresh := false; ; fresh = true {
		cas, err := c.caCerts(ctx, label, fresh)
		if err != nil {
			return nil, err
		}
		if chain, ok := issuerChain(leaf, cas); ok {
			return chain, nil
		}
		if fresh {
			return nil, fmt.Errorf("%w: the issuer of the issued certificate is not among the CA certificates", ErrBadResponse)
		}
	}
}

// caCerts returns the CA certificates under label, from the Client's
// cache unless fresh or not yet fetched.
func (c *Client) caCerts(ctx context.Context, label string, fresh bool) ([]*x509.Certificate, error) {
	c.caMu.Lock()
	cas, ok := c.cacerts[label]
	c.caMu.Unlock()
	if ok && !fresh {
		return cas, nil
	}
	cas, err := c.CACerts(ctx, label)
	if err != nil {
		return nil, err
	}
	c.caMu.Lock()
	if c.cacerts == nil {
		c.cacerts = map[string][]*x509.Certificate{}
	}
	c.cacerts[label] = cas
	c.caMu.Unlock()
	return cas, nil
}

// maxChainLen bounds the issuer chains issuerChain builds.
const maxChainLen = 8

// issuerChain returns leaf followed by the CA certificates among cas that
// issued it (see issues), up to a self-signed root,
// which is left out. It reports false when leaf's issuer is not among cas.
func issuerChain(leaf *x509.Certificate, cas []*x509.Certificate) ([]*x509.Certificate, bool) {
	out := []*x509.Certificate{leaf}
	for cur := leaf; len(out) <= maxChainLen; {
		var next *x509.Certificate
		for _, ca := range cas {
			if issues(ca, cur) {
				next = ca
				break
			}
		}
		if next == nil {
			// A /cacerts without its root still names the issuers.
			return out, len(out) > 1
		}
		if issues(next, next) {
			return out, true
		}
		out = append(out, next)
		cur = next
	}
	return nil, false
}

// issues reports whether ca names the issuer of c: by name, and by key
// identifier where both carry one (RFC 5280 §4.2.1.1). The chain is only
// assembled here, from answers of the server the Client authenticated by
// TLS; verifying it is for whoever installs it (the device, against its
// trust anchor), so no signature is checked per enrollment.
func issues(ca, c *x509.Certificate) bool {
	if !bytes.Equal(ca.RawSubject, c.RawIssuer) {
		return false
	}
	return len(c.AuthorityKeyId) == 0 || len(ca.SubjectKeyId) == 0 || bytes.Equal(c.AuthorityKeyId, ca.SubjectKeyId)
}

// leafFirst puts the certificate for spki first.
func leafFirst(certs []*x509.Certificate, spki []byte) ([]*x509.Certificate, error) {
	for i, c := range certs {
		if bytes.Equal(c.RawSubjectPublicKeyInfo, spki) {
			out := append([]*x509.Certificate{c}, certs[:i]...)
			return append(out, certs[i+1:]...), nil
		}
	}
	return nil, fmt.Errorf("%w: no certificate for the request's key", ErrBadResponse)
}

// Enroll implements Enroller: SimpleEnroll under the label named like the
// profile (the Server's default label mapping), with the ZTM-Reprovision
// header when req.Reprovision is set.
func (c *Client) Enroll(ctx context.Context, req *enroll.Request) ([]*x509.Certificate, error) {
	if req == nil {
		return nil, fmt.Errorf("%w: nil request", ErrBadRequest)
	}
	if req.Reprovision {
		return c.enroll(ctx, req.Profile, "simpleenroll", req.CSR, req.Evidence, HeaderReprovision, "superseded")
	}
	return c.SimpleEnroll(ctx, req.Profile, req.CSR, req.Evidence)
}

// BootstrapCACerts is the bootstrap of RFC 7030 §4.1.1: it fetches
// /cacerts from a server it does not yet trust (TLS without server
// verification, no client credential), then accepts the answer only if one
// of the certificates has the SHA-256 fingerprint (of its DER) that the
// caller obtained out of band, and the server's own TLS certificate
// chains to that certificate. It returns the certificates, the one with
// the fingerprint last. Use it only when the caller asks for bootstrap;
// otherwise give the Client explicit Roots.
func BootstrapCACerts(ctx context.Context, serverURL, label string, fingerprint []byte) ([]*x509.Certificate, error) {
	if len(fingerprint) != sha256.Size {
		return nil, fmt.Errorf("%w: fingerprint must be a SHA-256 (32 bytes)", ErrInvalidConfig)
	}
	var peer []*x509.Certificate
	tr := &http.Transport{TLSClientConfig: &tls.Config{
		MinVersion: tls.VersionTLS12,
		// The server is verified below, against the anchor the
		// fingerprint selects.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			peer = cs.PeerCertificates
			return nil
		},
	}}
	defer tr.CloseIdleConnections()
	c, err := NewClient(ClientConfig{URL: serverURL, Transport: tr, MaxRetries: -1})
	if err != nil {
		return nil, err
	}
	certs, err := c.CACerts(ctx, label)
	if err != nil {
		return nil, err
	}
	var anchor *x509.Certificate
	for _, cert := range certs {
		if sum := sha256.Sum256(cert.Raw); bytes.Equal(sum[:], fingerprint) {
			anchor = cert
		}
	}
	if anchor == nil {
		return nil, ErrFingerprint
	}
	if len(peer) == 0 {
		return nil, fmt.Errorf("%w: server sent no TLS certificate", ErrBadResponse)
	}
	roots := x509.NewCertPool()
	roots.AddCert(anchor)
	inter := x509.NewCertPool()
	for _, cert := range append(peer[1:], certs...) {
		inter.AddCert(cert)
	}
	host := c.base.Hostname()
	if _, err := peer[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, DNSName: host}); err != nil {
		return nil, fmt.Errorf("%w: server certificate does not chain to the bootstrapped anchor: %v", ErrFingerprint, err)
	}
	out := make([]*x509.Certificate, 0, len(certs))
	for _, cert := range certs {
		if cert != anchor {
			out = append(out, cert)
		}
	}
	return append(out, anchor), nil
}
