package ca_test

import (
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ztmkit/ztm/ca"
	"github.com/ztmkit/ztm/identity"
	"github.com/ztmkit/ztm/identity/keystore"
)

// openssl returns the path of the openssl binary, failing the test with
// what to install when it is missing.
func openssl(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("openssl")
	if err != nil {
		if testing.Short() {
			t.Skip("openssl not installed (-short)")
		}
		t.Fatal("openssl not found: install the Debian package openssl (scripts/install-deps.sh)")
	}
	return path
}

func runOpenSSL(t *testing.T, args ...string) (string, error) {
	t.Helper()
	out, err := exec.Command(openssl(t), args...).CombinedOutput()
	return string(out), err
}

// issueAll issues one certificate per profile for the openssl tests (the
// zlint tests, a module of their own in internal/zlinttest, have a copy).
func issueAll(t *testing.T, p *testPKI) map[string]*x509.Certificate {
	t.Helper()
	ctx := context.Background()
	key := deviceKey(t, "P-256")
	out := map[string]*x509.Certificate{}
	reqs := map[string]*ca.Request{
		"idevid": {CSR: idevidCSR(t, key, "PID-0042"), Profile: "idevid", Requester: "s"},
		"ldevid": {CSR: csr(t, key, pkix.Name{CommonName: "sensor-42"}, hwModuleSAN(t, exampleHWType, []byte("42"), "sensor-42.line1.example.com")), Profile: "ldevid", Requester: "s"},
		"station": {CSR: csr(t, key, pkix.Name{CommonName: "Station 1", Organization: []string{"Example CM"}}), Profile: "station", Requester: "admin",
			Station: &ca.StationAuthorization{Steps: []string{"provision"}, Profiles: []string{"idevid"}}},
		"ak": {CSR: csr(t, key, pkix.Name{SerialNumber: "PID-0042"}, hwModuleSAN(t, exampleHWType, []byte("42"))), Profile: "ak", Requester: "s"},
	}
	for name, req := range reqs {
		c, err := p.auth.Issue(ctx, req)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out[name] = c
	}
	return out
}

func TestOpenSSLVerifyChains(t *testing.T) {
	t.Parallel()
	for _, alg := range keystore.Algorithms() {
		t.Run(alg.String(), func(t *testing.T) {
			p := newPKI(t, alg, nil)
			dir := t.TempDir()
			rootPEM := writePEM(t, filepath.Join(dir, "root.pem"), p.root)
			interPEM := writePEM(t, filepath.Join(dir, "inter.pem"), p.inter)
			for name, cert := range issueAll(t, p) {
				leaf := writePEM(t, filepath.Join(dir, name+".pem"), cert)
				out, err := runOpenSSL(t, "verify", "-CAfile", rootPEM, "-untrusted", interPEM, leaf)
				if err != nil || !strings.Contains(out, ": OK") {
					t.Errorf("%s: openssl verify: %v\n%s", name, err, out)
				}
				if name == "station" {
					out, err := runOpenSSL(t, "verify", "-purpose", "sslclient", "-CAfile", rootPEM, "-untrusted", interPEM, leaf)
					if err != nil || !strings.Contains(out, ": OK") {
						t.Errorf("station as TLS client: %v\n%s", err, out)
					}
				}
			}
			// Negative control: without the intermediate the chain must not verify.
			leaf := filepath.Join(dir, "idevid.pem")
			if out, err := runOpenSSL(t, "verify", "-CAfile", rootPEM, leaf); err == nil {
				t.Errorf("openssl verified a leaf without its intermediate:\n%s", out)
			}
		})
	}
}

func TestOpenSSLIDevIDText(t *testing.T) {
	t.Parallel()
	p := newPKI(t, keystore.ES256, nil)
	cert := issueAll(t, p)["idevid"]
	dir := t.TempDir()
	out, err := runOpenSSL(t, "x509", "-noout", "-text", "-in", writePEM(t, filepath.Join(dir, "i.pem"), cert))
	if err != nil {
		t.Fatal(err, out)
	}
	for _, want := range []string{"Not After : Dec 31 23:59:59 9999 GMT", "serialNumber = PID-0042", "othername: 1.3.6.1.5.5.7.8.4", "Digital Signature"} {
		if !strings.Contains(out, want) {
			t.Errorf("openssl x509 -text lacks %q:\n%s", want, out)
		}
	}
	// notAfter is a GeneralizedTime (RFC 5280 §4.1.2.5).
	out, err = runOpenSSL(t, "asn1parse", "-in", filepath.Join(dir, "i.pem"))
	if err != nil || !strings.Contains(out, "GENERALIZEDTIME   :99991231235959Z") {
		t.Errorf("notAfter encoding: %v\n%s", err, out)
	}
}

func TestRevokeAndCRL(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p := newPKI(t, keystore.ES256, nil)
	certs := issueAll(t, p)
	srv := httptest.NewServer(p.auth.CRLHandler())
	defer srv.Close()
	fetch := func() *x509.RevocationList {
		t.Helper()
		resp, err := http.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/pkix-crl" {
			t.Fatalf("status %d, type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		der, _ := io.ReadAll(resp.Body)
		crl, err := x509.ParseRevocationList(der)
		if err != nil {
			t.Fatal(err)
		}
		if err := crl.CheckSignatureFrom(p.inter); err != nil {
			t.Fatal(err)
		}
		return crl
	}
	first := fetch()
	if len(first.RevokedCertificateEntries) != 0 || first.Number.Int64() != 1 || !first.NextUpdate.After(first.ThisUpdate) {
		t.Fatalf("first CRL: number %v, %d entries", first.Number, len(first.RevokedCertificateEntries))
	}
	if again := fetch(); again.Number.Cmp(first.Number) != 0 {
		t.Fatalf("unchanged CRL re-signed: %v", again.Number)
	}
	revoked := certs["idevid"]
	if err := p.auth.Revoke(ctx, revoked.SerialNumber, ca.ReasonKeyCompromise, "admin"); err != nil {
		t.Fatal(err)
	}
	if err := p.auth.Revoke(ctx, revoked.SerialNumber, ca.ReasonKeyCompromise, "admin"); !errorsIs(err, ca.ErrAlreadyRevoked) {
		t.Fatalf("second revoke: %v", err)
	}
	if err := p.auth.Revoke(ctx, big.NewInt(12345), ca.ReasonKeyCompromise, "admin"); !errorsIs(err, ca.ErrUnknownSerial) {
		t.Fatalf("unknown serial: %v", err)
	}
	if err := p.auth.Revoke(ctx, certs["ldevid"].SerialNumber, ca.ReasonCertificateHold, "admin"); !errorsIs(err, ca.ErrInvalidRequest) {
		t.Fatalf("certificateHold: %v", err)
	}
	second := fetch()
	if second.Number.Cmp(first.Number) <= 0 || len(second.RevokedCertificateEntries) != 1 {
		t.Fatalf("second CRL: number %v, entries %d", second.Number, len(second.RevokedCertificateEntries))
	}
	e := second.RevokedCertificateEntries[0]
	if e.SerialNumber.Cmp(revoked.SerialNumber) != 0 || e.ReasonCode != int(ca.ReasonKeyCompromise) {
		t.Fatalf("entry %v reason %d", e.SerialNumber, e.ReasonCode)
	}
	st, err := p.ledger.Lookup(ctx, revoked.SerialNumber)
	if err != nil || st.Revocation == nil || st.Revocation.Reason != ca.ReasonKeyCompromise {
		t.Fatalf("lookup: %+v %v", st, err)
	}
	if _, err := p.ledger.Verify(ctx); err != nil {
		t.Fatal(err)
	}

	// openssl parses the CRL and, with -crl_check, reports the revocation.
	dir := t.TempDir()
	crlDER, err := p.auth.CRL(ctx)
	if err != nil {
		t.Fatal(err)
	}
	crlPath := filepath.Join(dir, "crl.der")
	os.WriteFile(crlPath, crlDER, 0o600)
	out, err := runOpenSSL(t, "crl", "-inform", "DER", "-noout", "-text", "-in", crlPath)
	if err != nil || !strings.Contains(out, "Key Compromise") || !strings.Contains(out, "X509v3 CRL Number") ||
		!strings.Contains(out, strings.ToUpper(revoked.SerialNumber.Text(16))) {
		t.Fatalf("openssl crl: %v\n%s", err, out)
	}
	crlPEM := filepath.Join(dir, "crl.pem")
	os.WriteFile(crlPEM, pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: crlDER}), 0o600)
	rootPEM := writePEM(t, filepath.Join(dir, "root.pem"), p.root)
	interPEM := writePEM(t, filepath.Join(dir, "inter.pem"), p.inter)
	out, err = runOpenSSL(t, "verify", "-crl_check", "-CAfile", rootPEM, "-untrusted", interPEM, "-CRLfile", crlPEM,
		writePEM(t, filepath.Join(dir, "revoked.pem"), revoked))
	if err == nil || !strings.Contains(out, "certificate revoked") {
		t.Fatalf("openssl verify -crl_check on a revoked certificate: %v\n%s", err, out)
	}
	out, err = runOpenSSL(t, "verify", "-crl_check", "-CAfile", rootPEM, "-untrusted", interPEM, "-CRLfile", crlPEM,
		writePEM(t, filepath.Join(dir, "good.pem"), certs["ldevid"]))
	if err != nil || !strings.Contains(out, ": OK") {
		t.Fatalf("openssl verify -crl_check on a good certificate: %v\n%s", err, out)
	}
	if resp, err := http.Post(srv.URL, "text/plain", nil); err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("POST: %v %v", resp, err)
	}
}

// TestOpenSSLMadeCSR issues an IDevID from a request openssl made, with
// the hardwareModuleName, basicConstraints CA:FALSE and keyUsage openssl
// configs commonly add: the CA takes the key and the allowed fields only.
func TestOpenSSLMadeCSR(t *testing.T) {
	t.Parallel()
	p := newPKI(t, keystore.ES256, nil)
	dir := t.TempDir()
	conf := filepath.Join(dir, "req.cnf")
	os.WriteFile(conf, []byte(`[req]
distinguished_name = dn
prompt = no
req_extensions = ext
[dn]
serialNumber = OSSL-0001
[ext]
subjectAltName = otherName:1.3.6.1.5.5.7.8.4;SEQUENCE:hwmod
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
[hwmod]
hwType = OID:1.3.6.1.4.1.99999.1.1
hwSerialNum = OCTETSTRING:OSSL-0001
`), 0o600)
	csrPath := filepath.Join(dir, "req.der")
	out, err := runOpenSSL(t, "req", "-new", "-config", conf, "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
		"-nodes", "-keyout", filepath.Join(dir, "key.pem"), "-outform", "DER", "-out", csrPath)
	if err != nil {
		t.Fatalf("openssl req: %v\n%s", err, out)
	}
	der, _ := os.ReadFile(csrPath)
	cert, err := p.auth.Issue(context.Background(), &ca.Request{CSR: der, Profile: "idevid", Requester: "s"})
	if err != nil {
		t.Fatal(err)
	}
	hw, err := ca.HardwareModuleNames(cert)
	if err != nil || len(hw) != 1 || string(hw[0].SerialNumber) != "OSSL-0001" || cert.Subject.SerialNumber != "OSSL-0001" {
		t.Fatalf("%v %v %q", hw, err, cert.Subject.SerialNumber)
	}
	if cert.KeyUsage != x509.KeyUsageDigitalSignature {
		t.Fatalf("keyUsage copied from the request: %v", cert.KeyUsage)
	}
	// And a request asking for CA:TRUE is refused.
	os.WriteFile(conf, []byte(`[req]
distinguished_name = dn
prompt = no
req_extensions = ext
[dn]
serialNumber = OSSL-0002
[ext]
basicConstraints = critical, CA:TRUE
`), 0o600)
	if out, err := runOpenSSL(t, "req", "-new", "-config", conf, "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
		"-nodes", "-keyout", filepath.Join(dir, "key2.pem"), "-outform", "DER", "-out", csrPath); err != nil {
		t.Fatalf("openssl req: %v\n%s", err, out)
	}
	der, _ = os.ReadFile(csrPath)
	var ce *identity.CSRError
	if _, err := p.auth.Issue(context.Background(), &ca.Request{CSR: der, Profile: "ldevid", Requester: "s"}); !errors.As(err, &ce) || ce.Reason != identity.CSRUnexpectedExtension {
		t.Fatalf("CA:TRUE request: %v", err)
	}
}
