package ca

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"sync"
	"time"

	"github.com/ztmkit/ztm/identity"
	"github.com/ztmkit/ztm/identity/keystore"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// PolicyFunc decides whether a request that passed the profile checks may
// be issued. csr is the parsed request, its signature verified. Returning
// an error refuses the request; Issue wraps it in a *PolicyError
// ([ErrPolicy]). It must be safe for concurrent use.
type PolicyFunc func(ctx context.Context, req *Request, csr *x509.CertificateRequest) error

// QuotaPolicy limits how many certificates one requester may obtain.
type QuotaPolicy struct {
	// Limit is the number of certificates per Period. Zero means no quota.
	Limit int
	// Period is the sliding window the limit applies to. Zero means the
	// whole life of the ledger.
	Period time.Duration
}

// Config configures an [Authority]. Signer, Chain and Ledger are
// required; the zero value of every other field works.
type Config struct {
	// Signer is the CA's key; a keystore.Key works. Required.
	Signer crypto.Signer
	// Chain is the CA's certificate first, then its issuers up to the root
	// (a root CA's chain is its one certificate). Chain[0] must certify
	// Signer's public key and be a CA allowed to sign certificates and
	// CRLs. Required.
	Chain []*x509.Certificate
	// Ledger records every issuance and revocation. Required.
	Ledger Ledger
	// Profiles the Authority issues under. If nil, DefaultProfiles().
	Profiles []Profile
	// Policy approves each request. If nil, every request that passes the
	// profile checks, the requester checks and the quota is issued.
	//
	// WARNING: without a Policy the CA trusts its callers to have checked
	// the device's evidence.
	Policy PolicyFunc
	// Quota limits certificates per requester, enforced in the ledger
	// transaction. The zero value sets no limit.
	Quota QuotaPolicy
	// CRLDistributionPoint, if set, is the URL put in every certificate's
	// cRLDistributionPoints, where the [Authority.CRLHandler] is served.
	CRLDistributionPoint string
	// CRLValidity is the time from a CRL's thisUpdate to its nextUpdate.
	// If zero, 24 hours. A fresh CRL is made once half of it has passed.
	CRLValidity time.Duration
	// Rand is the source of serial numbers and signatures. If nil,
	// crypto/rand.Reader.
	Rand io.Reader
	// Time returns the current time. If nil, time.Now.
	Time func() time.Time
	// Checkpoints keeps the ledger checkpoints the Authority signs (see
	// [Checkpoint]) outside the ledger. The Authority reads the newest
	// one before its first issuance, revocation or CRL and refuses to
	// work, with a [*CheckpointError], on a ledger that does not extend
	// it. If nil, checkpoints are kept in memory only: a ledger cut while
	// the CA is stopped is then seen only by whoever holds a later
	// checkpoint or CRL.
	Checkpoints CheckpointStore
	// CheckpointInterval is how often [Authority.RunCheckpoints] signs a
	// checkpoint, and how old the one [Authority.CheckpointHandler] serves
	// may get. If zero, one hour. Every new CRL also makes one.
	CheckpointInterval time.Duration
	// Logger receives a record per issuance and revocation (Info), per
	// refused request or revocation (Warn, with the reason and the
	// typed error's check), per failure (Error), per signed checkpoint
	// (Info), and one when the Authority finds its ledger corrupt and
	// stops (Error). Records hold no key, request bytes or secret. If nil,
	// nothing is logged.
	Logger *slog.Logger
}

// Authority is a certificate authority: it issues certificates from
// requests through profiles, records each in its [Ledger] before returning
// it, revokes them and publishes CRLs. It is safe for concurrent use; Issue
// calls from many goroutines share ledger commits. It remembers the last
// few hundred station certificates whose chain verified, while their chain
// is valid, so that a station's requests after the first cost no chain
// verification; revocation and authorization are checked on every request.
type Authority struct {
	signer   crypto.Signer
	sigAlg   x509.SignatureAlgorithm
	chain    []*x509.Certificate
	ledger   Ledger
	profiles map[string]Profile
	policy   PolicyFunc
	quota    QuotaPolicy
	cdp      string
	crlValid time.Duration
	rand     io.Reader
	now      func() time.Time
	stations verifyPools
	verified *verifiedCache

	crlMu sync.Mutex
	crl   *cachedCRL

	checkpoints checkpointState
	log         *slog.Logger // never nil once made by New
}

type verifyPools struct {
	roots, intermediates *x509.CertPool
}

// New returns an Authority for cfg. It checks that Chain[0] certifies
// Signer's key and may sign certificates and CRLs; errors wrap
// ErrInvalidConfig.
func New(cfg Config) (*Authority, error) {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(format, a...))
	}
	if cfg.Signer == nil || len(cfg.Chain) == 0 || cfg.Ledger == nil {
		return nil, bad("Signer, Chain and Ledger are required")
	}
	sigAlg, err := signatureAlgorithm(cfg.Signer.Public())
	if err != nil {
		return nil, bad("%v", err)
	}
	ca := cfg.Chain[0]
	if !ca.IsCA || ca.KeyUsage&x509.KeyUsageCertSign == 0 || ca.KeyUsage&x509.KeyUsageCRLSign == 0 {
		return nil, bad("chain[0] is not a CA certificate with keyCertSign and cRLSign")
	}
	if len(ca.SubjectKeyId) == 0 {
		return nil, bad("chain[0] has no subjectKeyIdentifier")
	}
	if !keystore.PublicKeysEqual(ca.PublicKey, cfg.Signer.Public()) {
		return nil, bad("chain[0] does not certify the signer's public key")
	}
	for i := 1; i < len(cfg.Chain); i++ {
		if err := cfg.Chain[i-1].CheckSignatureFrom(cfg.Chain[i]); err != nil {
			return nil, bad("chain[%d] is not issued by chain[%d]: %v", i-1, i, err)
		}
	}
	if cfg.CRLValidity < 0 {
		return nil, bad("negative CRLValidity")
	}
	if cfg.CheckpointInterval < 0 {
		return nil, bad("negative CheckpointInterval")
	}
	if cfg.Quota.Limit < 0 || cfg.Quota.Period < 0 {
		return nil, bad("negative quota")
	}
	if cfg.CRLDistributionPoint != "" {
		if err := validURI(cfg.CRLDistributionPoint); err != nil {
			return nil, bad("CRLDistributionPoint: %v", err)
		}
	}
	profiles := cfg.Profiles
	if profiles == nil {
		profiles = DefaultProfiles()
	}
	a := &Authority{
		signer:   cfg.Signer,
		sigAlg:   sigAlg,
		chain:    append([]*x509.Certificate(nil), cfg.Chain...),
		ledger:   cfg.Ledger,
		profiles: make(map[string]Profile, len(profiles)),
		policy:   cfg.Policy,
		quota:    cfg.Quota,
		cdp:      cfg.CRLDistributionPoint,
		crlValid: cfg.CRLValidity,
		rand:     cfg.Rand,
		now:      cfg.Time,
		log:      cfg.Logger,
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	if err := checkChainValidity(cfg.Chain, profiles); err != nil {
		return nil, bad("%v", err)
	}
	for _, p := range profiles {
		if err := p.validate(); err != nil {
			return nil, bad("%v", err)
		}
		if _, dup := a.profiles[p.Name]; dup {
			return nil, bad("duplicate profile %q", p.Name)
		}
		p.ExtKeyUsage = append([]x509.ExtKeyUsage(nil), p.ExtKeyUsage...)
		a.profiles[p.Name] = p
	}
	if a.crlValid == 0 {
		a.crlValid = 24 * time.Hour
	}
	if a.rand == nil {
		a.rand = rand.Reader
	}
	if a.now == nil {
		a.now = time.Now
	}
	a.checkpoints.init(cfg.Checkpoints, cfg.CheckpointInterval)
	a.verified = newVerifiedCache(maxVerifiedStations)
	a.stations.roots = x509.NewCertPool()
	a.stations.intermediates = x509.NewCertPool()
	a.stations.roots.AddCert(a.chain[len(a.chain)-1])
	for _, c := range a.chain[:len(a.chain)-1] {
		a.stations.intermediates.AddCert(c)
	}
	return a, nil
}

// Chain returns the CA's certificate chain, its own certificate first.
func (a *Authority) Chain() []*x509.Certificate {
	return append([]*x509.Certificate(nil), a.chain...)
}

// Profile returns the profile with the given name.
func (a *Authority) Profile(name string) (Profile, bool) {
	p, ok := a.profiles[name]
	return p, ok
}

// Ledger returns the Authority's ledger.
func (a *Authority) Ledger() Ledger { return a.ledger }

// maxDigestLen bounds the approval digests a request carries.
const maxDigestLen = 64

// Request asks an [Authority] for a certificate.
type Request struct {
	// CSR is the DER PKCS#10 certificate request. Its signature is
	// verified and its key must be P-256, P-384, Ed25519 or RSA ≥ 3072.
	// Of its contents only the public key and the subject attributes and
	// names the profile allows are used. A request may carry a
	// subjectAltName the profile allows, and a basicConstraints (cA false)
	// and keyUsage (without keyCertSign or cRLSign) that are ignored — the
	// profile fixes both; any other extension, or a request for CA powers,
	// is refused.
	CSR []byte
	// Profile names the profile to issue under.
	Profile string
	// Requester identifies who asks, for the ledger and for quotas, when
	// no RequesterCertificate is given. Exactly one of the two is required.
	Requester string
	// RequesterCertificate is the certificate of the station asking, if the
	// caller authenticated one (e.g. the TLS client certificate). It must
	// chain to this CA's chain, be valid for clientAuth and not revoked,
	// and its StationAuthorization must list Profile. The requester is
	// then "station:" and the hex SHA-256 of the certificate's
	// SubjectPublicKeyInfo, so that a station's quota follows its key
	// across certificate renewals and cannot be claimed by another.
	RequesterCertificate *x509.Certificate
	// EvidenceDigest is the digest of the attestation result that approved
	// the request; StepDigest that of the manifest step. Optional, at most
	// 64 bytes each; recorded in the ledger.
	EvidenceDigest []byte
	StepDigest     []byte
	// Station is the authorization to put in a Station certificate.
	// Required for a Station profile, refused for any other. Its profiles
	// must be profiles of this Authority; when the requester is itself a
	// station, the authorization must be a subset of the requester's.
	Station *StationAuthorization
	// Reprovision, for a profile of kind IDevID, asks for a new IDevID of
	// a device that holds a live one: the old certificate is then revoked
	// (reason superseded) in the same ledger transaction as the new one is
	// recorded. Without it, a second IDevID for a device is refused with a
	// *ProvisionedError (ErrDeviceProvisioned). A device is named by its
	// hardwareModuleName ([DeviceID]).
	Reprovision bool
	// IdempotencyKey, when set (1 to 64 bytes, e.g. the SHA-256 of the
	// CSR), names the request so that retrying it never issues twice: the
	// ledger records the key with the issuance, in the same transaction,
	// and refuses a second issuance under it — across restarts and across
	// Authorities sharing the ledger. Issue then returns the certificate
	// recorded for the key if the requester is the same, and an error
	// wrapping ErrRequestExists if not. A caller that wants to answer a
	// retry before any other work can ask [Ledger.LookupRequest] first.
	IdempotencyKey []byte
	// KeyProvenance is how the request's key came to be, as the caller
	// established it (ca/enroll decides it from the evidence and sets it
	// with [Checked.SetKeyProvenance]); recorded in the ledger with the
	// issuance. ProvenanceInjected is refused (*AuthorizationError)
	// unless the requester is a station whose authorization lists
	// [StepKeyInjection]. If zero, ProvenanceUnrecorded: the record
	// claims nothing.
	KeyProvenance KeyProvenance
}

// StepKeyInjection is the manifest step a station's authorization must
// list for an issuance with ProvenanceInjected: the station made the key
// and sealed it to the device ("key-injection"; ztm.Station records it).
const StepKeyInjection = "key-injection"

// checkProvenance refuses a key provenance the requester may not claim:
// an unknown value, or an injected key from a requester that is not a
// station authorized for key injection (reqAuth nil: no station).
func checkProvenance(p KeyProvenance, reqAuth *StationAuthorization, requester, profile string) error {
	switch {
	case !p.valid():
		return fmt.Errorf("%w: unknown key provenance %d", ErrInvalidRequest, p)
	case p == ProvenanceInjected && (reqAuth == nil || !reqAuth.AllowsStep(StepKeyInjection)):
		return &AuthorizationError{Requester: requester, Profile: profile,
			Reason: "an injected key needs a station authorized for " + StepKeyInjection, Err: ErrNotAuthorized}
	}
	return nil
}

func (a *Authority) requesterID(req *Request) (string, error) {
	if req.RequesterCertificate != nil {
		if req.Requester != "" {
			return "", fmt.Errorf("%w: set Requester or RequesterCertificate, not both", ErrInvalidRequest)
		}
		sum := sha256.Sum256(req.RequesterCertificate.RawSubjectPublicKeyInfo)
		return "station:" + hex.EncodeToString(sum[:]), nil
	}
	if req.Requester == "" || len(req.Requester) > 256 {
		return "", fmt.Errorf("%w: Requester must be 1 to 256 bytes", ErrInvalidRequest)
	}
	return req.Requester, nil
}

// checkRequester verifies a station certificate and its authorization. It
// returns the certificate's serial number when this CA issued it: the
// ledger then refuses the issuance, in the transaction that would record
// it, if that certificate is revoked or unknown (see
// [Record.RequesterSerial]), so that a revocation recorded before takes
// effect even for a request already being served.
func (a *Authority) checkRequester(req *Request, requester string, now time.Time) (*StationAuthorization, *big.Int, error) {
	cert := req.RequesterCertificate
	if cert == nil {
		return nil, nil, nil
	}
	deny := func(reason string, err error) error {
		return &AuthorizationError{Requester: requester, Profile: req.Profile, Reason: reason, Err: err}
	}
	serial, err := a.verifyStation(cert, now)
	if err != nil {
		return nil, nil, deny("station certificate does not verify", err)
	}
	auth, err := ParseStationAuthorization(cert)
	if err != nil {
		return nil, nil, deny("no valid station authorization", err)
	}
	if !auth.AllowsProfile(req.Profile) {
		return nil, nil, deny("profile not in the station's authorization", nil)
	}
	return auth, serial, nil
}

// made returns an error wrapping ErrInvalidConfig for an Authority not
// made by New (a zero Authority): its methods return it instead of
// panicking.
func (a *Authority) made() error {
	if a == nil || a.signer == nil || a.ledger == nil || len(a.chain) == 0 {
		return fmt.Errorf("%w: Authority not made by New", ErrInvalidConfig)
	}
	return nil
}

// Issue checks req and, if everything passes, issues a certificate,
// records it durably in the ledger and returns it: it is [Authority.Check]
// then [Authority.IssueChecked]. Refusals, which leave no certificate and
// no record: ErrInvalidRequest, ErrUnknownProfile, *identity.CSRError (identity.ErrInvalidCSR),
// *AuthorizationError (ErrNotAuthorized), *PolicyError (ErrPolicy),
// ErrQuotaExceeded, ErrRequestExists for an IdempotencyKey already issued
// to another requester or under another profile, and ErrRepeatRevoked for
// one whose certificate has been revoked since. A request whose
// IdempotencyKey is already recorded for the same requester and profile
// returns the recorded certificate, after the same checks. A ledger
// failure is returned as is; the certificate is then not returned.
func (a *Authority) Issue(ctx context.Context, req *Request) (*x509.Certificate, error) {
	c, err := a.Check(ctx, req)
	if err != nil {
		return nil, err
	}
	return a.IssueChecked(ctx, c)
}

// Checked is a request an [Authority] has checked with [Authority.Check]:
// its certificate request parsed once, its key and signature verified,
// its contents checked against the profile and the CA's name constraints,
// and its requester verified and authorized. [Authority.IssueChecked]
// issues it without parsing or verifying any of it again. A Checked is
// not safe for concurrent use; it may be issued once.
type Checked struct {
	req             Request
	profile         Profile
	csr             *checkedCSR
	requester       string
	requesterSerial *big.Int
	requesterAuth   *StationAuthorization
	authExt         []byte
	time            time.Time
}

// CSR returns the parsed certificate request, its signature verified. The
// caller must not modify it.
func (c *Checked) CSR() *x509.CertificateRequest { return c.csr.csr }

// Requester returns the requester as the ledger records it: the Request's
// Requester, or "station:" and the hex SHA-256 of the station
// certificate's key.
func (c *Checked) Requester() string { return c.requester }

// Profile returns the profile the request is for.
func (c *Checked) Profile() Profile { return c.profile }

// SetApproval sets the digests of the attestation result and manifest
// step that approved the request (see [Request.EvidenceDigest]), once
// they are known: after the request was checked and before it is issued.
// Each is at most 64 bytes; it returns an error wrapping
// ErrInvalidRequest otherwise.
func (c *Checked) SetApproval(evidenceDigest, stepDigest []byte) error {
	if len(evidenceDigest) > maxDigestLen || len(stepDigest) > maxDigestLen {
		return fmt.Errorf("%w: digest longer than %d bytes", ErrInvalidRequest, maxDigestLen)
	}
	c.req.EvidenceDigest = bytes.Clone(evidenceDigest)
	c.req.StepDigest = bytes.Clone(stepDigest)
	return nil
}

// SetKeyProvenance sets how the request's key came to be (see
// [Request.KeyProvenance]), once it is known: after the request was
// checked and before it is issued. It returns an error wrapping
// ErrInvalidRequest for an unknown value, and an *AuthorizationError
// (ErrNotAuthorized) for ProvenanceInjected when the requester is not a
// station whose authorization lists [StepKeyInjection]; c is then
// unchanged.
func (c *Checked) SetKeyProvenance(p KeyProvenance) error {
	if err := checkProvenance(p, c.requesterAuth, c.requester, c.req.Profile); err != nil {
		return err
	}
	c.req.KeyProvenance = p
	return nil
}

// Check makes every check of req that needs no ledger write: the profile,
// the certificate request (parsed once: key, signature, contents, name
// constraints) and the requester (its certificate's chain and station
// authorization). It returns the same refusals as [Authority.Issue] for
// those checks. The revocation of the requester, idempotency, the quota
// and the Policy are decided by [Authority.IssueChecked].
func (a *Authority) Check(ctx context.Context, req *Request) (*Checked, error) {
	c, err := a.check(ctx, req)
	if err != nil {
		a.logRequest(ctx, req, nil, err)
	}
	return c, err
}

func (a *Authority) check(ctx context.Context, req *Request) (*Checked, error) {
	if req == nil {
		return nil, fmt.Errorf("%w: nil request", ErrInvalidRequest)
	}
	if err := a.usable(ctx); err != nil {
		return nil, err
	}
	p, ok := a.profiles[req.Profile]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownProfile, req.Profile)
	}
	requester, err := a.requesterID(req)
	if err != nil {
		return nil, err
	}
	if len(req.EvidenceDigest) > maxDigestLen || len(req.StepDigest) > maxDigestLen {
		return nil, fmt.Errorf("%w: digest longer than %d bytes", ErrInvalidRequest, maxDigestLen)
	}
	if len(req.IdempotencyKey) > MaxIdempotencyKey {
		return nil, fmt.Errorf("%w: idempotency key longer than %d bytes", ErrInvalidRequest, MaxIdempotencyKey)
	}
	authExt, err := a.stationExtension(&p, req)
	if err != nil {
		return nil, err
	}
	checked, err := checkCSR(req.CSR, &p)
	if err != nil {
		return nil, err
	}
	if err := checkNameConstraints(a.chain, &checked.san); err != nil {
		return nil, err
	}
	now := a.now()
	reqAuth, requesterSerial, err := a.checkRequester(req, requester, now)
	if err != nil {
		return nil, err
	}
	if err := checkGrant(reqAuth, req, requester); err != nil {
		return nil, err
	}
	if err := checkProvenance(req.KeyProvenance, reqAuth, requester, req.Profile); err != nil {
		return nil, err
	}
	c := &Checked{
		req: *req, profile: p, csr: checked, requester: requester,
		requesterSerial: requesterSerial, requesterAuth: reqAuth, authExt: authExt, time: now,
	}
	c.req.CSR = bytes.Clone(req.CSR)
	c.req.IdempotencyKey = bytes.Clone(req.IdempotencyKey)
	c.req.EvidenceDigest = bytes.Clone(req.EvidenceDigest)
	c.req.StepDigest = bytes.Clone(req.StepDigest)
	return c, nil
}

// stationExtension returns the encoded StationAuthorization a Station
// profile's certificate carries, and refuses one for any other profile.
func (a *Authority) stationExtension(p *Profile, req *Request) ([]byte, error) {
	if p.Kind != Station {
		if req.Station != nil {
			return nil, fmt.Errorf("%w: Request.Station set for a %s profile", ErrInvalidRequest, p.Kind)
		}
		return nil, nil
	}
	if req.Station == nil {
		return nil, fmt.Errorf("%w: Station profile needs Request.Station", ErrInvalidRequest)
	}
	for _, name := range req.Station.Profiles {
		if _, ok := a.profiles[name]; !ok {
			return nil, fmt.Errorf("%w: station authorization names unknown profile %q", ErrInvalidRequest, name)
		}
	}
	return req.Station.Marshal()
}

// checkGrant refuses a station authorization that a station requester
// would grant beyond its own.
func checkGrant(reqAuth *StationAuthorization, req *Request, requester string) error {
	if reqAuth == nil || req.Station == nil {
		return nil
	}
	for _, s := range req.Station.Steps {
		if !reqAuth.AllowsStep(s) {
			return &AuthorizationError{Requester: requester, Profile: req.Profile, Reason: "cannot grant step " + s + " it does not hold"}
		}
	}
	for _, s := range req.Station.Profiles {
		if !reqAuth.AllowsProfile(s) {
			return &AuthorizationError{Requester: requester, Profile: req.Profile, Reason: "cannot grant profile " + s + " it does not hold"}
		}
	}
	return nil
}

// IssueChecked issues a request [Authority.Check] accepted: it applies the
// Policy, signs, and records the certificate in the ledger, which decides
// in its transaction the requester's revocation, the idempotency key and
// the quota. Its refusals are those of [Authority.Issue]. c must come from
// this Authority's Check.
//
// The certificate returned is made from what the Authority signed, not
// parsed again from its DER: it equals x509.ParseCertificate(cert.Raw),
// and shares its Issuer with the Authority's certificate and its PublicKey
// with the request. The caller must not modify it.
func (a *Authority) IssueChecked(ctx context.Context, c *Checked) (*x509.Certificate, error) {
	if c == nil || c.csr == nil {
		err := fmt.Errorf("%w: request not checked", ErrInvalidRequest)
		a.logRequest(ctx, nil, nil, err)
		return nil, err
	}
	cert, err := a.issueChecked(ctx, c)
	a.logRequest(ctx, &c.req, cert, err)
	return cert, err
}

func (a *Authority) issueChecked(ctx context.Context, c *Checked) (*x509.Certificate, error) {
	if err := a.usable(ctx); err != nil {
		return nil, err
	}
	req, p := &c.req, &c.profile
	if a.policy != nil {
		if err := a.policy(ctx, req, c.csr.csr); err != nil {
			return nil, &PolicyError{Profile: req.Profile, Err: err}
		}
	}
	now := c.time
	tmpl, err := a.template(p, c.csr, c.authExt, now)
	if err != nil {
		return nil, err
	}
	var quota *Quota
	if a.quota.Limit > 0 {
		quota = &Quota{Limit: a.quota.Limit}
		if a.quota.Period > 0 {
			quota.Since = now.Add(-a.quota.Period)
		}
	}
	pkHash := sha256.Sum256(c.csr.csr.RawSubjectPublicKeyInfo)
	// An IDevID names its device: the certificate carries the request's
	// one hardwareModuleName, so its DeviceID is known before signing.
	var device []byte
	if p.Kind == IDevID {
		if device, err = deviceID(c.csr.san.HardwareModules); err != nil {
			return nil, &identity.CSRError{Reason: identity.CSRUnexpectedExtension, Err: err}
		}
	}
	const attempts = 4
	var supersedes *big.Int
	for i := 0; ; i++ {
		serial, err := a.serial(now)
		if err != nil {
			return nil, err
		}
		tmpl.SerialNumber = serial
		der, err := x509.CreateCertificate(a.rand, tmpl, a.chain[0], c.csr.csr.PublicKey, a.signer)
		if err != nil {
			return nil, fmt.Errorf("ca: failed to sign certificate: %w", err)
		}
		cert, err := issuedCertificate(der, tmpl, a.chain[0], c.csr)
		if err != nil {
			return nil, fmt.Errorf("ca: issued certificate does not parse: %w", err)
		}
		rec := &Record{
			Kind:            KindIssuance,
			Serial:          serial,
			Subject:         cert.Subject.String(),
			PublicKeyHash:   pkHash[:],
			Profile:         p.Name,
			Requester:       c.requester,
			EvidenceDigest:  req.EvidenceDigest,
			StepDigest:      req.StepDigest,
			IdempotencyKey:  req.IdempotencyKey,
			RequesterSerial: c.requesterSerial,
			KeyProvenance:   req.KeyProvenance,
			Time:            now.UTC(),
			Certificate:     der,
		}
		if device != nil {
			rec.Device, rec.Supersedes = device, supersedes
		}
		err = a.ledger.Append(ctx, rec, quota)
		if err == nil {
			return cert, nil
		}
		if errors.Is(err, ErrSerialExists) && i+1 < attempts {
			continue
		}
		if errors.Is(err, ErrDeviceProvisioned) {
			// The device holds a live IDevID (another than the one
			// superseded, if a concurrent issuance came first).
			st, lerr := a.ledger.LookupDevice(ctx, rec.Device)
			switch {
			case errors.Is(lerr, ErrUnknownDevice) && i+1 < attempts:
				supersedes = nil
				continue
			case lerr != nil:
				return nil, &ProvisionedError{Device: rec.Device}
			case req.Reprovision && i+1 < attempts:
				supersedes = st.Issuance.Serial
				continue
			}
			return nil, &ProvisionedError{Device: rec.Device, Serial: st.Issuance.Serial}
		}
		if errors.Is(err, ErrRequestExists) {
			// Issued already, by a concurrent or earlier call: the
			// certificate just signed is not recorded and never leaves.
			return a.Repeat(ctx, req.IdempotencyKey, c.requester, p.Name)
		}
		return nil, a.appendRefused(c, err)
	}
}

// appendRefused turns the ledger's refusal of an issuance into Issue's
// error.
func (a *Authority) appendRefused(c *Checked, err error) error {
	deny := func(reason string) error {
		return &AuthorizationError{Requester: c.requester, Profile: c.req.Profile, Reason: reason, Err: err}
	}
	switch {
	case errors.Is(err, ErrRequesterRevoked):
		return deny("station certificate revoked")
	case errors.Is(err, ErrRequesterUnknown):
		return deny("station certificate not in this CA's ledger")
	case errors.Is(err, ErrQuotaExceeded):
		return fmt.Errorf("%w: requester %q", ErrQuotaExceeded, c.requester)
	}
	return fmt.Errorf("ca: failed to record certificate: %w", err)
}

// Repeat answers a repeated request: it returns the certificate the
// ledger records for the idempotency key when the repeat may have it,
// which is when it comes from the same requester under the same profile,
// the certificate is not revoked, and the requesting station's
// certificate (Record.RequesterSerial) is not revoked either. This is the
// one repeat rule of the CA; [Authority.Issue] applies it to a key the
// ledger already holds. Errors: ErrUnknownRequest when no issuance carries
// key; ErrRequestExists when it was issued to another requester or under
// another profile (a different request that happens to share the key);
// ErrRepeatRevoked when its certificate is revoked; an
// *AuthorizationError wrapping ErrRequesterRevoked when the station is.
func (a *Authority) Repeat(ctx context.Context, key []byte, requester, profile string) (*x509.Certificate, error) {
	if err := a.made(); err != nil {
		return nil, err
	}
	if len(key) == 0 {
		return nil, fmt.Errorf("%w: empty idempotency key", ErrUnknownRequest)
	}
	st, err := a.ledger.LookupRequest(ctx, key)
	if err != nil {
		return nil, err
	}
	rec := st.Issuance
	switch {
	case rec.Requester != requester:
		return nil, fmt.Errorf("%w: idempotency key %x was issued to another requester", ErrRequestExists, key)
	case rec.Profile != profile:
		return nil, fmt.Errorf("%w: idempotency key %x was issued under profile %q, not %q", ErrRequestExists, key, rec.Profile, profile)
	case st.Revocation != nil:
		return nil, fmt.Errorf("%w: certificate %x was revoked at %s (%v)", ErrRepeatRevoked,
			rec.Serial, st.Revocation.Time.UTC().Format(time.RFC3339), st.Revocation.Reason)
	}
	if rs := rec.RequesterSerial; rs != nil {
		station, err := a.ledger.Lookup(ctx, rs)
		if err != nil && !errors.Is(err, ErrUnknownSerial) {
			return nil, err
		}
		if err != nil || station.Revocation != nil {
			return nil, &AuthorizationError{Requester: requester, Profile: profile, Reason: "station certificate revoked", Err: ErrRequesterRevoked}
		}
	}
	cert, err := x509.ParseCertificate(rec.Certificate)
	if err != nil {
		return nil, fmt.Errorf("ca: recorded certificate does not parse: %w", err)
	}
	return cert, nil
}

// serialTimeBits is how many bits of the issuance time, in milliseconds,
// a serial number carries above its random bits.
const serialTimeBits = 31

// serial returns a positive serial number for a certificate issued at
// now: the time in milliseconds, modulo 2^31 (about 24.8 days), above 128
// random bits. That is at most 159 bits, 20 DER octets: RFC 5280
// §4.1.2.2's limit. The random bits make a serial unpredictable (the
// CA/Browser Forum asks for 64) and, with the ledger's unique index,
// unique; the time bits keep the serials of concurrent issuances next to
// each other in that index, so a commit that records many writes a few
// of its pages rather than one page per certificate (on the SQLite ledger:
// 45% fewer WAL writes per issuance, each commit's fsync half as long).
func (a *Authority) serial(now time.Time) (*big.Int, error) {
	ms := uint64(now.UnixMilli()) & (1<<serialTimeBits - 1)
	var b [16]byte
	for {
		if _, err := io.ReadFull(a.rand, b[:]); err != nil {
			return nil, fmt.Errorf("ca: failed to read random serial: %w", err)
		}
		s := new(big.Int).SetUint64(ms)
		s.Lsh(s, 128)
		s.Or(s, new(big.Int).SetBytes(b[:]))
		if s.Sign() > 0 {
			return s, nil
		}
	}
}

func (a *Authority) template(p *Profile, c *checkedCSR, authExt []byte, now time.Time) (*x509.Certificate, error) {
	notBefore := now.UTC().Truncate(time.Second)
	eku, unknownEKU := p.extKeyUsage()
	ski, err := subjectKeyID(c.csr.RawSubjectPublicKeyInfo)
	if err != nil {
		return nil, &identity.CSRError{Reason: identity.CSRMalformed, Err: err}
	}
	notAfter := p.notAfter(notBefore)
	if !notAfter.Equal(noWellDefinedExpiration) && notAfter.After(a.chain[0].NotAfter) {
		// A certificate with an end of validity does not outlive its issuer.
		notAfter = a.chain[0].NotAfter
	}
	tmpl := &x509.Certificate{
		Subject:               c.subject,
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           eku,
		UnknownExtKeyUsage:    unknownEKU,
		BasicConstraintsValid: true,
		SubjectKeyId:          ski,
		SignatureAlgorithm:    a.sigAlg,
	}
	if !c.san.empty() {
		v, err := c.san.marshal()
		if err != nil {
			return nil, &identity.CSRError{Reason: identity.CSRUnexpectedExtension, Err: err}
		}
		tmpl.ExtraExtensions = append(tmpl.ExtraExtensions, pkix.Extension{Id: oidSubjectAltName, Value: v})
	}
	if authExt != nil {
		tmpl.ExtraExtensions = append(tmpl.ExtraExtensions, pkix.Extension{Id: oidStationAuthorization, Value: authExt})
	}
	if a.cdp != "" {
		tmpl.CRLDistributionPoints = []string{a.cdp}
	}
	return tmpl, nil
}

// subjectKeyID is RFC 7093 §2 method 1: the leftmost 160 bits of the
// SHA-256 hash of the subjectPublicKey BIT STRING value.
func subjectKeyID(spki []byte) ([]byte, error) {
	in := cryptobyte.String(spki)
	var seq, algo cryptobyte.String
	var bits asn1.BitString
	if !in.ReadASN1(&seq, cbasn1.SEQUENCE) || !seq.ReadASN1(&algo, cbasn1.SEQUENCE) ||
		!seq.ReadASN1BitString(&bits) {
		return nil, errors.New("malformed SubjectPublicKeyInfo")
	}
	sum := sha256.Sum256(bits.Bytes)
	return sum[:20], nil
}

// signatureAlgorithm picks the certificate signature algorithm for a CA
// key: the one keystore.Algorithm it signs with.
func signatureAlgorithm(pub crypto.PublicKey) (x509.SignatureAlgorithm, error) {
	alg, err := keystore.AlgorithmOf(pub)
	if err != nil {
		return 0, err
	}
	switch alg {
	case keystore.ES256:
		return x509.ECDSAWithSHA256, nil
	case keystore.ES384:
		return x509.ECDSAWithSHA384, nil
	case keystore.EdDSA:
		return x509.PureEd25519, nil
	case keystore.PS256:
		return x509.SHA256WithRSAPSS, nil
	}
	return 0, fmt.Errorf("unsupported CA key algorithm %v", alg)
}
