package tpm_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ztmkit/ztm/identity/keystore"
	_ "github.com/ztmkit/ztm/identity/keystore/tpm"
	"github.com/ztmkit/ztm/internal/tpmtest"
)

func TestOpenBadURI(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	for _, tc := range []struct{ uri, part string }{
		{"tpm:/dev/tpmrm0", "dir"},
		{"tpm:/dev/tpmrm0?dir=", "dir"},
		{"tpm:/dev/tpmrm0?dir=relative/keys", "dir"},
		{"tpm:/dev/tpmrm0?dir=/a/../b", "dir"},
		{"tpm:/dev/tpmrm0?dir=/a&dir=/b", "dir"},
		{"tpm:/dev/tpmrm0?dir=/a&max-loaded=0", "max-loaded"},
		{"tpm:/dev/tpmrm0?dir=/a&max-loaded=lots", "max-loaded"},
		{"tpm:/dev/tpmrm0?dir=/a&colour=blue", "colour"},
		{"tpm:/dev/tpmrm0?dir=/a&port=2321", "port"},
		{"tpm:/dev/tpmrm0?dir=/a;b=%zz", "query"},
		{"tpm://dev/tpmrm0?dir=/a", "path"},
		{"tpm:dev/tpmrm0?dir=/a", "path"},
		{"tpm:/dev/../dev/tpmrm0?dir=/a", "path"},
		{"tpm:/dev/tpm%zz?dir=/a", "path"},
		{"tpm:/dev/tpmrm0?dir=/a#frag", "fragment"},
		{"tpm:swtpm?dir=/a&host=192.0.2.1", "host"},
		{"tpm:swtpm?dir=/a&host=example.com", "host"},
		{"tpm:swtpm?dir=/a&port=0", "port"},
		{"tpm:swtpm?dir=/a&port=65536", "port"},
		{"tpm:swtpm?dir=/a&ctrl-port=2322", "ctrl-port"},
		// The device does not exist: the error points at the path.
		{"tpm:/nonexistent/tpm0?dir=" + dir, "path"},
		{"tpm:" + filepath.Join(dir, "nodev") + "?dir=" + dir, "path"},
	} {
		s, err := keystore.Open(ctx, tc.uri)
		if s != nil {
			s.Close()
		}
		var ue *keystore.URIError
		if !errors.As(err, &ue) || !errors.Is(err, keystore.ErrInvalidURI) {
			t.Errorf("Open(%q): err = %v, want a *keystore.URIError", tc.uri, err)
			continue
		}
		if ue.Part != tc.part {
			t.Errorf("Open(%q): error names part %q, want %q (%v)", tc.uri, ue.Part, tc.part, err)
		}
		if ue.URI == "" || !strings.Contains(err.Error(), tc.part) {
			t.Errorf("Open(%q): error %q does not show the URI and the part", tc.uri, err)
		}
	}
}

// TestOpenSwtpmNotRunning checks the error for a TCP TPM that is not there.
func TestOpenSwtpmNotRunning(t *testing.T) {
	port := freePort(t)
	_, err := keystore.Open(context.Background(), fmt.Sprintf("tpm:swtpm?port=%d&dir=%s", port, t.TempDir()))
	if err == nil || !strings.Contains(err.Error(), fmt.Sprint(port)) {
		t.Fatalf("Open(no swtpm): err = %v, want a connection error naming the port", err)
	}
}

// TestOpenSwtpmURI opens a store by URI on swtpm, checks that it survives
// reopening and that the URI's max-loaded is honoured by signing with more
// keys than it allows.
func TestOpenSwtpmURI(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: starts swtpm")
	}
	sw := tpmtest.StartSwtpm(t)
	uri := fmt.Sprintf("tpm:swtpm?port=%d&max-loaded=2&dir=%s", sw.Port, t.TempDir())
	ctx := context.Background()
	s, err := keystore.Open(ctx, uri)
	if err != nil {
		t.Fatal(err)
	}
	var keys []keystore.Key
	for i := range 4 {
		k, err := s.Create(ctx, keystore.CreateRequest{Label: fmt.Sprintf("k%d", i)})
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	for _, k := range append(keys, keys...) {
		signVerify(t, k)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = keystore.Open(ctx, uri)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	k, err := s.Get(ctx, "k3")
	if err != nil {
		t.Fatal(err)
	}
	signVerify(t, k)
}
