package tpm_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"

	"github.com/ztmkit/ztm/attest"
	attesttpm "github.com/ztmkit/ztm/attest/tpm"
	"github.com/ztmkit/ztm/identity/keystore"
	kstpm "github.com/ztmkit/ztm/identity/keystore/tpm"
	"github.com/ztmkit/ztm/internal/tpmtest"
)

// TestCertifyThroughStore has the tpm key store, on swtpm, certify a key it
// made with its attestation key over a nonce, and checks the
// certification: it verifies for that key and nonce, and is refused for
// another key or another nonce.
func TestCertifyThroughStore(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: starts swtpm")
	}
	ctx := t.Context()
	sw := tpmtest.StartSwtpm(t)
	ks, err := keystore.Open(ctx, "tpm:swtpm?dir="+t.TempDir()+"&port="+strconv.Itoa(sw.Port))
	if err != nil {
		t.Fatal(err)
	}
	defer ks.Close()
	store := ks.(*kstpm.Store)
	var _ kstpm.Certifier = store
	ak, err := store.CreateAttestationKey(ctx, "ak")
	if err != nil {
		t.Fatal(err)
	}
	key, err := store.Create(ctx, keystore.CreateRequest{Label: "idevid"})
	if err != nil {
		t.Fatal(err)
	}
	other, err := store.Create(ctx, keystore.CreateRequest{Label: "other"})
	if err != nil {
		t.Fatal(err)
	}
	nonce := make([]byte, 32)
	rand.Read(nonce)
	c, err := store.Certify(ctx, "idevid", "ak", nonce)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := attesttpm.VerifyCertify(c.Attest, c.Signature, ak.Public(), nonce, c.PublicArea, key.Public()); err != nil {
		t.Fatalf("certification of the store's key: %v", err)
	}
	if _, err := attesttpm.VerifyCertify(c.Attest, c.Signature, ak.Public(), nonce, c.PublicArea, other.Public()); !errors.Is(err, attest.ErrKeyNotConfirmed) {
		t.Errorf("for another key: %v", err)
	}
	if _, err := attesttpm.VerifyCertify(c.Attest, c.Signature, ak.Public(), make([]byte, 32), c.PublicArea, key.Public()); !errors.Is(err, attest.ErrNonceUnknown) {
		t.Errorf("for another nonce: %v", err)
	}
	if _, err := store.Certify(ctx, "idevid", "other", nonce); !errors.Is(err, kstpm.ErrNotAttestationKey) {
		t.Errorf("certify with a key that is not an AK: %v", err)
	}
	var ne *kstpm.NonceError
	if _, err := store.Certify(ctx, "idevid", "ak", nil); !errors.As(err, &ne) {
		t.Errorf("certify without a nonce: %v", err)
	}
	if _, err := store.Certify(ctx, "missing", "ak", nonce); !errors.Is(err, keystore.ErrNotFound) {
		t.Errorf("certify an unknown key: %v", err)
	}
}

// signingTemplate is an ECDSA P-256 signing key; restricted makes it an
// attestation key.
func signingTemplate(attrs tpm2.TPMAObject) tpm2.TPMTPublic {
	return tpm2.TPMTPublic{
		Type: tpm2.TPMAlgECC, NameAlg: tpm2.TPMAlgSHA256, ObjectAttributes: attrs,
		Parameters: tpm2.NewTPMUPublicParms(tpm2.TPMAlgECC, &tpm2.TPMSECCParms{
			Symmetric: tpm2.TPMTSymDefObject{Algorithm: tpm2.TPMAlgNull},
			Scheme: tpm2.TPMTECCScheme{Scheme: tpm2.TPMAlgECDSA,
				Details: tpm2.NewTPMUAsymScheme(tpm2.TPMAlgECDSA, &tpm2.TPMSSigSchemeECDSA{HashAlg: tpm2.TPMAlgSHA256})},
			CurveID: tpm2.TPMECCNistP256,
			KDF:     tpm2.TPMTKDFScheme{Scheme: tpm2.TPMAlgNull},
		}),
	}
}

type loaded struct {
	handle tpm2.AuthHandle
	public []byte // TPMT_PUBLIC
	key    crypto.PublicKey
}

func createLoaded(t *testing.T, tpm transport.TPM, parent tpm2.AuthHandle, attrs tpm2.TPMAObject) loaded {
	t.Helper()
	c, err := tpm2.Create{ParentHandle: parent, InPublic: tpm2.New2B(signingTemplate(attrs))}.Execute(tpm)
	if err != nil {
		t.Fatal(err)
	}
	l, err := tpm2.Load{ParentHandle: parent, InPrivate: c.OutPrivate, InPublic: c.OutPublic}.Execute(tpm)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := c.OutPublic.Contents()
	if err != nil {
		t.Fatal(err)
	}
	ecc, err := pub.Unique.ECC()
	if err != nil {
		t.Fatal(err)
	}
	parms, err := pub.Parameters.ECCDetail()
	if err != nil {
		t.Fatal(err)
	}
	key, err := tpm2.ECDSAPub(parms, ecc)
	if err != nil {
		t.Fatal(err)
	}
	return loaded{handle: tpm2.AuthHandle{Handle: l.ObjectHandle, Name: l.Name, Auth: tpm2.PasswordAuth(nil)}, public: c.OutPublic.Bytes(), key: key}
}

func certify(t *testing.T, tpm transport.TPM, key, ak loaded, nonce []byte) (att, sig []byte) {
	t.Helper()
	rsp, err := tpm2.Certify{ObjectHandle: key.handle, SignHandle: ak.handle,
		QualifyingData: tpm2.TPM2BData{Buffer: nonce}, InScheme: tpm2.TPMTSigScheme{Scheme: tpm2.TPMAlgNull}}.Execute(tpm)
	if err != nil {
		t.Fatal(err)
	}
	return rsp.CertifyInfo.Bytes(), tpm2.Marshal(rsp.Signature)
}

func flush(t *testing.T, tpm transport.TPM, h tpm2.AuthHandle) {
	t.Helper()
	if _, err := (tpm2.FlushContext{FlushHandle: h.Handle}).Execute(tpm); err != nil {
		t.Fatal(err)
	}
}

// TestVerifyCertify certifies, on the TPM 2.0 reference simulator through
// go-tpm, a device key with the attestation key over the CA's nonce, and
// checks that it verifies and that a tampered one is refused: another key,
// another nonce, a key without fixedTPM, a forged signature.
func TestVerifyCertify(t *testing.T) {
	sim := tpmtest.Open(t)
	primary, err := tpm2.CreatePrimary{PrimaryHandle: tpm2.TPMRHOwner, InPublic: tpm2.New2B(tpm2.ECCSRKTemplate)}.Execute(sim)
	if err != nil {
		t.Fatal(err)
	}
	parent := tpm2.AuthHandle{Handle: primary.ObjectHandle, Name: primary.Name, Auth: tpm2.PasswordAuth(nil)}
	bound := tpm2.TPMAObject{FixedTPM: true, FixedParent: true, SensitiveDataOrigin: true, UserWithAuth: true, SignEncrypt: true}
	akAttrs := bound
	akAttrs.Restricted = true
	ak := createLoaded(t, sim, parent, akAttrs)
	key := createLoaded(t, sim, parent, bound)
	nonce := make([]byte, 32)
	rand.Read(nonce)
	att, sig := certify(t, sim, key, ak, nonce)

	p, err := attesttpm.VerifyCertify(att, sig, ak.key, nonce, key.public, key.key)
	if err != nil {
		t.Fatal(err)
	}
	if p.Attributes&attesttpm.AttrFixedTPM == 0 || !p.Key.(*ecdsa.PublicKey).Equal(key.key) {
		t.Fatalf("public %+v", p)
	}

	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	wantReason := func(name string, err error, r attest.Reason, detail string) {
		t.Helper()
		var ve *attest.VerificationError
		if !errors.As(err, &ve) || ve.Reason != r || !errors.Is(err, attest.ErrVerification) || !strings.Contains(err.Error(), detail) {
			t.Errorf("%s: %v, want %v (%q)", name, err, r, detail)
		}
	}
	_, err = attesttpm.VerifyCertify(att, sig, ak.key, nonce, key.public, other.Public())
	wantReason("other key", err, attest.ReasonKeyNotConfirmed, "not the request's key")
	if !errors.Is(err, attest.ErrKeyNotConfirmed) {
		t.Errorf("other key: %v does not wrap ErrKeyNotConfirmed", err)
	}
	_, err = attesttpm.VerifyCertify(att, sig, ak.key, append([]byte{1}, nonce[1:]...), key.public, key.key)
	wantReason("other nonce", err, attest.ReasonNonceUnknown, "not the nonce")
	_, err = attesttpm.VerifyCertify(att, sig, ak.key, nil, key.public, key.key)
	wantReason("no nonce", err, attest.ReasonNonceUnknown, "not the nonce")
	_, err = attesttpm.VerifyCertify(att, sig, ak.key, nonce, ak.public, ak.key)
	wantReason("public area of another object", err, attest.ReasonKeyNotConfirmed, "certified name")
	_, err = attesttpm.VerifyCertify(att, sig, other.Public(), nonce, key.public, key.key)
	wantReason("other AK", err, attest.ReasonBadSignature, "does not verify")
	bad := append([]byte(nil), att...)
	bad[len(bad)-1] ^= 1
	_, err = attesttpm.VerifyCertify(bad, sig, ak.key, nonce, key.public, key.key)
	wantReason("altered certification", err, attest.ReasonBadSignature, "does not verify")
	_, err = attesttpm.VerifyCertify(att[:20], sig, ak.key, nonce, key.public, key.key)
	wantReason("truncated", err, attest.ReasonMalformed, "certification")

	// A key the TPM may let go: no fixedTPM, no fixedParent.
	flush(t, sim, key.handle)
	loose := createLoaded(t, sim, parent, tpm2.TPMAObject{SensitiveDataOrigin: true, UserWithAuth: true, SignEncrypt: true})
	att, sig = certify(t, sim, loose, ak, nonce)
	_, err = attesttpm.VerifyCertify(att, sig, ak.key, nonce, loose.public, loose.key)
	wantReason("key without fixedTPM", err, attest.ReasonKeyNotConfirmed, "not fixedTPM")
}

// startSwtpmPair starts swtpm with its control port right after its
// command port, as the tss2 swtpm TCTI expects, and returns the TCTI.
func startSwtpmPair(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("swtpm")
	if err != nil {
		t.Fatalf("swtpm not found: install the Debian package swtpm (scripts/install-deps.sh does): %v", err)
	}
	for range 10 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		l2, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port+1))
		if err != nil {
			continue
		}
		l2.Close()
		cmd := exec.Command(bin, "socket", "--tpm2", "--tpmstate", "dir="+t.TempDir(),
			"--server", "type=tcp,bindaddr=127.0.0.1,port="+strconv.Itoa(port),
			"--ctrl", "type=tcp,bindaddr=127.0.0.1,port="+strconv.Itoa(port+1),
			"--flags", "not-need-init,startup-clear")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port+1)); err == nil {
				c.Close()
				return "swtpm:host=127.0.0.1,port=" + strconv.Itoa(port)
			}
		}
		t.Fatal("swtpm did not start")
	}
	t.Fatal("no free port pair for swtpm")
	return ""
}

// TestCertifyFromTPM2Tools reads a certification that tpm2-tools'
// tpm2_certify made on swtpm: the TPMS_ATTEST, the TPMT_SIGNATURE and the
// TPMT_PUBLIC that tpm2_create wrote parse, the certified name is the name
// ztm computes from the public area, the AK's signature verifies, and the
// key's attributes are the device-bound ones, and VerifyCertify accepts
// it. tpm2-tools 5.4 (Debian 12) has no option for tpm2_certify's
// qualifying data and certifies over its own fixed value (00ff55aa); it
// stands in for the CA's nonce here, and a real nonce is refused. A
// certification of another key, or of a key without fixedTPM, is refused.
func TestCertifyFromTPM2Tools(t *testing.T) {
	for _, tool := range []string{"tpm2_certify", "tpm2_create", "tpm2_createprimary"} {
		if _, err := exec.LookPath(tool); err != nil {
			if testing.Short() {
				t.Skipf("%s not installed", tool)
			}
			t.Fatalf("%s not found: install the Debian package tpm2-tools (scripts/install-deps.sh does)", tool)
		}
	}
	tcti := startSwtpmPair(t)
	dir := t.TempDir()
	file := func(n string) string { return filepath.Join(dir, n) }
	tool := func(args ...string) {
		t.Helper()
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Env = append(os.Environ(), "TPM2TOOLS_TCTI="+tcti)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
		// Without a resource manager, transient objects stay loaded.
		exec.Command("tpm2_flushcontext", "-T", tcti, "-t").Run()
	}
	tool("tpm2_createprimary", "-Q", "-C", "o", "-g", "sha256", "-G", "ecc", "-c", file("primary.ctx"))
	tool("tpm2_create", "-Q", "-C", file("primary.ctx"), "-G", "ecc256:ecdsa-sha256:null",
		"-a", "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|restricted|sign", "-u", file("ak.pub"), "-r", file("ak.priv"))
	tool("tpm2_create", "-Q", "-C", file("primary.ctx"), "-G", "ecc256:ecdsa-sha256:null",
		"-a", "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|sign", "-u", file("key.pub"), "-r", file("key.priv"))
	tool("tpm2_load", "-Q", "-C", file("primary.ctx"), "-u", file("ak.pub"), "-r", file("ak.priv"), "-c", file("ak.ctx"))
	tool("tpm2_load", "-Q", "-C", file("primary.ctx"), "-u", file("key.pub"), "-r", file("key.priv"), "-c", file("key.ctx"))
	tool("tpm2_certify", "-Q", "-c", file("key.ctx"), "-C", file("ak.ctx"), "-g", "sha256", "-o", file("attest.bin"), "-s", file("sig.bin"))
	tool("tpm2_readpublic", "-Q", "-c", file("ak.ctx"), "-f", "pem", "-o", file("ak.pem"))
	tool("tpm2_readpublic", "-Q", "-c", file("key.ctx"), "-f", "pem", "-o", file("key.pem"))

	read := func(n string) []byte {
		b, err := os.ReadFile(file(n))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	pemKey := func(n string) crypto.PublicKey {
		blk, _ := pem.Decode(read(n))
		k, err := x509.ParsePKIXPublicKey(blk.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	akKey, devKey := pemKey("ak.pem"), pemKey("key.pem")
	att, sigRaw, pub2B := read("attest.bin"), read("sig.bin"), read("key.pub")
	pub := pub2B[2:] // TPM2B_PUBLIC: a 2-byte size, then the TPMT_PUBLIC

	c, err := attesttpm.ParseCertification(att)
	if err != nil {
		t.Fatal(err)
	}
	p, err := attesttpm.ParsePublic(pub)
	if err != nil {
		t.Fatal(err)
	}
	if hex.EncodeToString(p.Name()) != hex.EncodeToString(c.Name) {
		t.Fatalf("certified name %x, computed %x", c.Name, p.Name())
	}
	if !p.Key.(*ecdsa.PublicKey).Equal(devKey) {
		t.Fatal("public area is not the key tpm2_readpublic printed")
	}
	want := attesttpm.AttrFixedTPM | attesttpm.AttrFixedParent | attesttpm.AttrSensitiveDataOrigin
	if p.Attributes&want != want {
		t.Fatalf("attributes %#x", p.Attributes)
	}
	sig, err := attesttpm.ParseSignature(sigRaw)
	if err != nil {
		t.Fatal(err)
	}
	d := sha256.Sum256(att)
	if !ecdsa.Verify(akKey.(*ecdsa.PublicKey), d[:], new(big.Int).SetBytes(sig.R), new(big.Int).SetBytes(sig.S)) {
		t.Fatal("the AK's signature does not verify")
	}
	// tpm2-tools 5.4 certifies over its own fixed qualifying data.
	if hex.EncodeToString(c.ExtraData) != "00ff55aa" {
		t.Fatalf("extraData %x from tpm2_certify 5.4", c.ExtraData)
	}
	if _, err := attesttpm.VerifyCertify(att, sigRaw, akKey, c.ExtraData, pub, devKey); err != nil {
		t.Fatalf("tpm2_certify's certification, over its qualifying data: %v", err)
	}
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if _, err := attesttpm.VerifyCertify(att, sigRaw, akKey, c.ExtraData, pub, other.Public()); !errors.Is(err, attest.ErrKeyNotConfirmed) {
		t.Errorf("other key: %v", err)
	}
	nonce := make([]byte, 32)
	_, err = attesttpm.VerifyCertify(att, sigRaw, akKey, nonce, pub, devKey)
	var ve *attest.VerificationError
	if !errors.As(err, &ve) || ve.Reason != attest.ReasonNonceUnknown {
		t.Fatalf("certification without the CA's nonce: %v", err)
	}

	// A key tpm2_create made without fixedTPM and fixedParent.
	tool("tpm2_create", "-Q", "-C", file("primary.ctx"), "-G", "ecc256:ecdsa-sha256:null",
		"-a", "sensitivedataorigin|userwithauth|sign", "-u", file("loose.pub"), "-r", file("loose.priv"))
	tool("tpm2_load", "-Q", "-C", file("primary.ctx"), "-u", file("loose.pub"), "-r", file("loose.priv"), "-c", file("loose.ctx"))
	tool("tpm2_certify", "-Q", "-c", file("loose.ctx"), "-C", file("ak.ctx"), "-g", "sha256", "-o", file("attest2.bin"), "-s", file("sig2.bin"))
	tool("tpm2_readpublic", "-Q", "-c", file("loose.ctx"), "-f", "pem", "-o", file("loose.pem"))
	_, err = attesttpm.VerifyCertify(read("attest2.bin"), read("sig2.bin"), akKey, c.ExtraData, read("loose.pub")[2:], pemKey("loose.pem"))
	if !errors.As(err, &ve) || ve.Reason != attest.ReasonKeyNotConfirmed || !strings.Contains(err.Error(), "fixedTPM") {
		t.Fatalf("key without fixedTPM: %v", err)
	}
}

// pytssPython is Debian's interpreter, the one python3-tpm2-pytss installs
// into (a python3 earlier on PATH, such as a pyenv shim, lacks the module).
const pytssPython = "/usr/bin/python3"

// TestCertifyFromPyTSS verifies a certification that tpm2-pytss (the TCG
// tpm2-tss ESAPI, driven by testdata/pytss_certify.py) had swtpm make over
// the CA's nonce as qualifying data, which tpm2-tools 5.4's tpm2_certify
// cannot set. It verifies for that nonce and key; another nonce, another
// key, and a certification with one byte changed are refused.
func TestCertifyFromPyTSS(t *testing.T) {
	if err := exec.Command(pytssPython, "-c", "import tpm2_pytss").Run(); err != nil {
		if testing.Short() {
			t.Skip("python3-tpm2-pytss not installed")
		}
		t.Fatalf("tpm2_pytss not importable by %s: install the Debian package python3-tpm2-pytss (scripts/install-deps.sh does): %v", pytssPython, err)
	}
	tcti := startSwtpmPair(t)
	dir := t.TempDir()
	nonce := make([]byte, 32)
	rand.Read(nonce)
	cmd := exec.Command(pytssPython, filepath.Join("testdata", "pytss_certify.py"),
		strings.TrimPrefix(tcti, "swtpm:"), hex.EncodeToString(nonce), dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("pytss_certify.py: %v\n%s", err, out)
	}
	read := func(n string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	att, sig, keyPub, akPub := read("attest.bin"), read("sig.bin"), read("key.pub"), read("ak.pub")
	ak, err := attesttpm.ParsePublic(akPub)
	if err != nil {
		t.Fatalf("the AK's TPMT_PUBLIC: %v", err)
	}
	key, err := attesttpm.ParsePublic(keyPub)
	if err != nil {
		t.Fatalf("the key's TPMT_PUBLIC: %v", err)
	}
	c, err := attesttpm.ParseCertification(att)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(c.ExtraData, nonce) {
		t.Fatalf("extraData %x, want the nonce %x", c.ExtraData, nonce)
	}
	p, err := attesttpm.VerifyCertify(att, sig, ak.Key, nonce, keyPub, key.Key)
	if err != nil {
		t.Fatalf("tpm2-pytss's certification over the nonce: %v", err)
	}
	if !bytes.Equal(p.Name(), c.Name) {
		t.Fatalf("certified name %x, computed %x", c.Name, p.Name())
	}

	var ve *attest.VerificationError
	other := append([]byte(nil), nonce...)
	other[0] ^= 1
	if _, err := attesttpm.VerifyCertify(att, sig, ak.Key, other, keyPub, key.Key); !errors.As(err, &ve) || ve.Reason != attest.ReasonNonceUnknown {
		t.Errorf("another nonce: %v", err)
	}
	otherKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if _, err := attesttpm.VerifyCertify(att, sig, ak.Key, nonce, keyPub, otherKey.Public()); !errors.Is(err, attest.ErrKeyNotConfirmed) {
		t.Errorf("another key: %v", err)
	}
	bad := append([]byte(nil), att...)
	bad[len(bad)-1] ^= 1
	if _, err := attesttpm.VerifyCertify(bad, sig, ak.Key, nonce, keyPub, key.Key); err == nil {
		t.Error("a certification with one byte changed verified")
	}
}
