package enroll

import (
	"crypto"
	"crypto/x509"
	"errors"

	"github.com/ztmkit/ztm/attest"
	"github.com/ztmkit/ztm/ca"
)

// InjectionStep is the manifest step a station's authorization must list
// for the CA to accept from it a key the device did not generate (see
// Config.InjectedKeyProfiles). It is the step ztm.Station records when it
// injects a key ("key-injection"), and [ca.StepKeyInjection], which the
// Authority checks again before it records [ca.ProvenanceInjected].
const InjectionStep = ca.StepKeyInjection

// KeyProvenanceOf returns how ev, verified evidence, attests pub, the key
// of a certificate request: [ca.ProvenanceTPMCertified] when ev is TPM
// evidence (attest.FormatTPM) whose attestation key certified pub
// (TPM2_Certify; package attest/tpm exposes it as cnf), and
// [ca.ProvenanceEATConfirmed] when ev is an EAT whose cnf confirms pub.
// Otherwise it returns [attest.Evidence.ConfirmKey]'s error: a
// *attest.VerificationError of reason missing-claim when ev confirms no
// key, key-not-confirmed when it confirms another. This is the one
// decision of a device-attested key: the Service records its answer in
// the ledger, and ztm.Station in its enrollment step.
func KeyProvenanceOf(ev *attest.Evidence, pub crypto.PublicKey) (ca.KeyProvenance, error) {
	if err := ev.ConfirmKey(pub); err != nil {
		return ca.ProvenanceUnrecorded, err
	}
	if ev.Format == attest.FormatTPM {
		return ca.ProvenanceTPMCertified, nil
	}
	return ca.ProvenanceEATConfirmed, nil
}

// keyPolicy is which profiles accept keys the evidence does not confirm.
type keyPolicy struct {
	unconfirmed map[string]bool
	injected    map[string]bool
}

func newKeyPolicy(cfg Config) keyPolicy {
	p := keyPolicy{unconfirmed: make(map[string]bool), injected: make(map[string]bool)}
	for _, n := range cfg.UnconfirmedKeyProfiles {
		p.unconfirmed[n] = true
	}
	for _, n := range cfg.InjectedKeyProfiles {
		p.injected[n] = true
	}
	return p
}

// checkKey decides the key binding of verified evidence, and so the key
// provenance the ledger records: its cnf must confirm the request's key
// (ca.ProvenanceEATConfirmed, or ca.ProvenanceTPMCertified for TPM
// evidence; see KeyProvenanceOf). Evidence whose cnf names another key is
// always refused. Evidence without cnf is accepted only on a profile of
// Config.InjectedKeyProfiles from a station authorized for key injection
// (ca.ProvenanceInjected), or on a profile of
// Config.UnconfirmedKeyProfiles (ca.ProvenanceUnattested).
func (p keyPolicy) checkKey(who Requester, profile string, csr *x509.CertificateRequest, ev *attest.Evidence) (ca.KeyProvenance, error) {
	prov, err := KeyProvenanceOf(ev, csr.PublicKey)
	if err == nil {
		return prov, nil
	}
	if !errors.Is(err, attest.ErrMissingClaim) {
		return 0, keyRefusal(err, "the evidence confirms another key than the request's")
	}
	if p.injected[profile] && mayInject(who) {
		return ca.ProvenanceInjected, nil
	}
	if p.unconfirmed[profile] {
		return ca.ProvenanceUnattested, nil
	}
	return 0, keyRefusal(err, "profile %q requires a device-attested key and the evidence confirms none", profile)
}

// mayInject reports whether who is a station whose authorization lists
// the key-injection step.
func mayInject(who Requester) bool {
	if who.Certificate == nil {
		return false
	}
	a, err := ca.ParseStationAuthorization(who.Certificate)
	return err == nil && a.AllowsStep(InjectionStep)
}

func keyRefusal(err error, format string, args ...any) *RefusalError {
	r := refuse(ReasonKeyBinding, err, format, args...)
	var ve *attest.VerificationError
	if errors.As(err, &ve) {
		r.Check = ve.Reason.String()
	}
	return r
}
