package attest_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/fxamacker/cbor/v2"

	"github.com/ztmkit/ztm/attest"
	"github.com/ztmkit/ztm/identity/keystore"
)

func TestVerifyAccepts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var vendor *pki
	for _, alg := range keystore.Algorithms() {
		for _, named := range []string{"kid", "x5chain"} {
			for _, form := range []attest.Format{attest.FormatCWT, attest.FormatJWT} {
				t.Run(alg.String()+"/"+named+"/"+form.String(), func(t *testing.T) {
					if alg == keystore.PS256 && (named == "x5chain" || testing.Short()) {
						t.Skip("RSA-3072 key generation is slow; PS256 runs once, with kid")
					}
					o := envOpts{alg: alg}
					if named == "x5chain" {
						if vendor == nil {
							vendor = newPKI(t, "vendor attestation CA")
						}
						o.chain = func(pub crypto.PublicKey) ([]*x509.Certificate, *x509.CertPool) {
							return vendor.issue(t, pub, leafOpts{}), vendor.pool
						}
					}
					e := newEnv(t, o)
					n := e.nonce(t)
					var ev []byte
					var err error
					if form == attest.FormatCWT {
						ev, err = e.dev.EvidenceCWT(n)
					} else {
						ev, err = e.dev.EvidenceJWT(n)
					}
					if err != nil {
						t.Fatal(err)
					}
					r, err := e.ver.Verify(ctx, ev)
					if err != nil {
						t.Fatalf("Verify: %v", err)
					}
					if r.Status() != attest.StatusAffirming {
						t.Fatalf("status %v, reasons %v", r.Status(), r.Reasons())
					}
					if !bytes.Equal(r.Nonce, n) {
						t.Errorf("result nonce %x, want %x", r.Nonce, n)
					}
					a := r.Submods["device"]
					if a.TrustVector.Hardware != attest.TrustGenuineHardware || a.TrustVector.Executables != attest.TrustApprovedRuntime || a.TrustVector.Configuration != attest.TrustApprovedConfig {
						t.Errorf("trust vector %+v", a.TrustVector)
					}
					if !bytes.Equal(a.UEID, testUEID) || len(a.EvidenceDigest) != 32 {
						t.Errorf("appraisal %+v", a)
					}
					if r.Evidence.Format != form || r.Evidence.Algorithm != alg {
						t.Errorf("evidence %v %v", r.Evidence.Format, r.Evidence.Algorithm)
					}
					if named == "x5chain" && len(r.Evidence.Chain) != 2 {
						t.Errorf("chain of %d", len(r.Evidence.Chain))
					}
					// The same evidence again is a replay.
					_, err = e.ver.Verify(ctx, ev)
					if !errors.Is(err, attest.ErrNonceReused) {
						t.Fatalf("replay: %v", err)
					}
				})
			}
		}
	}
}

func TestClaimsRoundTrip(t *testing.T) {
	t.Parallel()
	c := &attest.Claims{
		Nonce: bytes.Repeat([]byte{7}, 32), UEID: testUEID, OEMID: testOEMID, HWModel: testHWModel,
		HWVersion: "1.2", HWVersionScheme: 16384, SWName: "fw", SWVersion: "3.4.5",
		SecureBoot: attest.BoolPtr(true), DebugStatus: attest.DebugPtr(attest.DebugDisabledPermanently),
		Measurements:      []attest.Measurement{{Name: "a", Alg: -16, Digest: bytes.Repeat([]byte{1}, 32)}, {Name: "b", Alg: -16, Digest: bytes.Repeat([]byte{2}, 32)}},
		OtherMeasurements: []attest.RawMeasurement{{ContentType: 258, Value: []byte{0xa0}}},
		Submods:           map[string]*attest.Claims{"radio": {SWName: "radio-fw", SWVersion: "9"}},
		IssuedAt:          t0, Profile: "urn:example:ztm",
		Extensions:     map[int64]cbor.RawMessage{-70100: {0x01}},
		JSONExtensions: map[string]json.RawMessage{"x-ztm": json.RawMessage(`"y"`)},
	}
	cb, err := c.MarshalCBOR()
	if err != nil {
		t.Fatal(err)
	}
	var c2 attest.Claims
	if err := c2.UnmarshalCBOR(cb); err != nil {
		t.Fatal(err)
	}
	cb2, _ := c2.MarshalCBOR()
	if !bytes.Equal(cb, cb2) {
		t.Errorf("CBOR round trip differs:\n%x\n%x", cb, cb2)
	}
	jb, err := c.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	var c3 attest.Claims
	if err := c3.UnmarshalJSON(jb); err != nil {
		t.Fatal(err)
	}
	c3.JSONExtensions, c2.JSONExtensions = nil, nil
	c3.Extensions = c2.Extensions
	cb3, _ := c3.MarshalCBOR()
	if !bytes.Equal(cb, cb3) {
		t.Errorf("JSON round trip differs:\n%s\n%x\n%x", jb, cb, cb3)
	}
	if !strings.Contains(string(jb), `"eat_nonce":"BwcH`) || !strings.Contains(string(jb), `"dbgstat":"disabled-permanently"`) {
		t.Errorf("JSON names: %s", jb)
	}
}

// TestVerifyConcurrent shares one verifier among goroutines, each sending
// fresh evidence twice: every first try is accepted, every replay refused.
func TestVerifyConcurrent(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	const n = 16
	toks := make([][]byte, n)
	for i := range toks {
		var err error
		if i%2 == 0 {
			toks[i], err = e.dev.EvidenceCWT(e.nonce(t))
		} else {
			toks[i], err = e.dev.EvidenceJWT(e.nonce(t))
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	accepted, replayed := 0, 0
	for _, tok := range toks {
		for range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := e.ver.Verify(context.Background(), tok)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					accepted++
				case errors.Is(err, attest.ErrNonceReused):
					replayed++
				default:
					t.Errorf("unexpected: %v", err)
				}
			}()
		}
	}
	wg.Wait()
	if accepted != n || replayed != n {
		t.Errorf("accepted %d, replayed %d; want %d each", accepted, replayed, n)
	}
}

func TestClaimsJSONNumericDate(t *testing.T) {
	t.Parallel()
	var c attest.Claims
	if err := c.UnmarshalJSON([]byte(`{"iat":1772366400.75}`)); err != nil || c.IssuedAt.Unix() != 1772366400 {
		t.Fatalf("fractional iat: %v %v", err, c.IssuedAt)
	}
	for _, bad := range []string{`{"iat":"1"}`, `{"iat":1e400}`, `{"iat":01}`, `{"iat":true}`} {
		if err := c.UnmarshalJSON([]byte(bad)); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

// TestNewVerifierCopiesReferenceValues: changing the caller's reference
// values after NewVerifier does not change the verifier's policy, and a
// cycle of submodules is refused, not followed forever.
func TestNewVerifierCopiesReferenceValues(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	ev, err := e.dev.EvidenceCWT(e.nonce(t))
	if err != nil {
		t.Fatal(err)
	}
	// The env's verifier was built from e.cfg; spoil its reference values
	// now.
	spoiled := 0
	for i := range e.cfg.ReferenceValues {
		for j := range e.cfg.ReferenceValues[i].Measurements {
			for k := range e.cfg.ReferenceValues[i].Measurements[j].Digest {
				e.cfg.ReferenceValues[i].Measurements[j].Digest[k] ^= 0xff
				spoiled++
			}
		}
	}
	if spoiled == 0 {
		t.Fatal("no reference digest to spoil")
	}
	if r, err := e.ver.Verify(context.Background(), ev); err != nil || r.Status() != attest.StatusAffirming {
		t.Fatalf("after the caller changed its reference values: %v", err)
	}
	loop := &attest.ReferenceValues{OEMID: []byte{1, 2, 3}, HWModel: []byte("m")}
	loop.Submods = map[string]*attest.ReferenceValues{"self": loop}
	if _, err := attest.NewVerifier(attest.Config{ReferenceValues: []attest.ReferenceValues{*loop}}); err == nil {
		t.Fatal("a cycle of submodules was accepted")
	}
}
