//go:build cgo

package pkcs11_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestBuildWithoutCgo builds and runs a program that uses the package with
// CGO_ENABLED=0: it must compile, and opening a store must say that cgo
// is needed, while a bad URI is still refused as such.
func TestBuildWithoutCgo(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a program")
	}
	cmd := exec.Command("go", "run", "./testdata/nocgo")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go run with CGO_ENABLED=0: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 2 || lines[0] != "true true true" || !strings.Contains(lines[1], "CGO_ENABLED=1") {
		t.Fatalf("output:\n%s", out)
	}
}
