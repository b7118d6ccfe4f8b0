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

// TestStepSizes measures encoded steps (ES256) and checks them against the
// table in doc.go: exactly for kid rows, within a few bytes for x5chain
// rows (DER ECDSA signatures in certificates vary in length).
func TestStepSizes(t *testing.T) {
	f := newFixture(t)
	chipco := f.parties["chipco"]
	inter, interKey := newCA(t, "ACME Line CA")
	tk := mustKey(t)
	leaf := issue(t, inter, interKey, "testhouse-line2", "test-station", tk.Public())
	leafOnly, _ := manifest.NewStepSigner(tk, manifest.SignOptions{Issuer: "testhouse", Chain: []*x509.Certificate{leaf}})
	withInter, _ := manifest.NewStepSigner(tk, manifest.SignOptions{Issuer: "testhouse", Chain: []*x509.Certificate{leaf, inter}})

	first := f.newStep(manifest.StepDieSort, 0, nil)
	first.Artifacts, first.Predicate = nil, nil
	withNext := typicalStep(f)
	next := f.parties["cm"].signer.Thumbprint()
	withNext.NextCustodian = &next
	rows := []struct {
		name   string
		signer *manifest.StepSigner
		step   *manifest.Step
		kid    bool
	}{
		{"first step (die-sort, no artifacts), kid", chipco.signer, first, true},
		{"typical step (final-test), kid", chipco.signer, typicalStep(f), true},
		{"typical step + next custodian, kid", chipco.signer, withNext, true},
		{"typical step, x5chain (leaf)", leafOnly, typicalStep(f), false},
		{"typical step, x5chain (leaf + intermediate)", withInter, typicalStep(f), false},
	}
	var b strings.Builder
	b.WriteString(tableStart + "\n//\n")
	fmt.Fprintf(&b, "//\t%-46s %8s %8s\n", "step (ES256)", "payload", "COSE")
	sizes := map[string]int{}
	for _, r := range rows {
		ss, err := r.signer.Sign(rand.Reader, r.step)
		if err != nil {
			t.Fatal(err)
		}
		payload, _ := r.step.Marshal()
		fmt.Fprintf(&b, "//\t%-46s %8d %8d\n", r.name, len(payload), len(ss.Raw))
		sizes[r.name] = len(ss.Raw)
		if r.name == "typical step (final-test), kid" && len(ss.Raw) >= 400 {
			t.Errorf("a typical step with kid is %d bytes, the budget is < 400", len(ss.Raw))
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
