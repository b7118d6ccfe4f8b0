// Package softhsmtest makes fresh SoftHSM2 tokens for tests, in a
// temporary token directory of the test process.
//
// SoftHSM reads its configuration (SOFTHSM2_CONF) once, at C_Initialize,
// and a PKCS#11 module is initialized once per process. So the
// configuration is per test process, set up by [Main] from TestMain before
// any test can initialize the module, and each test makes its own tokens in
// it with [New]:
//
//	func TestMain(m *testing.M) { os.Exit(softhsmtest.Main(m)) }
//
//	func TestX(t *testing.T) {
//		tok := softhsmtest.New(t)
//		store, err := pkcs11.Open(ctx, pkcs11.Config{ModulePath: tok.Module, TokenLabel: tok.Label, PIN: tok.PIN})
//		…
//	}
//
// # Visibility of new tokens
//
// [New] runs softhsm2-util, another process. A module that this process
// has already initialized does not see tokens created after that: make the
// tokens a test needs before opening stores on them, and close every store
// (so that the last Close finalizes the module) before the next test makes
// its tokens.
//
// # Fault injection
//
// [NewFaulty] compiles a PKCS#11 module that passes every call through to
// SoftHSM2 but can refuse logins or report the token removed, and counts
// the C_Login calls: open a store on it (set the Token's Module to
// [Faulty.Module]) to test what a store does when a real token misbehaves.
// It needs gcc.
//
// # Missing tools
//
// Without the SoftHSM2 module or softhsm2-util, [New] fails the test with
// a message naming the Debian package to install (softhsm2), and skips it
// under -short. [Token.Tool] does the same for pkcs11-tool (opensc).
package softhsmtest

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// ModulePath is where Debian's softhsm2 package installs the SoftHSM2
// PKCS#11 module.
const ModulePath = "/usr/lib/softhsm/libsofthsm2.so"

// state is set by Main for the test process (a test-only hook).
var state struct {
	mu  sync.Mutex
	dir string // the token directory, "" before Main
	err error  // why Main could not set up, if it could not
}

// Main writes a SoftHSM2 configuration in a new temporary directory, points
// SOFTHSM2_CONF at it, runs the tests and removes the directory. Call it
// from TestMain, so that the variable is set before any test initializes
// the module:
//
//	func TestMain(m *testing.M) { os.Exit(softhsmtest.Main(m)) }
func Main(m *testing.M) int {
	dir, err := os.MkdirTemp("", "softhsmtest-")
	if err == nil {
		defer os.RemoveAll(dir)
		err = setup(dir)
	}
	state.mu.Lock()
	state.dir, state.err = filepath.Join(dir, "tokens"), err
	state.mu.Unlock()
	return m.Run()
}

func setup(dir string) error {
	tokens := filepath.Join(dir, "tokens")
	if err := os.Mkdir(tokens, 0o700); err != nil {
		return err
	}
	conf := filepath.Join(dir, "softhsm2.conf")
	text := "directories.tokendir = " + tokens + "\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n"
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		return err
	}
	return os.Setenv("SOFTHSM2_CONF", conf)
}

// Token is a SoftHSM2 token made by [New].
type Token struct {
	Module string // the module's path, [ModulePath]
	Label  string // the token label, unique in the test process
	PIN    string // the user PIN
	SOPIN  string // the security officer PIN
}

// URI returns a PKCS#11 URI (RFC 7512) that opens the token, with the PIN
// given by value.
func (tok Token) URI() string {
	return "pkcs11:token=" + escape(tok.Label) + "?module-path=" + escape(tok.Module) + "&pin-value=" + escape(tok.PIN)
}

// escape percent-encodes v for an RFC 7512 attribute value, keeping '/'.
func escape(v string) string {
	return strings.ReplaceAll(url.PathEscape(v), "%2F", "/")
}

// New makes a new, empty token with a random label and PIN. It fails the
// test if the module or softhsm2-util is missing (skips it under -short),
// or if [Main] did not run.
func New(t testing.TB) Token {
	t.Helper()
	need(t, ModulePath, "softhsm2")
	util := need(t, "softhsm2-util", "softhsm2")
	state.mu.Lock()
	dir, err := state.dir, state.err
	state.mu.Unlock()
	if err != nil {
		t.Fatalf("softhsmtest: setting up SoftHSM2 failed: %v", err)
	}
	if dir == "" {
		t.Fatal("softhsmtest: call softhsmtest.Main from TestMain: func TestMain(m *testing.M) { os.Exit(softhsmtest.Main(m)) }")
	}
	tok := Token{Module: ModulePath, Label: "t-" + randHex(t, 8), PIN: randHex(t, 8), SOPIN: randHex(t, 8)}
	cmd := exec.Command(util, "--init-token", "--free", "--label", tok.Label, "--pin", tok.PIN, "--so-pin", tok.SOPIN)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("softhsmtest: softhsm2-util --init-token failed: %v\n%s", err, out)
	}
	return tok
}

// Tool runs pkcs11-tool (from opensc) on the token's module with args,
// logged in with the token's PIN when login is true, and returns its
// combined output. It fails the test when the tool fails, and when it is
// missing (skips under -short).
func (tok Token) Tool(t testing.TB, login bool, args ...string) string {
	t.Helper()
	out, err := tok.TryTool(t, login, args...)
	if err != nil {
		t.Fatalf("softhsmtest: pkcs11-tool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// TryTool is Tool that returns the tool's failure instead of failing the
// test.
func (tok Token) TryTool(t testing.TB, login bool, args ...string) (string, error) {
	t.Helper()
	tool := need(t, "pkcs11-tool", "opensc")
	full := []string{"--module", tok.Module, "--token-label", tok.Label}
	if login {
		full = append(full, "--login", "--pin", tok.PIN)
	}
	full = append(full, args...)
	out, err := exec.Command(tool, full...).CombinedOutput()
	return string(out), err
}

// need returns the path of a file or command, failing the test (or skipping
// it under -short) with the package to install when it is missing.
func need(t testing.TB, what, pkg string) string {
	t.Helper()
	var path string
	var err error
	if filepath.IsAbs(what) {
		path = what
		_, err = os.Stat(what)
	} else {
		path, err = exec.LookPath(what)
	}
	if err == nil {
		return path
	}
	msg := fmt.Sprintf("softhsmtest: %s is missing: install it with `apt-get install %s` (or run scripts/install-deps.sh)", what, pkg)
	if testing.Short() {
		t.Skip(msg)
	}
	t.Fatal(msg)
	return ""
}

func randHex(t testing.TB, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
