package identity

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/ztmkit/ztm/identity/keystore"
	"github.com/ztmkit/ztm/identity/keystore/mem"
)

// modelOID is a hardware type under the IANA example PEN 32473 (RFC 5612).
var modelOID = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 32473, 1, 7}

func testDevice(serial string) DeviceInfo {
	return DeviceInfo{
		SerialNumber:   serial,
		HardwareModule: HardwareModuleName{Type: modelOID, SerialNumber: []byte(serial)},
		CommonName:     "Sensor " + serial,
		Organization:   "Example Devices",
	}
}

// keys of every algorithm, made once (RSA-3072 is slow to generate).
var testKeys = sync.OnceValue(func() map[Algorithm]crypto.Signer {
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	r, err := rsa.GenerateKey(rand.Reader, 3072)
	if err != nil {
		panic(err)
	}
	return map[Algorithm]crypto.Signer{ES256: p256, ES384: p384, EdDSA: ed, PS256: r}
})

func TestCreateEveryAlgorithm(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := mem.New()
	defer store.Close()
	wantSig := map[Algorithm]x509.SignatureAlgorithm{
		ES256: x509.ECDSAWithSHA256, ES384: x509.ECDSAWithSHA384,
		EdDSA: x509.PureEd25519, PS256: x509.SHA256WithRSAPSS,
	}
	for _, alg := range keystore.Algorithms() {
		t.Run(alg.String(), func(t *testing.T) {
			if alg == PS256 && testing.Short() {
				t.Skip("RSA-3072 key generation is slow; skipped in -short")
			}
			dev := testDevice("SN-" + alg.String())
			id, err := Create(ctx, store, CreateRequest{Label: "dev-" + alg.String(), Algorithm: alg, Device: dev})
			if err != nil {
				t.Fatal(err)
			}
			if id.Key.Algorithm() != alg || id.Key.Label() != "dev-"+alg.String() {
				t.Errorf("key %s/%v", id.Key.Label(), id.Key.Algorithm())
			}
			c, err := CheckCSR(id.CSR, CSRPolicy{SerialNumber: dev.SerialNumber, HardwareModule: dev.HardwareModule, RequireHardwareModule: true})
			if err != nil {
				t.Fatal(err)
			}
			if c.Request.SignatureAlgorithm != wantSig[alg] || c.Algorithm != alg {
				t.Errorf("signature algorithm %v, key %v", c.Request.SignatureAlgorithm, c.Algorithm)
			}
			if !publicKeyEqual(c.PublicKey, id.Key.Public()) {
				t.Error("request key differs from the store key")
			}
			got := c.Device()
			if got.SerialNumber != dev.SerialNumber || !got.HardwareModule.Equal(dev.HardwareModule) || got.CommonName != dev.CommonName || got.Organization != dev.Organization {
				t.Errorf("Device() = %+v, want %+v", got, dev)
			}
			// The store holds the key under its label.
			k, err := store.Get(ctx, "dev-"+alg.String())
			if err != nil || !publicKeyEqual(k.Public(), c.PublicKey) {
				t.Errorf("store.Get: %v", err)
			}
			// The SAN extension is not critical: the subject is not empty.
			for _, ext := range c.Request.Extensions {
				if ext.Id.Equal(oidSubjectAltName) && ext.Critical {
					t.Error("SAN critical with a non-empty subject")
				}
			}
		})
	}
}

func publicKeyEqual(a, b crypto.PublicKey) bool {
	e, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && e.Equal(b)
}

func TestCreateCSRExistingKeys(t *testing.T) {
	t.Parallel()
	for alg, key := range testKeys() {
		der, err := CreateCSR(nil, key, testDevice("SN-1"))
		if err != nil {
			t.Fatalf("%v: %v", alg, err)
		}
		c, err := ParseCSR(der)
		if err != nil {
			t.Fatalf("%v: %v", alg, err)
		}
		if c.Algorithm != alg {
			t.Errorf("algorithm %v, want %v", c.Algorithm, alg)
		}
	}
	// Without a hardware module, there is no SAN at all.
	der, err := CreateCSR(nil, testKeys()[ES256], DeviceInfo{SerialNumber: "SN-2"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := ParseCSR(der)
	if err != nil {
		t.Fatal(err)
	}
	if !c.HardwareModule.IsZero() || len(c.Request.Extensions) != 0 {
		t.Errorf("hardware module %+v, extensions %v", c.HardwareModule, c.Request.Extensions)
	}
	if err := c.Check(CSRPolicy{RequireHardwareModule: true}); !isCSRError(err, CSRMissingField) {
		t.Errorf("RequireHardwareModule: %v", err)
	}
}

func TestCreateCSRRefusesWeakKeys(t *testing.T) {
	t.Parallel()
	p224, _ := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	r1024, _ := rsa.GenerateKey(rand.Reader, 1024)
	for name, key := range map[string]crypto.Signer{"P-224": p224, "RSA-1024": r1024} {
		if _, err := CreateCSR(nil, key, testDevice("SN-1")); !errors.Is(err, keystore.ErrUnsupportedAlgorithm) {
			t.Errorf("%s: err = %v, want ErrUnsupportedAlgorithm", name, err)
		}
	}
	if _, err := CreateCSR(nil, nil, testDevice("SN-1")); err == nil {
		t.Error("nil key accepted")
	}
}

func TestCreateBadInputChangesNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := mem.New()
	defer store.Close()
	if _, err := Create(ctx, store, CreateRequest{Label: "taken", Device: testDevice("SN-0")}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		req  CreateRequest
		want error
	}{
		{"no serial", CreateRequest{Label: "a", Device: DeviceInfo{}}, ErrInvalidDevice},
		{"serial with '*'", CreateRequest{Label: "a", Device: DeviceInfo{SerialNumber: "SN*1"}}, ErrInvalidDevice},
		{"bad hw OID", CreateRequest{Label: "a", Device: DeviceInfo{SerialNumber: "S", HardwareModule: HardwareModuleName{Type: asn1.ObjectIdentifier{3, 1}, SerialNumber: []byte("x")}}}, ErrInvalidDevice},
		{"label ../x", CreateRequest{Label: "../x", Device: testDevice("SN-1")}, keystore.ErrInvalidLabel},
		{"label taken", CreateRequest{Label: "taken", Device: testDevice("SN-1")}, keystore.ErrExists},
		{"bad algorithm", CreateRequest{Label: "a", Algorithm: Algorithm(42), Device: testDevice("SN-1")}, keystore.ErrUnsupportedAlgorithm},
	}
	for _, tt := range tests {
		if _, err := Create(ctx, store, tt.req); !errors.Is(err, tt.want) {
			t.Errorf("%s: err = %v, want %v", tt.name, err, tt.want)
		}
		if labels, _ := store.List(ctx); !slices.Equal(labels, []string{"taken"}) {
			t.Fatalf("%s: store holds %v", tt.name, labels)
		}
	}
	if _, err := Create(ctx, nil, CreateRequest{Label: "a", Device: testDevice("SN-1")}); err == nil {
		t.Error("nil store accepted")
	}
	store.Close()
	if _, err := Create(ctx, store, CreateRequest{Label: "b", Device: testDevice("SN-1")}); !errors.Is(err, keystore.ErrClosed) {
		t.Errorf("closed store: %v", err)
	}
}

// brokenSignerStore is a real in-memory store whose keys' Sign fails, as a
// token pulled out mid-operation would. It lets the test see that Create
// deletes the key it made when the request cannot be signed.
type brokenSignerStore struct{ *mem.Store }

type brokenKey struct{ keystore.Key }

func (brokenKey) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) {
	return nil, errors.New("token removed")
}

func (s brokenSignerStore) Create(ctx context.Context, req keystore.CreateRequest) (keystore.Key, error) {
	k, err := s.Store.Create(ctx, req)
	if err != nil {
		return nil, err
	}
	return brokenKey{k}, nil
}

func TestCreateNoHalfState(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	store := brokenSignerStore{mem.New()}
	_, err := Create(ctx, store, CreateRequest{Label: "dev-1", Device: testDevice("SN-1")})
	if err == nil || !strings.Contains(err.Error(), "token removed") {
		t.Fatalf("err = %v", err)
	}
	if labels, _ := store.List(ctx); len(labels) != 0 {
		t.Errorf("key left behind after a failed request: %v", labels)
	}
	cancel()
}

// ---- ParseCSR refusals ----

func isCSRError(err error, reason CSRErrorReason) bool {
	var ce *CSRError
	return errors.As(err, &ce) && ce.Reason == reason && errors.Is(err, ErrInvalidCSR)
}

func stdlibCSR(t testing.TB, key crypto.Signer, tmpl *x509.CertificateRequest) []byte {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func idevidTemplate(t testing.TB, serial string) *x509.CertificateRequest {
	t.Helper()
	ext, err := HardwareModuleNameExtension(HardwareModuleName{Type: modelOID, SerialNumber: []byte(serial)}, false)
	if err != nil {
		t.Fatal(err)
	}
	return &x509.CertificateRequest{Subject: pkix.Name{SerialNumber: serial}, ExtraExtensions: []pkix.Extension{ext}}
}

func TestParseCSRRefusals(t *testing.T) {
	t.Parallel()
	p256 := testKeys()[ES256]
	p224, _ := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	p521, _ := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	r1024, _ := rsa.GenerateKey(rand.Reader, 1024)
	r2048, _ := rsa.GenerateKey(rand.Reader, 2048)

	good, err := CreateCSR(nil, p256, testDevice("SN-1"))
	if err != nil {
		t.Fatal(err)
	}
	flipped := slices.Clone(good)
	flipped[len(flipped)-1] ^= 0x01 // last byte of the signature

	tbsFlip := slices.Clone(good)
	i := bytes.Index(tbsFlip, []byte("SN-1"))
	tbsFlip[i+3] = '2' // SN-1 → SN-2 in the subject, signature unchanged

	withTmpl := func(mod func(*x509.CertificateRequest)) []byte {
		tmpl := idevidTemplate(t, "SN-1")
		mod(tmpl)
		return stdlibCSR(t, p256, tmpl)
	}
	otherSAN := func(names ...[]byte) pkix.Extension {
		var seq []byte
		for _, n := range names {
			seq = append(seq, n...)
		}
		v, _ := asn1.Marshal(asn1.RawValue{Tag: asn1.TagSequence, IsCompound: true, Bytes: seq})
		return pkix.Extension{Id: oidSubjectAltName, Value: v}
	}
	hwName := func(serial string) []byte {
		ext, _ := HardwareModuleNameExtension(HardwareModuleName{Type: modelOID, SerialNumber: []byte(serial)}, false)
		// strip the outer GeneralNames SEQUENCE header (2 bytes, short form)
		return ext.Value[2:]
	}
	dnsName := []byte{0x82, 0x03, 'a', '.', 'b'}

	tests := []struct {
		name   string
		der    []byte
		reason CSRErrorReason
	}{
		{"empty", nil, CSRMalformed},
		{"garbage", []byte("not a request at all"), CSRMalformed},
		{"truncated", good[:len(good)/2], CSRMalformed},
		{"trailing byte", append(slices.Clone(good), 0), CSRMalformed},
		{"too large", make([]byte, MaxCSRSize+1), CSRTooLarge},
		{"flipped signature byte", flipped, CSRBadSignature},
		{"altered subject", tbsFlip, CSRBadSignature},
		{"RSA-1024", stdlibCSR(t, r1024, idevidTemplate(t, "SN-1")), CSRWeakKey},
		{"RSA-2048", stdlibCSR(t, r2048, idevidTemplate(t, "SN-1")), CSRWeakKey},
		{"P-224", stdlibCSR(t, p224, idevidTemplate(t, "SN-1")), CSRWeakKey},
		{"P-521", stdlibCSR(t, p521, idevidTemplate(t, "SN-1")), CSRWeakKey},
		{"P-256 with SHA-384", withTmpl(func(r *x509.CertificateRequest) { r.SignatureAlgorithm = x509.ECDSAWithSHA384 }), CSRSignatureAlgorithm},
		{"RSA-3072 with PKCS#1 v1.5", func() []byte {
			tmpl := idevidTemplate(t, "SN-1")
			return stdlibCSR(t, testKeys()[PS256], tmpl) // stdlib default for RSA is PKCS#1 v1.5
		}(), CSRSignatureAlgorithm},
		{"no serialNumber", withTmpl(func(r *x509.CertificateRequest) { r.Subject = pkix.Name{CommonName: "x"} }), CSRMissingField},
		{"two serialNumbers", withTmpl(func(r *x509.CertificateRequest) {
			r.Subject = pkix.Name{ExtraNames: []pkix.AttributeTypeAndValue{{Type: oidSerialNumber, Value: "A"}, {Type: oidSerialNumber, Value: "B"}}}
		}), CSRMalformed},
		{"serialNumber not printable", withTmpl(func(r *x509.CertificateRequest) { r.Subject = pkix.Name{SerialNumber: "SN_1"} }), CSRMalformed},
		{"DNS name", withTmpl(func(r *x509.CertificateRequest) { r.ExtraExtensions, r.DNSNames = nil, []string{"evil.example"} }), CSRUnexpectedExtension},
		{"DNS name beside hardwareModuleName", withTmpl(func(r *x509.CertificateRequest) {
			r.ExtraExtensions = []pkix.Extension{otherSAN(hwName("SN-1"), dnsName)}
		}), CSRUnexpectedExtension},
		{"two hardwareModuleNames", withTmpl(func(r *x509.CertificateRequest) {
			r.ExtraExtensions = []pkix.Extension{otherSAN(hwName("SN-1"), hwName("SN-2"))}
		}), CSRUnexpectedExtension},
		{"malformed SAN", withTmpl(func(r *x509.CertificateRequest) {
			r.ExtraExtensions = []pkix.Extension{{Id: oidSubjectAltName, Value: []byte{0x30, 0x03, 0xa0, 0x01, 0x00}}}
		}), CSRMalformed},
		{"CA:true", withTmpl(func(r *x509.CertificateRequest) {
			bc, _ := asn1.Marshal(struct{ IsCA bool }{true})
			r.ExtraExtensions = append(r.ExtraExtensions, pkix.Extension{Id: oidBasicConstraints, Critical: true, Value: bc})
		}), CSRUnexpectedExtension},
		{"keyCertSign", withTmpl(func(r *x509.CertificateRequest) {
			ku, _ := asn1.Marshal(asn1.BitString{Bytes: []byte{0x04}, BitLength: 6}) // bit 5
			r.ExtraExtensions = append(r.ExtraExtensions, pkix.Extension{Id: oidKeyUsage, Value: ku})
		}), CSRUnexpectedExtension},
		{"unknown extension", withTmpl(func(r *x509.CertificateRequest) {
			r.ExtraExtensions = append(r.ExtraExtensions, pkix.Extension{Id: asn1.ObjectIdentifier{1, 2, 3, 4}, Value: []byte{0x05, 0x00}})
		}), CSRUnexpectedExtension},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ParseCSR(tt.der)
			if !isCSRError(err, tt.reason) {
				t.Fatalf("err = %v, want reason %v", err, tt.reason)
			}
			if c != nil {
				t.Error("non-nil CSR with an error")
			}
			switch tt.reason {
			case CSRBadSignature:
				if !errors.Is(err, ErrBadSignature) {
					t.Error("does not wrap ErrBadSignature")
				}
			case CSRWeakKey:
				if !errors.Is(err, keystore.ErrUnsupportedAlgorithm) {
					t.Error("does not wrap keystore.ErrUnsupportedAlgorithm")
				}
			}
			if !strings.HasPrefix(err.Error(), "identity: certificate request refused: "+tt.reason.String()) {
				t.Errorf("message %q", err)
			}
		})
	}
	// Allowed extensions: CA:false and digitalSignature key usage.
	ok := withTmpl(func(r *x509.CertificateRequest) {
		bc, _ := asn1.Marshal(struct{ IsCA bool }{false})
		ku, _ := asn1.Marshal(asn1.BitString{Bytes: []byte{0x80}, BitLength: 1})
		r.ExtraExtensions = append(r.ExtraExtensions,
			pkix.Extension{Id: oidBasicConstraints, Critical: true, Value: bc},
			pkix.Extension{Id: oidKeyUsage, Critical: true, Value: ku})
	})
	if _, err := ParseCSR(ok); err != nil {
		t.Errorf("CA:false + digitalSignature refused: %v", err)
	}
}

func TestCSRPolicy(t *testing.T) {
	t.Parallel()
	der, err := CreateCSR(nil, testKeys()[ES256], testDevice("SN-1"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		p      CSRPolicy
		reason CSRErrorReason // 0: accepted
	}{
		{"zero policy", CSRPolicy{}, 0},
		{"matching", CSRPolicy{SerialNumber: "SN-1", HardwareModule: HardwareModuleName{Type: modelOID, SerialNumber: []byte("SN-1")}, RequireHardwareModule: true, Algorithms: []Algorithm{ES256}}, 0},
		{"other serial", CSRPolicy{SerialNumber: "SN-2"}, CSRFieldMismatch},
		{"other hw serial", CSRPolicy{HardwareModule: HardwareModuleName{Type: modelOID, SerialNumber: []byte("SN-2")}}, CSRFieldMismatch},
		{"other hw type", CSRPolicy{HardwareModule: HardwareModuleName{Type: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 32473, 2}, SerialNumber: []byte("SN-1")}}, CSRFieldMismatch},
		{"algorithm not allowed", CSRPolicy{Algorithms: []Algorithm{EdDSA, ES384}}, CSRWeakKey},
	}
	for _, tt := range tests {
		_, err := CheckCSR(der, tt.p)
		if tt.reason == 0 {
			if err != nil {
				t.Errorf("%s: %v", tt.name, err)
			}
			continue
		}
		if !isCSRError(err, tt.reason) {
			t.Errorf("%s: err = %v, want %v", tt.name, err, tt.reason)
		}
	}
}

func TestCSRErrorReasonString(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for r := CSRMalformed; r < maxCSRErrorReason; r++ {
		s := r.String()
		if s == "" || strings.HasPrefix(s, "CSRErrorReason(") || seen[s] {
			t.Errorf("reason %d: %q", r, s)
		}
		seen[s] = true
	}
	if got := CSRErrorReason(0).String(); got != "CSRErrorReason(0)" {
		t.Errorf("zero reason: %q", got)
	}
	if got := maxCSRErrorReason.String(); !strings.HasPrefix(got, "CSRErrorReason(") {
		t.Errorf("max reason: %q", got)
	}
}

// ---- openssl interop ----

func openssl(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("openssl")
	if err != nil {
		t.Fatal("openssl is needed for the interop tests: install the Debian package openssl (make test does)")
	}
	return path
}

func runOpenSSL(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command(openssl(t), args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestOpenSSLReadsCSR(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	store := mem.New()
	defer store.Close()
	for _, alg := range keystore.Algorithms() {
		if alg == PS256 && testing.Short() {
			continue
		}
		t.Run(alg.String(), func(t *testing.T) {
			dev := testDevice("SN-" + alg.String())
			id, err := Create(context.Background(), store, CreateRequest{Label: "ossl-" + alg.String(), Algorithm: alg, Device: dev})
			if err != nil {
				t.Fatal(err)
			}
			f := filepath.Join(dir, alg.String()+".csr")
			writePEM(t, f, "CERTIFICATE REQUEST", id.CSR)
			out := runOpenSSL(t, dir, "req", "-in", f, "-noout", "-verify")
			if !strings.Contains(out, "verify OK") {
				t.Errorf("openssl req -verify: %s", out)
			}
			text := runOpenSSL(t, dir, "req", "-in", f, "-noout", "-text")
			for _, want := range []string{
				"serialNumber = " + dev.SerialNumber,
				"CN = Sensor " + dev.SerialNumber,
				"O = Example Devices",
				"X509v3 Subject Alternative Name",
				"othername:",
			} {
				if !strings.Contains(text, want) {
					t.Errorf("openssl req -text lacks %q:\n%s", want, text)
				}
			}
			// OpenSSL 3.0 prints the otherName by its OID; later versions
			// may print its name.
			if !strings.Contains(text, "1.3.6.1.5.5.7.8.4") && !strings.Contains(strings.ToLower(text), "hardwaremodulename") {
				t.Errorf("openssl req -text does not name the hardwareModuleName:\n%s", text)
			}
			// openssl's own parse of the otherName: asn1parse of the SAN
			// extension's OCTET STRING shows the type OID, the hardware
			// type and the serial number.
			der := filepath.Join(dir, alg.String()+".der")
			if err := os.WriteFile(der, id.CSR, 0o600); err != nil {
				t.Fatal(err)
			}
			dump := runOpenSSL(t, dir, "asn1parse", "-inform", "DER", "-in", der)
			_, after, ok := strings.Cut(dump, "X509v3 Subject Alternative Name\n")
			off, _, _ := strings.Cut(strings.TrimSpace(after), ":")
			if !ok || off == "" {
				t.Fatalf("no SAN extension in asn1parse output:\n%s", dump)
			}
			san := runOpenSSL(t, dir, "asn1parse", "-inform", "DER", "-in", der, "-strparse", off)
			for _, want := range []string{":1.3.6.1.5.5.7.8.4", ":1.3.6.1.4.1.32473.1.7", "OCTET STRING      :" + dev.SerialNumber} {
				if !strings.Contains(san, want) {
					t.Errorf("asn1parse of the SAN lacks %q:\n%s", want, san)
				}
			}
		})
	}
	// A tampered request fails openssl's check too.
	id, err := Create(context.Background(), store, CreateRequest{Label: "ossl-bad", Device: testDevice("SN-X")})
	if err != nil {
		t.Fatal(err)
	}
	bad := slices.Clone(id.CSR)
	i := bytes.Index(bad, []byte("SN-X"))
	bad[i+3] = 'Y'
	f := filepath.Join(dir, "bad.csr")
	writePEM(t, f, "CERTIFICATE REQUEST", bad)
	cmd := exec.Command(openssl(t), "req", "-in", f, "-noout", "-verify")
	if out, err := cmd.CombinedOutput(); err == nil && !strings.Contains(string(out), "verify failure") {
		t.Errorf("openssl accepted a tampered request: %s", out)
	}
}

// TestParseOpenSSLCSR checks the other direction: a request that openssl
// makes, with the hardwareModuleName otherName written by its own config
// syntax, parses and checks.
func TestParseOpenSSLCSR(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := `[req]
distinguished_name = dn
req_extensions = ext
prompt = no
[dn]
serialNumber = OSSL-0042
CN = openssl device
[ext]
subjectAltName = otherName:1.3.6.1.5.5.7.8.4;SEQUENCE:hwmod
[hwmod]
hwType = OID:1.3.6.1.4.1.32473.1.7
hwSerialNum = OCTETSTRING:OSSL-0042
`
	if err := os.WriteFile(filepath.Join(dir, "req.cnf"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := map[string][]string{
		"P-256":   {"-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-sha256"},
		"Ed25519": {"-newkey", "ed25519"},
	}
	for name, keyArgs := range cases {
		t.Run(name, func(t *testing.T) {
			args := append([]string{"req", "-new", "-config", "req.cnf", "-nodes", "-keyout", "k.pem", "-outform", "DER", "-out", "r.der"}, keyArgs...)
			runOpenSSL(t, dir, args...)
			der, err := os.ReadFile(filepath.Join(dir, "r.der"))
			if err != nil {
				t.Fatal(err)
			}
			c, err := CheckCSR(der, CSRPolicy{
				SerialNumber:   "OSSL-0042",
				HardwareModule: HardwareModuleName{Type: modelOID, SerialNumber: []byte("OSSL-0042")},
			})
			if err != nil {
				t.Fatal(err)
			}
			if c.Subject.CommonName != "openssl device" {
				t.Errorf("CN %q", c.Subject.CommonName)
			}
		})
	}
	// openssl can add a challengePassword attribute; an IDevID request has
	// no use for one.
	cfgPW := strings.Replace(cfg, "prompt = no\n", "prompt = no\nattributes = attrs\n", 1) + "[attrs]\nchallengePassword = secret123\n"
	if err := os.WriteFile(filepath.Join(dir, "pw.cnf"), []byte(cfgPW), 0o600); err != nil {
		t.Fatal(err)
	}
	runOpenSSL(t, dir, "req", "-new", "-config", "pw.cnf", "-nodes", "-keyout", "k.pem", "-outform", "DER", "-out", "pw.der", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256")
	der, err := os.ReadFile(filepath.Join(dir, "pw.der"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseCSR(der); !isCSRError(err, CSRUnexpectedAttribute) {
		t.Errorf("challengePassword: err = %v", err)
	}
	// And an RSA-1024 request from openssl is a weak key.
	runOpenSSL(t, dir, "req", "-new", "-config", "req.cnf", "-nodes", "-keyout", "k.pem", "-outform", "DER", "-out", "rsa.der", "-newkey", "rsa:1024")
	der, err = os.ReadFile(filepath.Join(dir, "rsa.der"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseCSR(der); !isCSRError(err, CSRWeakKey) {
		t.Errorf("openssl RSA-1024: err = %v", err)
	}
}

// ---- vectors made by openssl ----

// csrVectors returns the requests in testdata/csr, by file name.
func csrVectors(t testing.TB) map[string][]byte {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "csr", "*.pem"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no vectors in testdata/csr: %v", err)
	}
	out := make(map[string][]byte, len(files))
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		block, _ := pem.Decode(data)
		if block == nil || block.Type != "CERTIFICATE REQUEST" {
			t.Fatalf("%s: no CERTIFICATE REQUEST block", f)
		}
		out[filepath.Base(f)] = block.Bytes
	}
	return out
}

func TestCSRVectors(t *testing.T) {
	t.Parallel()
	reasons := map[string]CSRErrorReason{
		"ok":                  0,
		"weakkey":             CSRWeakKey,
		"sigalg":              CSRSignatureAlgorithm,
		"badsignature":        CSRBadSignature,
		"missingfield":        CSRMissingField,
		"unexpectedattribute": CSRUnexpectedAttribute,
		"unexpectedextension": CSRUnexpectedExtension,
	}
	policy := CSRPolicy{
		SerialNumber:   "OSSL-0042",
		HardwareModule: HardwareModuleName{Type: modelOID, SerialNumber: []byte("OSSL-0042")},
	}
	for name, der := range csrVectors(t) {
		prefix, _, _ := strings.Cut(name, "-")
		want, known := reasons[prefix]
		if !known {
			t.Errorf("%s: unknown outcome %q", name, prefix)
			continue
		}
		c, err := CheckCSR(der, policy)
		if want == 0 {
			if err != nil {
				t.Errorf("%s: %v", name, err)
			} else if c.Subject.CommonName != "openssl device" {
				t.Errorf("%s: CN %q", name, c.Subject.CommonName)
			}
			continue
		}
		if !isCSRError(err, want) {
			t.Errorf("%s: err = %v, want %v", name, err, want)
		}
	}
}

// ---- fuzzing ----

func FuzzParseCSR(f *testing.F) {
	for _, alg := range []Algorithm{ES256, EdDSA} {
		der, err := CreateCSR(nil, testKeys()[alg], testDevice("SN-F"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(der)
		f.Add(der[:len(der)-1])
	}
	noHW, _ := CreateCSR(nil, testKeys()[ES256], DeviceInfo{SerialNumber: "SN-F"})
	f.Add(noHW)
	p224, _ := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	f.Add(stdlibCSR(f, p224, idevidTemplate(f, "SN-F")))
	for _, der := range csrVectors(f) {
		f.Add(der)
	}
	f.Add([]byte{})
	f.Add([]byte{0x30, 0x80})
	f.Fuzz(func(t *testing.T, der []byte) {
		c, err := ParseCSR(der)
		if err != nil {
			if !errors.Is(err, ErrInvalidCSR) {
				t.Fatalf("error %v does not wrap ErrInvalidCSR", err)
			}
			if c != nil {
				t.Fatal("CSR and error both returned")
			}
			return
		}
		// What parses is a valid request: its device info validates, its
		// signature verifies, and the policy of its own fields passes.
		dev := c.Device()
		if err := dev.Validate(); err != nil {
			t.Fatalf("parsed device info invalid: %v", err)
		}
		if err := c.Request.CheckSignature(); err != nil {
			t.Fatalf("accepted a bad signature: %v", err)
		}
		if err := c.Check(CSRPolicy{SerialNumber: c.SerialNumber, HardwareModule: c.HardwareModule}); err != nil {
			t.Fatalf("own fields refused: %v", err)
		}
	})
}
