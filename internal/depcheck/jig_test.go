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
