package enroll

import (
	"crypto/x509"
	"errors"
	"fmt"

	"github.com/ztmkit/ztm/attest"
	"github.com/ztmkit/ztm/ca"
)

// InjectionStep is the manifest step a station's authorization must list
// for the CA to accept from it a key the device did not generate (see
// Config.InjectedKeyProfiles). It is the step ztm.Station records when it
// injects a key ("key-injection").
const InjectionStep = "key-injection"

// KeyOrigin says how the key of an enrollment came to be, as far as the
// registration authority can tell.
type KeyOrigin int

// The key origins.
const (
	// KeyUnattested: nothing attests where the key was made (no evidence,
	// or legacy evidence without cnf on a profile that allows it).
	KeyUnattested KeyOrigin = iota
	// KeyDeviceAttested: the device's evidence confirms the key (EAT
	// cnf): the device generated it and holds it.
	KeyDeviceAttested
	// KeyInjected: a station authorized for key injection made the key and
	// sealed it to the device; the evidence names the device, not the key.
	KeyInjected
)

// String returns "unattested", "device-attested" or "injected".
func (o KeyOrigin) String() string {
	switch o {
	case KeyUnattested:
		return "unattested"
	case KeyDeviceAttested:
		return "device-attested"
	case KeyInjected:
		return "injected"
	}
	return fmt.Sprintf("KeyOrigin(%d)", int(o))
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

// checkKey decides the key binding of verified evidence: its cnf must
// confirm the request's key. Evidence whose cnf names another key is
// always refused. Evidence without cnf is accepted only on a profile of
// Config.InjectedKeyProfiles from a station authorized for key injection
// (KeyInjected), or on a profile of Config.UnconfirmedKeyProfiles
// (KeyUnattested).
func (p keyPolicy) checkKey(who Requester, profile string, csr *x509.CertificateRequest, ev *attest.Evidence) (KeyOrigin, error) {
	err := ev.ConfirmKey(csr.PublicKey)
	if err == nil {
		return KeyDeviceAttested, nil
	}
	if !errors.Is(err, attest.ErrMissingClaim) {
		return 0, keyRefusal(err, "the evidence confirms another key than the request's")
	}
	if p.injected[profile] && mayInject(who) {
		return KeyInjected, nil
	}
	if p.unconfirmed[profile] {
		return KeyUnattested, nil
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
