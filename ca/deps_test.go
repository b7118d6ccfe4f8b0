package ca_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencies keeps package ca on the standard library, x/crypto, the
// CBOR library and ztm's key store interfaces: it must never import attest,
// manifest or transport (they depend on ca), nor a database driver.
func TestDependencies(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	allowed := map[string]bool{
		"github.com/ztmkit/ztm/ca":                true,
		"github.com/ztmkit/ztm/identity/keystore": true,
		"github.com/ztmkit/ztm/internal/detcbor":  true,
		"github.com/fxamacker/cbor/v2":            true,
		"github.com/x448/float16":                 true,
		"golang.org/x/crypto/cryptobyte":          true,
		"golang.org/x/crypto/cryptobyte/asn1":     true,
	}
	for _, pkg := range strings.Fields(string(out)) {
		first, _, _ := strings.Cut(pkg, "/")
		if !strings.Contains(first, ".") || strings.HasPrefix(pkg, "vendor/") {
			continue // standard library
		}
		if !allowed[pkg] {
			t.Errorf("ca depends on %s, which is not on the allowlist", pkg)
		}
	}
}
