package ztm_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"math/big"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/ztmkit/ztm"
	"github.com/ztmkit/ztm/attest"
	"github.com/ztmkit/ztm/attest/devicesim"
	"github.com/ztmkit/ztm/ca"
	"github.com/ztmkit/ztm/ca/enroll"
	"github.com/ztmkit/ztm/examples/linesim"
	"github.com/ztmkit/ztm/identity"
	"github.com/ztmkit/ztm/identity/keyseal"
	"github.com/ztmkit/ztm/identity/keystore"
	"github.com/ztmkit/ztm/manifest"
)

func newLine(t testing.TB) *linesim.Line { return newLineEST(t, false) }

func newLineEST(t testing.TB, overEST bool) *linesim.Line {
	t.Helper()
	l, err := linesim.NewLine(context.Background(), linesim.Config{EST: overEST})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// fullLine runs a device through every partner's steps.
func fullLine(t *testing.T, l *linesim.Line, d *linesim.Device) (*ztm.Result, error) {
	t.Helper()
	ctx := context.Background()
	chip, cm, oem := l.Partners[linesim.ChipVendor].Station, l.Partners[linesim.ContractManufacturer].Station, l.Partners[linesim.OEM].Station
	if _, err := chip.Record(ctx, d.UEID(), manifest.StepDieSort, nil, manifest.Claims{"bin": 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := cm.Record(ctx, d.UEID(), manifest.StepFirmwareLoad, map[string]manifest.Digest{"firmware": manifest.Sum(manifest.SHA256, linesim.Firmware())}, nil); err != nil {
		t.Fatal(err)
	}
	res, err := cm.Provision(ctx, d)
	if err != nil {
		return nil, err
	}
	for _, name := range []string{manifest.StepFinalTest, manifest.StepPack} {
		if _, err := oem.Record(ctx, d.UEID(), name, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	return res, nil
}

func verifyChain(t *testing.T, l *linesim.Line, d *linesim.Device) *manifest.Report {
	t.Helper()
	chain, err := l.Chains.Chain(context.Background(), d.UEID())
	if err != nil {
		t.Fatal(err)
	}
	return manifest.Verify(context.Background(), chain, l.Policy(), nil)
}

func TestProvisionHonest(t *testing.T) {
	t.Parallel()
	t.Run("local", func(t *testing.T) { testHonest(t, newLineEST(t, false)) })
	t.Run("est", func(t *testing.T) { testHonest(t, newLineEST(t, true)) })
}

func testHonest(t *testing.T, l *linesim.Line) {
	for _, inject := range []bool{false, true} {
		d, err := l.NewDevice(1+boolInt(inject), linesim.DeviceOptions{NoKeyGeneration: inject})
		if err != nil {
			t.Fatal(err)
		}
		res, err := fullLine(t, l, d)
		if err != nil {
			t.Fatalf("inject=%v: %v", inject, err)
		}
		if res.Injected != inject {
			t.Errorf("Injected = %v", res.Injected)
		}
		if len(d.Chain()) != 2 || !d.Chain()[0].PublicKey.(interface{ Equal(crypto.PublicKey) bool }).Equal(d.Key().Public()) {
			t.Fatalf("device did not install a chain for its key")
		}
		if res.Attestation.Status() != attest.StatusAffirming || res.AttestationToken == nil {
			t.Errorf("attestation %v", res.Attestation.Status())
		}
		rep := verifyChain(t, l, d)
		if !rep.OK() {
			t.Fatalf("inject=%v: chain refused:\n%s", inject, rep)
		}
		var names []string
		for _, s := range res.Steps {
			names = append(names, s.Step.Name)
		}
		want := "[key-generation enrollment]"
		if inject {
			want = "[key-injection key-destroyed enrollment]"
		}
		if got := sprint(names); got != want {
			t.Errorf("steps %s, want %s", got, want)
		}
		enr := res.Steps[len(res.Steps)-1].Step
		if !enr.Artifacts["certificate"].Matches(d.Chain()[0].Raw) || !enr.Artifacts["ear"].Matches(res.AttestationToken) {
			t.Errorf("enrollment step artifacts do not name the certificate and result")
		}
		// The key's provenance: made in the device and confirmed by its
		// evidence (EAT cnf), or injected by this station.
		wantOrigin := "eat-cnf"
		if inject {
			wantOrigin = "injected"
		}
		if got := enr.Predicate["key-origin"]; got != wantOrigin {
			t.Errorf("inject=%v: key-origin %v, want %s", inject, got, wantOrigin)
		}
		// The CA recorded the issuance, and the same provenance by the
		// same name.
		st, err := l.Ledger.Lookup(context.Background(), d.Chain()[0].SerialNumber)
		if err != nil || st.Issuance == nil {
			t.Fatalf("ledger lookup: %v", err)
		}
		if got := st.Issuance.KeyProvenance.String(); got != wantOrigin {
			t.Errorf("inject=%v: ledger records key provenance %s, the enrollment step %s", inject, got, wantOrigin)
		}
	}
	// Injected keys never stay in the station's store.
	labels, err := l.Partners[linesim.ContractManufacturer].Store.List(context.Background())
	if err != nil || len(labels) != 1 || labels[0] != "station" {
		t.Errorf("station store holds %v, %v", labels, err)
	}
}

func TestProvisionRefusesTampered(t *testing.T) {
	t.Parallel()
	t.Run("local", func(t *testing.T) { testRefusesTampered(t, newLineEST(t, false)) })
	t.Run("est", func(t *testing.T) { testRefusesTampered(t, newLineEST(t, true)) })
}

func testRefusesTampered(t *testing.T, l *linesim.Line) {
	ctx := context.Background()
	for i, kind := range linesim.TamperKinds() {
		d, err := l.NewDevice(uint32(10+i), linesim.DeviceOptions{Tamper: kind})
		if err != nil {
			t.Fatal(err)
		}
		st := l.Partners[linesim.ContractManufacturer].Station
		wantStage := ztm.StageAppraisal
		var target ztm.Device = d
		switch kind {
		case linesim.UnauthorizedStation:
			st = l.Partners[linesim.Rogue].Station
			wantStage = ztm.StageEnroll
		case linesim.KeySubstitution:
			// The attack: a genuine device, its valid evidence, and a
			// request for the station's own key.
			target = linesim.SubstituteKey(d)
			wantStage = ztm.StageEnroll
		}
		head, _ := l.Ledger.Head(ctx)
		_, err = st.Provision(ctx, target)
		var pe *ztm.ProvisionError
		if !errors.As(err, &pe) || pe.Stage != wantStage || !errors.Is(err, ztm.ErrRefused) {
			t.Fatalf("%v: err = %v, want refusal at %v", kind, err, wantStage)
		}
		// The same reason in process and over EST.
		var re *enroll.RefusalError
		if kind == linesim.UnauthorizedStation && (!errors.As(err, &re) || re.Reason != enroll.ReasonNotAuthorized) {
			t.Errorf("%v: %v", kind, err)
		}
		if kind == linesim.KeySubstitution && (!errors.As(err, &re) || re.Reason != enroll.ReasonKeyBinding ||
			!errors.Is(err, attest.ErrKeyNotConfirmed) || re.Check != "key-not-confirmed") {
			t.Errorf("%v: %v, want a key-binding refusal", kind, err)
		}
		if d.Chain() != nil {
			t.Errorf("%v: device holds a certificate", kind)
		}
		if h, _ := l.Ledger.Head(ctx); h.Seq != head.Seq {
			t.Errorf("%v: the ledger grew", kind)
		}
		if _, err := l.Chains.Chain(ctx, d.UEID()); err == nil {
			t.Errorf("%v: steps recorded for a refused device", kind)
		}
	}
}

func TestProvisionInstallFailureRevokesAndRecords(t *testing.T) {
	t.Parallel()
	l := newLine(t)
	ctx := context.Background()
	d, err := l.NewDevice(20, linesim.DeviceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	d.SetFailInstall(true)
	_, err = l.Partners[linesim.ContractManufacturer].Station.Provision(ctx, d)
	var pe *ztm.ProvisionError
	if !errors.As(err, &pe) || pe.Stage != ztm.StageInstall || pe.Refused {
		t.Fatalf("err = %v", err)
	}
	chain, err := l.Chains.Chain(ctx, d.UEID())
	if err != nil || len(chain) != 1 || chain[0].Step.Name != ztm.StepInstallFailed {
		t.Fatalf("chain %v %v", chain, err)
	}
	if chain[0].Step.Predicate["revoked"] != true {
		t.Errorf("not revoked: %v", chain[0].Step.Predicate)
	}
	revoked, err := l.Ledger.Revoked(ctx)
	if err != nil || len(revoked) != 1 {
		t.Fatalf("revocations %v %v", revoked, err)
	}
}

func TestDecommission(t *testing.T) {
	t.Parallel()
	l := newLine(t)
	ctx := context.Background()
	d, err := l.NewDevice(30, linesim.DeviceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fullLine(t, l, d); err != nil {
		t.Fatal(err)
	}
	serial := d.Chain()[0].SerialNumber
	oem := l.Partners[linesim.OEM].Station
	steps, err := oem.Decommission(ctx, d, ca.ReasonCessationOfOperation)
	if err != nil {
		t.Fatal(err)
	}
	if len(steps) != 2 || steps[0].Step.Name != ztm.StepKeyDestroyed || steps[1].Step.Name != ztm.StepDecommissioned {
		t.Fatalf("steps %v", steps)
	}
	if d.Key() != nil {
		t.Error("device still holds its key")
	}
	st, err := l.Ledger.Lookup(ctx, serial)
	if err != nil || st.Revocation == nil {
		t.Fatalf("not revoked: %v", err)
	}
	// Again: already revoked is fine, and recorded again.
	if _, err := oem.Decommission(ctx, d, ca.ReasonCessationOfOperation); err != nil {
		t.Fatal(err)
	}
	// A device never provisioned.
	d2, _ := l.NewDevice(31, linesim.DeviceOptions{})
	if _, err := oem.Decommission(ctx, d2, ca.ReasonUnspecified); !errors.Is(err, ztm.ErrNotProvisioned) {
		t.Errorf("err = %v", err)
	}
}

// TestDecommissionChecksTheCertificate: the chain store checks no
// signature, so an enrollment step appended to device X's chain naming
// device Y's certificate must not make Decommission(X) revoke Y's.
func TestDecommissionChecksTheCertificate(t *testing.T) {
	t.Parallel()
	l := newLine(t)
	ctx := context.Background()
	x, _ := l.NewDevice(40, linesim.DeviceOptions{})
	y, _ := l.NewDevice(41, linesim.DeviceOptions{})
	for _, d := range []*linesim.Device{x, y} {
		if _, err := fullLine(t, l, d); err != nil {
			t.Fatal(err)
		}
	}
	yCert := y.Chain()[0]
	chain, err := l.Chains.Chain(ctx, x.UEID())
	if err != nil {
		t.Fatal(err)
	}
	rogue, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := manifest.NewStepSigner(rogue, manifest.SignOptions{Issuer: "rogue"})
	if err != nil {
		t.Fatal(err)
	}
	prev := manifest.Sum(manifest.SHA256, chain[len(chain)-1].Raw)
	forged, err := signer.Sign(rand.Reader, &manifest.Step{
		Name: ztm.StepEnrollment, Subject: x.UEID(), Sequence: uint64(len(chain)), Prev: &prev, Time: time.Now(),
		Artifacts: map[string]manifest.Digest{"certificate": manifest.Sum(manifest.SHA256, yCert.Raw)},
		Predicate: manifest.Claims{"serial": yCert.SerialNumber.Bytes()},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Chains.Append(ctx, forged.Raw); err != nil {
		t.Fatal(err)
	}
	_, err = l.Partners[linesim.OEM].Station.Decommission(ctx, x, ca.ReasonCessationOfOperation)
	var pe *ztm.ProvisionError
	if !errors.As(err, &pe) || pe.Stage != ztm.StageRevoke || !errors.Is(err, ztm.ErrNotProvisioned) {
		t.Fatalf("err = %v", err)
	}
	for _, c := range []*x509.Certificate{yCert, x.Chain()[0]} {
		if st, err := l.Ledger.Lookup(ctx, c.SerialNumber); err != nil || st.Revocation != nil {
			t.Fatalf("certificate %x revoked (%v)", c.SerialNumber, err)
		}
	}
	if x.Key() == nil {
		t.Fatal("device X's key destroyed")
	}
}

// consumingVerifier is a Verifier other than an EATVerifier that says it
// consumes nonces.
type consumingVerifier struct {
	attest.Verifier
	n *attest.Nonces
}

func (v consumingVerifier) Nonces() *attest.Nonces { return v.n }

func TestNewStationRefusesBadConfig(t *testing.T) {
	t.Parallel()
	l := newLine(t)
	p := l.Partners[linesim.ContractManufacturer]
	good := ztm.StationConfig{Name: "cm", Key: p.Key, CertChain: p.Chain, Enroller: l.Service.Local(enroll.Requester{}), Verifier: l.StationVerifier, StepStore: l.Chains}
	_, err := ztm.NewStation(good)
	require.NoError(t, err)
	for name, tc := range map[string]struct {
		field string
		mut   func(*ztm.StationConfig)
	}{
		"no name":            {"Name", func(c *ztm.StationConfig) { c.Name = "" }},
		"no key":             {"Key", func(c *ztm.StationConfig) { c.Key = nil }},
		"no cert chain":      {"CertChain", func(c *ztm.StationConfig) { c.CertChain = nil }},
		"nil leaf":           {"CertChain", func(c *ztm.StationConfig) { c.CertChain = []*x509.Certificate{nil} }},
		"no enroller":        {"Enroller", func(c *ztm.StationConfig) { c.Enroller = nil }},
		"no verifier":        {"Verifier", func(c *ztm.StationConfig) { c.Verifier = nil }},
		"consuming verifier": {"Verifier", func(c *ztm.StationConfig) { c.Verifier = consumingVerifier{l.StationVerifier, l.CAVerifier.Nonces()} }},
		"no step store":      {"StepStore", func(c *ztm.StationConfig) { c.StepStore = nil }},
		"bad algorithm":      {"Algorithm", func(c *ztm.StationConfig) { c.Algorithm = keystore.Algorithm(99) }},
		"foreign chain":      {"CertChain", func(c *ztm.StationConfig) { c.CertChain = l.Partners[linesim.OEM].Chain }},
	} {
		c := good
		tc.mut(&c)
		_, err := ztm.NewStation(c)
		require.ErrorIs(t, err, ztm.ErrInvalidConfig, name)
		var ce *ztm.ConfigError
		require.ErrorAs(t, err, &ce, name)
		require.Equal(t, tc.field, ce.Field, name)
	}
}

// TestStationUsesCAVerifier: one verifier configured once, with its nonce
// source, serves the CA and the station; the station does not consume the
// nonce the CA then consumes.
func TestStationUsesCAVerifier(t *testing.T) {
	l := newLine(t)
	cm := l.Partners[linesim.ContractManufacturer]
	st, err := ztm.NewStation(ztm.StationConfig{Name: "cm", Key: cm.Key, CertChain: cm.Chain,
		Enroller: l.Service.Local(enroll.Requester{Certificate: cm.Chain[0]}), Verifier: l.CAVerifier, StepStore: l.Chains})
	require.NoError(t, err)
	dev, err := l.NewDevice(7, linesim.DeviceOptions{})
	require.NoError(t, err)
	_, err = st.Provision(context.Background(), dev)
	require.NoError(t, err)
}

func TestStationRefusesUnauthorizedStep(t *testing.T) {
	t.Parallel()
	l := newLine(t)
	_, err := l.Partners[linesim.ChipVendor].Station.Record(context.Background(), []byte{1, 2, 3, 4, 5, 6, 7, 8}, manifest.StepPack, nil, nil)
	if !errors.Is(err, ca.ErrNotAuthorized) {
		t.Fatalf("err = %v", err)
	}
}

func boolInt(b bool) uint32 {
	if b {
		return 1
	}
	return 0
}

func sprint(s []string) string {
	out := "["
	for i, x := range s {
		if i > 0 {
			out += " "
		}
		out += x
	}
	return out + "]"
}

// TestProvisionRefusesStepsItCannotRecord: a station whose certificate does
// not authorize a step Provision records is refused before anything is
// issued — without the enrollment step, before even a nonce.
func TestProvisionRefusesStepsItCannotRecord(t *testing.T) {
	t.Parallel()
	l := newLine(t)
	ctx := context.Background()
	cm := l.Partners[linesim.ContractManufacturer]
	for i, steps := range [][]string{{ztm.StepKeyGeneration}, {ztm.StepEnrollment}} {
		csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "cm-station-2"}}, cm.Key)
		if err != nil {
			t.Fatal(err)
		}
		cert, err := l.Authority.Issue(ctx, &ca.Request{CSR: csr, Profile: "station", Requester: "line-setup",
			Station: &ca.StationAuthorization{Steps: steps, Profiles: []string{"idevid"}}})
		if err != nil {
			t.Fatal(err)
		}
		st, err := ztm.NewStation(ztm.StationConfig{Name: "cm-2", Key: cm.Key, CertChain: []*x509.Certificate{cert, l.Authority.Chain()[0]},
			Enroller: l.Service.Local(enroll.Requester{Certificate: cert}), Verifier: l.StationVerifier, StepStore: l.Chains, Revoker: l.Authority})
		if err != nil {
			t.Fatal(err)
		}
		d, _ := l.NewDevice(uint32(50+i), linesim.DeviceOptions{})
		before, err := l.Ledger.Head(ctx)
		if err != nil {
			t.Fatal(err)
		}
		_, err = st.Provision(ctx, d)
		var pe *ztm.ProvisionError
		if !errors.As(err, &pe) || pe.Stage != ztm.StageRecord || !errors.Is(err, ca.ErrNotAuthorized) {
			t.Fatalf("steps %v: err = %v", steps, err)
		}
		if h, err := l.Ledger.Head(ctx); err != nil || h.Seq != before.Seq {
			t.Fatalf("steps %v: ledger grew: %d → %d (%v)", steps, before.Seq, h.Seq, err)
		}
		if len(d.Chain()) != 0 {
			t.Fatalf("steps %v: the device was given a chain", steps)
		}
	}
}

// closingDevice closes the chain store once it has installed its chain, so
// that the station cannot record the enrollment.
type closingDevice struct {
	*linesim.Device
	chains interface{ Close() error }
}

func (d closingDevice) InstallChain(ctx context.Context, chain []*x509.Certificate) error {
	if err := d.Device.InstallChain(ctx, chain); err != nil {
		return err
	}
	return d.chains.Close()
}

// TestProvisionRevokesWhatItCannotRecord: a certificate issued and
// installed whose enrollment cannot be recorded is revoked.
func TestProvisionRevokesWhatItCannotRecord(t *testing.T) {
	t.Parallel()
	l := newLine(t)
	ctx := context.Background()
	d, _ := l.NewDevice(51, linesim.DeviceOptions{})
	_, err := l.Partners[linesim.ContractManufacturer].Station.Provision(ctx, closingDevice{d, l.Chains})
	var pe *ztm.ProvisionError
	if !errors.As(err, &pe) || pe.Stage != ztm.StageRecord {
		t.Fatalf("err = %v", err)
	}
	if len(d.Chain()) == 0 {
		t.Fatal("no chain installed: the test did not reach the record stage")
	}
	st, err := l.Ledger.Lookup(ctx, d.Chain()[0].SerialNumber)
	if err != nil || st.Revocation == nil {
		t.Fatalf("unrecorded certificate not revoked (%v)", err)
	}
}

// kidDevice needs key injection and names its attestation key by kid.
type kidDevice struct {
	sim  *devicesim.Device
	ak   *ecdsa.PrivateKey
	info identity.DeviceInfo
}

func (d *kidDevice) Info(context.Context) (identity.DeviceInfo, error) { return d.info, nil }
func (d *kidDevice) Attest(_ context.Context, nonce []byte) ([]byte, error) {
	return d.sim.EvidenceCWT(nonce)
}
func (d *kidDevice) GenerateKey(context.Context, keystore.Algorithm) ([]byte, error) {
	return nil, ztm.ErrKeyGenerationUnsupported
}
func (d *kidDevice) InstallChain(context.Context, []*x509.Certificate) error { return nil }
func (d *kidDevice) ImportKey(_ context.Context, sealed *keyseal.Sealed) ([]byte, error) {
	key, err := keyseal.Open(d.ak, d.info.UEID.Bytes(), sealed)
	if err != nil {
		return nil, err
	}
	return identity.CreateCSR(rand.Reader, key, d.info)
}

// TestInjectionSealsToTheVerifiedKey: a key injected into a device whose
// evidence names its attestation key by kid is sealed to the key that
// verified the evidence; an AttestationKeys entry naming another key is
// refused before anything is sealed.
func TestInjectionSealsToTheVerifiedKey(t *testing.T) {
	t.Parallel()
	l := newLine(t)
	ctx := context.Background()
	ak, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ueid := identity.NewEUI64UEID([8]byte{0x02, 0, 0, 0xfe, 0, 0, 0, 9})
	sim, err := devicesim.New(devicesim.Config{Key: ak, KeyID: []byte("ak-9"), UEID: ueid.Bytes(),
		OEMID: []byte{1, 2, 3}, HWModel: []byte("kid-widget"), SWName: "fw", SWVersion: "1.0",
		Images: map[string][]byte{"firmware": []byte("fw")}})
	if err != nil {
		t.Fatal(err)
	}
	dev := &kidDevice{sim: sim, ak: ak, info: identity.DeviceInfo{UEID: ueid, SerialNumber: "KID-0009",
		HardwareModule: identity.HardwareModuleName{Type: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 32473, 9}, SerialNumber: ueid.Bytes()}}}
	local, err := attest.NewVerifier(attest.Config{Keys: map[string]crypto.PublicKey{"ak-9": ak.Public()},
		ReferenceValues: []attest.ReferenceValues{sim.ReferenceValues()}})
	if err != nil {
		t.Fatal(err)
	}
	other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cm := l.Partners[linesim.ContractManufacturer]
	for _, tc := range []struct {
		name string
		keys map[string]crypto.PublicKey
		want ztm.Stage // the first stage that fails
	}{
		// The CA side does not know this device's key: enrollment fails,
		// after the key was sealed and imported.
		{"no entry", nil, ztm.StageEnroll},
		{"the verified key", map[string]crypto.PublicKey{"ak-9": ak.Public()}, ztm.StageEnroll},
		{"another key", map[string]crypto.PublicKey{"ak-9": other.Public()}, ztm.StageKey},
	} {
		st, err := ztm.NewStation(ztm.StationConfig{Name: "cm", Key: cm.Key, CertChain: cm.Chain,
			Enroller: l.Service.Local(enroll.Requester{Certificate: cm.Chain[0]}), Verifier: local, StepStore: l.Chains,
			Store: cm.Store, AttestationKeys: tc.keys})
		if err != nil {
			t.Fatal(err)
		}
		_, err = st.Provision(ctx, dev)
		var pe *ztm.ProvisionError
		if !errors.As(err, &pe) || pe.Stage != tc.want {
			t.Fatalf("%s: err = %v, want a failure at %v", tc.name, err, tc.want)
		}
		if tc.want == ztm.StageKey && !errors.Is(err, ztm.ErrInvalidConfig) {
			t.Fatalf("%s: err = %v", tc.name, err)
		}
	}
}

// selfStationChain returns a self-signed station certificate for key that
// authorizes steps: enough for NewStation, which reads the authorization
// (the CA verifies the chain, not the station).
func selfStationChain(t testing.TB, key crypto.Signer, steps ...string) []*x509.Certificate {
	t.Helper()
	ext, err := (&ca.StationAuthorization{Steps: steps, Profiles: []string{"idevid"}}).Marshal()
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test station"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtraExtensions: []pkix.Extension{{Id: ca.OIDStationAuthorization(), Value: ext}}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return []*x509.Certificate{cert}
}
