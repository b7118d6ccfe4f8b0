package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ztmkit/ztm/examples/linesim"
	"github.com/ztmkit/ztm/manifest"
	"github.com/ztmkit/ztm/manifest/chainstore"
)

// lotDevicesFlag is the number of devices TestVerifyLot provisions through
// the simulated line, as factoryline does. 100 keeps the test to a few
// seconds under -race (provisioning takes about 70 ms a device there);
// -lot-devices 1000 checks factoryline's default lot.
var lotDevicesFlag = flag.Int("lot-devices", 100, "devices in TestVerifyLot's lot")

// writeLot provisions n devices through the simulated line, as factoryline
// does, and writes what factoryline writes: chains/<serial>.chain,
// chains.db, lot.cose, policy.cose and oem.pem.
func writeLot(t *testing.T, n int) (dir string, serials []string) {
	t.Helper()
	ctx := t.Context()
	dir = t.TempDir()
	// The steps go to chains.db, the chain store factoryline writes and
	// -store reads; the CA's ledger is not read and stays in memory.
	l, err := linesim.NewLine(ctx, linesim.Config{Lot: "lot-bulk",
		OpenStepStore: func(ctx context.Context) (linesim.StepStore, error) {
			return chainstore.Open(ctx, filepath.Join(dir, "chains.db"))
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	serials = make([]string, n)
	chains := make([][]byte, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	next := make(chan int)
	for range 4 {
		wg.Go(func() {
			for i := range next {
				var e error
				if serials[i], chains[i], e = provision(ctx, l, uint32(i+1)); e != nil {
					errs <- e
				}
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "chains"), 0o755); err != nil {
		t.Fatal(err)
	}
	for i, s := range serials {
		write(t, filepath.Join(dir, "chains", s+".chain"), chains[i])
	}
	signer, err := manifest.NewStepSigner(l.OEMKey, manifest.SignOptions{Issuer: "ZTM Widgets"})
	if err != nil {
		t.Fatal(err)
	}
	lot, err := manifest.NewLot(l.Lot, manifest.LotOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Chains.Lot(ctx, l.Lot, func(_, latest []byte) error { _, err := lot.Add(latest); return err }); err != nil {
		t.Fatal(err)
	}
	m, err := lot.Sign(nil, signer, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, "lot.cose"), m.Raw)
	signed, err := manifest.SignPolicy(nil, l.Policy(), l.OEMKey, manifest.SignOptions{Issuer: "ZTM Widgets"})
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(l.OEMKey.Public())
	write(t, filepath.Join(dir, "policy.cose"), signed)
	write(t, filepath.Join(dir, "oem.pem"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	return dir, serials
}

// provision takes device n through every station and returns its serial
// and encoded chain.
func provision(ctx context.Context, l *linesim.Line, n uint32) (string, []byte, error) {
	d, err := l.NewDevice(n, linesim.DeviceOptions{})
	if err != nil {
		return "", nil, err
	}
	chip, cm, oem := l.Partners[linesim.ChipVendor].Station, l.Partners[linesim.ContractManufacturer].Station, l.Partners[linesim.OEM].Station
	if _, err := chip.Record(ctx, d.UEID(), manifest.StepDieSort, nil, nil); err != nil {
		return "", nil, err
	}
	fw := map[string]manifest.Digest{"firmware": manifest.Sum(manifest.SHA256, linesim.Firmware())}
	if _, err := cm.Record(ctx, d.UEID(), manifest.StepFirmwareLoad, fw, nil); err != nil {
		return "", nil, err
	}
	if _, err := cm.Provision(ctx, d); err != nil {
		return "", nil, err
	}
	for _, name := range []string{manifest.StepFinalTest, manifest.StepPack} {
		if _, err := oem.Record(ctx, d.UEID(), name, nil, nil); err != nil {
			return "", nil, err
		}
	}
	c, err := l.Chains.Chain(ctx, d.UEID())
	if err != nil {
		return "", nil, err
	}
	raw, err := c.Marshal()
	return d.Serial(), raw, err
}

// TestVerifyLot checks a lot of factoryline's chains in a directory and in
// the chain store: every chain passes and the lot matches; a chain with a
// tampered step is reported, by name and reason, and the rest pass; a
// chain missing from the directory breaks the lot.
func TestVerifyLot(t *testing.T) {
	t.Parallel()
	lotDevices := *lotDevicesFlag
	if lotDevices < 2 {
		t.Fatalf("-lot-devices %d: want at least 2", lotDevices)
	}
	dir, serials := writeLot(t, lotDevices)
	plain := false
	cfg := config{Policy: filepath.Join(dir, "policy.cose"), OEM: filepath.Join(dir, "oem.pem"),
		Lot: filepath.Join(dir, "lot.cose"), Chain: filepath.Join(dir, "chains"), Progress: &plain}
	var out bytes.Buffer
	if err := run(t.Context(), cfg, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	for _, want := range []string{
		fmt.Sprintf("verified %d/%d devices (100%%)", lotDevices, lotDevices),
		fmt.Sprintf("verified    %d chains in ", lotDevices), " chains/s\n",
		fmt.Sprintf("passed      %d\n", lotDevices), "refused     0\n",
		fmt.Sprintf("lot         \"lot-bulk\": the %d devices' last steps make up the signed lot manifest", lotDevices),
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	t.Log(out.String())

	// The same lot read from the chain store.
	store := cfg
	store.Chain, store.Store = "", filepath.Join(dir, "chains.db")
	out.Reset()
	if err := run(t.Context(), store, &out); err != nil || !strings.Contains(out.String(), fmt.Sprintf("passed      %d\n", lotDevices)) {
		t.Fatalf("store: %v\n%s", err, out.String())
	}

	// A flipped byte in the firmware digest of one device's
	// firmware-load step: that device is refused, the rest pass, and the
	// lot (over last steps) still matches.
	victim := serials[len(serials)/2] + ".chain"
	path := filepath.Join(cfg.Chain, victim)
	raw := readFile(t, path)
	digest := manifest.Sum(manifest.SHA256, linesim.Firmware()).Value
	i := bytes.Index(raw, digest)
	if i < 0 {
		t.Fatal("firmware digest not found in chain")
	}
	bad := bytes.Clone(raw)
	bad[i] ^= 0x01
	write(t, path, bad)
	out.Reset()
	err := run(t.Context(), cfg, &out)
	if !errors.Is(err, errRefused) {
		t.Fatalf("tampered chain: err = %v\n%s", err, out.String())
	}
	for _, want := range []string{
		fmt.Sprintf("passed      %d\n", lotDevices-1),
		"refused     1 (by reason: 1 bad signature, 1 below threshold, 1 broken link, 1 unauthorized signer)",
		"FAIL " + victim + ": manifest: signature (step 1)",
		"lot         \"lot-bulk\"",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("tampered chain: output lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Count(out.String(), "FAIL ") != 1 {
		t.Errorf("tampered chain: not exactly one failure:\n%s", out.String())
	}

	// A device missing from the directory: every chain passes, the lot
	// does not.
	removeFile(t, path)
	out.Reset()
	if err := run(t.Context(), cfg, &out); !errors.Is(err, errRefused) || !strings.Contains(out.String(), "FAIL lot") ||
		!strings.Contains(out.String(), "refused     0\n") {
		t.Errorf("missing device: err = %v\n%s", err, out.String())
	}
}
