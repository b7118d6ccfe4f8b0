package enroll

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"testing"

	"github.com/ztmkit/ztm/attest"
	"github.com/ztmkit/ztm/ca"
)

// stationWith returns a station certificate whose authorization lists
// steps (not verified: checkKey runs after the requester is checked).
func stationWith(t *testing.T, steps ...string) *x509.Certificate {
	t.Helper()
	der, err := (&ca.StationAuthorization{Steps: steps, Profiles: []string{"idevid"}}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return &x509.Certificate{Extensions: []pkix.Extension{{Id: ca.OIDStationAuthorization(), Value: der}}}
}

// TestCheckKey covers the key binding decision: a confirmed key passes
// everywhere; another key is refused everywhere; no cnf passes only on an
// injected-key profile from a station authorized to inject, or on a
// profile listed for legacy evidence.
func TestCheckKey(t *testing.T) {
	t.Parallel()
	devKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	stationKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr := &x509.CertificateRequest{PublicKey: devKey.Public()}
	confirmed := &attest.Evidence{Claims: &attest.Claims{Confirmation: &attest.Confirmation{Key: devKey.Public()}}}
	other := &attest.Evidence{Claims: &attest.Claims{Confirmation: &attest.Confirmation{Key: stationKey.Public()}}}
	tpmCertified := &attest.Evidence{Format: attest.FormatTPM, Claims: &attest.Claims{Confirmation: &attest.Confirmation{Key: devKey.Public()}}}
	none := &attest.Evidence{Claims: &attest.Claims{}}
	injector := Requester{Certificate: stationWith(t, "key-generation", InjectionStep, "enrollment")}
	plain := Requester{Certificate: stationWith(t, "key-generation", "enrollment")}
	basic := Requester{Name: "line", Profiles: []string{"idevid"}}
	strict := newKeyPolicy(Config{})
	lenient := newKeyPolicy(Config{InjectedKeyProfiles: []string{"idevid"}, UnconfirmedKeyProfiles: []string{"legacy"}})

	tests := []struct {
		name    string
		p       keyPolicy
		who     Requester
		profile string
		ev      *attest.Evidence
		want    ca.KeyProvenance
		check   string // refusal check; "" for accepted
	}{
		{"confirmed", strict, plain, "idevid", confirmed, ca.ProvenanceEATConfirmed, ""},
		{"TPM-certified", strict, plain, "idevid", tpmCertified, ca.ProvenanceTPMCertified, ""},
		{"confirmed lenient", lenient, injector, "legacy", confirmed, ca.ProvenanceEATConfirmed, ""},
		{"other key", strict, plain, "idevid", other, 0, "key-not-confirmed"},
		{"other key, injector", lenient, injector, "idevid", other, 0, "key-not-confirmed"},
		{"other key, legacy profile", lenient, plain, "legacy", other, 0, "key-not-confirmed"},
		{"no cnf", strict, injector, "idevid", none, 0, "missing-claim"},
		{"no cnf, injector", lenient, injector, "idevid", none, ca.ProvenanceInjected, ""},
		{"no cnf, station not authorized to inject", lenient, plain, "idevid", none, 0, "missing-claim"},
		{"no cnf, basic requester", lenient, basic, "idevid", none, 0, "missing-claim"},
		{"no cnf, legacy profile", lenient, plain, "legacy", none, ca.ProvenanceUnattested, ""},
		{"no evidence claims", strict, plain, "idevid", &attest.Evidence{}, 0, "missing-claim"},
		{"nil evidence", strict, plain, "idevid", nil, 0, "missing-claim"},
	}
	for _, tt := range tests {
		got, err := tt.p.checkKey(tt.who, tt.profile, csr, tt.ev)
		if tt.check == "" {
			if err != nil || got != tt.want {
				t.Errorf("%s: %v, %v; want %v", tt.name, got, err, tt.want)
			}
			continue
		}
		var re *RefusalError
		if !errors.As(err, &re) || re.Reason != ReasonKeyBinding || re.Check != tt.check || !errors.Is(err, ErrRefused) || !errors.Is(err, attest.ErrVerification) {
			t.Errorf("%s: %v, want key-binding/%s", tt.name, err, tt.check)
		}
	}
}

func TestKeyBindingReported(t *testing.T) {
	t.Parallel()
	re, ok := Reported("key-binding/key-not-confirmed", "x")
	if !ok || re.Reason != ReasonKeyBinding || !errors.Is(re, attest.ErrKeyNotConfirmed) {
		t.Fatalf("Reported = %v, %v", re, ok)
	}
}
