package ztm_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/ztmkit/ztm"
	"github.com/ztmkit/ztm/attest"
	"github.com/ztmkit/ztm/ca"
	"github.com/ztmkit/ztm/ca/enroll"
	"github.com/ztmkit/ztm/identity"
	"github.com/ztmkit/ztm/identity/keystore"
	"github.com/ztmkit/ztm/identity/keystore/file"
	"github.com/ztmkit/ztm/identity/keystore/mem"
	"github.com/ztmkit/ztm/internal/zerotest"
	"github.com/ztmkit/ztm/manifest"
	"github.com/ztmkit/ztm/manifest/memchain"
	"github.com/ztmkit/ztm/transport/est"
)

// zeroCase is one use of an exported type zero-valued or misconfigured.
type zeroCase = zerotest.Case

// TestZeroValues walks the exported config and client types, zero-valued
// or misconfigured, and methods called on zero values of exported structs:
// each must return an error, never panic (house style rule 28).
func TestZeroValues(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	verifier, err := attest.NewVerifier(attest.Config{})
	if err != nil {
		t.Fatal(err)
	}
	signer, err := manifest.NewStepSigner(key, manifest.SignOptions{Issuer: "s"})
	if err != nil {
		t.Fatal(err)
	}
	signed, err := signer.Sign(rand.Reader, validStep())
	if err != nil {
		t.Fatal(err)
	}
	var cases []zeroCase
	add := func(name string, call func() error) { cases = append(cases, zeroCase{Name: name, Call: call}) }
	errOf := func(_ any, err error) error { return err }

	// The root package.
	add("NewStation(StationConfig{})", func() error { return errOf(ztm.NewStation(ztm.StationConfig{})) })
	add("Station{}.Provision", func() error { return errOf((&ztm.Station{}).Provision(ctx, nil)) })
	add("Station{}.Record", func() error { return errOf((&ztm.Station{}).Record(ctx, []byte{1}, "final-test", nil, nil)) })
	add("Station.Provision(nil Device)", func() error {
		st, err := ztm.NewStation(ztm.StationConfig{Name: "s", Key: key, CertChain: selfStationChain(t, key, ztm.StepEnrollment), Enroller: &enroll.Local{},
			Verifier: verifier, StepStore: memchain.New()})
		if err != nil {
			return fmt.Errorf("NewStation: %v", err) // not what is tested: fail below
		}
		if _, err := st.Provision(ctx, nil); err == nil {
			return nil
		}
		_, err = st.Decommission(ctx, nil, ca.ReasonUnspecified)
		return err
	})
	add("Station{}.Decommission", func() error { return errOf((&ztm.Station{}).Decommission(ctx, nil, ca.ReasonUnspecified)) })

	// ca/enroll.
	add("enroll.New(Config{})", func() error { return errOf(enroll.New(enroll.Config{})) })
	add("enroll.NewLocal(LocalConfig{})", func() error { return errOf(enroll.NewLocal(enroll.LocalConfig{})) })
	add("enroll.Local{}.Nonce", func() error { return errOf((&enroll.Local{}).Nonce(ctx)) })
	add("enroll.Local{}.Enroll", func() error { return errOf((&enroll.Local{}).Enroll(ctx, &enroll.Request{})) })
	add("enroll.Service{}.Nonce", func() error { return errOf((&enroll.Service{}).Nonce(ctx, enroll.Requester{})) })
	add("enroll.Service{}.Enroll", func() error {
		return errOf((&enroll.Service{}).Enroll(ctx, enroll.Requester{}, &enroll.Request{}, enroll.Options{}))
	})
	add("enroll.Service{}.VerifyStation", func() error { return (&enroll.Service{}).VerifyStation(ctx, &x509.Certificate{}) })

	// transport/est.
	add("est.NewServer(ServerConfig{})", func() error { return errOf(est.NewServer(est.ServerConfig{})) })
	add("est.NewClient(ClientConfig{})", func() error { return errOf(est.NewClient(est.ClientConfig{})) })
	add("est.NewClient(no Roots)", func() error { return errOf(est.NewClient(est.ClientConfig{URL: "https://127.0.0.1:1"})) })
	add("est.Client{}.Enroll", func() error { return errOf((&est.Client{}).Enroll(ctx, &enroll.Request{})) })
	add("est.Client{}.Nonce", func() error { return errOf((&est.Client{}).Nonce(ctx)) })
	add("est.Client{}.CACerts", func() error { return errOf((&est.Client{}).CACerts(ctx, "")) })
	add("est.Client{}.CSRAttrs", func() error { return errOf((&est.Client{}).CSRAttrs(ctx, "")) })
	add("est.Client{}.SimpleEnroll", func() error { return errOf((&est.Client{}).SimpleEnroll(ctx, "", nil, nil)) })
	add("est.Client{}.SimpleReenroll", func() error { return errOf((&est.Client{}).SimpleReenroll(ctx, "", nil, nil)) })
	add("est.Server{}.ServeHTTP", func() error {
		rec := httptest.NewRecorder()
		(&est.Server{}).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/.well-known/est/cacerts", nil))
		if rec.Code < 500 {
			return nil // answered, which is fine, but not an error: flag it below
		}
		return fmt.Errorf("status %d", rec.Code)
	})

	// ca.
	add("ca.New(Config{})", func() error { return errOf(ca.New(ca.Config{})) })
	add("ca.NewRoot(RootRequest{})", func() error { return errOf(ca.NewRoot(ca.RootRequest{})) })
	add("ca.NewIntermediate(IntermediateRequest{})", func() error { return errOf(ca.NewIntermediate(ca.IntermediateRequest{})) })
	add("ca.Authority{}.Issue", func() error { return errOf((&ca.Authority{}).Issue(ctx, &ca.Request{})) })
	add("ca.Authority{}.Revoke", func() error {
		return (&ca.Authority{}).Revoke(ctx, big.NewInt(1), ca.ReasonUnspecified, "test")
	})
	add("ca.Authority{}.IssuedCertificate", func() error { return errOf((&ca.Authority{}).IssuedCertificate(ctx, big.NewInt(1))) })
	add("ca.Authority{}.CRL", func() error { return errOf((&ca.Authority{}).CRL(ctx)) })
	add("ca.Authority{}.Checkpoint", func() error { return errOf((&ca.Authority{}).Checkpoint(ctx)) })
	add("ca.Authority{}.VerifyStation", func() error { return (&ca.Authority{}).VerifyStation(&x509.Certificate{}) })

	// attest.
	add("attest.NewVerifier(Config{}).Verify", func() error {
		v, err := attest.NewVerifier(attest.Config{}) // trusts no key: refuses everything
		if err != nil {
			return err
		}
		return errOf(v.Verify(ctx, []byte{0xa0}))
	})
	add("attest.EATVerifier{}.Verify", func() error { return errOf((&attest.EATVerifier{}).Verify(ctx, []byte{0xa0})) })
	add("attest.EATVerifier{}.Decode", func() error { return errOf((&attest.EATVerifier{}).Decode([]byte{0xa0})) })
	add("attest.EATVerifier{}.WithoutNonces().Verify", func() error {
		return errOf((&attest.EATVerifier{}).WithoutNonces().Verify(ctx, []byte{0xa0}))
	})
	add("attest.KeySet{}.Add(nil key)", func() error { return (&attest.KeySet{}).Add([]byte("k"), nil) })
	add("attest.NewVerifier(KeyLookup: KeySet{}.Lookup).Verify", func() error {
		v, err := attest.NewVerifier(attest.Config{KeyLookup: (&attest.KeySet{}).Lookup}) // an empty set: refuses everything
		if err != nil {
			return err
		}
		return errOf(v.Verify(ctx, []byte{0xa0}))
	})
	add("attest.Nonces{}.Issue", func() error { return errOf((&attest.Nonces{}).Issue()) })
	add("attest.Nonces{}.Consume", func() error { return (&attest.Nonces{}).Consume(make([]byte, 32)) })
	add("attest.SignCWT(nil signer)", func() error { return errOf(attest.SignCWT(nil, nil, &attest.Claims{}, nil)) })

	// manifest.
	add("manifest.NewStepSigner(nil, SignOptions{})", func() error { return errOf(manifest.NewStepSigner(nil, manifest.SignOptions{})) })
	add("manifest.StepSigner{}.Sign", func() error { return errOf((&manifest.StepSigner{}).Sign(nil, validStep())) })
	add("manifest.Lot{}.Sign(nil signer)", func() error {
		lot, err := manifest.NewLot("lot-1", manifest.LotOptions{})
		if err != nil {
			return nil
		}
		if _, err := lot.Add(signed.Raw); err != nil {
			return nil
		}
		return errOf(lot.Sign(nil, nil, time.Now()))
	})
	add("manifest.SignStep(nil key)", func() error { return errOf(manifest.SignStep(nil, &manifest.Step{}, nil, manifest.SignOptions{})) })
	add("manifest.SignPolicy(nil key)", func() error { return errOf(manifest.SignPolicy(nil, &manifest.Policy{}, nil, manifest.SignOptions{})) })
	add("manifest.NewLot(\"\", LotOptions{})", func() error { return errOf(manifest.NewLot("", manifest.LotOptions{})) })
	add("manifest.Lot{}.Add", func() error { return errOf((&manifest.Lot{}).Add([]byte{0xa0})) })
	add("manifest.Verify(nil policy)", func() error {
		r := manifest.Verify(ctx, nil, nil, nil)
		if r == nil {
			return nil
		}
		return r.Err()
	})
	// The durable stores' zero values (chainstore, sqlite, postgres) are
	// walked in their own packages' TestZeroValues: a jig's tests must not
	// need their database drivers.

	// Key stores.
	add("mem.Store{}.Get", func() error { return errOf((&mem.Store{}).Get(ctx, "k")) })
	add("file.Open(\"\", Config{})", func() error { return errOf(file.Open("", file.Config{})) })
	add("file.Store{}.Create", func() error { return errOf((&file.Store{}).Create(ctx, keystore.CreateRequest{Label: "k"})) })
	add("file.Store{}.Get", func() error { return errOf((&file.Store{}).Get(ctx, "k")) })
	add("keystore.Open(\"\")", func() error { return errOf(keystore.Open(ctx, "")) })

	// identity.
	add("identity.CreateCSR(nil key)", func() error { return errOf(identity.CreateCSR(nil, nil, identity.DeviceInfo{})) })

	runZeroCases(t, cases)
}

// runZeroCases runs each case in a subtest (zerotest.Run): it must return
// an error, not panic, and name no package of the module twice.
func runZeroCases(t *testing.T, cases []zeroCase) {
	t.Helper()
	known, err := knownPrefixes()
	if err != nil {
		t.Fatal(err)
	}
	zerotest.Run(t, known, cases)
}

// validStep is a step NewStepSigner's signer signs.
func validStep() *manifest.Step {
	return &manifest.Step{Name: "final-test", Subject: []byte{1, 2, 3}, Time: time.Unix(1700000000, 0)}
}

// TestZeroMemStore: the zero mem.Store is an empty store ready to use.
func TestZeroMemStore(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var s mem.Store
	if _, err := s.Get(ctx, "k"); !errors.Is(err, keystore.ErrNotFound) {
		t.Fatalf("Get: %v, want ErrNotFound", err)
	}
	if _, err := s.Create(ctx, keystore.CreateRequest{Label: "k"}); err != nil {
		t.Fatalf("Create: %v", err)
	}
	if _, err := s.Get(ctx, "k"); err != nil {
		t.Fatalf("Get after Create: %v", err)
	}
}
