package est

import (
	"cmp"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ztmkit/ztm/attest"
	"github.com/ztmkit/ztm/ca"
)

// PathPrefix is the path under which every EST operation lives (RFC 7030
// §3.2.2).
const PathPrefix = "/.well-known/est/"

// DefaultMaxBodySize is the largest request body the Server reads when
// ServerConfig.MaxBodySize is zero.
const DefaultMaxBodySize = 64 << 10

// Default limits of a [Server] on what an unauthenticated client may make
// it do, and of the http.Server [NewHTTPServer] makes.
const (
	// DefaultMaxClientCertificates is the longest client certificate chain
	// (the client's certificate included) the Server looks at when
	// ServerConfig.MaxClientCertificates is zero: a station certificate,
	// two intermediates and a root.
	DefaultMaxClientCertificates = 4
	// DefaultMaxClientChainBytes bounds the DER bytes of a client chain
	// when ServerConfig.MaxClientChainBytes is zero: four RSA-4096
	// certificates fit easily.
	DefaultMaxClientChainBytes = 16 << 10
	// DefaultHTTP2MaxConcurrentStreams is HTTPConfig.MaxConcurrentStreams
	// when zero; Go's own default is 250.
	DefaultHTTP2MaxConcurrentStreams = 16
	// DefaultHTTP2MaxReceiveBuffer is HTTPConfig.MaxReceiveBufferPerConnection
	// when zero: a few request bodies of DefaultMaxBodySize (Go's default
	// is 1 MiB). The per-stream window is DefaultMaxBodySize.
	DefaultHTTP2MaxReceiveBuffer = 256 << 10
)

// HTTPConfig configures the http.Server that [NewHTTPServer] makes for a
// [Server]. The zero value is the safe default: HTTP/1.1 only.
type HTTPConfig struct {
	// HTTP2 offers HTTP/2 (RFC 9113) by ALPN next to HTTP/1.1. Off by
	// default: an EST client sends one request per device and gains
	// nothing from multiplexing, and HTTP/2 lets one connection open many
	// streams at little cost to the client (rapid reset, CVE-2023-44487),
	// which Go contains but which still takes throughput and memory from
	// honest clients while it lasts. Turn it on with the limits below.
	HTTP2 bool
	// MaxConcurrentStreams bounds the HTTP/2 streams one connection may
	// have open (and so the handlers it may have running). If zero,
	// DefaultHTTP2MaxConcurrentStreams (16).
	MaxConcurrentStreams int
	// MaxReceiveBufferPerConnection is the HTTP/2 flow-control window of a
	// connection: how much request data the server buffers for it. If
	// zero, DefaultHTTP2MaxReceiveBuffer (256 KiB); at least 64 KiB.
	MaxReceiveBufferPerConnection int
	// MaxDecoderHeaderTableSize bounds the HPACK table the client may make
	// the server keep. If zero, 4096 bytes (RFC 9113's initial value).
	MaxDecoderHeaderTableSize int
}

func (c *HTTPConfig) validate() error {
	if c.MaxConcurrentStreams < 0 || c.MaxDecoderHeaderTableSize < 0 ||
		c.MaxReceiveBufferPerConnection < 0 || (c.MaxReceiveBufferPerConnection > 0 && c.MaxReceiveBufferPerConnection < 64<<10) {
		return fmt.Errorf("est: %w: HTTPConfig limits must be positive (MaxReceiveBufferPerConnection at least 64 KiB)", ErrInvalidConfig)
	}
	return nil
}

// BasicCredential is one HTTP Basic user and the profiles it may request.
type BasicCredential struct {
	Username, Password string
	// Profiles lists the CA profiles this user may enroll under.
	Profiles []string
}

// ServerConfig configures a [Server]. Gate is required; the zero value of
// every other field works.
type ServerConfig struct {
	// Gate makes every enrollment's checks and calls the CA.
	Gate *Gate
	// Labels maps an EST label (RFC 7030 §3.2.2, the path segment after
	// /.well-known/est/) to a CA profile. If nil, a label is the name of
	// one of the Authority's profiles.
	Labels map[string]string
	// DefaultProfile is the profile of requests without a label. If empty,
	// "idevid".
	DefaultProfile string
	// MaxBodySize bounds request bodies; larger ones get 413. If zero,
	// DefaultMaxBodySize (64 KiB).
	MaxBodySize int64
	// BasicAuth lists HTTP Basic credentials accepted in place of a client
	// certificate (RFC 7030 §3.2.3). The requester is then "basic:" and
	// the username.
	//
	// WARNING: a password is a bearer secret that any holder can replay
	// from anywhere, and the CA cannot tie it to a station key; use TLS
	// client certificates of the Station profile wherever the client can
	// hold a key, and Basic only over TLS to bootstrap legacy tools.
	BasicAuth []BasicCredential
	// RequireChannelBinding refuses (403) requests whose CSR does not
	// carry the connection's tls-exporter value (RFC 9266) in its
	// challengePassword.
	RequireChannelBinding bool
	// RetryAfter is the Retry-After sent with a 503 when the CA is
	// momentarily unable to answer (ledger busy, deadline). If zero, 5
	// seconds.
	RetryAfter time.Duration
	// ErrorLog receives one line per internal (5xx) error. If nil, they
	// are not logged.
	ErrorLog func(format string, args ...any)
	// MaxClientCertificates bounds the TLS client certificate chain, the
	// client's certificate included, and MaxClientChainBytes its total DER
	// size. A longer or larger chain is refused as unauthenticated before
	// any of its signatures is checked, so that a client cannot make the
	// server verify many look-alike intermediates per request. If zero,
	// DefaultMaxClientCertificates (4) and DefaultMaxClientChainBytes
	// (16 KiB).
	MaxClientCertificates int
	MaxClientChainBytes   int
	// HTTP configures the http.Server NewHTTPServer makes for this
	// Server: HTTP/2 (off by default) and its limits.
	HTTP HTTPConfig
}

// Server is the EST server: an http.Handler serving RFC 7030 over the
// [Gate]. See the package documentation for the endpoints. It holds no
// global state and is safe for concurrent use.
type Server struct {
	gate     *Gate
	labels   map[string]string
	def      string
	maxBody  int64
	basic    []basicEntry
	reqBind  bool
	retry    time.Duration
	logf     func(string, ...any)
	cacerts  []byte
	csrattrs []byte
	maxCerts int
	maxChain int
	http     HTTPConfig
}

type basicEntry struct {
	user, passHash [32]byte
	name           string
	profiles       []string
}

var _ http.Handler = (*Server)(nil)

// NewServer returns a Server for cfg. Errors wrap [ErrInvalidConfig].
func NewServer(cfg ServerConfig) (*Server, error) {
	if cfg.Gate == nil {
		return nil, fmt.Errorf("est: %w: no Gate", ErrInvalidConfig)
	}
	s := &Server{
		gate: cfg.Gate, def: cfg.DefaultProfile, maxBody: cfg.MaxBodySize,
		reqBind: cfg.RequireChannelBinding, retry: cfg.RetryAfter, logf: cfg.ErrorLog,
	}
	if s.def == "" {
		s.def = "idevid"
	}
	if s.maxBody <= 0 {
		s.maxBody = DefaultMaxBodySize
	}
	if s.retry <= 0 {
		s.retry = 5 * time.Second
	}
	if cfg.MaxClientCertificates < 0 || cfg.MaxClientChainBytes < 0 {
		return nil, fmt.Errorf("est: %w: negative client chain limit", ErrInvalidConfig)
	}
	s.maxCerts, s.maxChain = cfg.MaxClientCertificates, cfg.MaxClientChainBytes
	if s.maxCerts == 0 {
		s.maxCerts = DefaultMaxClientCertificates
	}
	if s.maxChain == 0 {
		s.maxChain = DefaultMaxClientChainBytes
	}
	if err := cfg.HTTP.validate(); err != nil {
		return nil, err
	}
	s.http = cfg.HTTP
	if cfg.Labels != nil {
		s.labels = make(map[string]string, len(cfg.Labels))
		for l, p := range cfg.Labels {
			if l == "" || strings.ContainsAny(l, "/?#") {
				return nil, fmt.Errorf("est: %w: label %q", ErrInvalidConfig, l)
			}
			if _, ok := cfg.Gate.auth.Profile(p); !ok {
				return nil, fmt.Errorf("est: %w: label %q names unknown profile %q", ErrInvalidConfig, l, p)
			}
			s.labels[l] = p
		}
	}
	for _, c := range cfg.BasicAuth {
		if c.Username == "" || c.Password == "" || strings.Contains(c.Username, ":") {
			return nil, fmt.Errorf("est: %w: Basic credentials need a username without ':' and a password", ErrInvalidConfig)
		}
		s.basic = append(s.basic, basicEntry{
			user: sha256.Sum256([]byte(c.Username)), passHash: sha256.Sum256([]byte(c.Password)),
			name: "basic:" + c.Username, profiles: append([]string(nil), c.Profiles...),
		})
	}
	chain := cfg.Gate.auth.Chain()
	der, err := certsOnly(chain)
	if err != nil {
		return nil, fmt.Errorf("est: %w: %v", ErrInvalidConfig, err)
	}
	s.cacerts = encodeBase64Body(der)
	attrs, err := MarshalCSRAttrs([]CSRAttr{
		{OID: oidChallengePassword}, // channel binding (RFC 7030 §3.5, RFC 9266)
		{OID: oidSerialNumber},      // subject serialNumber (IEEE 802.1AR)
		{OID: oidHardwareModule},    // hardwareModuleName in subjectAltName (RFC 4108)
	})
	if err != nil {
		return nil, err
	}
	s.csrattrs = encodeBase64Body(attrs)
	return s, nil
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rest, ok := strings.CutPrefix(r.URL.Path, PathPrefix)
	if !ok {
		s.fail(w, http.StatusNotFound, "not an EST path")
		return
	}
	label, op, hasLabel := strings.Cut(rest, "/")
	if !hasLabel {
		op, label = label, ""
	}
	if strings.Contains(op, "/") || op == "" {
		s.fail(w, http.StatusNotFound, "unknown EST operation")
		return
	}
	profile := s.def
	if label != "" {
		if s.labels != nil {
			p, ok := s.labels[label]
			if !ok {
				s.fail(w, http.StatusNotFound, "unknown label")
				return
			}
			profile = p
		} else {
			if _, ok := s.gate.auth.Profile(label); !ok {
				s.fail(w, http.StatusNotFound, "unknown label")
				return
			}
			profile = label
		}
	}
	switch op {
	case "cacerts":
		if !s.method(w, r, http.MethodGet) {
			return
		}
		s.writeBase64(w, MediaTypeCertsOnly, s.cacerts)
	case "csrattrs":
		if !s.method(w, r, http.MethodGet) {
			return
		}
		s.writeBase64(w, MediaTypeCSRAttrs, s.csrattrs)
	case "simpleenroll", "simplereenroll":
		if !s.method(w, r, http.MethodPost) {
			return
		}
		s.enroll(w, r, profile, op == "simplereenroll")
	case "serverkeygen":
		if !s.method(w, r, http.MethodPost) {
			return
		}
		// Keys never leave their store unsealed (ztm design decision 1).
		// RFC 7030 §4.4 would have the CA generate the device's private
		// key and send it back; see the package documentation.
		s.fail(w, http.StatusNotImplemented, "serverkeygen is not offered: device keys are generated in the device's key store, never by the CA")
	case "ztm-nonce":
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", http.MethodGet)
			s.fail(w, http.StatusMethodNotAllowed, "method not allowed")
			return
		}
		if _, err := s.authenticate(r); err != nil {
			s.error(w, err)
			return
		}
		n, err := s.gate.Nonce(r.Context())
		if err != nil {
			if errors.Is(err, attest.ErrNoncesFull) {
				w.Header().Set("Retry-After", strconv.Itoa(int(s.retry/time.Second)))
				s.fail(w, http.StatusServiceUnavailable, "too many outstanding nonces")
				return
			}
			s.error(w, err)
			return
		}
		s.writeBase64(w, MediaTypeNonce, encodeBase64Body(n))
	default:
		s.fail(w, http.StatusNotFound, "unknown EST operation")
	}
}

func (s *Server) method(w http.ResponseWriter, r *http.Request, m string) bool {
	if r.Method == m || (m == http.MethodGet && r.Method == http.MethodHead) {
		return true
	}
	w.Header().Set("Allow", m)
	s.fail(w, http.StatusMethodNotAllowed, "method not allowed")
	return false
}

func (s *Server) writeBase64(w http.ResponseWriter, mediaType string, body []byte) {
	h := w.Header()
	h.Set("Content-Type", mediaType)
	h.Set("Content-Transfer-Encoding", "base64")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	w.Write(body)
}

// fail answers code with a short plain-text body.
func (s *Server) fail(w http.ResponseWriter, code int, msg string) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	io.WriteString(w, msg+"\n")
}

// authenticate returns the requester of r: its verified station
// certificate, or a Basic credential.
func (s *Server) authenticate(r *http.Request) (Requester, error) {
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		if err := s.checkChainSize(r.TLS.PeerCertificates); err != nil {
			return Requester{}, err
		}
		leaf := r.TLS.PeerCertificates[0]
		if err := s.gate.VerifyStation(leaf, r.TLS.PeerCertificates[1:]); err != nil {
			return Requester{}, err
		}
		return Requester{Certificate: leaf}, nil
	}
	if user, pass, ok := r.BasicAuth(); ok && len(s.basic) > 0 {
		u, p := sha256.Sum256([]byte(user)), sha256.Sum256([]byte(pass))
		for _, b := range s.basic {
			if subtle.ConstantTimeCompare(u[:], b.user[:])&subtle.ConstantTimeCompare(p[:], b.passHash[:]) == 1 {
				return Requester{Name: b.name, Profiles: b.profiles}, nil
			}
		}
		return Requester{}, fmt.Errorf("est: %w: wrong username or password", ErrUnauthenticated)
	}
	return Requester{}, fmt.Errorf("est: %w: no client certificate", ErrUnauthenticated)
}

// checkChainSize refuses a client chain over the Server's limits, before
// any signature of it is checked.
func (s *Server) checkChainSize(chain []*x509.Certificate) error {
	if len(chain) > s.maxCerts {
		return &chainSizeError{fmt.Sprintf("client certificate chain of %d certificates, at most %d accepted", len(chain), s.maxCerts)}
	}
	n := 0
	for _, c := range chain {
		if n += len(c.Raw); n > s.maxChain {
			return &chainSizeError{fmt.Sprintf("client certificate chain over %d bytes", s.maxChain)}
		}
	}
	return nil
}

// chainSizeError is a client chain over the Server's limits. It wraps
// ErrUnauthenticated.
type chainSizeError struct{ msg string }

func (e *chainSizeError) Error() string { return "est: requester not authenticated: " + e.msg }
func (e *chainSizeError) Unwrap() error { return ErrUnauthenticated }

func (s *Server) enroll(w http.ResponseWriter, r *http.Request, profile string, renew bool) {
	if renew && (r.TLS == nil || len(r.TLS.PeerCertificates) == 0) {
		// No HTTP credential can renew a certificate, so there is no
		// challenge to make: 403, not 401 (RFC 9110 §15.5.2).
		s.fail(w, http.StatusForbidden, "re-enrollment requires the current certificate as the TLS client certificate")
		return
	}
	who, err := s.authenticate(r)
	if err != nil {
		s.error(w, err)
		return
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != MediaTypePKCS10 {
		s.fail(w, http.StatusUnsupportedMediaType, "content type must be "+MediaTypePKCS10)
		return
	}
	if cte := r.Header.Get("Content-Transfer-Encoding"); cte != "" && !strings.EqualFold(strings.TrimSpace(cte), "base64") {
		s.fail(w, http.StatusUnsupportedMediaType, "content transfer encoding must be base64")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.maxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			s.fail(w, http.StatusRequestEntityTooLarge, "request body too large")
			return
		}
		s.fail(w, http.StatusBadRequest, "failed to read request body")
		return
	}
	der, parsed, err := decodeCSRBodyNoCheck(body)
	if err != nil {
		s.error(w, err)
		return
	}
	var evidence []byte
	if v := r.Header.Get(HeaderEvidence); v != "" {
		evidence, err = decodeEvidenceHeader(v)
		if err != nil {
			s.error(w, err)
			return
		}
	}
	opts := enrollOptions{requireBinding: s.reqBind, parsed: parsed}
	if r.TLS != nil && r.TLS.Version >= tls.VersionTLS13 {
		if ekm, err := r.TLS.ExportKeyingMaterial("EXPORTER-Channel-Binding", nil, 32); err == nil {
			opts.binding = ekm
		}
	}
	if renew {
		opts.renew = who.Certificate
		// The renewing device is its own requester: the CA records it by
		// its key; no station authorization is involved.
		h := sha256.Sum256(who.Certificate.RawSubjectPublicKeyInfo)
		who = Requester{Name: fmt.Sprintf("renew:%x", h), Profiles: []string{profile}}
	}
	chain, err := s.gate.enroll(r.Context(), who, &EnrollRequest{CSR: der, Profile: profile, Evidence: evidence}, opts)
	if err != nil {
		s.error(w, err)
		return
	}
	// RFC 7030 §4.2.3: the answer holds only the certificate issued; the
	// client has the CA certificates from /cacerts.
	out, err := certsOnly(chain[:1])
	if err != nil {
		s.error(w, err)
		return
	}
	s.writeBase64(w, MediaTypeCertsOnly, encodeBase64Body(out))
}

// decodeEvidenceHeader decodes the ZTM-Evidence header: standard base64,
// padding optional.
func decodeEvidenceHeader(v string) ([]byte, error) {
	v = strings.TrimSpace(v)
	b, err := base64.RawStdEncoding.Strict().DecodeString(strings.TrimRight(v, "="))
	if err != nil || len(b) == 0 {
		return nil, &RequestError{Reason: "malformed " + HeaderEvidence + " header", Err: err}
	}
	return b, nil
}

// error maps an enrollment error to its status.
func (s *Server) error(w http.ResponseWriter, err error) {
	code, msg := statusOf(err)
	if code == http.StatusUnauthorized {
		code = s.unauthorized(w)
	}
	if code == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", strconv.Itoa(int((s.retry+time.Second-1)/time.Second)))
	}
	if code >= 500 && s.logf != nil {
		s.logf("est: %v", err)
	}
	s.fail(w, code, msg)
}

// basicChallenge is the WWW-Authenticate challenge of a Server that
// accepts HTTP Basic (RFC 7617 §2, §2.1).
const basicChallenge = `Basic realm="est", charset="UTF-8"`

// unauthorized sets the challenge of a 401 and returns the status to
// answer an unauthenticated request with: 401 with a Basic challenge when
// the Server accepts Basic credentials, and 403 when it authenticates by
// TLS client certificate only. RFC 9110 §15.5.2 requires every 401 to carry
// a challenge the client can answer, and no HTTP authentication scheme
// carries a TLS certificate; RFC 7030 §3.2.3 makes HTTP authentication
// optional for the server, and §3.3.2 has a TLS-only server authenticate
// in the handshake alone.
func (s *Server) unauthorized(w http.ResponseWriter) int {
	if len(s.basic) == 0 {
		return http.StatusForbidden
	}
	w.Header().Set("WWW-Authenticate", basicChallenge)
	return http.StatusUnauthorized
}

// statusOf returns the HTTP status and short message for err.
func statusOf(err error) (int, string) {
	var re *RequestError
	var ee *EvidenceError
	switch {
	case errors.As(err, &re):
		return http.StatusBadRequest, re.Reason
	case errors.Is(err, ca.ErrBadCSR):
		var ce *ca.CSRError
		if errors.As(err, &ce) {
			return http.StatusBadRequest, "certificate request refused: " + ce.Reason.String()
		}
		return http.StatusBadRequest, "certificate request refused"
	case errors.Is(err, ErrUnauthenticated):
		if ce := (*chainSizeError)(nil); errors.As(err, &ce) {
			return http.StatusUnauthorized, ce.msg
		}
		return http.StatusUnauthorized, "authentication required: a station client certificate issued by this CA"
	case errors.As(err, &ee):
		if errors.Is(err, attest.ErrNonceReused) {
			return http.StatusForbidden, "evidence refused: nonce reused"
		}
		return http.StatusForbidden, ee.Reason
	case errors.Is(err, ErrForbidden):
		return http.StatusForbidden, shortMsg(err)
	case errors.Is(err, ca.ErrNotAuthorized), errors.Is(err, ca.ErrPolicy):
		return http.StatusForbidden, "requester not authorized by the CA"
	case errors.Is(err, ErrConflict):
		return http.StatusConflict, "certificate request already enrolled by another requester"
	case errors.Is(err, ca.ErrQuotaExceeded):
		return http.StatusTooManyRequests, "certificate quota exceeded"
	case errors.Is(err, ca.ErrUnknownProfile):
		return http.StatusNotFound, "unknown profile"
	case errors.Is(err, ca.ErrInvalidRequest):
		return http.StatusBadRequest, "invalid request"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable, "CA busy, retry later"
	}
	return http.StatusServiceUnavailable, "CA temporarily unavailable, retry later"
}

// shortMsg is err's message without the package prefix and sentinel.
func shortMsg(err error) string {
	m := err.Error()
	if i := strings.LastIndex(m, ": "); i >= 0 {
		return m[i+2:]
	}
	return m
}

// ServerTLSConfig returns the TLS configuration of an EST server: TLS 1.2
// at least (1.3 preferred: Go negotiates the highest common version),
// the server's certificate, and client certificates requested but not
// verified by TLS — the Server verifies them against the CA's chain itself,
// so that a missing or foreign certificate gets an HTTP 401 or 403 with a reason
// instead of a failed handshake, and cacerts stays reachable without one
// (RFC 7030 §4.1.1).
func ServerTLSConfig(cert tls.Certificate) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequestClientCert,
	}
}

// NewHTTPServer returns an *http.Server for handler with TLS from
// tlsConfig and the timeouts an EST server needs: ReadHeaderTimeout 10 s,
// ReadTimeout 30 s, WriteTimeout 60 s, IdleTimeout 120 s, and 128 KiB of
// headers (room for a ZTM-Evidence header carrying evidence of up to the
// 64 KiB attest accepts, in base64). It speaks HTTP/1.1 only unless
// handler is a *Server whose ServerConfig.HTTP turns HTTP/2 on; the
// HTTP/2 limits are then that HTTPConfig's (see its defaults). Serve it
// with ListenAndServeTLS("", "") or ServeTLS(l, "", "").
func NewHTTPServer(addr string, handler http.Handler, tlsConfig *tls.Config) *http.Server {
	var hc HTTPConfig
	if s, ok := handler.(*Server); ok {
		hc = s.http
	}
	srv := &http.Server{
		Addr:              addr,
		Handler:           handler,
		TLSConfig:         tlsConfig,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    128 << 10,
		Protocols:         new(http.Protocols),
	}
	srv.Protocols.SetHTTP1(true)
	if !hc.HTTP2 {
		return srv
	}
	srv.Protocols.SetHTTP2(true)
	srv.HTTP2 = &http.HTTP2Config{
		MaxConcurrentStreams:          cmp.Or(hc.MaxConcurrentStreams, DefaultHTTP2MaxConcurrentStreams),
		MaxReceiveBufferPerConnection: cmp.Or(hc.MaxReceiveBufferPerConnection, DefaultHTTP2MaxReceiveBuffer),
		MaxReceiveBufferPerStream:     DefaultMaxBodySize,
		MaxDecoderHeaderTableSize:     cmp.Or(hc.MaxDecoderHeaderTableSize, 4096),
	}
	return srv
}
