package keyseal_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// maxDeviceSide is the most a program that only opens sealed keys may
// weigh: a device-side program links HPKE and PKCS#8, not the CA, EST or
// a database.
const maxDeviceSide = 5 << 20

// TestDeviceSideSize builds testdata/opener, which calls only Open, and
// checks its size and that it links no other ztm package than keyseal and
// keystore.
func TestDeviceSideSize(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds a program")
	}
	out := filepath.Join(t.TempDir(), "opener")
	cmd := exec.Command("go", "build", "-o", out, "./testdata/opener")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	fi, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("device-side program: %d bytes", fi.Size())
	if fi.Size() > maxDeviceSide {
		t.Errorf("a program calling only keyseal.Open is %d bytes, over %d", fi.Size(), maxDeviceSide)
	}
	deps, err := exec.Command("go", "list", "-deps", "./testdata/opener").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range strings.Fields(string(deps)) {
		if strings.HasPrefix(d, "github.com/ztmkit/ztm") && d != "github.com/ztmkit/ztm/identity/keyseal" &&
			d != "github.com/ztmkit/ztm/identity/keystore" && !strings.HasSuffix(d, "/testdata/opener") {
			t.Errorf("the device side links %s", d)
		}
	}
}
