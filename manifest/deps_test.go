package manifest_test

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestDependencies keeps package manifest on the dependencies DESIGN.md
// gives it: the standard library, CBOR, go-cose, transparency-dev/merkle
// and ztm's own keystore interfaces. DO NOT add packages here just to make
// the test pass.
func TestDependencies(t *testing.T) {
	allowed := []string{
		"github.com/fxamacker/cbor/v2",
		"github.com/x448/float16",
		"github.com/veraison/go-cose",
		"github.com/transparency-dev/merkle",
		"github.com/transparency-dev/merkle/compact",
		"github.com/transparency-dev/merkle/proof",
		"github.com/transparency-dev/merkle/rfc6962",
		"github.com/ztmkit/ztm/identity/keystore",
		"github.com/ztmkit/ztm/internal/detcbor",
		"github.com/ztmkit/ztm/manifest",
	}
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", "github.com/ztmkit/ztm/manifest").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		if !slices.Contains(allowed, dep) {
			t.Errorf("package manifest depends on %s", dep)
		}
	}
}
