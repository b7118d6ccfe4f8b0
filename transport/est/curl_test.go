package est_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ztmkit/ztm/internal/estline"
	"github.com/ztmkit/ztm/transport/est"
)

func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if testing.Short() {
			t.Skipf("%s not installed", name)
		}
		t.Fatalf("%s not found: install the Debian package %q (scripts/install-deps.sh does)", name, name)
	}
	return p
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

func run(t *testing.T, stdin []byte, name string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Stdin = bytes.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return out
}

// TestCurlOpenSSLClient has curl and openssl act as the EST client:
// openssl makes the device key and IDevID request (serialNumber and a
// hardwareModuleName naming the device's UEID), curl POSTs it base64 over
// mTLS with the station's certificate, and openssl reads the certs-only
// answer.
func TestCurlOpenSSLClient(t *testing.T) {
	t.Parallel()
	curl := needTool(t, "curl")
	openssl := needTool(t, "openssl")
	ctx := context.Background()
	e := newEnv(t, estline.Config{Server: func(c *est.ServerConfig) {
		c.BasicAuth = []est.BasicCredential{{Username: "legacy-tool", Password: "s3cret-passphrase", Profiles: []string{"idevid"}}}
	}})
	st, key := e.Station("idevid")
	dir := t.TempDir()
	writePEM(t, filepath.Join(dir, "root.pem"), "CERTIFICATE", e.PKI.Root.Raw)
	writePEM(t, filepath.Join(dir, "station.pem"), "CERTIFICATE", st.Raw)
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, filepath.Join(dir, "station.key"), "PRIVATE KEY", kder)

	d := e.Devices[0]
	cnf := `[req]
prompt = no
distinguished_name = dn
req_extensions = ext
[dn]
serialNumber = SN-CURL-1
[ext]
subjectAltName = otherName:1.3.6.1.5.5.7.8.4;SEQUENCE:hmn
[hmn]
hwType = OID:` + hwType.String() + `
hwSerialNum = FORMAT:HEX,OCTETSTRING:` + hex.EncodeToString(d.UEID) + "\n"
	os.WriteFile(filepath.Join(dir, "req.cnf"), []byte(cnf), 0o600)
	enroll := func(serial string, auth ...string) []byte {
		// Each request is another device: a device holds one IDevID.
		d = d.Twin(t)
		cnf := cnf[:strings.LastIndex(cnf, "hwSerialNum")] + "hwSerialNum = FORMAT:HEX,OCTETSTRING:" + hex.EncodeToString(d.UEID) + "\n"
		os.WriteFile(filepath.Join(dir, "req.cnf"), []byte(strings.Replace(cnf, "SN-CURL-1", serial, 1)), 0o600)
		run(t, nil, openssl, "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
			"-keyout", filepath.Join(dir, "device.key"), "-config", filepath.Join(dir, "req.cnf"),
			"-outform", "DER", "-out", filepath.Join(dir, "device.csr"))
		csr, _ := os.ReadFile(filepath.Join(dir, "device.csr"))
		os.WriteFile(filepath.Join(dir, "device.b64"), []byte(base64.StdEncoding.EncodeToString(csr)), 0o600)
		nonce, err := e.Nonces.Issue()
		if err != nil {
			t.Fatal(err)
		}
		d.BindCSR(t, csr) // the device's evidence confirms the key openssl made
		ev := base64.StdEncoding.EncodeToString(d.Evidence(t, nonce))
		args := append([]string{"-sS", "--fail-with-body", "--tlsv1.2", "--cacert", filepath.Join(dir, "root.pem")}, auth...)
		args = append(args,
			"-H", "Content-Type: application/pkcs10",
			"-H", "Content-Transfer-Encoding: base64",
			"-H", est.HeaderEvidence+": "+ev,
			"--data-binary", "@"+filepath.Join(dir, "device.b64"),
			e.URL+"/.well-known/est/simpleenroll")
		return run(t, nil, curl, args...)
	}

	b64 := enroll("SN-CURL-1", "--cert", filepath.Join(dir, "station.pem"), "--key", filepath.Join(dir, "station.key"))
	der := run(t, b64, openssl, "base64", "-d")
	printed := string(run(t, der, openssl, "pkcs7", "-inform", "DER", "-print_certs", "-noout"))
	if !strings.Contains(printed, "serialNumber = SN-CURL-1") || !strings.Contains(printed, "issuer=CN = Test Issuing CA") {
		t.Fatalf("openssl pkcs7 -print_certs:\n%s", printed)
	}
	// RFC 7030 §4.2.3: the answer holds the issued certificate only.
	if n := strings.Count(printed, "subject="); n != 1 {
		t.Fatalf("simpleenroll answered %d certificates, want 1:\n%s", n, printed)
	}
	// The device's key is the certificate's.
	pemOut := run(t, der, openssl, "pkcs7", "-inform", "DER", "-print_certs")
	leafPub := run(t, pemOut, openssl, "x509", "-noout", "-pubkey")
	devPub := run(t, nil, openssl, "pkey", "-in", filepath.Join(dir, "device.key"), "-pubout")
	if !bytes.Equal(leafPub, devPub) {
		t.Fatal("issued certificate is not for the device's key")
	}

	// cacerts with curl, no client certificate.
	cacerts := run(t, nil, curl, "-sS", "--fail-with-body", "--cacert", filepath.Join(dir, "root.pem"), e.URL+"/.well-known/est/cacerts")
	printed = string(run(t, run(t, cacerts, openssl, "base64", "-d"), openssl, "pkcs7", "-inform", "DER", "-print_certs", "-noout"))
	if !strings.Contains(printed, "CN = Test Root CA") {
		t.Fatalf("cacerts:\n%s", printed)
	}

	// HTTP Basic instead of a client certificate.
	b64 = enroll("SN-CURL-2", "-u", "legacy-tool:s3cret-passphrase")
	printed = string(run(t, run(t, b64, openssl, "base64", "-d"), openssl, "pkcs7", "-inform", "DER", "-print_certs", "-noout"))
	if !strings.Contains(printed, "serialNumber = SN-CURL-2") || strings.Count(printed, "subject=") != 1 {
		t.Fatalf("basic:\n%s", printed)
	}
	h, _ := e.Ledger.Head(ctx)
	if h.Seq != 3 { // station + two devices
		t.Fatalf("ledger holds %d records, want 3", h.Seq)
	}
}

// TestCurlOpenSSLReenroll has curl and openssl renew an LDevID as a plain
// RFC 7030 client does: the re-enrollment request is made by openssl with
// the subject copied from the certificate being renewed, which openssl
// encodes as UTF8String where the CA wrote PrintableString. RFC 5280 §7.1
// name matching (RFC 7030 §4.2.2) accepts it.
func TestCurlOpenSSLReenroll(t *testing.T) {
	t.Parallel()
	curl := needTool(t, "curl")
	openssl := needTool(t, "openssl")
	e := newEnv(t, estline.Config{})
	st, key := e.Station("ldevid")
	dir := t.TempDir()
	file := func(name string) string { return filepath.Join(dir, name) }
	writePEM(t, file("root.pem"), "CERTIFICATE", e.PKI.Root.Raw)
	writePEM(t, file("station.pem"), "CERTIFICATE", st.Raw)
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, file("station.key"), "PRIVATE KEY", kder)
	d := e.Devices[0]
	cnf := `[req]
prompt = no
distinguished_name = dn
req_extensions = ext
[dn]
O = Example OEM
CN = sensor-42
serialNumber = SN-RENEW-1
[ext]
subjectAltName = otherName:1.3.6.1.5.5.7.8.4;SEQUENCE:hmn
[hmn]
hwType = OID:` + hwType.String() + `
hwSerialNum = FORMAT:HEX,OCTETSTRING:` + hex.EncodeToString(d.UEID) + "\n"
	if err := os.WriteFile(file("req.cnf"), []byte(cnf), 0o600); err != nil {
		t.Fatal(err)
	}
	post := func(op, csrFile string, auth ...string) []byte {
		csr, err := os.ReadFile(csrFile)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(file("body.b64"), []byte(base64.StdEncoding.EncodeToString(csr)), 0o600)
		d.BindCSR(t, csr)
		nonce, err := e.Nonces.Issue()
		if err != nil {
			t.Fatal(err)
		}
		args := append([]string{"-sS", "--fail-with-body", "--cacert", file("root.pem")}, auth...)
		args = append(args,
			"-H", "Content-Type: application/pkcs10",
			"-H", "Content-Transfer-Encoding: base64",
			"-H", est.HeaderEvidence+": "+base64.StdEncoding.EncodeToString(d.Evidence(t, nonce)),
			"--data-binary", "@"+file("body.b64"),
			e.URL+"/.well-known/est/ldevid/"+op)
		der := run(t, run(t, nil, curl, args...), openssl, "base64", "-d")
		return run(t, der, openssl, "pkcs7", "-inform", "DER", "-print_certs")
	}
	run(t, nil, openssl, "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
		"-keyout", file("device.key"), "-config", file("req.cnf"), "-outform", "DER", "-out", file("device.csr"))
	leafPEM := post("simpleenroll", file("device.csr"),
		"--cert", file("station.pem"), "--key", file("station.key"))
	os.WriteFile(file("ldevid.pem"), leafPEM, 0o600)

	// The renewal request: a new key, the subject copied from the
	// certificate, the same subjectAltName.
	subject := strings.TrimSpace(strings.TrimPrefix(string(run(t, leafPEM, openssl, "x509", "-noout", "-subject", "-nameopt", "compat")), "subject="))
	run(t, nil, openssl, "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
		"-keyout", file("device2.key"), "-config", file("req.cnf"), "-subj", subject, "-outform", "DER", "-out", file("renew.csr"))
	csrDER, _ := os.ReadFile(file("renew.csr"))
	csr, err := x509.ParseCertificateRequest(csrDER)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(leafPEM)
	leaf, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(csr.RawSubject, leaf.RawSubject) || csr.Subject.String() != leaf.Subject.String() {
		t.Fatalf("test premise: the request should spell the certificate's subject %q differently (request %q)", leaf.Subject, csr.Subject)
	}
	renewedPEM := post("simplereenroll", file("renew.csr"),
		"--cert", file("ldevid.pem"), "--key", file("device.key"))
	printed := string(run(t, renewedPEM, openssl, "x509", "-noout", "-subject", "-serial"))
	if !strings.Contains(printed, "CN = sensor-42") || strings.Contains(printed, strings.TrimSpace(string(run(t, leafPEM, openssl, "x509", "-noout", "-serial")))) {
		t.Fatalf("renewed certificate:\n%s", printed)
	}
	renewedPub := run(t, renewedPEM, openssl, "x509", "-noout", "-pubkey")
	if !bytes.Equal(renewedPub, run(t, nil, openssl, "pkey", "-in", file("device2.key"), "-pubout")) {
		t.Fatal("renewed certificate is not for the new key")
	}
}
