package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestRunWritesVerifiableCSRs(t *testing.T) {
	out := t.TempDir()
	var buf bytes.Buffer
	if err := run(t.Context(), config{Devices: 3, Store: "mem:", Algorithm: "ES256", Out: out}, &buf); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "3 identities") || !strings.Contains(buf.String(), "the store holds 3 keys") {
		t.Errorf("summary missing:\n%s", buf.String())
	}
	files, _ := filepath.Glob(filepath.Join(out, "*.csr.pem"))
	if len(files) != 3 {
		t.Fatalf("wrote %d CSRs, want 3", len(files))
	}
	for _, f := range files {
		cmd := exec.Command("openssl", "req", "-in", f, "-noout", "-verify", "-subject")
		got, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("openssl req -verify %s: %v\n%s (install openssl)", f, err, got)
		}
		serial := strings.TrimSuffix(filepath.Base(f), ".csr.pem")
		if !strings.Contains(string(got), "serialNumber") || !strings.Contains(string(got), serial) {
			t.Errorf("openssl subject of %s lacks the serial:\n%s", f, got)
		}
	}
}

func TestRunFileStore(t *testing.T) {
	dir := t.TempDir()
	pass := filepath.Join(dir, "pass")
	if err := os.WriteFile(pass, []byte("correct horse battery staple\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	uri := "file:" + filepath.Join(dir, "keys") + "?passphrase-source=file:" + pass
	var buf bytes.Buffer
	if err := run(t.Context(), config{Devices: 2, Store: uri, Algorithm: "EdDSA"}, &buf); err != nil {
		t.Fatal(err)
	}
	keys, _ := filepath.Glob(filepath.Join(dir, "keys", "device-*"))
	if len(keys) != 2 {
		t.Errorf("file store holds %d key files, want 2:\n%s", len(keys), buf.String())
	}
}

func TestRunRefusesBadInput(t *testing.T) {
	for _, cfg := range []config{
		{Devices: 0, Store: "mem:", Algorithm: "ES256"},
		{Devices: 1, Store: "mem:", Algorithm: "RS1"},
		{Devices: 1, Store: "nosuch:", Algorithm: "ES256"},
	} {
		if err := run(t.Context(), cfg, &bytes.Buffer{}); err == nil {
			t.Errorf("run(%+v) succeeded", cfg)
		}
	}
}
