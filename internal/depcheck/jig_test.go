package depcheck

import (
	"os"
	"strings"
	"testing"
)

// testOnly are modules ztm's own tests may use only from a nested,
// test-only module (internal/zlinttest): a jig's `go mod tidy` loads the
// tests of every ztm package the jig imports, and downloads every module
// those tests import.
var testOnly = []string{"github.com/zmap/"}

// jigImports are the packages a vendor's jig imports: the Station, EST,
// the key stores, the TPM evidence, and the in-memory stores its own
// tests use.
var jigImports = []string{
	"", "transport/est", "identity/keystore/pkcs11", "identity/keystore/file", "identity/keystore/tpm",
	"identity/keystore/mem", "attest/tpm", "ca/ledger/memledger", "manifest/memchain",
}

// notLinked are the modules a jig that imports jigImports does not link:
// the database drivers of the durable ledgers and step store, which a jig
// imports only when it runs a CA or keeps steps itself.
var notLinked = []string{"modernc.org/", "github.com/jackc/"}

// TestJigTidyIsLight: no package of the module, nor any of its tests,
// imports a test-only module, and go.mod does not require one.
func TestJigTidyIsLight(t *testing.T) {
	t.Parallel()
	mod, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(mod), "\n") {
		for _, m := range testOnly {
			if strings.Contains(line, m) {
				t.Errorf("go.mod requires %s: %q (move its users into a nested test-only module)", m, strings.TrimSpace(line))
			}
		}
	}
	deps := goList(t, "-deps", "-test", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", module+"/...")
	if len(deps) < 50 {
		t.Fatalf("go list found %d packages: the check is broken", len(deps))
	}
	for _, d := range deps {
		for _, m := range testOnly {
			if strings.HasPrefix(d, m) {
				t.Errorf("%s is in the import graph of the module's packages or their tests", d)
			}
		}
	}
}

// TestJigTestsNeedNoDatabase: `go mod tidy` in a jig's module loads the
// tests and examples of every ztm package the jig links, and downloads
// every module they import. None of them may import a database driver
// the jig does not link (modernc.org/sqlite and its C-to-Go runtime are
// about 250 MB unpacked): they use ca/ledger/memledger and
// manifest/memchain, and the tests that are about the durable stores live
// in those stores' packages.
func TestJigTestsNeedNoDatabase(t *testing.T) {
	t.Parallel()
	var roots []string
	for _, p := range jigImports {
		roots = append(roots, strings.TrimSuffix(module+"/"+p, "/"))
	}
	var linked []string // the module's packages a jig links
	for _, p := range goList(t, append([]string{"-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}"}, roots...)...) {
		if p == module || strings.HasPrefix(p, module+"/") {
			linked = append(linked, p)
		}
		for _, m := range notLinked {
			if strings.HasPrefix(p, m) {
				t.Errorf("a jig links %s", p)
			}
		}
	}
	if len(linked) < 15 {
		t.Fatalf("go list found %d packages a jig links: the check is broken", len(linked))
	}
	// -test adds the package's tests and what they import: what tidy
	// loads.
	for _, p := range linked {
		var bad []string
		for _, d := range goList(t, "-deps", "-test", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", p) {
			for _, m := range notLinked {
				if strings.HasPrefix(d, m) {
					bad = append(bad, d)
				}
			}
		}
		if len(bad) > 0 {
			t.Errorf("the tests or examples of %s import %d packages a jig does not link, which its go mod tidy downloads: %s",
				p, len(bad), strings.Join(bad[:min(len(bad), 3)], ", "))
		}
	}
}
