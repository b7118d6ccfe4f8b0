package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ztmkit/ztm/examples/linesim"
	"github.com/ztmkit/ztm/manifest"
)

// writeLine provisions one device through the simulated line and writes
// its chain, the signed policy and the OEM key, as factoryline does.
func writeLine(t *testing.T) (dir string, chain manifest.Chain) {
	t.Helper()
	ctx := context.Background()
	dir = t.TempDir()
	l, err := linesim.NewLine(ctx, linesim.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	d, err := l.NewDevice(1, linesim.DeviceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		r    linesim.Role
		name string
	}{{linesim.ChipVendor, manifest.StepDieSort}, {linesim.ContractManufacturer, manifest.StepFirmwareLoad}}
	for _, s := range steps {
		if _, err := l.Partners[s.r].Station.Record(ctx, d.UEID(), s.name, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := l.Partners[linesim.ContractManufacturer].Station.Provision(ctx, d); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{manifest.StepFinalTest, manifest.StepPack} {
		if _, err := l.Partners[linesim.OEM].Station.Record(ctx, d.UEID(), name, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	chain, err = l.Chains.Chain(ctx, d.UEID())
	if err != nil {
		t.Fatal(err)
	}
	raw, err := chain.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	signed, err := manifest.SignPolicy(nil, l.Policy(), l.OEMKey, manifest.SignOptions{Issuer: "ZTM Widgets"})
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(l.OEMKey.Public())
	write(t, filepath.Join(dir, "dev.chain"), raw)
	write(t, filepath.Join(dir, "policy.cose"), signed)
	write(t, filepath.Join(dir, "oem.pem"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	return dir, chain
}

func write(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestVerifyPassesAndFailsTamperedCopies(t *testing.T) {
	t.Parallel()
	dir, chain := writeLine(t)
	cfg := config{Policy: filepath.Join(dir, "policy.cose"), OEM: filepath.Join(dir, "oem.pem"), Chain: filepath.Join(dir, "dev.chain")}
	var out bytes.Buffer
	if err := run(context.Background(), cfg, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if !strings.HasSuffix(out.String(), "OK\n") || !strings.Contains(out.String(), "enrollment       signed by contract-manufacturer") {
		t.Fatalf("output:\n%s", out.String())
	}

	tampered := map[string]manifest.Chain{
		"step dropped":   append(append(manifest.Chain{}, chain[:2]...), chain[3:]...),
		"steps swapped":  append(append(manifest.Chain{}, chain[:2]...), append(manifest.Chain{chain[3], chain[2]}, chain[4:]...)...),
		"last step gone": chain[:len(chain)-1],
	}
	for name, c := range tampered {
		raw, err := c.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		write(t, cfg.Chain, raw)
		out.Reset()
		if err := run(context.Background(), cfg, &out); !errors.Is(err, errRefused) || !strings.Contains(out.String(), "FAIL") {
			t.Errorf("%s: err = %v\n%s", name, err, out.String())
		}
	}

	// A flipped byte inside a step's signed payload.
	raw, _ := chain.Marshal()
	i := bytes.Index(raw, []byte("final-test"))
	if i < 0 {
		t.Fatal("step name not found in chain")
	}
	bad := bytes.Clone(raw)
	bad[i] = 'F'
	write(t, cfg.Chain, bad)
	out.Reset()
	if err := run(context.Background(), cfg, &out); !errors.Is(err, errRefused) {
		t.Errorf("flipped byte: err = %v\n%s", err, out.String())
	}

	// A policy signed by someone else is not used at all.
	write(t, cfg.Chain, raw)
	cfg.OEM = filepath.Join(dir, "other.pem")
	other, _ := linesimKey(t)
	write(t, cfg.OEM, other)
	if err := run(context.Background(), cfg, &out); err == nil || errors.Is(err, errRefused) {
		t.Errorf("foreign policy key: err = %v", err)
	}
}
