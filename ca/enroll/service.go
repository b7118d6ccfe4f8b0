package enroll

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ztmkit/ztm/attest"
	"github.com/ztmkit/ztm/ca"
)

// Request is one device's enrollment, as an [Enroller] receives it.
type Request struct {
	// CSR is the DER PKCS#10 request made by the device (or for an
	// injected key).
	CSR []byte
	// Profile is the CA profile name ("idevid").
	Profile string
	// Evidence is the device's attestation evidence (an EAT as CWT or JWT,
	// see package attest), bound to a nonce obtained from the same
	// Enroller's Nonce. If nil, the evidence the CSR carries in its
	// id-aa-evidence attribute is used (see EvidenceFromCSR); none at all
	// only if the CA side's policy allows it.
	Evidence []byte
	// Reprovision asks for a new IDevID of a device that holds a live one
	// (a device re-provisioned after a retest or a repair): the old
	// certificate is revoked, reason superseded, in the same ledger
	// transaction as the new one is recorded. Without it a device gets one
	// IDevID: a second request is refused (ReasonAlreadyProvisioned).
	Reprovision bool
}

// Enroller is what a station enrolls through: in process ([*Local]) or
// over EST (package transport/est's Client).
type Enroller interface {
	// Nonce returns a fresh single-use attestation nonce issued by the CA
	// side to this requester.
	Nonce(ctx context.Context) ([]byte, error)
	// Enroll has the CA side check the requester's authorization for the
	// profile, verify the evidence (consuming its nonce) and its binding
	// to the request, issue, record in the ledger, and return the chain:
	// leaf first, then intermediates (no root). Enrolling the same CSR
	// under the same profile again returns the certificate already issued,
	// never a second one, unless it has been revoked since. Refusals wrap
	// [ErrRefused] in a [*RefusalError]; [Retryable] says whether a retry
	// may succeed.
	Enroll(ctx context.Context, req *Request) ([]*x509.Certificate, error)
}

// Requester is who asks for a certificate.
type Requester struct {
	// Certificate is the station's certificate (Station profile, issued by
	// the same CA), as authenticated by TLS or given in process. The CA
	// checks it, its revocation and the profiles its authorization lists.
	Certificate *x509.Certificate
	// Name identifies a requester without a certificate (HTTP Basic). It
	// is used only when Certificate is nil; Profiles then lists the
	// profiles it may use.
	Name string
	// Profiles lists the profiles a Name requester may use.
	Profiles []string
}

// id is the requester as the ledger records it.
func (who Requester) id() string {
	if who.Certificate != nil {
		h := sha256.Sum256(who.Certificate.RawSubjectPublicKeyInfo)
		return "station:" + hex.EncodeToString(h[:])
	}
	return who.Name
}

// Config configures a [Service]. Authority is required; a Verifier that
// consumes nonces is required unless AllowNoEvidence is set.
type Config struct {
	// Authority issues and records the certificates.
	Authority *ca.Authority
	// Verifier appraises the device's evidence; it must consume nonces
	// from Nonces (attest.Config.Nonces), so that evidence is fresh and
	// used once.
	Verifier attest.Verifier
	// Nonces issues the nonces Service.Nonce hands out. Its MaxPerOwner
	// caps each requester's outstanding nonces. If nil, the Verifier's
	// own (its Nonces method, as *attest.EATVerifier has, configured by
	// attest.Config.Nonces): the nonce source is configured once, in the
	// verifier that consumes it.
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
	// BindUEIDToHardwareModule. The key binding (the evidence's cnf
	// confirms the request's key) is checked as well, whatever Binding.
	Binding BindingFunc
	// HardwareModels, if set, lists every device model the CA issues for:
	// its evidence's oemid and hwmodel and the hardwareModuleName type
	// (hwType) its IDevIDs carry. A request whose hwType is not the one of
	// the model its evidence names, or evidence of a model not listed, is
	// refused (ReasonEvidenceBinding): device information that disagrees
	// with the evidence, such as one model's type on another model's
	// device, never reaches a certificate. If empty, the hwType is not
	// checked (the evidence's oemid and hwmodel are still appraised
	// against the Verifier's reference values).
	HardwareModels []HardwareModel
	// InjectedKeyProfiles lists the profiles that accept a key the
	// evidence does not confirm (evidence without cnf) from a station whose
	// authorization lists the key-injection step ([InjectionStep]): a key
	// the station made and sealed to the device, which the device could
	// not attest when it made its evidence. Evidence whose cnf names
	// another key is refused on every profile. If empty, no profile
	// accepts injected keys.
	InjectedKeyProfiles []string
	// UnconfirmedKeyProfiles lists the profiles that accept evidence
	// without cnf from any requester: legacy devices whose evidence names
	// the device but not its key. If empty, every profile requires the
	// evidence to confirm the request's key, as IDevID must.
	//
	// WARNING: on these profiles a station holding a genuine device can
	// have the CA certify a key of its own as that device's.
	UnconfirmedKeyProfiles []string
	// CommitTimeout bounds an enrollment once its evidence is being
	// verified; from then on it is no longer cancelled by the caller's
	// context, so that a nonce is never spent without the certificate
	// being issued and recorded. If zero, 30 seconds.
	CommitTimeout time.Duration
	// Logger receives one record per refusal (requester, profile, reason)
	// at level Info, and per failure at level Error. If nil, nothing is
	// logged.
	Logger *slog.Logger
	// Time returns the current time. If nil, time.Now.
	Time func() time.Time
}

// Service is the registration authority: the one place that decides an
// enrollment, whether it arrives over EST (package transport/est serves
// it) or in process ([Local]). In order, it checks the requester (its
// station certificate, revocation and authorization for the profile), the
// certificate request (once, through ca.Authority.Check), the channel
// binding, a re-enrollment against the certificate it renews, then the
// device's evidence (verified, nonce consumed, bound to the request's
// device), and has the Authority issue and record. A request repeats an
// earlier one when CSR, profile and requester are the same: it is
// answered with the certificate recorded for it (ca.Authority.Repeat).
// Evidence that passed is remembered for a nonce's lifetime by the
// request it came with, so that a request refused after its nonce was
// spent (a quota, a busy ledger) can be retried as it is. A Service is
// safe for concurrent use.
type Service struct {
	auth          *ca.Authority
	verifier      attest.Verifier
	nonces        *attest.Nonces
	noEvidence    bool
	warning       bool
	binding       BindingFunc
	models        hardwareModels
	keys          keyPolicy
	now           func() time.Time
	commitTimeout time.Duration
	log           *slog.Logger
	issuers       []*x509.Certificate
	inflight      keyLocks
	passed        *passedCache
}

// New returns a Service for cfg. Errors wrap [ErrInvalidConfig].
func New(cfg Config) (*Service, error) {
	if cfg.Authority == nil {
		return nil, fmt.Errorf("%w: no Authority", ErrInvalidConfig)
	}
	if v, ok := cfg.Verifier.(interface{ Nonces() *attest.Nonces }); ok && cfg.Nonces == nil {
		cfg.Nonces = v.Nonces()
	}
	if !cfg.AllowNoEvidence && (cfg.Verifier == nil || cfg.Nonces == nil) {
		return nil, fmt.Errorf("%w: a Verifier and its Nonces (attest.Config.Nonces) are required unless AllowNoEvidence", ErrInvalidConfig)
	}
	if cfg.Verifier != nil && cfg.Nonces == nil {
		return nil, fmt.Errorf("%w: the Verifier consumes no nonces: configure attest.Config.Nonces (or Config.Nonces)", ErrInvalidConfig)
	}
	// Evidence is fresh only if the Verifier spends the nonces the
	// Service hands out; one that says which it spends must say these.
	if v, ok := cfg.Verifier.(interface{ Nonces() *attest.Nonces }); ok && v.Nonces() != cfg.Nonces {
		return nil, fmt.Errorf("%w: the Verifier does not consume the Service's Nonces (evidence could be replayed)", ErrInvalidConfig)
	}
	s := &Service{
		auth: cfg.Authority, verifier: cfg.Verifier, nonces: cfg.Nonces,
		noEvidence: cfg.AllowNoEvidence, warning: cfg.AcceptWarning,
		binding: cfg.Binding, now: cfg.Time, log: cfg.Logger,
		keys: newKeyPolicy(cfg),
	}
	if s.binding == nil {
		s.binding = BindUEIDToHardwareModule
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.commitTimeout = cfg.CommitTimeout; s.commitTimeout <= 0 {
		s.commitTimeout = 30 * time.Second
	}
	ttl := attest.DefaultNonceTTL
	if s.nonces != nil {
		ttl = s.nonces.TTL()
	}
	s.passed = newPassedCache(maxPassed, ttl)
	models, err := newHardwareModels(cfg.HardwareModels)
	if err != nil {
		return nil, err
	}
	s.models = models
	s.issuers = issuersOf(cfg.Authority.Chain())
	return s, nil
}

// Authority returns the Service's Authority.
func (s *Service) Authority() *ca.Authority { return s.auth }

// made returns an error wrapping ErrInvalidConfig for a Service not made by
// New (a zero Service): its methods return it instead of panicking.
func (s *Service) made() error {
	if s == nil || s.auth == nil || s.passed == nil {
		return fmt.Errorf("%w: Service not made by New", ErrInvalidConfig)
	}
	return nil
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

// Issuers returns the CA chain an enrollment answer carries after the
// leaf: the issuing CA and its issuers, without the root.
func (s *Service) Issuers() []*x509.Certificate {
	return append([]*x509.Certificate(nil), s.issuers...)
}

// VerifyStation checks that cert is a station certificate of this CA: it
// chains to the Authority's chain for clientAuth at the current time. A
// transport calls it to authenticate a client. Revocation is decided by
// the ledger, in the transaction that would record an issuance, and by
// [Service.Nonce]. A refusal is a *RefusalError: ReasonUnauthenticated.
func (s *Service) VerifyStation(ctx context.Context, cert *x509.Certificate) error {
	if err := s.made(); err != nil {
		return err
	}
	if err := s.auth.VerifyStation(cert); err != nil {
		return s.refused(ctx, Requester{Certificate: cert}, "", &RefusalError{Reason: ReasonUnauthenticated, Err: err})
	}
	return nil
}

// checkStation is VerifyStation and the ledger's word on the station's
// revocation.
func (s *Service) checkStation(ctx context.Context, cert *x509.Certificate) error {
	err := s.auth.CheckStation(ctx, cert)
	var ae *ca.AuthorizationError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ca.ErrRequesterRevoked):
		return &RefusalError{Reason: ReasonRequesterRevoked, Err: err}
	case errors.As(err, &ae):
		return &RefusalError{Reason: ReasonUnauthenticated, Err: err}
	}
	return err
}

// Nonce returns a fresh nonce for who, after checking who as an
// enrollment would (a station certificate: chain and revocation). Each
// requester has at most the Nonces' MaxPerOwner outstanding. Refusals are
// a *RefusalError: ReasonUnauthenticated, ReasonRequesterRevoked or,
// retryable, ReasonNonceLimit.
func (s *Service) Nonce(ctx context.Context, who Requester) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := s.made(); err != nil {
		return nil, err
	}
	if s.nonces == nil {
		return nil, fmt.Errorf("%w: no Nonces configured", ErrInvalidConfig)
	}
	switch {
	case who.Certificate != nil:
		if err := s.checkStation(ctx, who.Certificate); err != nil {
			return nil, s.refused(ctx, who, "", err)
		}
	case who.Name == "":
		return nil, s.refused(ctx, who, "", refuse(ReasonUnauthenticated, nil, "no requester"))
	}
	n, err := s.nonces.IssueFor(who.id())
	if errors.Is(err, attest.ErrNoncesFull) {
		return nil, s.refused(ctx, who, "", &RefusalError{Reason: ReasonNonceLimit, Err: err})
	}
	return n, err
}

// Options are what a transport adds to a request.
type Options struct {
	// ChannelBinding is the RFC 9266 tls-exporter value of the connection,
	// or nil when the transport has none (in process, TLS 1.2).
	ChannelBinding []byte
	// RequireChannelBinding refuses a request whose challengePassword
	// does not carry ChannelBinding.
	RequireChannelBinding bool
	// Renew is the certificate being renewed (EST simplereenroll), as the
	// TLS client certificate; the requester is then the renewing device.
	Renew *x509.Certificate
}

// Enroll decides req for who and, if every check passes, has the
// Authority issue and record it, and returns the chain: leaf first, then
// [Service.Issuers]. Refusals wrap [ErrRefused] in a [*RefusalError];
// other errors (the ledger failing, a deadline) leave the request
// retryable.
func (s *Service) Enroll(ctx context.Context, who Requester, req *Request, opts Options) ([]*x509.Certificate, error) {
	profile := ""
	if req != nil {
		profile = req.Profile
	}
	chain, err := s.enroll(ctx, who, req, opts)
	if err != nil {
		return nil, s.refused(ctx, who, profile, err)
	}
	return chain, nil
}

func (s *Service) enroll(ctx context.Context, who Requester, req *Request, opts Options) ([]*x509.Certificate, error) {
	if err := s.made(); err != nil {
		return nil, err
	}
	if req == nil || len(req.CSR) == 0 {
		return nil, refuse(ReasonBadRequest, nil, "no certificate request")
	}
	if opts.Renew != nil {
		if err := s.auth.CheckRenewal(ctx, opts.Renew, req.Profile); err != nil {
			return nil, &RefusalError{Reason: ReasonRenewal, Err: err}
		}
		// The renewing device is its own requester: the CA records it by
		// its key; no station authorization is involved.
		h := sha256.Sum256(opts.Renew.RawSubjectPublicKeyInfo)
		who = Requester{Name: "renew:" + hex.EncodeToString(h[:]), Profiles: []string{req.Profile}}
	}
	if err := s.authorize(who, req.Profile); err != nil {
		return nil, err
	}

	// A request repeats an earlier one when CSR, profile and requester are
	// the same; the ledger holds this key with the issuance.
	key := requestKey(req.Profile, req.CSR)
	caReq := &ca.Request{CSR: req.CSR, Profile: req.Profile, IdempotencyKey: key[:], Reprovision: req.Reprovision}
	if who.Certificate != nil {
		caReq.RequesterCertificate = who.Certificate
	} else {
		caReq.Requester = who.Name
	}
	checked, err := s.auth.Check(ctx, caReq)
	if err != nil {
		return nil, fromCA(err)
	}
	csr := checked.CSR()
	if err := checkChannelBinding(csr, opts); err != nil {
		return nil, err
	}
	evidence := req.Evidence
	if len(evidence) == 0 {
		// A plain RFC 7030 client carries the evidence inside the request
		// (draft-ietf-lamps-csr-attestation), signed with it.
		ev, _, err := EvidenceFromCSR(csr.RawTBSCertificateRequest)
		if err != nil {
			return nil, refuse(ReasonBadRequest, err, "malformed evidence attribute")
		}
		evidence = ev
	}
	if opts.Renew != nil {
		if err := checkRenewalNames(csr, opts.Renew); err != nil {
			return nil, err
		}
	}
	unlock := s.inflight.lock(string(key[:]))
	defer unlock()
	// From here the evidence's nonce is consumed: finish even if the
	// caller goes away (a dropped connection, a killed station), so that
	// its retry finds the certificate in the ledger, or its evidence
	// remembered, instead of a spent nonce.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.commitTimeout)
	defer cancel()
	passKey := passedKey(checked.Requester(), key, evidence)
	appr, err := s.checkEvidence(ctx, who, req.Profile, csr, evidence, passKey)
	if err != nil {
		var re *RefusalError
		if errors.As(err, &re) && who.Certificate != nil {
			// A revoked station is told so rather than why its evidence
			// failed. (It gets no nonce; on the success path the ledger
			// refuses it in the transaction that would record.)
			if serr := s.checkStation(ctx, who.Certificate); serr != nil {
				return nil, serr
			}
		}
		if errors.As(err, &re) && re.Reason != ReasonBadRequest {
			// A repeat whose evidence is spent or stale is answered from
			// the ledger when its certificate may be delivered again.
			leaf, rerr := s.auth.Repeat(ctx, key[:], checked.Requester(), req.Profile)
			switch {
			case rerr == nil:
				return s.chainOut(leaf), nil
			case !errors.Is(rerr, ca.ErrUnknownRequest):
				return nil, fromCA(rerr)
			}
		}
		return nil, err
	}
	if err := checked.SetApproval(appr.digest, nil); err != nil {
		return nil, fromCA(err)
	}
	if err := checked.SetKeyProvenance(appr.prov); err != nil {
		return nil, fromCA(err)
	}
	leaf, err := s.auth.IssueChecked(ctx, checked)
	if err != nil {
		return nil, fromCA(err)
	}
	s.passed.forget(passKey)
	return s.chainOut(leaf), nil
}

// requestKey is the idempotency key of an enrollment: SHA-256 over the
// profile and the CSR's DER.
func requestKey(profile string, csr []byte) [sha256.Size]byte {
	h := sha256.New()
	h.Write([]byte("ztm enroll v1\x00"))
	h.Write([]byte(profile))
	h.Write([]byte{0})
	h.Write(csr)
	var k [sha256.Size]byte
	h.Sum(k[:0])
	return k
}

// chainOut returns leaf then the CA chain without its root.
func (s *Service) chainOut(leaf *x509.Certificate) []*x509.Certificate {
	return append([]*x509.Certificate{leaf}, s.issuers...)
}

// authorize checks that who may use profile before anything else is
// looked at.
func (s *Service) authorize(who Requester, profile string) error {
	if _, ok := s.auth.Profile(profile); !ok {
		return refuse(ReasonUnknownProfile, ca.ErrUnknownProfile, "%q", profile)
	}
	if who.Certificate != nil {
		a, err := ca.ParseStationAuthorization(who.Certificate)
		if err != nil {
			return refuse(ReasonNotAuthorized, err, "requester certificate")
		}
		if !a.AllowsProfile(profile) {
			return refuse(ReasonNotAuthorized, ca.ErrNotAuthorized, "station not authorized for profile %q", profile)
		}
		return nil
	}
	if who.Name == "" {
		return refuse(ReasonUnauthenticated, nil, "no requester")
	}
	for _, p := range who.Profiles {
		if p == profile {
			return nil
		}
	}
	return refuse(ReasonNotAuthorized, ca.ErrNotAuthorized, "requester %q not authorized for profile %q", who.Name, profile)
}

// checkEvidence verifies the evidence and its binding to the request (the
// device, then the key) and returns the approval to record: the digest of
// the Result and the key's provenance (ca.ProvenanceUnattested for a
// request without evidence, where AllowNoEvidence lets one through).
// Evidence that passed for the same request before (passKey) within a
// nonce's lifetime passes again without its nonce.
func (s *Service) checkEvidence(ctx context.Context, who Requester, profile string, csr *x509.CertificateRequest, evidence []byte, passKey [sha256.Size]byte) (approval, error) {
	if len(evidence) == 0 {
		if s.noEvidence {
			return approval{prov: ca.ProvenanceUnattested}, nil
		}
		return approval{}, refuse(ReasonEvidenceRequired, nil, "attestation evidence required")
	}
	if s.verifier == nil {
		return approval{}, refuse(ReasonEvidenceRequired, nil, "no verifier configured")
	}
	res, err := s.verifier.Verify(ctx, evidence)
	if err != nil {
		if res == nil && ctx.Err() != nil {
			return approval{}, ctx.Err()
		}
		if errors.Is(err, attest.ErrNonceReused) {
			if a, ok := s.passed.get(passKey, s.now()); ok {
				return a, nil
			}
		}
		return approval{}, fromEvidence(err)
	}
	switch st := res.Status(); {
	case st == attest.StatusAffirming:
	case st == attest.StatusWarning && s.warning:
	default:
		return approval{}, &RefusalError{Reason: ReasonAppraisal, Check: st.String(), Detail: fmt.Sprintf("%v", res.Reasons()), Err: attest.ErrPolicy}
	}
	if err := s.binding(csr, res.Evidence); err != nil {
		return approval{}, refuse(ReasonEvidenceBinding, err, "evidence does not name the request's device")
	}
	if err := s.models.check(csr, res.Evidence); err != nil {
		return approval{}, refuse(ReasonEvidenceBinding, err, "the request names another model than the evidence")
	}
	prov, err := s.keys.checkKey(who, profile, csr, res.Evidence)
	if err != nil {
		return approval{}, err
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
	a := approval{digest: digest, prov: prov}
	s.passed.put(passKey, a, s.now())
	return a, nil
}

// checkChannelBinding compares the request's challengePassword with the
// connection's tls-exporter value (RFC 9266; RFC 7030 §3.5).
func checkChannelBinding(csr *x509.CertificateRequest, opts Options) error {
	pw, ok, err := ChallengePassword(csr.RawTBSCertificateRequest)
	if err != nil {
		return refuse(ReasonBadRequest, err, "malformed challengePassword")
	}
	if !ok {
		if opts.RequireChannelBinding {
			return refuse(ReasonChannelBinding, nil, "channel binding required (tls-exporter in challengePassword)")
		}
		return nil
	}
	if opts.ChannelBinding == nil {
		// In process, or a TLS version without exporter: a password that
		// cannot be checked is refused rather than ignored.
		return refuse(ReasonChannelBinding, nil, "challengePassword present but the connection has no channel binding")
	}
	want := base64.StdEncoding.EncodeToString(opts.ChannelBinding)
	if subtle.ConstantTimeCompare([]byte(pw), []byte(want)) != 1 {
		return refuse(ReasonChannelBinding, nil, "channel binding does not match this TLS connection")
	}
	return nil
}

// refused logs err when it is a refusal (Info) or a failure (Error), and
// returns it.
func (s *Service) refused(ctx context.Context, who Requester, profile string, err error) error {
	if s.log == nil || err == nil {
		return err
	}
	var re *RefusalError
	if errors.As(err, &re) {
		s.log.LogAttrs(ctx, slog.LevelInfo, "enrollment refused",
			slog.String("requester", who.id()), slog.String("profile", profile),
			slog.String("reason", re.Code()), slog.String("error", err.Error()))
	} else {
		s.log.LogAttrs(ctx, slog.LevelError, "enrollment failed",
			slog.String("requester", who.id()), slog.String("profile", profile),
			slog.String("error", err.Error()))
	}
	return err
}
