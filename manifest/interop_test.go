package manifest_test

import (
	"bufio"
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/veraison/go-cose"

	"github.com/ztmkit/ztm/internal/nodetest"
	"github.com/ztmkit/ztm/manifest"
)

// coseJSVersion is the cose-js release the interop test runs against.
const coseJSVersion = "0.9.0"

// coseJS returns the node_modules directory holding cose-js (and the cbor
// package it depends on), installing it the first time.
func coseJS(t *testing.T) string {
	t.Helper()
	return nodetest.Modules(t, "cose-js", coseJSVersion)
}

type jsCase struct {
	Name string            `json:"name"`
	Alg  string            `json:"alg"`
	Msg  string            `json:"msg"`
	Key  map[string]string `json:"key"`
	Leaf string            `json:"leaf,omitempty"`
}

type jsResult struct {
	Name    string `json:"name"`
	OK      bool   `json:"ok"`
	Payload string `json:"payload"`
	Error   string `json:"error"`
}

func jsKey(t *testing.T, pub crypto.PublicKey) (string, map[string]string) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		b, err := k.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		n := (len(b) - 1) / 2
		alg := "ES256"
		if k.Curve == elliptic.P384() {
			alg = "ES384"
		}
		return alg, map[string]string{"x": hex.EncodeToString(b[1 : 1+n]), "y": hex.EncodeToString(b[1+n:])}
	case *rsa.PublicKey:
		e := []byte{byte(k.E >> 16), byte(k.E >> 8), byte(k.E)}
		return "PS256", map[string]string{"n": hex.EncodeToString(k.N.Bytes()), "e": hex.EncodeToString(e)}
	case ed25519.PublicKey:
		der, _ := x509.MarshalPKIXPublicKey(k)
		return "EdDSA", map[string]string{"pem": string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))}
	}
	t.Fatalf("key %T", pub)
	return "", nil
}

func TestInteropCoseJS(t *testing.T) {
	t.Parallel()
	mods := coseJS(t)
	f := newFixture(t)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 3072)
	if err != nil {
		t.Fatal(err)
	}
	type msg struct {
		name    string
		raw     []byte
		pub     crypto.PublicKey
		payload []byte
		valid   bool
	}
	var msgs []msg
	add := func(name string, raw []byte, pub crypto.PublicKey, payload []byte) {
		msgs = append(msgs, msg{name, raw, pub, payload, true})
		bad := bytes.Clone(raw)
		bad[len(bad)-10] ^= 0x01 // inside the signature
		msgs = append(msgs, msg{name + " (tampered)", bad, pub, nil, false})
	}
	chain := f.build(goodSpecs)
	for i, s := range chain[:4] { // kid steps and the x5chain step
		add(fmt.Sprintf("step %d %s", i, s.Step.Name), s.Raw, f.parties[goodSpecs[i].by].key.Public(), mustPayload(t, s.Raw))
	}
	for _, k := range []crypto.Signer{p384, ed, rsaKey} {
		s := f.newStep(manifest.StepDieSort, 0, nil)
		ss, err := manifest.SignStep(rand.Reader, s, k, manifest.SignOptions{Issuer: "chipco"})
		if err != nil {
			t.Fatal(err)
		}
		add(fmt.Sprintf("step %T", k), ss.Raw, k.Public(), mustPayload(t, ss.Raw))
	}
	oem := f.parties["qa"].key
	signedPolicy, err := manifest.SignPolicy(rand.Reader, f.policy, oem, manifest.SignOptions{Issuer: "ACME"})
	if err != nil {
		t.Fatal(err)
	}
	add("policy", signedPolicy, oem.Public(), mustPayload(t, signedPolicy))
	lf, leaves, lm := lotFixture(t, 7)
	add("lot manifest", lm.Raw, lf.parties["cm"].key.Public(), lm.Root)
	type receiptCase struct {
		index int
		leaf  []byte
		valid bool
	}
	var receipts []receiptCase
	for i := range leaves {
		receipts = append(receipts, receiptCase{i, leaves[i], true})
	}
	receipts = append(receipts, receiptCase{2, leaves[3], false}) // another device's step

	var cases []jsCase
	for _, m := range msgs {
		alg, key := jsKey(t, m.pub)
		cases = append(cases, jsCase{Name: m.name, Alg: alg, Msg: hex.EncodeToString(m.raw), Key: key})
	}
	lotPub := lf.parties["cm"].key.Public()
	der, _ := x509.MarshalPKIXPublicKey(lotPub)
	lotPEM := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	for _, rc := range receipts {
		r, err := lm.Receipt(uint64(rc.index))
		if err != nil {
			t.Fatal(err)
		}
		name := fmt.Sprintf("receipt %d", rc.index)
		if !rc.valid {
			name += " (another leaf)"
		}
		msgs = append(msgs, msg{name, r, lotPub, lm.Root, rc.valid})
		cases = append(cases, jsCase{Name: name, Alg: "receipt", Msg: hex.EncodeToString(r),
			Key: map[string]string{"pem": lotPEM}, Leaf: hex.EncodeToString(rc.leaf)})
	}
	in := filepath.Join(t.TempDir(), "cases.json")
	b, _ := json.Marshal(cases)
	if err := os.WriteFile(in, b, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("node", filepath.Join("testdata", "cosejs_verify.js"), in)
	cmd.Env = append(os.Environ(), "NODE_PATH="+mods)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node: %v\n%s", err, stderr.String())
	}
	var results []jsResult
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r jsResult
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("node output %q: %v", sc.Text(), err)
		}
		results = append(results, r)
	}
	if len(results) != len(msgs) {
		t.Fatalf("%d results for %d messages\n%s", len(results), len(msgs), out)
	}
	for i, m := range msgs {
		r := results[i]
		if r.OK != m.valid {
			t.Errorf("%s: cose-js ok=%v (%s), want %v", m.name, r.OK, r.Error, m.valid)
			continue
		}
		if m.valid && r.Payload != hex.EncodeToString(m.payload) {
			t.Errorf("%s: cose-js returned another payload", m.name)
		}
	}
}

func mustPayload(t *testing.T, raw []byte) []byte {
	var m cose.Sign1Message
	if err := m.UnmarshalCBOR(raw); err != nil {
		t.Fatal(err)
	}
	return m.Payload
}

// TestInteropStandardReceipt verifies, with ztm, a lot manifest and COSE
// Receipts made by an independent script (RFC 9162 hashing by hand, node
// crypto signatures) with only the standard headers: no private tree-size
// header -65537. Lot manifests missing vds or CWT claims are refused with
// an error naming what is missing.
func TestInteropStandardReceipt(t *testing.T) {
	t.Parallel()
	mods := coseJS(t)
	_, leaves, _ := lotFixture(t, 5)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	keyFile, leavesFile := filepath.Join(dir, "key.pem"), filepath.Join(dir, "leaves.json")
	hexLeaves := make([]string, len(leaves))
	for i, l := range leaves {
		hexLeaves[i] = hex.EncodeToString(l)
	}
	lj, _ := json.Marshal(hexLeaves)
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(leavesFile, lj, 0o600); err != nil {
		t.Fatal(err)
	}
	out := nodetest.Run(t, mods, filepath.Join("testdata", "make_receipt.js"), leavesFile, keyFile)
	var made struct {
		Root, Lot, LotNoCWT, LotNoVDS string
		Receipts                      []string
	}
	if err := json.Unmarshal(out, &made); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	unhex := func(s string) []byte {
		b, err := hex.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	lm, err := manifest.VerifyLotManifest(unhex(made.Lot), key.Public())
	if err != nil {
		t.Fatalf("lot manifest: %v", err)
	}
	if hex.EncodeToString(lm.Root) != made.Root || lm.Lot != "LOT-NODE-1" || lm.TreeSize != 0 {
		t.Errorf("lot manifest %+v", lm)
	}
	for i, rc := range made.Receipts {
		r, err := manifest.VerifyReceipt(unhex(rc), leaves[i], key.Public())
		if err != nil {
			t.Fatalf("receipt %d: %v", i, err)
		}
		if r.SizeSigned || r.TreeSize != 5 || r.Index != uint64(i) {
			t.Errorf("receipt %d: %+v", i, r)
		}
		if _, err := manifest.VerifyReceipt(unhex(rc), leaves[(i+1)%5], key.Public()); !errors.Is(err, manifest.ErrVerification) {
			t.Errorf("receipt %d for another leaf: %v", i, err)
		}
	}
	for name, tc := range map[string]struct{ raw, want string }{
		"no CWT claims": {made.LotNoCWT, "without CWT claims (label 15)"},
		"no vds":        {made.LotNoVDS, "without vds (label 395)"},
	} {
		if _, err := manifest.VerifyLotManifest(unhex(tc.raw), key.Public()); !errors.Is(err, manifest.ErrMalformed) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v", name, err)
		}
	}
}
