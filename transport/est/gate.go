package est

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ztmkit/ztm/attest"
	"github.com/ztmkit/ztm/ca"
)

// EnrollRequest is one device's enrollment.
type EnrollRequest struct {
	// CSR is the DER PKCS#10 request made by the device (or for an
	// injected key).
	CSR []byte
	// Profile is the CA profile name ("idevid").
	Profile string
	// Evidence is the device's attestation evidence (an EAT as CWT or JWT,
	// see package attest), bound to a nonce obtained from Nonce; nil only
	// if the CA side's policy allows it.
	Evidence []byte
}

// Enroller is what a station enrolls through: in process ([*Local]) or
// over EST ([*Client]). The root package ztm declares the same interface.
type Enroller interface {
	// Nonce returns a fresh single-use attestation nonce issued by the CA
	// side.
	Nonce(ctx context.Context) ([]byte, error)
	// Enroll has the CA side verify the evidence (consuming its nonce),
	// check the requester's authorization for the profile, issue, record
	// in the ledger, and return the chain: leaf first, then intermediates
	// (no root). Enrolling the same CSR twice returns the certificate
	// already issued (idempotent by SHA-256 of the CSR DER), never a
	// second one.
	Enroll(ctx context.Context, req *EnrollRequest) ([]*x509.Certificate, error)
}

// Requester is who asks for a certificate.
type Requester struct {
	// Certificate is the station's certificate (Station profile, issued by
	// the same CA), as authenticated by TLS or given in process. The CA
	// checks it and the profiles its authorization lists.
	Certificate *x509.Certificate
	// Name identifies a requester without a certificate (HTTP Basic). It
	// is used only when Certificate is nil; the CA then checks no
	// authorization, so the Gate checks Profiles.
	Name string
	// Profiles lists the profiles a Name requester may use.
	Profiles []string
}

// BindingFunc checks that verified evidence names the device that made the
// certificate request. It returns an error to refuse the enrollment.
type BindingFunc func(csr *x509.CertificateRequest, ev *attest.Evidence) error

// BindUEIDToHardwareModule is the default [BindingFunc]: the evidence must
// carry a UEID (EAT claim 256) and the request a hardwareModuleName (RFC
// 4108) whose hwSerialNum is exactly the UEID's bytes. This is the ztm
// convention that ties an IDevID to the evidence: the UEID is the only
// device identifier the attestation key signs, and hwSerialNum is the only
// one IEEE 802.1AR puts in the certificate. A request without a
// hardwareModuleName, or evidence without a UEID, is refused.
func BindUEIDToHardwareModule(csr *x509.CertificateRequest, ev *attest.Evidence) error {
	if ev == nil || ev.Claims == nil || len(ev.Claims.UEID) == 0 {
		return errors.New("evidence carries no ueid")
	}
	for _, ext := range csr.Extensions {
		if !ext.Id.Equal(oidSubjectAltName) {
			continue
		}
		fake := &x509.Certificate{Extensions: []pkixExtension{ext}}
		hms, err := ca.HardwareModuleNames(fake)
		if err != nil {
			return err
		}
		for _, h := range hms {
			if bytes.Equal(h.SerialNumber, ev.Claims.UEID) {
				return nil
			}
		}
		return fmt.Errorf("hardwareModuleName serial %x is not the evidence's ueid %x", firstSerial(hms), ev.Claims.UEID)
	}
	return errors.New("request carries no hardwareModuleName")
}

func firstSerial(h []ca.HardwareModuleName) []byte {
	if len(h) == 0 {
		return nil
	}
	return h[0].SerialNumber
}

// GateConfig configures a [Gate]. Authority is required; Verifier and
// Nonces are required unless AllowNoEvidence is set.
type GateConfig struct {
	// Authority issues and records the certificates.
	Authority *ca.Authority
	// Verifier appraises the device's evidence; it must consume nonces
	// from Nonces (attest.Config.Nonces), so that evidence is fresh and
	// used once.
	Verifier attest.Verifier
	// Nonces issues the nonces Gate.Nonce hands out.
	Nonces *attest.Nonces
	// AllowNoEvidence lets a request without evidence through. Evidence
	// that is present is still verified.
	//
	// WARNING: without evidence the CA issues to whatever key a station
	// presents; a compromised station can then mint identities.
	AllowNoEvidence bool
	// AcceptWarning accepts evidence that appraises as "warning"; by
	// default only "affirming" evidence is.
	AcceptWarning bool
	// Binding checks that the evidence names the request's device. If nil,
	// BindUEIDToHardwareModule.
	Binding BindingFunc
	// CommitTimeout bounds an enrollment once its evidence is being
	// verified; from then on it is no longer cancelled by the caller's
	// context, so that a nonce is never spent without the certificate
	// being issued and recorded. If zero, 30 seconds.
	CommitTimeout time.Duration
	// Time returns the current time, for requester checks. If nil,
	// time.Now.
	Time func() time.Time
}

// Gate holds the checks every enrollment passes, whether it arrives over
// EST ([Server]) or in process ([Local]): the requester's authorization
// for the profile, the channel binding, the device's evidence (verified,
// nonce consumed, bound to the request's device) before the CA is called,
// and idempotency by the request's SHA-256. A Gate is safe for concurrent
// use.
type Gate struct {
	auth          *ca.Authority
	verifier      attest.Verifier
	nonces        *attest.Nonces
	noEvidence    bool
	warning       bool
	binding       BindingFunc
	now           func() time.Time
	commitTimeout time.Duration
	issuers       []*x509.Certificate
	roots         *x509.CertPool
	inters        *x509.CertPool

	// verified caches station chains verified recently, by SHA-256 of
	// the leaf and the intermediates sent, until a minute has passed or
	// the leaf expires; the CA still checks revocation on every issuance.
	vmu      sync.Mutex
	verified map[[32]byte]time.Time
}

// maxVerified bounds the station verification cache.
const maxVerified = 1024

type inflightEntry struct {
	mu   sync.Mutex
	refs int
}

// NewGate returns a Gate for cfg. Errors wrap [ErrInvalidConfig].
func NewGate(cfg GateConfig) (*Gate, error) {
	if cfg.Authority == nil {
		return nil, fmt.Errorf("est: %w: no Authority", ErrInvalidConfig)
	}
	if !cfg.AllowNoEvidence && (cfg.Verifier == nil || cfg.Nonces == nil) {
		return nil, fmt.Errorf("est: %w: Verifier and Nonces are required unless AllowNoEvidence", ErrInvalidConfig)
	}
	if cfg.Verifier != nil && cfg.Nonces == nil {
		return nil, fmt.Errorf("est: %w: a Verifier needs its Nonces", ErrInvalidConfig)
	}
	// Evidence is fresh only if the Verifier spends the nonces the Gate
	// hands out; one that says which it spends must say these.
	if v, ok := cfg.Verifier.(interface{ Nonces() *attest.Nonces }); ok && v.Nonces() != cfg.Nonces {
		return nil, fmt.Errorf("est: %w: the Verifier does not consume the Gate's Nonces (evidence could be replayed)", ErrInvalidConfig)
	}
	g := &Gate{
		auth: cfg.Authority, verifier: cfg.Verifier, nonces: cfg.Nonces,
		noEvidence: cfg.AllowNoEvidence, warning: cfg.AcceptWarning,
		binding: cfg.Binding, now: cfg.Time,
		verified: map[[32]byte]time.Time{},
	}
	if g.binding == nil {
		g.binding = BindUEIDToHardwareModule
	}
	if g.now == nil {
		g.now = time.Now
	}
	if g.commitTimeout = cfg.CommitTimeout; g.commitTimeout <= 0 {
		g.commitTimeout = 30 * time.Second
	}
	chain := cfg.Authority.Chain()
	g.issuers = issuersOf(chain)
	g.roots, g.inters = x509.NewCertPool(), x509.NewCertPool()
	g.roots.AddCert(chain[len(chain)-1])
	for _, c := range chain[:len(chain)-1] {
		g.inters.AddCert(c)
	}
	return g, nil
}

// Authority returns the Gate's Authority.
func (g *Gate) Authority() *ca.Authority { return g.auth }

// Nonce returns a fresh nonce from the Gate's Nonces. Without Nonces it
// returns an error wrapping ErrInvalidConfig.
func (g *Gate) Nonce(ctx context.Context) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if g.nonces == nil {
		return nil, fmt.Errorf("est: %w: no Nonces configured", ErrInvalidConfig)
	}
	return g.nonces.Issue()
}

// chainOut returns leaf then the CA chain without its root.
func (g *Gate) chainOut(leaf *x509.Certificate) []*x509.Certificate {
	return append([]*x509.Certificate{leaf}, g.issuers...)
}

// issuersOf is chain without a trailing self-signed root.
func issuersOf(chain []*x509.Certificate) []*x509.Certificate {
	var out []*x509.Certificate
	for _, c := range chain {
		if bytes.Equal(c.RawIssuer, c.RawSubject) && c.CheckSignatureFrom(c) == nil {
			break
		}
		out = append(out, c)
	}
	return out
}

// VerifyStation checks that cert is a station certificate of this CA: it
// chains to the Authority's chain, for clientAuth, at the current time. It
// does not check the ledger (the CA does, on issuance).
func (g *Gate) VerifyStation(cert *x509.Certificate, intermediates []*x509.Certificate) error {
	now := g.now()
	h := sha256.New()
	h.Write(cert.Raw)
	for _, c := range intermediates {
		h.Write(c.Raw)
	}
	var key [32]byte
	h.Sum(key[:0])
	g.vmu.Lock()
	until, ok := g.verified[key]
	g.vmu.Unlock()
	if ok && now.Before(until) && !now.Before(cert.NotBefore) {
		return nil
	}
	pool := g.inters
	if len(intermediates) > 0 {
		pool = g.inters.Clone()
		for _, c := range intermediates {
			pool.AddCert(c)
		}
	}
	_, err := cert.Verify(x509.VerifyOptions{
		Roots: g.roots, Intermediates: pool, CurrentTime: g.now(),
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		return fmt.Errorf("est: %w: %v", ErrUnauthenticated, err)
	}
	until = now.Add(time.Minute)
	if cert.NotAfter.Before(until) {
		until = cert.NotAfter
	}
	g.vmu.Lock()
	if len(g.verified) >= maxVerified {
		clear(g.verified)
	}
	g.verified[key] = until
	g.vmu.Unlock()
	return nil
}

// enrollOptions are what the server adds to a request.
type enrollOptions struct {
	// binding is the RFC 9266 tls-exporter value of the connection, or
	// nil when the transport has none.
	binding        []byte
	requireBinding bool
	// renew is the certificate being renewed (simplereenroll).
	renew *x509.Certificate
	// parsed is req.CSR already parsed and its signature checked.
	parsed *x509.CertificateRequest
}

// authorize checks that who may use profile before any evidence is looked
// at.
func (g *Gate) authorize(who Requester, profile string) (string, error) {
	if _, ok := g.auth.Profile(profile); !ok {
		return "", fmt.Errorf("est: %w: unknown profile %q", ca.ErrUnknownProfile, profile)
	}
	if who.Certificate != nil {
		a, err := ca.ParseStationAuthorization(who.Certificate)
		if err != nil {
			return "", fmt.Errorf("est: %w: requester certificate: %v", ErrForbidden, err)
		}
		if !a.AllowsProfile(profile) {
			return "", fmt.Errorf("est: %w: station not authorized for profile %q", ErrForbidden, profile)
		}
		h := sha256.Sum256(who.Certificate.RawSubjectPublicKeyInfo)
		return fmt.Sprintf("station:%x", h), nil
	}
	if who.Name == "" {
		return "", fmt.Errorf("est: %w: no requester", ErrUnauthenticated)
	}
	for _, p := range who.Profiles {
		if p == profile {
			return who.Name, nil
		}
	}
	return "", fmt.Errorf("est: %w: requester %q not authorized for profile %q", ErrForbidden, who.Name, profile)
}

// enrolling serializes the enrollments of one request (by the SHA-256 of
// its DER) in this process, whatever Gate or Authority they go through, so
// that a repeat waits for the first to be recorded and is answered from
// the ledger instead of spending its evidence again. Across processes the
// ledger decides (see Gate.enroll).
var enrolling keyLocks

// keyLocks is a set of mutexes by key, each kept while in use.
type keyLocks struct {
	mu sync.Mutex
	m  map[string]*inflightEntry
}

func (k *keyLocks) lock(key string) func() {
	k.mu.Lock()
	if k.m == nil {
		k.m = map[string]*inflightEntry{}
	}
	e := k.m[key]
	if e == nil {
		e = &inflightEntry{}
		k.m[key] = e
	}
	e.refs++
	k.mu.Unlock()
	e.mu.Lock()
	return func() {
		e.mu.Unlock()
		k.mu.Lock()
		if e.refs--; e.refs == 0 {
			delete(k.m, key)
		}
		k.mu.Unlock()
	}
}

// enroll is the one path of every enrollment.
func (g *Gate) enroll(ctx context.Context, who Requester, req *EnrollRequest, opts enrollOptions) ([]*x509.Certificate, error) {
	if req == nil || len(req.CSR) == 0 {
		return nil, &RequestError{Reason: "no certificate request"}
	}
	csr := opts.parsed
	if csr == nil {
		var err error
		if csr, err = parseCSRNoCheck(req.CSR); err != nil {
			return nil, err
		}
	}
	requester, err := g.authorize(who, req.Profile)
	if err != nil {
		return nil, err
	}
	if err := checkChannelBinding(csr, opts); err != nil {
		return nil, err
	}
	if opts.renew != nil {
		if err := g.checkRenewal(ctx, csr, opts.renew, req.Profile); err != nil {
			return nil, err
		}
	}
	// The request's SHA-256 is its idempotency key: the ledger records it
	// with the issuance, in the same transaction, so a repeat is answered
	// with the certificate issued for it — after a crash, a lost answer or
	// on another CA instance sharing the ledger — and never issued twice.
	// A first request, the common case, costs no read for this: a repeat
	// carries evidence whose nonce is spent (or none), which fails below
	// and is then answered from the ledger; a repeat with fresh evidence
	// reaches Issue, which answers it with the recorded certificate.
	d := sha256.Sum256(req.CSR)
	unlock := enrolling.lock(string(d[:]))
	defer unlock()
	// From here the evidence's nonce is consumed: finish even if the
	// caller goes away (a dropped connection, a killed station), so that
	// its retry finds the certificate in the ledger instead of a spent
	// nonce.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), g.commitTimeout)
	defer cancel()
	evDigest, err := g.checkEvidence(ctx, csr, req.Evidence)
	if err != nil {
		var ee *EvidenceError
		if errors.As(err, &ee) {
			if chain, perr := g.previous(ctx, d[:], requester, req.Profile); chain != nil || perr != nil {
				return chain, perr
			}
		}
		return nil, err
	}
	caReq := &ca.Request{CSR: req.CSR, Profile: req.Profile, EvidenceDigest: evDigest, IdempotencyKey: d[:]}
	if who.Certificate != nil {
		caReq.RequesterCertificate = who.Certificate
	} else {
		caReq.Requester = requester
	}
	leaf, err := g.auth.Issue(ctx, caReq)
	switch {
	case errors.Is(err, ca.ErrRequestExists):
		// Issued meanwhile to another requester.
		return nil, ErrConflict
	case err != nil:
		return nil, err
	}
	return g.chainOut(leaf), nil
}

// previous returns the chain already issued for the request with SHA-256
// digest, or nil if none is recorded; ErrConflict if it was issued to
// another requester. A station revoked since gets nothing, as Issue would
// answer it.
func (g *Gate) previous(ctx context.Context, digest []byte, requester, profile string) ([]*x509.Certificate, error) {
	st, err := g.auth.Ledger().LookupRequest(ctx, digest)
	switch {
	case errors.Is(err, ca.ErrUnknownRequest):
		return nil, nil
	case err != nil:
		return nil, err
	case st.Issuance.Requester != requester:
		return nil, ErrConflict
	}
	if rs := st.Issuance.RequesterSerial; rs != nil {
		station, err := g.auth.Ledger().Lookup(ctx, rs)
		if err != nil && !errors.Is(err, ca.ErrUnknownSerial) {
			return nil, err
		}
		if err != nil || station.Revocation != nil {
			return nil, &ca.AuthorizationError{Requester: requester, Profile: profile, Reason: "station certificate revoked", Err: ca.ErrRequesterRevoked}
		}
	}
	leaf, err := x509.ParseCertificate(st.Issuance.Certificate)
	if err != nil {
		return nil, fmt.Errorf("est: recorded certificate: %w", err)
	}
	return g.chainOut(leaf), nil
}

// checkEvidence verifies the evidence and its binding to the request and
// returns the digest of the Result to record.
func (g *Gate) checkEvidence(ctx context.Context, csr *x509.CertificateRequest, evidence []byte) ([]byte, error) {
	if len(evidence) == 0 {
		if g.noEvidence {
			// The CA verifies the request's signature itself.
			return nil, nil
		}
		return nil, &EvidenceError{Reason: "attestation evidence required"}
	}
	// A request whose signature does not verify must not spend the
	// evidence's nonce. The Authority checks it, so that Issue does not
	// verify it again.
	if err := g.auth.CheckCSRSignature(csr.Raw); err != nil {
		return nil, &RequestError{Reason: "bad certificate request signature", Err: err}
	}
	if g.verifier == nil {
		return nil, &EvidenceError{Reason: "no verifier configured"}
	}
	res, err := g.verifier.Verify(ctx, evidence)
	if err != nil {
		if res == nil && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, &EvidenceError{Reason: "verification failed", Err: err}
	}
	switch st := res.Status(); {
	case st == attest.StatusAffirming:
	case st == attest.StatusWarning && g.warning:
	default:
		return nil, &EvidenceError{Reason: "appraisal status " + st.String()}
	}
	if err := g.binding(csr, res.Evidence); err != nil {
		return nil, &EvidenceError{Reason: "evidence does not name the request's device", Err: err}
	}
	digest := res.Digest()
	if digest == nil {
		// An unsigned Result has no signed serialization; the evidence
		// digest identifies what was appraised instead.
		if res.Evidence != nil && len(res.Evidence.Digest) > 0 {
			digest = res.Evidence.Digest
		} else {
			sum := sha256.Sum256(evidence)
			digest = sum[:]
		}
	}
	return digest, nil
}

// checkChannelBinding compares the request's challengePassword with the
// connection's tls-exporter value (RFC 9266; RFC 7030 §3.5).
func checkChannelBinding(csr *x509.CertificateRequest, opts enrollOptions) error {
	pw, ok, err := challengePassword(csr.RawTBSCertificateRequest)
	if err != nil {
		return &RequestError{Reason: "malformed challengePassword", Err: err}
	}
	if !ok {
		if opts.requireBinding {
			return fmt.Errorf("est: %w: channel binding required (tls-exporter in challengePassword)", ErrForbidden)
		}
		return nil
	}
	if opts.binding == nil {
		// In process, or a TLS version without exporter: a password that
		// cannot be checked is refused rather than ignored.
		return fmt.Errorf("est: %w: challengePassword present but the connection has no channel binding", ErrForbidden)
	}
	want := base64.StdEncoding.EncodeToString(opts.binding)
	if subtle.ConstantTimeCompare([]byte(pw), []byte(want)) != 1 {
		return fmt.Errorf("est: %w: channel binding does not match this TLS connection", ErrForbidden)
	}
	return nil
}

// checkRenewal checks a simplereenroll request against the certificate
// being renewed (RFC 7030 §4.2.2): same subject and subjectAltName, the
// certificate issued by this CA under the requested profile and not
// revoked.
func (g *Gate) checkRenewal(ctx context.Context, csr *x509.CertificateRequest, cur *x509.Certificate, profile string) error {
	if same, err := ca.EqualNames(csr.RawSubject, cur.RawSubject); err != nil || !same { // RFC 5280 §7.1, RFC 7030 §4.2.2
		return fmt.Errorf("est: %w: re-enrollment subject differs from the current certificate's", ErrForbidden)
	}
	if !bytes.Equal(sanValue(csr.Extensions), sanValue(cur.Extensions)) {
		return fmt.Errorf("est: %w: re-enrollment subjectAltName differs from the current certificate's", ErrForbidden)
	}
	st, err := g.auth.Ledger().Lookup(ctx, cur.SerialNumber)
	if err != nil {
		if errors.Is(err, ca.ErrUnknownSerial) {
			return fmt.Errorf("est: %w: current certificate not issued by this CA", ErrForbidden)
		}
		return err
	}
	if !bytes.Equal(st.Issuance.Certificate, cur.Raw) {
		return fmt.Errorf("est: %w: current certificate not issued by this CA", ErrForbidden)
	}
	if st.Revocation != nil {
		return fmt.Errorf("est: %w: current certificate is revoked", ErrForbidden)
	}
	if st.Issuance.Profile != profile {
		return fmt.Errorf("est: %w: current certificate is of profile %q, not %q", ErrForbidden, st.Issuance.Profile, profile)
	}
	return nil
}

func sanValue(exts []pkixExtension) []byte {
	for _, e := range exts {
		if e.Id.Equal(oidSubjectAltName) {
			return e.Value
		}
	}
	return nil
}

// Local is an [Enroller] in process: the same checks as the [Server], for
// one requester, without HTTP. It is safe for concurrent use.
type Local struct {
	gate *Gate
	who  Requester
}

var (
	_ Enroller = (*Local)(nil)
	_ Enroller = (*Client)(nil)
)

// LocalConfig configures [NewLocal]: the Gate's configuration and the
// requester every enrollment is made for.
type LocalConfig struct {
	GateConfig
	// Requester is the station (its certificate) or named requester.
	Requester Requester
}

// NewLocal returns an in-process Enroller with its own Gate. To share one
// Gate (and its idempotency state) between requesters, use NewGate and
// Gate.Local.
func NewLocal(cfg LocalConfig) (*Local, error) {
	g, err := NewGate(cfg.GateConfig)
	if err != nil {
		return nil, err
	}
	if cfg.Requester.Certificate == nil && cfg.Requester.Name == "" {
		return nil, fmt.Errorf("est: %w: no Requester", ErrInvalidConfig)
	}
	return g.Local(cfg.Requester), nil
}

// Local returns an Enroller that enrolls through g as who (typically
// Requester{Certificate: stationCert}).
func (g *Gate) Local(who Requester) *Local { return &Local{gate: g, who: who} }

// Nonce implements Enroller.
func (l *Local) Nonce(ctx context.Context) ([]byte, error) { return l.gate.Nonce(ctx) }

// Enroll implements Enroller. Refusals wrap ErrBadRequest, ErrForbidden,
// ErrEvidence, ErrConflict, or the ca sentinels (ca.ErrQuotaExceeded,
// ca.ErrNotAuthorized, ca.ErrBadCSR…).
func (l *Local) Enroll(ctx context.Context, req *EnrollRequest) ([]*x509.Certificate, error) {
	if l.who.Certificate != nil {
		if err := l.gate.VerifyStation(l.who.Certificate, nil); err != nil {
			return nil, err
		}
	}
	return l.gate.enroll(ctx, l.who, req, enrollOptions{})
}
