package manifest_test

import (
	"crypto/rand"
	"crypto/x509"
	"flag"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/ztmkit/ztm/manifest"
)

var update = flag.Bool("update", false, "rewrite the size table in doc.go")

// typicalStep is the step the size table measures: a final test with a
// 17-byte UEID, a predecessor, two artifacts, two claims and a lot.
func typicalStep(f *fixture) *manifest.Step {
	prev := manifest.Sum(manifest.SHA256, []byte("previous step"))
	return &manifest.Step{
		Name: manifest.StepFinalTest, Subject: f.subject, Sequence: 3, Prev: &prev,
		Artifacts: map[string]manifest.Digest{
			"firmware": manifest.Sum(manifest.SHA256, []byte("firmware image")),
			"test-log": manifest.Sum(manifest.SHA256, []byte("test log")),
		},
		Predicate: manifest.Claims{1: "pass", 2: 42},
		Time:      t0, Lot: "LOT-2026-03-A",
	}
}

const (
	tableStart = "The table below is rewritten by go test -run TestStepSizes -update."
	tableEnd   = "(ECDSA signatures in DER certificates vary by a byte or two.)"
)

// kindSteps returns one step of each kind ztm's line writes, shaped as the
// Station writes it (see the step name constants of package ztm), about a
// 17-byte RAND UEID: the largest common subject.
func kindSteps(f *fixture) []struct {
	name string
	step *manifest.Step
} {
	prev := manifest.Sum(manifest.SHA256, []byte("previous step"))
	thumb := f.parties["cm"].signer.Thumbprint().Value
	serial := make([]byte, 20) // the CA's serials: 20 bytes
	serial[0] = 0x4d
	digest := func(s string) manifest.Digest { return manifest.Sum(manifest.SHA256, []byte(s)) }
	step := func(name string, seq uint64, arts map[string]manifest.Digest, claims manifest.Claims) *manifest.Step {
		st := &manifest.Step{Name: name, Subject: f.subject, Sequence: seq, Artifacts: arts, Predicate: claims, Time: t0}
		if seq > 0 {
			st.Prev = &prev
		}
		return st
	}
	ship := step(manifest.StepShip, 9, nil, nil)
	ship.Lot = "LOT-2026-03-A"
	next := f.parties["qa"].signer.Thumbprint()
	ship.NextCustodian = &next
	return []struct {
		name string
		step *manifest.Step
	}{
		{"die-sort (first step)", step(manifest.StepDieSort, 0, nil, manifest.Claims{"bin": 1})},
		{"firmware-load", step(manifest.StepFirmwareLoad, 1, map[string]manifest.Digest{"firmware": digest("fw")}, nil)},
		{"key-generation", step(manifest.StepKeyGeneration, 2, map[string]manifest.Digest{"csr": digest("csr")},
			manifest.Claims{"alg": "ES256", "key": thumb})},
		{"key-injection", step("key-injection", 2, map[string]manifest.Digest{"sealed-key": digest("sealed")},
			manifest.Claims{"alg": "ES256", "key": thumb, "hpke": []any{uint64(16), uint64(1), uint64(1)}})},
		{"key-destroyed (station's copy)", step(manifest.StepKeyDestroyed, 3, nil,
			manifest.Claims{"holder": "station", "key": thumb, "label": "inject-" + manifest.SubjectClaim(f.subject) + "-0de253fbbcd24e2e"})},
		{"enrollment", step("enrollment", 4, map[string]manifest.Digest{"ear": digest("ear"), "certificate": digest("cert")},
			manifest.Claims{"profile": "idevid", "serial": serial})},
		{"install-failed", step("install-failed", 4, map[string]manifest.Digest{"certificate": digest("cert")},
			manifest.Claims{"serial": serial, "error": strings.Repeat("e", 40), "revoked": true})},
		{"final-test (typical)", typicalStep(f)},
		{"pack", step(manifest.StepPack, 6, nil, nil)},
		{"ship, handing custody on", ship},
		{"key-destroyed (device, end of life)", step(manifest.StepKeyDestroyed, 10, nil, manifest.Claims{"holder": "device", "serial": serial})},
		{"decommissioned", step("decommissioned", 11, nil, manifest.Claims{"serial": serial, "reason": uint64(5), "key-destroyed": true})},
	}
}

// TestStepSizes measures every step kind signed (ES256, kid), and a step
// whose station names its certificate by digest, and checks that each is
// under 400 bytes, and against the table in doc.go: exactly, but within a
// few bytes for x5chain rows (DER ECDSA signatures in certificates vary in
// length). x5chain rows are shown, not budgeted.
func TestStepSizes(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	chipco := f.parties["chipco"]
	inter, interKey := newCA(t, "ACME Line CA")
	tk := mustKey(t)
	leaf := issue(t, inter, interKey, "testhouse-line2", "test-station", tk.Public())
	leafOnly, _ := manifest.NewStepSigner(tk, manifest.SignOptions{Issuer: "testhouse", CertChain: []*x509.Certificate{leaf}})
	withInter, _ := manifest.NewStepSigner(tk, manifest.SignOptions{Issuer: "testhouse", CertChain: []*x509.Certificate{leaf, inter}})
	byDigest, _ := manifest.NewStepSigner(tk, manifest.SignOptions{Issuer: "testhouse", CertChain: []*x509.Certificate{leaf, inter}, CertChainByDigest: true})

	type row struct {
		name   string
		signer *manifest.StepSigner
		step   *manifest.Step
		kid    bool
	}
	var rows []row
	for _, k := range kindSteps(f) {
		rows = append(rows, row{k.name, chipco.signer, k.step, true})
	}
	rows = append(rows,
		row{"final-test, certificate by digest (x5t)", byDigest, typicalStep(f), true},
		row{"final-test, x5chain (leaf)", leafOnly, typicalStep(f), false},
		row{"final-test, x5chain (leaf + intermediate)", withInter, typicalStep(f), false},
	)
	var b strings.Builder
	b.WriteString(tableStart + "\n//\n")
	fmt.Fprintf(&b, "//\t%-46s %8s %8s\n", "step (ES256, 17-byte UEID)", "payload", "COSE")
	sizes := map[string]int{}
	for _, r := range rows {
		ss, err := r.signer.Sign(rand.Reader, r.step)
		if err != nil {
			t.Fatal(err)
		}
		payload, _ := r.step.Marshal()
		fmt.Fprintf(&b, "//\t%-46s %8d %8d\n", r.name, len(payload), len(ss.Raw))
		sizes[r.name] = len(ss.Raw)
		if r.kid && len(ss.Raw) >= 400 {
			t.Errorf("%s: %d bytes signed, the budget is < 400", r.name, len(ss.Raw))
		}
	}
	b.WriteString("//\n// " + tableEnd)
	t.Log("\n" + b.String())

	doc, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile("(?s)" + regexp.QuoteMeta(tableStart) + ".*?" + regexp.QuoteMeta(tableEnd))
	if !re.Match(doc) {
		t.Fatal("doc.go has no size table")
	}
	if *update {
		doc = re.ReplaceAll(doc, []byte(b.String()))
		if err := os.WriteFile("doc.go", doc, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	table := string(re.Find(doc))
	for _, r := range rows {
		m := regexp.MustCompile(regexp.QuoteMeta(r.name) + `\s+(\d+)\s+(\d+)`).FindStringSubmatch(table)
		if m == nil {
			t.Errorf("doc.go size table lacks %q (run go test -run TestStepSizes -update)", r.name)
			continue
		}
		documented, _ := strconv.Atoi(m[2])
		got := sizes[r.name]
		if r.kid && documented != got || !r.kid && (documented-got > 4 || got-documented > 4) {
			t.Errorf("%s: doc.go says %d bytes, measured %d (run go test -run TestStepSizes -update)", r.name, documented, got)
		}
	}
}
