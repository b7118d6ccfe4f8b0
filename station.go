package ztm

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/subtle"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"reflect"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/ztmkit/ztm/attest"
	"github.com/ztmkit/ztm/ca"
	"github.com/ztmkit/ztm/ca/enroll"
	"github.com/ztmkit/ztm/identity"
	"github.com/ztmkit/ztm/identity/keyseal"
	"github.com/ztmkit/ztm/identity/keystore"
	"github.com/ztmkit/ztm/manifest"
)

// Step names the station writes. Provision writes StepKeyGeneration (or
// StepKeyInjection and StepKeyDestroyed) and StepEnrollment; a failed
// install after issuance writes StepInstallFailed; Decommission writes
// StepKeyDestroyed (when the device destroyed its key) and
// StepDecommissioned.
const (
	// StepKeyGeneration: the device generated its identity key. Artifact
	// "csr" is the digest of its request; predicate "alg" the algorithm and
	// "key" the KeyThumbprint value of the public key.
	StepKeyGeneration = manifest.StepKeyGeneration
	// StepKeyInjection: the station generated a key and handed it to the
	// device sealed to its attestation key. Artifact "sealed-key" is the
	// digest of the sealed blob; predicate "alg" the algorithm, "hpke" the
	// suite [kem, kdf, aead] and "key" the thumbprint (the key itself is in
	// the certificate the enrollment step names).
	StepKeyInjection = enroll.InjectionStep
	// StepKeyDestroyed: a copy of a key was destroyed: the station's copy
	// of an injected key (predicate "holder" "station"), or the device's
	// key at end of life ("holder" "device").
	StepKeyDestroyed = manifest.StepKeyDestroyed
	// StepEnrollment: the CA issued the device's certificate and the
	// device installed it. Artifacts "ear" (the station's signed
	// attestation result) and "certificate" are digests of those exact
	// bytes; predicate "profile", "serial" (the certificate serial
	// number, big-endian bytes) and "key-origin", the key's provenance by
	// the name the CA's ledger records it under (ca.KeyProvenance:
	// "eat-cnf" or "tpm-certified" when the device generated it and its
	// evidence confirms it, "injected" when this station injected it,
	// "unattested" otherwise). The step names nothing that what it names
	// already holds, to stay under 400 bytes: the EAR carries the evidence
	// digest and the appraisal status, the certificate the key the request
	// asked for (and the key-generation step names the request).
	StepEnrollment = "enrollment"
	// StepInstallFailed: a certificate was issued but the device did not
	// install it. Artifact "certificate"; predicate "serial", "error" (the
	// first 40 bytes of the error) and "revoked" (whether the station
	// revoked the certificate).
	StepInstallFailed = "install-failed"
	// StepReprovisioned: the device was provisioned again
	// (Station.Reprovision) and the CA revoked its previous IDevID, reason
	// superseded, as it issued the new one. Predicate "superseded": the
	// previous certificate's serial number (big-endian bytes), as the
	// device's last enrollment step named it.
	StepReprovisioned = "reprovisioned"
	// StepDecommissioned: the device reached end of life. Predicate
	// "serial", "reason" (the RFC 5280 reason code) and "key-destroyed".
	StepDecommissioned = "decommissioned"
)

// StepStore keeps every device's signed steps, in order, by subject (the
// device's UEID bytes). *chainstore.Store (package manifest/chainstore,
// durable in SQLite) is one; a line's own database can be another;
// *memchain.Store (package manifest/memchain) keeps the steps in memory,
// for tests and examples. It must be safe for concurrent use.
type StepStore interface {
	// Last returns the subject's last stored step, or an error wrapping
	// manifest.ErrNoSteps when none is stored.
	Last(ctx context.Context, subject []byte) (*manifest.SignedStep, error)
	// Chain returns the subject's stored steps in order, or an error
	// wrapping manifest.ErrNoSteps when none is stored.
	Chain(ctx context.Context, subject []byte) (manifest.Chain, error)
	// AppendAll stores signed steps (their exact bytes) together, in
	// order, or none of them: each must follow the subject's last stored
	// step (sequence number and previous-step digest). It returns them
	// parsed.
	AppendAll(ctx context.Context, raws ...[]byte) ([]*manifest.SignedStep, error)
}

// consumesNonces reports whether a verifier spends nonces itself.
func consumesNonces(v attest.Verifier) bool {
	n, ok := v.(interface{ Nonces() *attest.Nonces })
	return ok && n.Nonces() != nil
}

// Revoker revokes certificates; *ca.Authority is one.
type Revoker interface {
	// Revoke records the revocation of the certificate with the given
	// serial number. It returns an error wrapping ca.ErrAlreadyRevoked for
	// a certificate already revoked.
	Revoke(ctx context.Context, serial *big.Int, reason ca.RevocationReason, requester string) error
	// IssuedCertificate returns the certificate issued with serial, so
	// that Decommission revokes only a certificate of the device at hand
	// (the chain store it reads the serial from checks no signature). It
	// returns an error wrapping ca.ErrUnknownSerial for a serial never
	// issued.
	IssuedCertificate(ctx context.Context, serial *big.Int) (*x509.Certificate, error)
}

var _ Revoker = (*ca.Authority)(nil)

// StationConfig configures a Station. Name, Key, CertChain, Enroller,
// Verifier and StepStore are required; the zero value of every other field
// works.
type StationConfig struct {
	// Name names the station in its steps (the CWT iss claim), e.g.
	// "cm-line2". Required.
	Name string
	// Key is the station's signing key, normally a keystore.Key in an HSM
	// or TPM. It signs the station's steps and attestation results.
	// Required.
	Key crypto.Signer
	// CertChain is the station's certificate chain, leaf first, as the CA
	// issued it (profile "station"); the leaf certifies Key. The station
	// signs only the steps its StationAuthorization lists, so that it
	// refuses before enrolling a device what it could not record, and its
	// attestation results carry the chain. Required.
	CertChain []*x509.Certificate
	// Enroller enrolls devices with the CA: in process (enroll.Local) or
	// over EST (est.Client). Required.
	Enroller enroll.Enroller
	// Verifier appraises evidence locally before anything is enrolled: an
	// *attest.EATVerifier, or attest/tpm's quote verifier. The nonce
	// belongs to the CA side, which consumes it; the station checks that
	// the evidence answers the nonce it asked for. So an EATVerifier that
	// consumes nonces (the CA's own, in a jig that runs its CA in process)
	// is used through its WithoutNonces view, and one verifier configured
	// once serves both. Any other Verifier must not consume nonces (for
	// attest/tpm's, pass its WithoutNonces view); NewStation refuses one
	// whose Nonces method says it does. Required.
	Verifier attest.Verifier
	// AttestationKeys are the devices' attestation keys by key ID. Keys
	// injected into a device are sealed to the key that verified its
	// evidence (attest.Evidence.PublicKey: the registered key its kid names,
	// or its x5chain's leaf); an entry here must be that same key, or the
	// injection is refused. Optional.
	AttestationKeys map[string]crypto.PublicKey
	// StepStore stores every device's steps: a *chainstore.Store (package
	// manifest/chainstore), or any StepStore. Required.
	StepStore StepStore
	// Store holds the keys the station makes for injection. If nil, the
	// station cannot inject keys.
	Store keystore.Store
	// Exporter exports keys of Store for sealing. If nil, keys of the
	// software stores (mem, file) are exported and others refused.
	Exporter KeyExporter
	// Revoker revokes the certificate of a device that failed to install
	// it, and of a decommissioned device. If nil, Decommission fails and a
	// failed install is only recorded.
	Revoker Revoker
	// Profile is the CA profile devices enroll under. If empty, "idevid".
	Profile string
	// Algorithm is the algorithm of device keys. The zero value is ES256.
	Algorithm keystore.Algorithm
	// AcceptWarning accepts evidence whose appraisal is "warning" (a
	// component without reference values). By default only "affirming"
	// evidence is enrolled.
	AcceptWarning bool
	// Lot, if set, is the lot named in every step the station writes.
	Lot string
	// Rand is the randomness for signatures. If nil, crypto/rand.Reader.
	Rand io.Reader
	// Time returns the current time, for steps and stage durations. If
	// nil, time.Now.
	Time func() time.Time
	// Observer, if set, receives the stages of every Provision and
	// Reprovision with their durations and outcomes (metrics, tracing).
	Observer Observer
	// Logger, if set, receives one record per Provision and Reprovision:
	// Info for a provisioned device, Warn for a refused one (with its
	// stage and, for a CA refusal, its enroll reason), Error for a
	// failure. If nil, nothing is logged.
	Logger *slog.Logger
}

// Station is an authorized provisioning station: it runs Provision for the
// devices on its jig and records what it did in the chain store. It is
// safe for concurrent use, for different devices.
type Station struct {
	cfg    StationConfig
	signer *manifest.StepSigner
	auth   *ca.StationAuthorization
	export KeyExporter
	// mu serializes chain appends per subject.
	mu    sync.Mutex
	locks map[string]*subjectLock
}

type subjectLock struct {
	mu   sync.Mutex
	refs int
}

// NewStation returns a station for cfg, which it copies. A configuration
// it cannot use is a *ConfigError naming the field; it wraps
// ErrInvalidConfig.
func NewStation(cfg StationConfig) (*Station, error) {
	bad := func(field, format string, a ...any) (*Station, error) {
		return nil, &ConfigError{Field: field, Reason: fmt.Sprintf(format, a...)}
	}
	if f := nilField(cfg); f != "" {
		return bad(f, "a nil pointer in a non-nil interface")
	}
	if v, ok := cfg.Verifier.(*attest.EATVerifier); ok && v.Nonces() != nil {
		cfg.Verifier = v.WithoutNonces() // the CA's verifier: the CA consumes the nonce
	}
	switch {
	case cfg.Name == "":
		return bad("Name", "required: the station's name in its steps")
	case cfg.Key == nil:
		return bad("Key", "required: the station's signing key")
	case len(cfg.CertChain) == 0:
		return bad("CertChain", "required: the station's certificate chain, leaf first, as the CA issued it (profile \"station\"); it lists the steps the station may sign")
	case cfg.Enroller == nil:
		return bad("Enroller", "required: enroll.Local or an est.Client")
	case cfg.Verifier == nil:
		return bad("Verifier", "required: the station appraises evidence before enrolling")
	case consumesNonces(cfg.Verifier):
		return bad("Verifier", "must not consume nonces: the CA side consumes them")
	case cfg.StepStore == nil:
		return bad("StepStore", "required: a *chainstore.Store or any StepStore")
	case !cfg.Algorithm.Valid():
		return bad("Algorithm", "unknown device key algorithm %d", int(cfg.Algorithm))
	}
	leaf := cfg.CertChain[0]
	if leaf == nil || !keystore.PublicKeysEqual(leaf.PublicKey, cfg.Key.Public()) {
		return bad("CertChain", "its leaf, CertChain[0], does not certify Key")
	}
	auth, err := ca.ParseStationAuthorization(leaf)
	if err != nil {
		return bad("CertChain", "station certificate: %v", err)
	}
	if cfg.Profile == "" {
		cfg.Profile = "idevid"
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	if cfg.Time == nil {
		cfg.Time = time.Now
	}
	s := &Station{cfg: cfg, auth: auth, export: cfg.Exporter, locks: make(map[string]*subjectLock)}
	if s.export == nil {
		s.export = softwareExporter{}
	}
	signer, err := manifest.NewStepSigner(cfg.Key, manifest.SignOptions{Issuer: cfg.Name})
	if err != nil {
		return bad("Key", "%v", err)
	}
	s.signer = signer
	return s, nil
}

// nilField names the first interface field of cfg that holds a nil
// pointer (a typed nil, such as a (*chainstore.Store)(nil) StepStore): set,
// so not caught as missing, and bound to panic at first use.
func nilField(cfg StationConfig) string {
	for _, f := range []struct {
		name string
		v    any
	}{{"Key", cfg.Key}, {"Enroller", cfg.Enroller}, {"Verifier", cfg.Verifier}, {"StepStore", cfg.StepStore},
		{"Store", cfg.Store}, {"Exporter", cfg.Exporter}, {"Revoker", cfg.Revoker}, {"Observer", cfg.Observer}} {
		if f.v == nil {
			continue
		}
		if v := reflect.ValueOf(f.v); v.Kind() == reflect.Pointer && v.IsNil() {
			return f.name
		}
	}
	return ""
}

// Name returns the station's name.
func (s *Station) Name() string { return s.cfg.Name }

// Thumbprint returns the KeyThumbprint of the station's key: the kid of its
// steps, and how a manifest.Policy names it.
func (s *Station) Thumbprint() manifest.Digest {
	if s.made() != nil {
		return manifest.Digest{}
	}
	return s.signer.Thumbprint()
}

// Public returns the station's public key.
func (s *Station) Public() crypto.PublicKey {
	if s.made() != nil {
		return nil
	}
	return s.cfg.Key.Public()
}

// made returns an error wrapping ErrInvalidConfig for a Station not made by
// NewStation (a zero Station): its methods return it instead of panicking.
func (s *Station) made() error {
	if s == nil || s.signer == nil || s.locks == nil {
		return fmt.Errorf("%w: Station not made by NewStation", ErrInvalidConfig)
	}
	return nil
}

// usable checks the station and the device it is asked to work on.
func (s *Station) usable(dev Device) error {
	if err := s.made(); err != nil {
		return err
	}
	if dev == nil {
		return fmt.Errorf("%w: nil Device", ErrInvalidConfig)
	}
	return nil
}

// Result is what Provision did for one device.
type Result struct {
	// Device is what the device said about itself.
	Device identity.DeviceInfo
	// CertChain is the certificate chain the device installed, leaf
	// first.
	CertChain []*x509.Certificate
	// Attestation is the station's appraisal of the device's evidence.
	Attestation *attest.Result
	// AttestationToken is that appraisal signed by the station as an EAR
	// CWT; the enrollment step names its digest.
	AttestationToken []byte
	// Evidence is the evidence the device sent.
	Evidence []byte
	// CSR is the device's certificate request.
	CSR []byte
	// Injected reports that the station injected the key.
	Injected bool
	// Steps are the steps Provision recorded, in order.
	Steps []*manifest.SignedStep
}

// Provision gives dev its identity: it checks what the device says about
// itself (the certificate-to-evidence rule, see Device.Info), has the
// device generate its key and request and checks the request against the
// device, all before it obtains a nonce from the CA side; then it has the
// device answer the nonce with evidence that confirms that key (EAT cnf,
// see Device.Attest), appraises the evidence locally (signer, signature,
// the nonce it asked for, the UEID, OEM ID and model the device claims,
// reference values), enrolls the request (the CA checks again, and that
// the evidence confirms the request's key), has the device install the
// chain and records the steps. A device that cannot generate keys attests
// first, and then receives a key the station injects (see KeyImporter),
// whose request is checked then.
//
// Failures are a *ProvisionError naming the stage. Nothing is left half
// done:
//   - before enrollment, no certificate exists and nothing is recorded,
//     except an injected key: its export and the destruction of the
//     station's copy are recorded as soon as the device holds it;
//   - the CA records every issuance in its ledger before returning it;
//   - if the device fails to install an issued certificate, the station
//     revokes it (when StationConfig.Revoker is set) and records a
//     StepInstallFailed step naming it;
//   - the key-generation and enrollment steps are recorded only after the
//     device installed its chain; a station whose certificate does not
//     authorize those steps is refused (StageRecord) before anything is
//     issued (for the enrollment step, before it asks for a nonce), and
//     if they cannot be recorded (the chain store failed, or
//     another station appended to the device meanwhile) the installed
//     certificate is revoked (when a Revoker is set), so that a retry
//     starts clean.
func (s *Station) Provision(ctx context.Context, dev Device) (*Result, error) {
	return s.observed(ctx, dev, false)
}

// Reprovision is Provision for a device that already holds an IDevID
// (after a retest, a repair, a lost key): the CA issues a new one and
// revokes the old one, reason superseded, in the same ledger transaction,
// and the station records a StepReprovisioned step after the enrollment
// naming the superseded certificate. Provision refuses such a device at
// enrollment (enroll.ReasonAlreadyProvisioned, ca.ErrDeviceProvisioned),
// so that a second identity is never issued by mistake. A device with no
// live IDevID is simply provisioned.
func (s *Station) Reprovision(ctx context.Context, dev Device) (*Result, error) {
	return s.observed(ctx, dev, true)
}

func (s *Station) provision(ctx context.Context, t *stages, dev Device, reprovision bool) (*Result, error) {
	fail := func(stage Stage, serial string, refused bool, err error) (*Result, error) {
		return nil, &ProvisionError{Stage: stage, Serial: serial, Refused: refused, Err: err}
	}
	t.enter(ctx, StageInfo)
	info, perr := deviceInfo(ctx, dev)
	if perr != nil {
		return nil, perr
	}
	serial, subject := info.SerialNumber, info.UEID.Bytes()
	superseded, err := s.preflight(ctx, subject, reprovision)
	if err != nil {
		return fail(StageRecord, serial, false, err)
	}

	csr, imp, req, keyStep, perr := s.generateKey(ctx, t, dev, info)
	if perr != nil {
		return nil, perr
	}

	t.enter(ctx, StageNonce)
	nonce, err := s.cfg.Enroller.Nonce(ctx)
	if err != nil {
		return fail(StageNonce, serial, false, err)
	}
	t.enter(ctx, StageEvidence)
	evidence, err := dev.Attest(ctx, nonce)
	if err != nil {
		return fail(StageEvidence, serial, false, err)
	}
	t.enter(ctx, StageAppraisal)
	res, token, err := s.appraise(ctx, evidence, nonce, info)
	if err != nil {
		return fail(StageAppraisal, serial, !errors.Is(err, errStation), err)
	}
	r := &Result{Device: info, Attestation: res, AttestationToken: token, Evidence: evidence}

	if imp != nil {
		t.enter(ctx, StageKey)
		csr, err = s.inject(ctx, imp, res.Evidence, subject, r)
		if err != nil {
			return fail(StageKey, serial, false, err)
		}
		r.Injected = true
		r.CSR = csr
		t.enter(ctx, StageCSR)
		if req, _, perr = s.checkRequest(info, r); perr != nil {
			return nil, perr
		}
	}
	r.CSR = csr

	t.enter(ctx, StageEnroll)
	chain, err := s.cfg.Enroller.Enroll(ctx, &enroll.Request{CSR: csr, Profile: s.cfg.Profile, Evidence: evidence, Reprovision: reprovision})
	if err != nil {
		return fail(StageEnroll, serial, errors.Is(err, enroll.ErrRefused), err)
	}
	if len(chain) == 0 {
		return fail(StageEnroll, serial, false, errors.New("ztm: enroller returned no certificate"))
	}
	leaf := chain[0]
	t.enter(ctx, StageInstall)
	if err := checkLeaf(leaf, req); err != nil {
		// Issued, but not what was asked for: never install it.
		return nil, s.installFailed(ctx, subject, serial, leaf, err)
	}
	if err := dev.InstallChain(ctx, chain); err != nil {
		return nil, s.installFailed(ctx, subject, serial, leaf, err)
	}
	r.CertChain = chain

	t.enter(ctx, StageRecord)
	recorded, err := s.record(ctx, subject, s.enrollmentSteps(r, req, keyStep, superseded)...)
	if err != nil {
		return nil, s.notRecorded(ctx, serial, leaf, err)
	}
	r.Steps = append(r.Steps, recorded...)
	return r, nil
}

// generateKey has the device make its key first, so that its evidence can
// confirm it (EAT cnf): the CA issues only for a key the device's evidence
// names. The request is checked against the device before a nonce is asked
// for: a request the CA would refuse must not spend one. A device that
// cannot make keys is returned as a KeyImporter, with no request: it
// receives a key sealed to the key that verified its evidence, so for it
// the evidence comes first.
func (s *Station) generateKey(ctx context.Context, t *stages, dev Device, info identity.DeviceInfo) (csr []byte, imp KeyImporter, req *identity.CSR, keyStep *manifest.Step, perr *ProvisionError) {
	serial := info.SerialNumber
	t.enter(ctx, StageKey)
	csr, err := dev.GenerateKey(ctx, s.cfg.Algorithm)
	switch {
	case errors.Is(err, ErrKeyGenerationUnsupported):
		var ok bool
		if imp, ok = dev.(KeyImporter); !ok {
			return nil, nil, nil, nil, &ProvisionError{Stage: StageKey, Serial: serial, Refused: true, Err: err}
		}
		if err := s.mayRecord(StepKeyInjection, StepKeyDestroyed); err != nil {
			return nil, nil, nil, nil, &ProvisionError{Stage: StageRecord, Serial: serial, Err: err}
		}
		return nil, imp, nil, nil, nil
	case err != nil:
		return nil, nil, nil, nil, &ProvisionError{Stage: StageKey, Serial: serial, Err: err}
	}
	t.enter(ctx, StageCSR)
	req, keyStep, perr = s.checkRequest(info, &Result{CSR: csr})
	if perr != nil {
		return nil, nil, nil, nil, perr
	}
	return csr, nil, req, keyStep, nil
}

// deviceInfo asks the device what it is and checks the answer: valid
// device info that keeps the certificate-to-evidence rule (a UEID, and a
// hardwareModuleName whose serial number is its bytes), before anything
// is spent on the device. A failure is the *ProvisionError to return.
func deviceInfo(ctx context.Context, dev Device) (identity.DeviceInfo, *ProvisionError) {
	info, err := dev.Info(ctx)
	if err != nil {
		return info, &ProvisionError{Stage: StageInfo, Err: err}
	}
	if err := info.Validate(); err != nil {
		return info, &ProvisionError{Stage: StageInfo, Serial: info.SerialNumber, Refused: true, Err: err}
	}
	if err := info.CheckBinding(); err != nil {
		return info, &ProvisionError{Stage: StageInfo, Serial: info.SerialNumber, Refused: true, Err: err}
	}
	return info, nil
}

// preflight refuses, before anything is spent on a device, a station that
// could not record what Provision (or Reprovision) records: the
// certificate would be issued and installed, then left unrecorded. For a
// re-provisioning it returns the serial number of the certificate the
// device's last enrollment step names (nil if none), which the
// reprovisioned step will name as superseded.
func (s *Station) preflight(ctx context.Context, subject []byte, reprovision bool) ([]byte, error) {
	if err := s.mayRecord(StepEnrollment); err != nil {
		return nil, err
	}
	if !reprovision {
		return nil, nil
	}
	if err := s.mayRecord(StepReprovisioned); err != nil {
		return nil, err
	}
	if prev, _, err := s.lastEnrollment(ctx, subject); err == nil && prev != nil {
		return prev.Bytes(), nil
	}
	return nil, nil
}

// checkRequest checks the device's request (r.CSR) against the device
// and, for a generated key, returns the key-generation step to record
// with the enrollment; for an injected key, that the request is signed by
// the key the station injected (r.Steps[0]). A failure is the
// *ProvisionError to return.
func (s *Station) checkRequest(info identity.DeviceInfo, r *Result) (*identity.CSR, *manifest.Step, *ProvisionError) {
	fail := func(stage Stage, refused bool, err error) (*identity.CSR, *manifest.Step, *ProvisionError) {
		return nil, nil, &ProvisionError{Stage: stage, Serial: info.SerialNumber, Refused: refused, Err: err}
	}
	req, err := identity.CheckCSR(r.CSR, identity.CSRPolicy{
		SerialNumber:   info.SerialNumber,
		HardwareModule: info.HardwareModule,
		Algorithms:     []identity.Algorithm{s.cfg.Algorithm},
	})
	if err != nil {
		return fail(StageCSR, true, err)
	}
	if r.Injected {
		if !keyMatches(req.PublicKey, r.Steps[0].Step.Predicate["key"]) {
			return fail(StageCSR, true, errors.New("ztm: request is not signed by the injected key"))
		}
		return req, nil, nil
	}
	// Before enrollment: a certificate must not be issued for a step the
	// station could not then record.
	if err := s.mayRecord(StepKeyGeneration); err != nil {
		return fail(StageRecord, false, err)
	}
	thumb, err := manifest.KeyThumbprint(req.PublicKey)
	if err != nil {
		return fail(StageCSR, true, err)
	}
	return req, &manifest.Step{
		Name:      StepKeyGeneration,
		Artifacts: map[string]manifest.Digest{"csr": manifest.Sum(manifest.SHA256, r.CSR)},
		Predicate: manifest.Claims{"alg": req.Algorithm.String(), "key": thumb.Value},
	}, nil
}

// enrollmentSteps are the steps Provision records once the device has
// installed r.CertChain: the key-generation step (keyStep, for a generated
// key), the enrollment, and for a re-provisioning the reprovisioned step
// naming the superseded certificate.
func (s *Station) enrollmentSteps(r *Result, req *identity.CSR, keyStep *manifest.Step, superseded []byte) []*manifest.Step {
	leaf := r.CertChain[0]
	enrollment := &manifest.Step{
		Name: StepEnrollment,
		Artifacts: map[string]manifest.Digest{
			"ear":         manifest.Sum(manifest.SHA256, r.AttestationToken),
			"certificate": manifest.Sum(manifest.SHA256, leaf.Raw),
		},
		Predicate: manifest.Claims{
			"profile":    s.cfg.Profile,
			"serial":     leaf.SerialNumber.Bytes(),
			"key-origin": keyOrigin(r, req).String(),
		},
	}
	var steps []*manifest.Step
	if keyStep != nil {
		steps = append(steps, keyStep)
	}
	steps = append(steps, enrollment)
	if superseded != nil {
		steps = append(steps, &manifest.Step{Name: StepReprovisioned, Predicate: manifest.Claims{"superseded": superseded}})
	}
	return steps
}

// keyOrigin says how the enrolled key came to be, by the names and the
// rule the CA's ledger records it with (ca.KeyProvenance,
// enroll.KeyProvenanceOf): injected by this station, generated in the
// device and confirmed by its evidence (EAT cnf, or TPM-certified), or
// unattested (legacy evidence without cnf, on a profile that accepts it).
func keyOrigin(r *Result, req *identity.CSR) ca.KeyProvenance {
	if r.Injected {
		return ca.ProvenanceInjected
	}
	if r.Attestation != nil {
		if p, err := enroll.KeyProvenanceOf(r.Attestation.Evidence, req.PublicKey); err == nil {
			return p
		}
	}
	return ca.ProvenanceUnattested
}

// errStation marks appraisal failures that are the station's, not the
// device's.
var errStation = errors.New("ztm: station failure")

// appraise checks evidence locally, and the device's info against it, and
// signs the result.
func (s *Station) appraise(ctx context.Context, evidence, nonce []byte, info identity.DeviceInfo) (*attest.Result, []byte, error) {
	subject := info.UEID.Bytes()
	res, err := s.cfg.Verifier.Verify(ctx, evidence)
	if err != nil {
		return nil, nil, err
	}
	claims := res.Evidence.Claims
	if subtle.ConstantTimeCompare(claims.Nonce, nonce) != 1 {
		return nil, nil, &attest.VerificationError{Reason: attest.ReasonNonceUnknown,
			Detail: "evidence does not answer the nonce the station asked (replayed evidence?)"}
	}
	if !bytes.Equal(claims.UEID, subject) {
		return nil, nil, fmt.Errorf("ztm: evidence is from ueid %x, the device says %x: %w", claims.UEID, subject, attest.ErrVerification)
	}
	if err := info.CheckClaims(claims.UEID, claims.OEMID, claims.HWModel); err != nil {
		return nil, nil, fmt.Errorf("ztm: %w", err)
	}
	switch st := res.Status(); {
	case st == attest.StatusAffirming:
	case st == attest.StatusWarning && s.cfg.AcceptWarning:
	default:
		return nil, nil, fmt.Errorf("ztm: appraisal %v %v: %w", st, res.Reasons(), attest.ErrVerification)
	}
	opts := &attest.SignOptions{Chain: s.cfg.CertChain}
	token, err := res.SignCWT(s.cfg.Rand, s.cfg.Key, opts)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: failed to sign the attestation result: %w", errStation, err)
	}
	return res, token, nil
}

// inject creates a key, seals it to the device's attestation key, hands it
// over, destroys the station's copy and records both.
func (s *Station) inject(ctx context.Context, dev KeyImporter, ev *attest.Evidence, subject []byte, r *Result) (csr []byte, err error) {
	if s.cfg.Store == nil {
		return nil, fmt.Errorf("%w: the station has no key store for injection", ErrInvalidConfig)
	}
	// Seal to the key that verified the device's evidence, and to no
	// other: a separately configured key could be another device's.
	recipient := ev.PublicKey
	if recipient == nil {
		return nil, fmt.Errorf("%w: the device's attestation key is unknown to the station", ErrUnsupportedKey)
	}
	if ev.KeyID != nil {
		if k, ok := s.cfg.AttestationKeys[string(ev.KeyID)]; ok && !keystore.PublicKeysEqual(recipient, k) {
			return nil, fmt.Errorf("%w: AttestationKeys[%q] is not the key that verified the evidence", ErrInvalidConfig, ev.KeyID)
		}
	}
	var nb [8]byte
	if _, err := io.ReadFull(rand.Reader, nb[:]); err != nil {
		return nil, err
	}
	label := "inject-" + hex.EncodeToString(subject) + "-" + hex.EncodeToString(nb[:])
	key, err := s.cfg.Store.Create(ctx, keystore.CreateRequest{Label: label, Algorithm: s.cfg.Algorithm, Exportable: true})
	if err != nil {
		return nil, err
	}
	destroyed := false
	defer func() {
		if !destroyed {
			if derr := s.cfg.Store.Delete(context.WithoutCancel(ctx), label); derr != nil && !errors.Is(derr, keystore.ErrNotFound) {
				err = errors.Join(err, fmt.Errorf("ztm: failed to destroy the station's copy of %q: %w", label, derr))
			}
		}
	}()
	priv, err := s.export.ExportKey(ctx, key)
	if err != nil {
		return nil, err
	}
	sealed, err := keyseal.Seal(recipient, subject, priv)
	if errors.Is(err, keyseal.ErrUnsupportedKey) {
		return nil, fmt.Errorf("%w: %w", ErrUnsupportedKey, err)
	} else if err != nil {
		return nil, err
	}
	csr, err = dev.ImportKey(ctx, sealed)
	if err != nil {
		return nil, err
	}
	// The device holds the key: destroy the station's copy, then record
	// the export and the destruction whatever happens next.
	if err := s.cfg.Store.Delete(ctx, label); err != nil {
		return nil, fmt.Errorf("ztm: failed to destroy the station's copy of %q: %w", label, err)
	}
	destroyed = true
	thumb, err := manifest.KeyThumbprint(key.Public())
	if err != nil {
		return nil, err
	}
	steps, err := s.record(ctx, subject,
		&manifest.Step{
			Name:      StepKeyInjection,
			Artifacts: map[string]manifest.Digest{"sealed-key": manifest.Sum(manifest.SHA256, sealed.Ciphertext)},
			Predicate: manifest.Claims{
				"alg":  sealed.Algorithm.String(),
				"key":  thumb.Value,
				"hpke": []any{uint64(sealed.KEM), uint64(sealed.KDF), uint64(sealed.AEAD)},
			},
		},
		&manifest.Step{
			Name:      StepKeyDestroyed,
			Predicate: manifest.Claims{"holder": "station", "key": thumb.Value, "label": label},
		})
	if err != nil {
		return nil, err
	}
	r.Steps = append(r.Steps, steps...)
	return csr, nil
}

// notRecorded handles a certificate issued and installed whose enrollment
// could not be recorded (the chain store failed, or another station
// appended to the device at the same moment): the chain would not account
// for it, so it is revoked when a Revoker is configured, and a retry of
// Provision starts clean.
func (s *Station) notRecorded(ctx context.Context, serial string, leaf *x509.Certificate, cause error) error {
	errs := []error{cause}
	switch revoked, err := s.revokeIssued(ctx, leaf); {
	case err != nil:
		errs = append(errs, fmt.Errorf("ztm: failed to revoke the unrecorded certificate: %w", err))
	case !revoked:
		errs = append(errs, fmt.Errorf("ztm: certificate %x was installed but not recorded, and no Revoker is configured", leaf.SerialNumber))
	}
	return &ProvisionError{Stage: StageRecord, Serial: serial, Err: errors.Join(errs...)}
}

// revokeIssued revokes a certificate issued to a device that the station
// cannot account for, even if ctx is done. It reports false with no error
// when no Revoker is configured; a certificate already revoked counts as
// revoked.
func (s *Station) revokeIssued(ctx context.Context, leaf *x509.Certificate) (bool, error) {
	if s.cfg.Revoker == nil {
		return false, nil
	}
	err := s.cfg.Revoker.Revoke(context.WithoutCancel(ctx), leaf.SerialNumber, ca.ReasonCessationOfOperation, "station:"+s.cfg.Name)
	if err != nil && !errors.Is(err, ca.ErrAlreadyRevoked) {
		return false, err
	}
	return true, nil
}

// installFailed handles a certificate that was issued but not installed:
// it revokes it if it can and records a StepInstallFailed step.
func (s *Station) installFailed(ctx context.Context, subject []byte, serial string, leaf *x509.Certificate, cause error) error {
	ctx = context.WithoutCancel(ctx)
	errs := []error{cause}
	revoked, err := s.revokeIssued(ctx, leaf)
	if err != nil {
		errs = append(errs, fmt.Errorf("ztm: failed to revoke the uninstalled certificate: %w", err))
	}
	_, err = s.record(ctx, subject, &manifest.Step{
		Name:      StepInstallFailed,
		Artifacts: map[string]manifest.Digest{"certificate": manifest.Sum(manifest.SHA256, leaf.Raw)},
		Predicate: manifest.Claims{"serial": leaf.SerialNumber.Bytes(), "error": clip(cause.Error(), maxRecordedError), "revoked": revoked},
	})
	if err != nil {
		errs = append(errs, fmt.Errorf("ztm: failed to record the failed install: %w", err))
	}
	return &ProvisionError{Stage: StageInstall, Serial: serial, Err: errors.Join(errs...)}
}

// Record signs a step of the given name about the device subject (its
// UEID bytes), chained to the device's last stored step, and appends it to
// the step store. Stations use it for the steps of their trade
// ("die-sort", "firmware-load", "final-test", …). It signs with
// manifest.StepSigner.Sign, the one signing primitive; what it adds is the
// chaining (Subject, Sequence, Prev, Lot and Time are set here), the
// station's authorization and the store. A station signs only the steps
// its certificate's StationAuthorization lists (ca.ErrNotAuthorized).
func (s *Station) Record(ctx context.Context, subject []byte, name string, artifacts map[string]manifest.Digest, predicate manifest.Claims) (*manifest.SignedStep, error) {
	steps, err := s.record(ctx, subject, &manifest.Step{Name: name, Artifacts: artifacts, Predicate: predicate})
	if err != nil {
		return nil, err
	}
	return steps[0], nil
}

// mayRecord reports, as an error wrapping ca.ErrNotAuthorized, a step name
// the station's certificate does not authorize it to sign.
func (s *Station) mayRecord(names ...string) error {
	for _, n := range names {
		if !s.auth.AllowsStep(n) {
			return fmt.Errorf("ztm: station %q is not authorized to sign %q steps: %w", s.cfg.Name, n, ca.ErrNotAuthorized)
		}
	}
	return nil
}

// record appends steps (Name, Artifacts and Predicate set) in order.
func (s *Station) record(ctx context.Context, subject []byte, steps ...*manifest.Step) ([]*manifest.SignedStep, error) {
	if err := s.made(); err != nil {
		return nil, err
	}
	for _, st := range steps {
		if err := s.mayRecord(st.Name); err != nil {
			return nil, err
		}
	}
	unlock := s.lock(subject)
	defer unlock()
	prev, err := s.cfg.StepStore.Last(ctx, subject)
	switch {
	case errors.Is(err, manifest.ErrNoSteps):
		prev = nil
	case err != nil:
		return nil, err
	}
	raws := make([][]byte, 0, len(steps))
	for _, st := range steps {
		st = st.Clone()
		st.Subject = subject
		st.Lot = s.cfg.Lot
		st.Time = s.cfg.Time().UTC().Truncate(time.Second)
		if prev != nil {
			d := manifest.Sum(manifest.SHA256, prev.Raw)
			st.Prev = &d
			st.Sequence = prev.Step.Sequence + 1
		}
		signed, err := s.signer.Sign(s.cfg.Rand, st)
		if err != nil {
			return nil, err
		}
		raws = append(raws, signed.Raw)
		prev = signed
	}
	// One durable commit for all of them: they are stored together or
	// not at all.
	return s.cfg.StepStore.AppendAll(ctx, raws...)
}

// lock serializes appends for one device within this station.
func (s *Station) lock(subject []byte) func() {
	k := string(subject)
	s.mu.Lock()
	l := s.locks[k]
	if l == nil {
		l = &subjectLock{}
		s.locks[k] = l
	}
	l.refs++
	s.mu.Unlock()
	l.mu.Lock()
	return func() {
		l.mu.Unlock()
		s.mu.Lock()
		if l.refs--; l.refs == 0 {
			delete(s.locks, k)
		}
		s.mu.Unlock()
	}
}

// checkLeaf checks that the issued certificate is for the request.
func checkLeaf(leaf *x509.Certificate, req *identity.CSR) error {
	if !keystore.PublicKeysEqual(leaf.PublicKey, req.PublicKey) {
		return errors.New("ztm: issued certificate is for another key")
	}
	if leaf.Subject.SerialNumber != req.SerialNumber {
		return fmt.Errorf("ztm: issued certificate names serial %q, the request %q", leaf.Subject.SerialNumber, req.SerialNumber)
	}
	return nil
}

// maxRecordedError bounds the error text an install-failed step records,
// in bytes, so that the step stays under 400 bytes signed; the caller gets
// the whole error.
const maxRecordedError = 40

// clip cuts s to at most n bytes, at a UTF-8 boundary.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// keyMatches reports whether thumb (a step's "key" claim) is pub's
// [manifest.KeyThumbprint] value.
func keyMatches(pub crypto.PublicKey, thumb any) bool {
	b, ok := thumb.([]byte)
	if !ok {
		return false
	}
	t, err := manifest.KeyThumbprint(pub)
	return err == nil && subtle.ConstantTimeCompare(t.Value, b) == 1
}
