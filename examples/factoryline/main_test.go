package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ztmkit/ztm"
	"github.com/ztmkit/ztm/manifest"
)

// TestLine runs the whole line with 50 honest devices (5 with injected
// keys) and 10 bad ones, two of each kind, over EST on loopback TLS.
func TestLine(t *testing.T) {
	t.Parallel()
	out := t.TempDir()
	var buf bytes.Buffer
	plain := false
	sum, err := run(t.Context(), config{Devices: 50, Tamper: 10, Workers: 4, InjectEvery: 10, Out: out, Progress: &plain}, &buf)
	if err != nil {
		t.Fatalf("%v\n%s", err, buf.String())
	}
	if sum.Devices != 60 || sum.Accepted != 50 || sum.Refused != 10 || sum.Injected != 5 {
		t.Fatalf("summary %+v\n%s", sum, buf.String())
	}
	for _, kind := range []string{"debug-enabled at appraisal", "replayed-nonce at appraisal", "tampered-firmware at appraisal", "unauthorized-station at enroll", "key-substitution at enroll"} {
		if sum.RefusedBy[kind] != 2 {
			t.Errorf("refused %q: %d, want 2 (%v)", kind, sum.RefusedBy[kind], sum.RefusedBy)
		}
	}
	wantReasons := map[string]int{"appraisal: debug-enabled": 2, "appraisal: nonce-unknown": 2,
		"appraisal: measurement-mismatch": 2, "enroll: not-authorized": 2, "enroll: key-binding": 2}
	if fmt.Sprint(sum.RefusedFor) != fmt.Sprint(wantReasons) {
		t.Errorf("refusals by reason %v, want %v", sum.RefusedFor, wantReasons)
	}
	counts := map[ztm.Stage]int{}
	for _, st := range sum.Stages {
		counts[st.Stage] = st.Count
		if st.P50 > st.P99 || st.P99 <= 0 || st.Running != 0 {
			t.Errorf("stage %v: %+v", st.Stage, st)
		}
	}
	// 60 devices asked who they are; 54 reached enrollment (50 honest, 2 at
	// the rogue station, 2 with a substituted key); 50 recorded.
	if counts[ztm.StageInfo] != 60 || counts[ztm.StageRecord] != 50 || counts[ztm.StageEnroll] != 54 {
		t.Errorf("stage counts %v", counts)
	}
	for _, want := range []string{"devices     60 (50 honest, 10 bad)", "refused     10", "2 at appraisal: nonce-unknown", "            enroll ", "throughput", "hash chain verified", "provisioned 60/60 devices (100%)"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, buf.String())
		}
	}

	// The outputs verify on their own.
	oem, err := os.ReadFile(filepath.Join(out, "oem.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pub := parsePEMPublicKey(t, oem)
	signedPolicy, err := os.ReadFile(filepath.Join(out, "policy.cose"))
	if err != nil {
		t.Fatal(err)
	}
	policy, err := manifest.VerifyPolicy(signedPolicy, pub)
	if err != nil {
		t.Fatal(err)
	}
	chains, _ := filepath.Glob(filepath.Join(out, "chains", "*.chain"))
	receipts, _ := filepath.Glob(filepath.Join(out, "receipts", "*.receipt"))
	if len(chains) != 50 || len(receipts) != 50 {
		t.Fatalf("%d chains, %d receipts", len(chains), len(receipts))
	}
	lotRaw, err := os.ReadFile(filepath.Join(out, "lot.cose"))
	if err != nil {
		t.Fatal(err)
	}
	lot, err := manifest.VerifyLotManifest(lotRaw, pub)
	if err != nil || lot.TreeSize != 50 {
		t.Fatalf("lot manifest: %v", err)
	}
	for _, f := range chains {
		raw, _ := os.ReadFile(f)
		chain, err := manifest.ParseChain(raw)
		if err != nil {
			t.Fatal(err)
		}
		if rep := manifest.Verify(context.Background(), chain, policy, nil); !rep.OK() {
			t.Fatalf("%s:\n%s", f, rep)
		}
		serial := strings.TrimSuffix(filepath.Base(f), ".chain")
		r, err := os.ReadFile(filepath.Join(out, "receipts", serial+".receipt"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := manifest.VerifyReceipt(r, chain[len(chain)-1].Raw, pub); err != nil {
			t.Fatalf("receipt of %s: %v", serial, err)
		}
	}
}

// TestLineRunsTwiceInOneDirectory checks that a second run replaces the
// first's outputs rather than colliding with them.
func TestLineRunsTwiceInOneDirectory(t *testing.T) {
	t.Parallel()
	out := t.TempDir()
	plain := false
	for range 2 {
		var buf bytes.Buffer
		if _, err := run(t.Context(), config{Devices: 3, Workers: 2, Out: out, Progress: &plain}, &buf); err != nil {
			t.Fatalf("%v\n%s", err, buf.String())
		}
	}
}

func TestRunRefusesNoDevices(t *testing.T) {
	t.Parallel()
	if _, err := run(t.Context(), config{Out: t.TempDir()}, &bytes.Buffer{}); err == nil {
		t.Fatal("no devices accepted")
	}
}

func TestProgressBar(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	bar := true
	if _, err := run(t.Context(), config{Devices: 4, Workers: 2, Out: t.TempDir(), Progress: &bar}, &buf); err != nil {
		t.Fatalf("%v\n%s", err, buf.String())
	}
	if !strings.Contains(buf.String(), "\r[########################################] 4/4") || strings.Contains(buf.String(), "provisioned 4/4") {
		t.Errorf("no progress bar:\n%q", buf.String())
	}
}

func TestPlanSpreadsAndCyclesBadDevices(t *testing.T) {
	t.Parallel()
	jobs := plan(config{Devices: 20, Tamper: 10, InjectEvery: 5})
	kinds := map[string]int{}
	honest, injected := 0, 0
	for _, j := range jobs {
		if j.tamper != 0 {
			kinds[j.tamper.String()]++
			continue
		}
		honest++
		if j.inject {
			injected++
		}
	}
	if len(jobs) != 30 || honest != 20 || injected != 4 {
		t.Fatalf("%d jobs, %d honest, %d injected", len(jobs), honest, injected)
	}
	if kinds["debug-enabled"] != 2 || kinds["replayed-nonce"] != 2 || kinds["tampered-firmware"] != 2 || kinds["unauthorized-station"] != 2 || kinds["key-substitution"] != 2 {
		t.Errorf("kinds %v", kinds)
	}
}
