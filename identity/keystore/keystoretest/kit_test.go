package keystoretest_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/ztmkit/ztm/identity/keystore"
	"github.com/ztmkit/ztm/identity/keystore/keystoretest"
	"github.com/ztmkit/ztm/identity/keystore/mem"
)

// The kit must catch broken stores. Each broken store below runs the kit in
// a child process, which must fail on the named check.

// laxLabels accepts any label.
type laxLabels struct{ *mem.Store }

func (s laxLabels) Create(ctx context.Context, req keystore.CreateRequest) (keystore.Key, error) {
	if keystore.ValidateLabel(req.Label) != nil {
		req.Label = "sanitized"
	}
	return s.Store.Create(ctx, req)
}

// wrongKeyOnGet returns a fresh key from Get.
type wrongKeyOnGet struct{ *mem.Store }

func (s wrongKeyOnGet) Get(ctx context.Context, label string) (keystore.Key, error) {
	if _, err := s.Store.Get(ctx, label); err != nil {
		return nil, err
	}
	other := mem.New()
	return other.Create(ctx, keystore.CreateRequest{Label: label})
}

// es256Only claims every algorithm but always makes ES256 keys.
type es256Only struct{ *mem.Store }

func (s es256Only) Create(ctx context.Context, req keystore.CreateRequest) (keystore.Key, error) {
	req.Algorithm = keystore.ES256
	return s.Store.Create(ctx, req)
}

var broken = map[string]func() keystore.Store{
	"laxLabels":     func() keystore.Store { return laxLabels{mem.New()} },
	"wrongKeyOnGet": func() keystore.Store { return wrongKeyOnGet{mem.New()} },
	"es256Only":     func() keystore.Store { return es256Only{mem.New()} },
}

func TestBrokenStoreChild(t *testing.T) {
	name := os.Getenv("KEYSTORETEST_BROKEN")
	if name == "" {
		t.Skip("runs only as the child of TestKitCatchesBrokenStores")
	}
	keystoretest.Run(t, func(t *testing.T) keystoretest.Opener {
		return func() (keystore.Store, error) { return broken[name](), nil }
	}, keystoretest.Config{})
}

func TestKitCatchesBrokenStores(t *testing.T) {
	want := map[string]string{
		"laxLabels":     "--- FAIL: TestBrokenStoreChild/BadLabels",
		"wrongKeyOnGet": "--- FAIL: TestBrokenStoreChild/SignVerify",
		"es256Only":     "--- FAIL: TestBrokenStoreChild/SignVerify/ES384",
	}
	for name, failure := range want {
		t.Run(name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run", "^TestBrokenStoreChild$", "-test.v")
			cmd.Env = append(os.Environ(), "KEYSTORETEST_BROKEN="+name)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("the kit passed a broken store:\n%s", out)
			}
			if !strings.Contains(string(out), failure) {
				t.Fatalf("kit output lacks %q:\n%s", failure, out)
			}
		})
	}
}

func TestCheckErrorMessage(t *testing.T) {
	for _, tc := range []struct {
		msg string
		bad bool
	}{
		{"keystore: key not found", false},
		{"pkcs11: keystore: key not found: \"k\"", false},
		{"file: key \"k\": keystore: authentication failed", false},
		{"keystore: keystore: unsupported algorithm", true},
		{"file: key \"k\": file: keystore: authentication failed", true},
		{"vault: key \"k\": vault: sealed", true},
		{"vault: key \"k\": read: connection reset", false},
	} {
		rec := &recorder{TB: t}
		keystoretest.CheckErrorMessage(rec, errors.New(tc.msg))
		if rec.failed != tc.bad {
			t.Errorf("CheckErrorMessage(%q) failed = %v, want %v", tc.msg, rec.failed, tc.bad)
		}
	}
}

// recorder is a testing.TB that records Errorf instead of failing.
type recorder struct {
	testing.TB
	failed bool
}

func (r *recorder) Errorf(string, ...any) { r.failed = true }
func (r *recorder) Helper()               {}
