package est

import (
	"cmp"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ztmkit/ztm/ca/enroll"
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
		return fmt.Errorf("%w: HTTPConfig limits must be positive (MaxReceiveBufferPerConnection at least 64 KiB)", ErrInvalidConfig)
	}
	return nil
}

// BasicCredential is one HTTP Basic user and the profiles it may request.
type BasicCredential struct {
	Username, Password string
	// Profiles lists the CA profiles this user may enroll under.
	Profiles []string
}

// ServerConfig configures a [Server]. Service is required; the zero value
// of every other field works.
type ServerConfig struct {
	// Service decides every enrollment and calls the CA.
	Service *enroll.Service
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
	// Logger receives one record per answer other than success: refusals
	// at level Info with the requester and the reason (the Service logs
	// them too when it has a Logger), internal (5xx) errors at level
	// Error. If nil, nothing is logged.
	Logger *slog.Logger
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
// registration authority of package ca/enroll. See the package
// documentation for the endpoints. It holds no global state and is safe
// for concurrent use.
type Server struct {
	svc      *enroll.Service
	labels   map[string]string
	def      string
	maxBody  int64
	basic    []basicEntry
	reqBind  bool
	retry    time.Duration
	log      *slog.Logger
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
	if cfg.Service == nil {
		return nil, fmt.Errorf("%w: no Service", ErrInvalidConfig)
	}
	if cfg.Service.Authority() == nil {
		return nil, fmt.Errorf("%w: Service not made by enroll.New", ErrInvalidConfig)
	}
	s := &Server{
		svc: cfg.Service, def: cfg.DefaultProfile, maxBody: cfg.MaxBodySize,
		reqBind: cfg.RequireChannelBinding, retry: cfg.RetryAfter, log: cfg.Logger,
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
		return nil, fmt.Errorf("%w: negative client chain limit", ErrInvalidConfig)
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
				return nil, fmt.Errorf("%w: label %q", ErrInvalidConfig, l)
			}
			if _, ok := cfg.Service.Authority().Profile(p); !ok {
				return nil, fmt.Errorf("%w: label %q names unknown profile %q", ErrInvalidConfig, l, p)
			}
			s.labels[l] = p
		}
	}
	for _, c := range cfg.BasicAuth {
		if c.Username == "" || c.Password == "" || strings.Contains(c.Username, ":") {
			return nil, fmt.Errorf("%w: Basic credentials need a username without ':' and a password", ErrInvalidConfig)
		}
		s.basic = append(s.basic, basicEntry{
			user: sha256.Sum256([]byte(c.Username)), passHash: sha256.Sum256([]byte(c.Password)),
			name: "basic:" + c.Username, profiles: append([]string(nil), c.Profiles...),
		})
	}
	chain := cfg.Service.Authority().Chain()
	der, err := certsOnly(chain)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidConfig, err)
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
	if s == nil || s.svc == nil {
		http.Error(w, "est: server not made by NewServer", http.StatusInternalServerError)
		return
	}
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
			if _, ok := s.svc.Authority().Profile(label); !ok {
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
		who, err := s.authenticate(r)
		if err != nil {
			s.error(w, r, err)
			return
		}
		n, err := s.svc.Nonce(r.Context(), who)
		if err != nil {
			s.error(w, r, err)
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
// certificate, or a Basic credential. A station certificate must chain
// to the CA's own chain; intermediates the client sends are not used.
func (s *Server) authenticate(r *http.Request) (enroll.Requester, error) {
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		if err := s.checkChainSize(r.TLS.PeerCertificates); err != nil {
			return enroll.Requester{}, err
		}
		leaf := r.TLS.PeerCertificates[0]
		if err := s.svc.VerifyStation(r.Context(), leaf); err != nil {
			return enroll.Requester{}, err
		}
		return enroll.Requester{Certificate: leaf}, nil
	}
	if user, pass, ok := r.BasicAuth(); ok && len(s.basic) > 0 {
		u, p := sha256.Sum256([]byte(user)), sha256.Sum256([]byte(pass))
		for _, b := range s.basic {
			if subtle.ConstantTimeCompare(u[:], b.user[:])&subtle.ConstantTimeCompare(p[:], b.passHash[:]) == 1 {
				return enroll.Requester{Name: b.name, Profiles: b.profiles}, nil
			}
		}
		return enroll.Requester{}, &enroll.RefusalError{Reason: enroll.ReasonUnauthenticated, Detail: "wrong username or password", Err: ErrUnauthenticated}
	}
	return enroll.Requester{}, &enroll.RefusalError{Reason: enroll.ReasonUnauthenticated, Detail: "no client certificate", Err: ErrUnauthenticated}
}

// checkChainSize refuses a client chain over the Server's limits, before
// any signature of it is checked.
func (s *Server) checkChainSize(chain []*x509.Certificate) error {
	refuse := func(detail string) error {
		return &enroll.RefusalError{Reason: enroll.ReasonUnauthenticated, Detail: detail, Err: ErrUnauthenticated}
	}
	if len(chain) > s.maxCerts {
		return refuse(fmt.Sprintf("client certificate chain of %d certificates, at most %d accepted", len(chain), s.maxCerts))
	}
	n := 0
	for _, c := range chain {
		if n += len(c.Raw); n > s.maxChain {
			return refuse(fmt.Sprintf("client certificate chain over %d bytes", s.maxChain))
		}
	}
	return nil
}

func (s *Server) enroll(w http.ResponseWriter, r *http.Request, profile string, renew bool) {
	if renew && (r.TLS == nil || len(r.TLS.PeerCertificates) == 0) {
		// No HTTP credential can renew a certificate, so there is no
		// challenge to make: 403, not 401 (RFC 9110 §15.5.2).
		s.error(w, r, &enroll.RefusalError{Reason: enroll.ReasonRenewal, Detail: "re-enrollment requires the current certificate as the TLS client certificate"})
		return
	}
	who, err := s.authenticate(r)
	if err != nil {
		s.error(w, r, err)
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
	// The request is parsed, once, by the Service.
	der, err := decodeBase64Body(body)
	if err != nil {
		s.error(w, r, &enroll.RefusalError{Reason: enroll.ReasonBadRequest, Detail: "malformed base64", Err: &RequestError{Reason: "malformed base64", Err: err}})
		return
	}
	var evidence []byte
	if v := r.Header.Get(HeaderEvidence); v != "" {
		evidence, err = decodeEvidenceHeader(v)
		if err != nil {
			s.error(w, r, &enroll.RefusalError{Reason: enroll.ReasonBadRequest, Detail: "malformed " + HeaderEvidence + " header", Err: err})
			return
		}
	}
	opts := enroll.Options{RequireChannelBinding: s.reqBind}
	if r.TLS != nil && r.TLS.Version >= tls.VersionTLS13 {
		if ekm, err := r.TLS.ExportKeyingMaterial("EXPORTER-Channel-Binding", nil, 32); err == nil {
			opts.ChannelBinding = ekm
		}
	}
	if renew {
		if who.Certificate == nil {
			s.error(w, r, &enroll.RefusalError{Reason: enroll.ReasonUnauthenticated, Detail: "re-enrollment requires the current certificate as the TLS client certificate", Err: ErrUnauthenticated})
			return
		}
		opts.Renew = who.Certificate
	}
	req := &enroll.Request{CSR: der, Profile: profile, Evidence: evidence}
	if v := r.Header.Get(HeaderReprovision); v != "" {
		if !strings.EqualFold(strings.TrimSpace(v), "superseded") {
			s.error(w, r, &enroll.RefusalError{Reason: enroll.ReasonBadRequest, Detail: HeaderReprovision + " must be \"superseded\""})
			return
		}
		req.Reprovision = true
	}
	chain, err := s.svc.Enroll(r.Context(), who, req, opts)
	if err != nil {
		s.error(w, r, err)
		return
	}
	// RFC 7030 §4.2.3: the answer holds only the certificate issued; the
	// client has the CA certificates from /cacerts.
	out, err := certsOnly(chain[:1])
	if err != nil {
		s.error(w, r, err)
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

// HeaderReprovision, with the value "superseded" on a simpleenroll
// request, asks to re-provision a device that holds a live IDevID: the
// old certificate is revoked (reason superseded) as the new one is issued
// (enroll.Request.Reprovision). A ztm extension, like ZTM-Evidence.
const HeaderReprovision = "ZTM-Reprovision"

// HeaderRefusal is the answer header naming the check that refused a
// request: an enroll.RefusalError code, "evidence/debug-enabled" or
// "quota". The Client reads it back into the same *enroll.RefusalError.
const HeaderRefusal = "ZTM-Refusal"

// statusOf is the HTTP status of each refusal reason.
var statusOf = map[enroll.Reason]int{
	enroll.ReasonBadRequest:         http.StatusBadRequest,
	enroll.ReasonUnauthenticated:    http.StatusUnauthorized,
	enroll.ReasonNotAuthorized:      http.StatusForbidden,
	enroll.ReasonRequesterRevoked:   http.StatusForbidden,
	enroll.ReasonChannelBinding:     http.StatusForbidden,
	enroll.ReasonEvidenceRequired:   http.StatusForbidden,
	enroll.ReasonEvidence:           http.StatusForbidden,
	enroll.ReasonAppraisal:          http.StatusForbidden,
	enroll.ReasonEvidenceBinding:    http.StatusForbidden,
	enroll.ReasonUnknownProfile:     http.StatusNotFound,
	enroll.ReasonPolicy:             http.StatusForbidden,
	enroll.ReasonConflict:           http.StatusConflict,
	enroll.ReasonRepeatRevoked:      http.StatusConflict,
	enroll.ReasonRenewal:            http.StatusForbidden,
	enroll.ReasonQuota:              http.StatusTooManyRequests,
	enroll.ReasonNonceLimit:         http.StatusTooManyRequests,
	enroll.ReasonAlreadyProvisioned: http.StatusConflict,
	enroll.ReasonKeyBinding:         http.StatusForbidden,
}

// error answers err: a refusal with the status of its reason, the
// ZTM-Refusal header and its message; anything else with 503 and
// Retry-After (the CA could not answer: ledger busy, deadline).
func (s *Server) error(w http.ResponseWriter, r *http.Request, err error) {
	var re *enroll.RefusalError
	if !errors.As(err, &re) {
		if s.log != nil {
			s.log.LogAttrs(r.Context(), slog.LevelError, "est: internal error", slog.String("path", r.URL.Path), slog.String("error", err.Error()))
		}
		w.Header().Set("Retry-After", strconv.Itoa(int((s.retry+time.Second-1)/time.Second)))
		s.fail(w, http.StatusServiceUnavailable, "CA temporarily unavailable, retry later")
		return
	}
	code, ok := statusOf[re.Reason]
	if !ok {
		code = http.StatusForbidden
	}
	h := w.Header()
	h.Set(HeaderRefusal, re.Code())
	switch code {
	case http.StatusUnauthorized:
		code = s.unauthorized(w)
	case http.StatusServiceUnavailable, http.StatusTooManyRequests:
		h.Set("Retry-After", strconv.Itoa(int((s.retry+time.Second-1)/time.Second)))
	}
	if s.log != nil {
		s.log.LogAttrs(r.Context(), slog.LevelInfo, "est: refused", slog.String("path", r.URL.Path),
			slog.String("requester", requesterOf(r)), slog.String("reason", re.Code()), slog.String("error", err.Error()))
	}
	s.fail(w, code, refusalText(re))
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

// maxRefusalText bounds the body of a refusal.
const maxRefusalText = 160

// refusalText is the body of a refusal, one short line: the reason code
// and the detail, or the innermost message of the error behind it.
func refusalText(re *enroll.RefusalError) string {
	msg := "refused: " + re.Code()
	switch {
	case re.Detail != "":
		msg += ": " + re.Detail
	case re.Err != nil:
		m := re.Err.Error()
		if i := strings.LastIndex(m, ": "); i >= 0 {
			m = m[i+2:]
		}
		msg += ": " + m
	}
	if len(msg) > maxRefusalText {
		msg = strings.ToValidUTF8(msg[:maxRefusalText-3], "") + "..."
	}
	return strings.ReplaceAll(msg, "\n", " ")
}

// requesterOf names the client of r for the log: the subject of its TLS
// client certificate, the Basic user, or its address.
func requesterOf(r *http.Request) string {
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		return r.TLS.PeerCertificates[0].Subject.String()
	}
	if u, _, ok := r.BasicAuth(); ok {
		return "basic:" + u
	}
	return r.RemoteAddr
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
