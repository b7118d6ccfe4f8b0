package ztm_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/ztmkit/ztm"
	"github.com/ztmkit/ztm/attest"
	"github.com/ztmkit/ztm/ca"
	"github.com/ztmkit/ztm/ca/enroll"
	"github.com/ztmkit/ztm/examples/linesim"
	"github.com/ztmkit/ztm/identity"
	"github.com/ztmkit/ztm/identity/keystore"
	"github.com/ztmkit/ztm/identity/keystore/file"
	"github.com/ztmkit/ztm/identity/keystore/mem"
	"github.com/ztmkit/ztm/internal/zerotest"
	"github.com/ztmkit/ztm/manifest"
)

// knownPrefixes is the package prefixes of the module (package names and
// its sentinels' first parts), read once from its source.
var knownPrefixes = sync.OnceValues(func() (map[string]bool, error) {
	m, err := moduleOnce()
	if err != nil {
		return nil, err
	}
	return m.known, nil
})

// moduleOnce parses the module's source once for the process.
var moduleOnce = sync.OnceValues(func() (*moduleSource, error) { return parseModule(".") })

// checkOnePrefix fails t if err's message names a package twice.
func checkOnePrefix(t *testing.T, what string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	known, kerr := knownPrefixes()
	if kerr != nil {
		t.Fatal(kerr)
	}
	if p := zerotest.Doubled(err.Error(), known); p != "" {
		t.Errorf("%s: %q twice in %q", what, p, err.Error())
	}
}

// TestOnePrefixRuntime drives error paths whose messages are made of
// several layers (station, EST client and server, enrollment, CA, key
// stores, decoders): none names a package twice.
func TestOnePrefixRuntime(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	errOf := func(_ any, err error) error { return err }

	// Refused devices, in process and over EST.
	for _, overEST := range []bool{false, true} {
		l := newLineEST(t, overEST)
		for i, kind := range linesim.TamperKinds() {
			d, err := l.NewDevice(uint32(100+i), linesim.DeviceOptions{Tamper: kind})
			if err != nil {
				t.Fatal(err)
			}
			st := l.Partners[linesim.ContractManufacturer].Station
			var target ztm.Device = d
			switch kind {
			case linesim.UnauthorizedStation:
				st = l.Partners[linesim.Rogue].Station
			case linesim.KeySubstitution:
				target = linesim.SubstituteKey(d)
			}
			_, err = st.Provision(ctx, target)
			if err == nil {
				t.Fatalf("%v: provisioned", kind)
			}
			checkOnePrefix(t, kind.String(), err)
		}
		requester := enroll.Requester{Certificate: l.Partners[linesim.ContractManufacturer].Chain[0]}
		checkOnePrefix(t, "Enroll(garbage CSR)", errOf(l.Service.Local(requester).Enroll(ctx, &enroll.Request{CSR: []byte{0x30, 0}})))
		checkOnePrefix(t, "Authority.Issue(garbage CSR)", errOf(l.Authority.Issue(ctx, &ca.Request{CSR: []byte{1}, Profile: "idevid"})))
		checkOnePrefix(t, "Authority.Issue(unknown profile)", errOf(l.Authority.Issue(ctx, &ca.Request{CSR: []byte{1}, Profile: "nope"})))
		checkOnePrefix(t, "CAVerifier.Verify(garbage)", errOf(l.CAVerifier.Verify(ctx, []byte{0xd2, 0x84})))
	}

	// Key stores: the file store's layers (directory, key file, softkey).
	dir := t.TempDir()
	kek := func(b byte) []byte { return bytes.Repeat([]byte{b}, 32) } // fewer PBKDF2 rounds than a passphrase
	fs, err := file.Open(dir, file.Config{KEK: kek(1)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fs.Create(ctx, keystore.CreateRequest{Label: "k"}); err != nil {
		t.Fatal(err)
	}
	checkOnePrefix(t, "file Create(bad algorithm)", errOf(fs.Create(ctx, keystore.CreateRequest{Label: "a", Algorithm: 250})))
	checkOnePrefix(t, "file Create(exists)", errOf(fs.Create(ctx, keystore.CreateRequest{Label: "k"})))
	checkOnePrefix(t, "file Create(bad label)", errOf(fs.Create(ctx, keystore.CreateRequest{Label: "../x"})))
	checkOnePrefix(t, "file Get(missing)", errOf(fs.Get(ctx, "missing")))
	wrong, err := file.Open(dir, file.Config{KEK: kek(2)})
	if err != nil {
		t.Fatal(err)
	}
	checkOnePrefix(t, "file Get(wrong KEK)", errOf(wrong.Get(ctx, "k")))
	if err := os.WriteFile(filepath.Join(dir, "bad.pem"), []byte("-----BEGIN X-----\nAA==\n-----END X-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	checkOnePrefix(t, "file Get(corrupt)", errOf(fs.Get(ctx, "bad")))
	fs.Close()
	checkOnePrefix(t, "file Get(closed)", errOf(fs.Get(ctx, "k")))
	notDir := filepath.Join(dir, "k.pem")
	checkOnePrefix(t, "file.Open(a file)", errOf(file.Open(notDir, file.Config{Passphrase: []byte("x")})))
	checkOnePrefix(t, "mem Create(bad algorithm)", errOf((&mem.Store{}).Create(ctx, keystore.CreateRequest{Label: "a", Algorithm: 250})))
	for _, uri := range []string{"file:", "file:/nonexistent/x?passphrase-source=env:ZTM_NO_SUCH_VAR",
		"pkcs11:token=x", "pkcs11:object=k;module-path=/nonexistent.so", "tpm:", "tpm:?device=/nonexistent", "nope:x"} {
		checkOnePrefix(t, "keystore.Open("+uri+")", errOf(keystore.Open(ctx, uri)))
	}

	// Decoders and parsers.
	checkOnePrefix(t, "identity.ParseUEID", errOf(identity.ParseUEID("zz")))
	checkOnePrefix(t, "identity.ParseOEMID", errOf(identity.ParseOEMID("zz")))
	checkOnePrefix(t, "identity.ParseCSR", errOf(identity.ParseCSR([]byte{0x30, 1, 0})))
	checkOnePrefix(t, "manifest.ParseSignedStep", errOf(manifest.ParseSignedStep([]byte{0xd2, 0x84, 0x40})))
	checkOnePrefix(t, "manifest.ParseChain", errOf(manifest.ParseChain([]byte{0x81, 0xd2})))
	checkOnePrefix(t, "manifest.ParsePolicyJSON", errOf(manifest.ParsePolicyJSON([]byte(`{"name":1}`))))
	checkOnePrefix(t, "manifest.ParseReceipt", errOf(manifest.ParseReceipt([]byte{0xa1})))
	checkOnePrefix(t, "attest.ParseResult", errOf(attest.ParseResult([]byte("a.b.c"), nil, nil)))
	checkOnePrefix(t, "ca.ParseCheckpoint", errOf(ca.ParseCheckpoint([]byte("x"), nil)))
}
