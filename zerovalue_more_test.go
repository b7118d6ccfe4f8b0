package ztm_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"testing"

	"github.com/ztmkit/ztm"
	"github.com/ztmkit/ztm/attest"
	"github.com/ztmkit/ztm/ca"
	"github.com/ztmkit/ztm/ca/enroll"
	"github.com/ztmkit/ztm/examples/linesim"
	"github.com/ztmkit/ztm/identity/keyseal"
	"github.com/ztmkit/ztm/manifest"
	"github.com/ztmkit/ztm/manifest/memchain"
	"github.com/ztmkit/ztm/transport/est"
)

// TestMisconfigured walks configurations that compile but are wrong: a
// configured value that was never made by its constructor, typed nil
// pointers in interface fields, nil arguments.
func TestMisconfigured(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	errOf := func(_ any, err error) error { return err }
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	verifier, err := attest.NewVerifier(attest.Config{})
	if err != nil {
		t.Fatal(err)
	}
	// provisionWith makes a station of cfg (Name, Key and Verifier set
	// here) and provisions a device with it: an error is wanted from either.
	provisionWith := func(cfg ztm.StationConfig) error {
		cfg.Name, cfg.Key, cfg.Verifier = "s", key, verifier
		cfg.CertChain = selfStationChain(t, key, ztm.StepKeyGeneration, ztm.StepEnrollment)
		st, err := ztm.NewStation(cfg)
		if err != nil {
			return err
		}
		_, err = st.Provision(ctx, &widget{})
		return err
	}
	// A working line, so that Provision would reach the step store.
	l := newLine(t)
	dev, err := l.NewDevice(1, linesim.DeviceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	runZeroCases(t, []zeroCase{
		{Name: "enroll.New(zero Authority)", Call: func() error {
			return errOf(enroll.New(enroll.Config{Authority: &ca.Authority{}, Verifier: verifier, Nonces: attest.NewNonces(attest.NonceConfig{})}))
		}},
		{Name: "est.NewServer(zero Service)", Call: func() error { return errOf(est.NewServer(est.ServerConfig{Service: &enroll.Service{}})) }},
		{Name: "est.BootstrapCACerts(\"\")", Call: func() error { return errOf(est.BootstrapCACerts(ctx, "", "", nil)) }},
		{Name: "keyseal.Open(nil)", Call: func() error { return errOf(keyseal.Open(nil, nil, nil)) }},
		{Name: "keyseal.Open(zero Sealed)", Call: func() error { return errOf(keyseal.Open(key, []byte{1}, &keyseal.Sealed{})) }},
		{Name: "manifest.VerifyAll(nil policy)", Call: func() error {
			return errOf(manifest.VerifyAll(ctx, func(func(manifest.ChainInput) bool) {}, nil, &manifest.BulkOptions{Workers: -1}))
		}},
		{Name: "StationConfig{StepStore: (*memchain.Store)(nil)}", Call: func() error {
			cm := l.Partners[linesim.ContractManufacturer]
			st, err := ztm.NewStation(ztm.StationConfig{Name: "cm", Key: cm.Key, CertChain: cm.Chain,
				Enroller: l.Service.Local(enroll.Requester{Certificate: cm.Chain[0]}),
				Verifier: l.StationVerifier, StepStore: (*memchain.Store)(nil)})
			if err != nil {
				return err
			}
			_, err = st.Provision(ctx, dev)
			return err
		}},
		{Name: "StationConfig{Enroller: (*est.Client)(nil)}", Call: func() error {
			return provisionWith(ztm.StationConfig{Enroller: (*est.Client)(nil), StepStore: memchain.New()})
		}},
		{Name: "StationConfig{Enroller: (*enroll.Local)(nil)}", Call: func() error {
			return provisionWith(ztm.StationConfig{Enroller: (*enroll.Local)(nil), StepStore: memchain.New()})
		}},
		{Name: "StationConfig{Verifier: (*attest.EATVerifier)(nil)}", Call: func() error {
			_, err := ztm.NewStation(ztm.StationConfig{Name: "s", Key: key, Enroller: &enroll.Local{},
				Verifier: (*attest.EATVerifier)(nil), StepStore: memchain.New()})
			return err
		}},
	})
}
