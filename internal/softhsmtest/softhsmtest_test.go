package softhsmtest

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

func TestNew(t *testing.T) {
	a, b := New(t), New(t)
	if a.Label == b.Label || a.PIN == b.PIN {
		t.Fatalf("two tokens share a label or PIN: %+v %+v", a, b)
	}
	conf := os.Getenv("SOFTHSM2_CONF")
	if conf == "" || !strings.HasPrefix(conf, os.TempDir()) {
		t.Fatalf("SOFTHSM2_CONF = %q, want a file in the temporary directory", conf)
	}
	out, err := exec.Command("softhsm2-util", "--show-slots").CombinedOutput()
	if err != nil {
		t.Fatalf("softhsm2-util --show-slots: %v\n%s", err, out)
	}
	for _, tok := range []Token{a, b} {
		if !strings.Contains(string(out), tok.Label) {
			t.Fatalf("token %q not in the configured token directory:\n%s", tok.Label, out)
		}
	}
	// pkcs11-tool logs in with the PIN New chose.
	if out := a.Tool(t, true, "--list-objects"); strings.Contains(out, "error") {
		t.Fatalf("pkcs11-tool --list-objects:\n%s", out)
	}
	if _, err := a.TryTool(t, false, "--login", "--pin", "wrong-pin", "--list-objects"); err == nil {
		t.Fatal("pkcs11-tool accepted a wrong PIN")
	}
	if !strings.Contains(a.URI(), "token="+a.Label) || !strings.Contains(a.URI(), "module-path="+ModulePath) {
		t.Fatalf("URI() = %q", a.URI())
	}
}

func TestFaulty(t *testing.T) {
	f := NewFaulty(t)
	tok := New(t)
	tok.Module = f.Module // pkcs11-tool through the faulty module
	if f.Logins(t) != nil {
		t.Fatal("logins before any call")
	}
	tok.Tool(t, true, "--list-objects")
	f.RefuseLogin(t, 0xa0) // CKR_PIN_INCORRECT
	if out, err := tok.TryTool(t, true, "--list-objects"); err == nil {
		t.Fatalf("login refused by the module, but pkcs11-tool succeeded:\n%s", out)
	}
	f.RefuseLogin(t, 0)
	f.Remove(t, true)
	if out, err := tok.TryTool(t, false, "--list-objects"); err == nil {
		t.Fatalf("token removed, but pkcs11-tool succeeded:\n%s", out)
	}
	f.Remove(t, false)
	tok.Tool(t, true, "--list-objects")
	if got := f.Logins(t); len(got) != 3 || got[0] != 0 || got[1] != 0xa0 || got[2] != 0 {
		t.Fatalf("logins = %#x, want [0 0xa0 0]", got)
	}
}
