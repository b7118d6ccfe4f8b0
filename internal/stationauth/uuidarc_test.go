package stationauth

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// uuidArc is the X.667 arc ztm generated for its private OIDs: the
// integer value of the random (version 4) UUID
// fa0ad25f-73f0-4c22-918b-589a5505278e, made once from the kernel's
// random source. It is not used in certificates yet: see the package
// documentation and TestUUIDArcParsers.
const (
	uuidArcUUID = "fa0ad25f-73f0-4c22-918b-589a5505278e"
	uuidArc     = "2.25.332363188783387800071829934424400930702"
)

func TestUUIDArcIsAVersion4UUID(t *testing.T) {
	hex := strings.ReplaceAll(uuidArcUUID, "-", "")
	n, ok := new(big.Int).SetString(hex, 16)
	if !ok || len(hex) != 32 {
		t.Fatal("not a UUID")
	}
	if hex[12] != '4' || !strings.ContainsRune("89ab", rune(hex[16])) {
		t.Fatalf("UUID %s is not version 4, RFC 9562 variant", uuidArcUUID)
	}
	if got := "2.25." + n.String(); got != uuidArc {
		t.Fatalf("X.667 arc of %s is %s, not %s", uuidArcUUID, got, uuidArc)
	}
}

// TestUUIDArcParsers records why the station authorization extension is
// not under ztm's UUID arc: Go's certificate parser, and with it
// crypto/tls, refuses any certificate with an extension whose OID has an
// arc of 2^31 or more, as every UUID arc is, while openssl and node read
// it. A station certificate under the UUID arc could not be a TLS client
// certificate to a Go server. If this test fails because Go now parses
// it, the extension can move to uuidArc + ".1.1" (reading the old OID
// too), and the documentation must say so.
func TestUUIDArcParsers(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		if testing.Short() {
			t.Skip("openssl not installed (-short)")
		}
		t.Fatal("openssl not found: install the Debian package openssl (scripts/install-deps.sh)")
	}
	dir := t.TempDir()
	out, err := exec.Command(openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
		"-keyout", filepath.Join(dir, "k.pem"), "-out", filepath.Join(dir, "c.pem"), "-subj", "/CN=uuid arc", "-days", "1",
		"-addext", uuidArc+".1.1=DER:30:08:02:01:01:30:00:30:00").CombinedOutput()
	if err != nil {
		t.Fatalf("openssl req: %v\n%s", err, out)
	}
	certPEM, err := os.ReadFile(filepath.Join(dir, "c.pem"))
	if err != nil {
		t.Fatal(err)
	}
	text, err := exec.Command(openssl, "x509", "-in", filepath.Join(dir, "c.pem"), "-noout", "-text").CombinedOutput()
	if err != nil || !bytes.Contains(text, []byte(uuidArc+".1.1")) {
		t.Fatalf("openssl does not read it: %v\n%s", err, text)
	}
	if node, err := exec.LookPath("node"); err == nil {
		out, err := exec.Command(node, "-e", `const {X509Certificate} = require("crypto");
console.log(new X509Certificate(require("fs").readFileSync(process.argv[1])).subject)`, filepath.Join(dir, "c.pem")).CombinedOutput()
		if err != nil || !bytes.Contains(out, []byte("CN=uuid arc")) {
			t.Fatalf("node does not load it: %v\n%s", err, out)
		}
	}
	block, _ := pem.Decode(certPEM)
	if _, err := x509.ParseCertificate(block.Bytes); err == nil || !strings.Contains(err.Error(), "extension OID") {
		t.Fatalf("Go's x509.ParseCertificate now answers %v for a UUID-arc extension: ztm can move the station authorization OID under %s", err, uuidArc)
	}
}
