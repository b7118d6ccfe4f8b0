//go:build cgo

package pkcs11_test

import (
	"context"
	"crypto"
	"slices"
	"testing"

	"github.com/ztmkit/ztm"
	"github.com/ztmkit/ztm/ca/enroll"
	"github.com/ztmkit/ztm/examples/linesim"
)

// A station whose injection keys live in a SoftHSM2 token provisions a
// simulated device that cannot make keys: the key is generated in the
// token, exported under the trusted wrapping key, sealed to the device,
// imported by it and enrolled; the token's copy is destroyed and the
// injection and destruction are recorded.
func TestStationInjectsFromToken(t *testing.T) {
	_, s, e := exportToken(t)
	ctx := context.Background()
	l, err := linesim.NewLine(ctx, linesim.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	cm := l.Partners[linesim.ContractManufacturer]
	st, err := ztm.NewStation(ztm.StationConfig{Name: "cm", Key: cm.Key, CertChain: cm.Chain,
		Enroller: l.Service.Local(enroll.Requester{Certificate: cm.Chain[0]}), Verifier: l.StationVerifier,
		StepStore: l.Chains, Store: s, Exporter: e})
	if err != nil {
		t.Fatal(err)
	}
	d, err := l.NewDevice(1, linesim.DeviceOptions{NoKeyGeneration: true})
	if err != nil {
		t.Fatal(err)
	}
	res, err := st.Provision(ctx, d)
	if err != nil {
		t.Fatalf("Provision with a key from the token: %v", err)
	}
	if !res.Injected {
		t.Fatal("the key was not injected")
	}
	chain := d.Chain()
	if len(chain) == 0 || !chain[0].PublicKey.(interface{ Equal(crypto.PublicKey) bool }).Equal(d.Key().Public()) {
		t.Fatal("the device did not install a certificate for the injected key")
	}
	var names []string
	for _, step := range res.Steps {
		names = append(names, step.Step.Name)
	}
	if !slices.Contains(names, ztm.StepKeyInjection) || !slices.Contains(names, ztm.StepKeyDestroyed) {
		t.Fatalf("steps %v: no injection and destruction recorded", names)
	}
	if labels, err := s.List(ctx); err != nil || len(labels) != 0 {
		t.Fatalf("the token still holds %v (%v) after injection", labels, err)
	}
}
