// Package nodetest gives interop tests an independent reader written in
// JavaScript: Node.js with npm packages pinned by version, installed once
// into the user cache directory and shared by every test that asks for the
// same package and version.
package nodetest

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Modules returns the node_modules directory holding pkg at version (with
// its dependencies), installing it with npm the first time. It fails tb,
// naming the Debian packages to install, when node or npm is missing;
// under -short it skips tb instead.
func Modules(tb testing.TB, pkg, version string) string {
	tb.Helper()
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			if testing.Short() {
				tb.Skipf("%s not installed (-short)", tool)
			}
			tb.Fatalf("this interop test needs %s: install Node.js 18 or later (Debian: apt-get install nodejs npm)", tool)
		}
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "ztm-test", pkg+"-"+version)
	mods := filepath.Join(dir, "node_modules")
	if _, err := os.Stat(filepath.Join(mods, pkg, "package.json")); err == nil {
		return mods
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		tb.Fatal(err)
	}
	// Install into a fresh directory, then rename it into place, so that
	// a concurrent or interrupted install never leaves a half-filled one.
	tmp, err := os.MkdirTemp(filepath.Dir(dir), "install-")
	if err != nil {
		tb.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	cmd := exec.Command("npm", "install", "--no-save", "--no-audit", "--no-fund", "--prefix", tmp, pkg+"@"+version)
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("npm install %s@%s: %v\n%s", pkg, version, err, out)
	}
	if err := os.Rename(tmp, dir); err != nil {
		if _, serr := os.Stat(filepath.Join(mods, pkg, "package.json")); serr != nil {
			tb.Fatalf("installing %s: %v", pkg, err)
		}
	}
	return mods
}

// Run runs node on script with args, NODE_PATH set to mods, and returns
// its standard output. It fails tb with node's standard error when node
// exits with an error.
func Run(tb testing.TB, mods, script string, args ...string) []byte {
	tb.Helper()
	cmd := exec.Command("node", append([]string{script}, args...)...)
	cmd.Env = append(os.Environ(), "NODE_PATH="+mods)
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		tb.Fatalf("node %s: %v\n%s", filepath.Base(script), err, stderr)
	}
	return out
}
