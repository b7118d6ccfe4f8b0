package est_test

import (
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ztmkit/ztm/ca/enroll"
	"github.com/ztmkit/ztm/internal/estline"
	"github.com/ztmkit/ztm/transport/est"
)

// TestCurlEvidenceInCSR enrolls with the evidence inside the request
// (draft-ietf-lamps-csr-attestation) through curl, a client that sends no
// ztm header: openssl makes the device key and request, the device's
// evidence (confirming that key) goes into the request's id-aa-evidence
// attribute, openssl checks the re-signed request, and curl POSTs it. The
// same request without the attribute is refused on the profile, which
// requires evidence.
func TestCurlEvidenceInCSR(t *testing.T) {
	t.Parallel()
	curl := needTool(t, "curl")
	openssl := needTool(t, "openssl")
	e := newEnv(t, estline.Config{})
	st, key := e.Station("idevid")
	dir := t.TempDir()
	file := func(n string) string { return filepath.Join(dir, n) }
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
serialNumber = SN-CSR-EV
[ext]
subjectAltName = otherName:1.3.6.1.5.5.7.8.4;SEQUENCE:hmn
[hmn]
hwType = OID:` + hwType.String() + `
hwSerialNum = FORMAT:HEX,OCTETSTRING:` + hex.EncodeToString(d.UEID) + "\n"
	os.WriteFile(file("req.cnf"), []byte(cnf), 0o600)
	run(t, nil, openssl, "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
		"-keyout", file("device.key"), "-config", file("req.cnf"), "-outform", "DER", "-out", file("device.csr"))
	plain, _ := os.ReadFile(file("device.csr"))
	keyPEM, _ := os.ReadFile(file("device.key"))
	blk, _ := pem.Decode(keyPEM)
	devKey, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}

	// The device answers a nonce with evidence confirming its key, and
	// puts it in its request.
	nonce, err := e.Nonces.Issue()
	if err != nil {
		t.Fatal(err)
	}
	d.BindCSR(t, plain)
	attested, err := enroll.AddEvidenceToCSR(nil, devKey.(crypto.Signer), plain, d.Evidence(t, nonce))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(file("attested.csr"), attested, 0o600)
	// An independent reader checks the re-signed request.
	run(t, nil, openssl, "req", "-inform", "DER", "-in", file("attested.csr"), "-verify", "-noout")

	post := func(csr []byte) (code string, refusal string, body []byte) {
		os.WriteFile(file("body.b64"), []byte(base64.StdEncoding.EncodeToString(csr)), 0o600)
		cmd := exec.Command(curl, "-sS", "--cacert", file("root.pem"), "--cert", file("station.pem"), "--key", file("station.key"),
			"-H", "Content-Type: application/pkcs10", "-H", "Content-Transfer-Encoding: base64",
			"-D", file("headers"), "-o", file("out"), "-w", "%{http_code}",
			"--data-binary", "@"+file("body.b64"), e.URL+"/.well-known/est/simpleenroll")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("curl: %v", err)
		}
		h, _ := os.ReadFile(file("headers"))
		for _, line := range strings.Split(string(h), "\r\n") {
			if name, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(name, est.HeaderRefusal) {
				refusal = strings.TrimSpace(v)
			}
		}
		body, _ = os.ReadFile(file("out"))
		return string(out), refusal, body
	}

	// Without the evidence: refused, nothing issued.
	before := e.Issuances()
	if code, refusal, _ := post(plain); code != "403" || refusal != "evidence-required" {
		t.Fatalf("request without evidence: %s %q", code, refusal)
	}
	if e.Issuances() != before {
		t.Fatal("a request without evidence was issued")
	}
	// With the evidence inside: issued, for the device's key.
	code, refusal, body := post(attested)
	if code != "200" {
		t.Fatalf("attested request: %s %q %s", code, refusal, body)
	}
	der := run(t, body, openssl, "base64", "-d")
	leafPub := run(t, run(t, run(t, der, openssl, "pkcs7", "-inform", "DER", "-print_certs"), openssl, "x509", "-noout", "-pubkey"), "cat")
	devPub := run(t, nil, openssl, "pkey", "-in", file("device.key"), "-pubout")
	if string(leafPub) != string(devPub) {
		t.Fatalf("certificate for another key:\n%s\n%s", leafPub, devPub)
	}
}
