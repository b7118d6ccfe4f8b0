package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestJigInProcess(t *testing.T) {
	t.Parallel()
	testRun(t, config{Devices: 3, KeyStore: "mem:"})
}

func TestJigEST(t *testing.T) {
	t.Parallel()
	testRun(t, config{Devices: 2, KeyStore: "mem:", EST: true})
}

// TestJigFileKeyStore runs the jig twice with its station key in a file
// key store: the second run uses the key the first one made.
func TestJigFileKeyStore(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	pass := filepath.Join(dir, "pass")
	if err := os.WriteFile(pass, []byte("jig test passphrase\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	uri := "file:" + filepath.Join(dir, "keys") + "?passphrase-source=file:" + pass
	testRun(t, config{Devices: 1, KeyStore: uri})
	out := testRun(t, config{Devices: 1, KeyStore: uri})
	if strings.Contains(out, "jig test passphrase") {
		t.Errorf("output shows the passphrase:\n%s", out)
	}
	if entries, err := os.ReadDir(filepath.Join(dir, "keys")); err != nil || len(entries) == 0 {
		t.Fatalf("no station key in the file store: %v %v", entries, err)
	}
}

func TestJigBadConfig(t *testing.T) {
	t.Parallel()
	for _, cfg := range []config{{Devices: 0, KeyStore: "mem:"}, {Devices: 1, KeyStore: "nosuch:"}, {Devices: 1, KeyStore: "mem:x"}} {
		var out bytes.Buffer
		if err := run(context.Background(), cfg, &out); err == nil {
			t.Errorf("run(%+v) succeeded", cfg)
		}
	}
}

func testRun(t *testing.T, cfg config) string {
	t.Helper()
	cfg.Dir = t.TempDir()
	var out bytes.Buffer
	if err := run(context.Background(), cfg, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	if got := strings.Count(out.String(), "affirming"); got != cfg.Devices {
		t.Errorf("%d devices affirming, want %d:\n%s", got, cfg.Devices, out.String())
	}
	if !strings.Contains(out.String(), "final-test step 2") || !strings.Contains(out.String(), "OK ") {
		t.Errorf("no final-test step or no OK:\n%s", out.String())
	}
	return out.String()
}

// TestREADMESnippet checks that the Go snippet of the README's "In your
// jig" section is this program's code, between the README:begin and
// README:end markers of main.go, which the build compiles.
func TestREADMESnippet(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "\n## In your jig\n")
	if !ok {
		t.Fatal(`README has no "## In your jig" section`)
	}
	_, block, ok := strings.Cut(section, "```go\n")
	if !ok {
		t.Fatal(`"In your jig" has no Go block`)
	}
	block, _, ok = strings.Cut(block, "```")
	if !ok {
		t.Fatal("unterminated Go block")
	}
	src, err := os.ReadFile("main.go")
	if err != nil {
		t.Fatal(err)
	}
	_, region, ok := strings.Cut(string(src), "// README:begin\n")
	if !ok {
		t.Fatal("main.go has no README:begin marker")
	}
	region, _, ok = strings.Cut(region, "\t// README:end\n")
	if !ok {
		t.Fatal("main.go has no README:end marker")
	}
	if got, want := block, dedent(region); got != want {
		t.Errorf("README snippet differs from main.go; want:\n%s\ngot:\n%s", want, got)
	}
}

// dedent removes one leading tab from every line.
func dedent(s string) string {
	lines := strings.SplitAfter(s, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimPrefix(l, "\t")
	}
	return strings.Join(lines, "")
}
