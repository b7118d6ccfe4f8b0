package attest_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/ztmkit/ztm/attest"
)

func readHex(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	out, err := hex.DecodeString(strings.Join(strings.Fields(string(b)), ""))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// rfcKey decodes the RFC 8392 A.2.3 COSE_Key and checks that its private
// scalar d gives its public point (x, y).
func rfcKey(t *testing.T) (kid string, pub *ecdsa.PublicKey) {
	var k map[int64]cbor.RawMessage
	if err := cbor.Unmarshal(readHex(t, "rfc8392-a23-es256-key.hex"), &k); err != nil {
		t.Fatal(err)
	}
	var kty, crv, alg int64
	var kidB, x, y, d []byte
	for label, dst := range map[int64]any{1: &kty, -1: &crv, 3: &alg, 2: &kidB, -2: &x, -3: &y, -4: &d} {
		if err := cbor.Unmarshal(k[label], dst); err != nil {
			t.Fatalf("COSE_Key label %d: %v", label, err)
		}
	}
	if kty != 2 || crv != 1 || alg != -7 {
		t.Fatalf("COSE_Key kty %d crv %d alg %d", kty, crv, alg)
	}
	priv, err := ecdh.P256().NewPrivateKey(d)
	if err != nil {
		t.Fatal(err)
	}
	point := priv.PublicKey().Bytes()
	if !bytes.Equal(point[1:33], x) || !bytes.Equal(point[33:], y) {
		t.Fatal("d does not match (x, y)")
	}
	pub, err = ecdsa.ParseUncompressedPublicKey(elliptic.P256(), point)
	if err != nil {
		t.Fatal(err)
	}
	return string(kidB), pub
}

// TestInteropRFC8392SignedCWT verifies the signed CWT published in RFC 8392
// Appendix A.3 (made by another implementation) with ztm's verifier.
func TestInteropRFC8392SignedCWT(t *testing.T) {
	t.Parallel()
	kid, pub := rfcKey(t)
	token := readHex(t, "rfc8392-a3-signed-cwt.hex")
	v, err := attest.NewVerifier(attest.Config{
		Keys: map[string]crypto.PublicKey{kid: pub},
		Time: func() time.Time { return time.Unix(1443944944, 0) },
	})
	if err != nil {
		t.Fatal(err)
	}
	ev, err := v.Decode(token)
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if ev.Format != attest.FormatCWT || string(ev.KeyID) != "AsymmetricECDSA256" {
		t.Errorf("evidence %+v", ev)
	}
	c := ev.Claims
	if c.IssuedAt.Unix() != 1443944944 {
		t.Errorf("iat %v", c.IssuedAt)
	}
	var iss, sub string
	var cti []byte
	if cbor.Unmarshal(c.Extensions[1], &iss) != nil || iss != "coap://as.example.com" ||
		cbor.Unmarshal(c.Extensions[2], &sub) != nil || sub != "erikw" ||
		cbor.Unmarshal(c.Extensions[7], &cti) != nil || !bytes.Equal(cti, []byte{0x0b, 0x71}) {
		t.Errorf("claims %+v", c.Extensions)
	}

	// The CWT is no attestation evidence (no ueid, oemid, hwmodel): the
	// full path authenticates it, then refuses it and says why.
	r, err := v.Verify(context.Background(), token)
	if !errors.Is(err, attest.ErrMissingClaim) || r.Status() != attest.StatusContraindicated {
		t.Errorf("Verify: %v, %v", err, r.Status())
	}

	// One bit off and it no longer verifies.
	bad := bytes.Clone(token)
	bad[len(bad)-1] ^= 1
	if _, err := v.Decode(bad); !errors.Is(err, attest.ErrBadSignature) {
		t.Errorf("tampered: %v", err)
	}
}

// TestInteropRFC9711Claims decodes the claims set of RFC 9711 Appendix A.1.5,
// whose submodule carries a CoSWID measurement (kept as a RawMeasurement).
func TestInteropRFC9711Claims(t *testing.T) {
	t.Parallel()
	var c attest.Claims
	if err := c.UnmarshalCBOR(readHex(t, "rfc9711-a15-claims.hex")); err != nil {
		t.Fatal(err)
	}
	if hex.EncodeToString(c.Nonce) != "5e19fba4483c7896" || hex.EncodeToString(c.OEMID) != "8945ad" ||
		len(c.UEID) != 16 || c.UEID[0] != 0x01 || c.SecureBoot == nil || !*c.SecureBoot ||
		c.DebugStatus == nil || *c.DebugStatus != attest.DebugDisabledSinceBoot {
		t.Errorf("claims %+v", c)
	}
	os := c.Submods["OS"]
	if os == nil || len(os.OtherMeasurements) != 1 || os.OtherMeasurements[0].ContentType != 258 ||
		len(os.OtherMeasurements[0].Value) != 244 || *os.DebugStatus != attest.DebugDisabledSinceBoot {
		t.Fatalf("OS submodule %+v", os)
	}
	// Re-encoded deterministically, it decodes to the same claims.
	enc, err := c.MarshalCBOR()
	if err != nil {
		t.Fatal(err)
	}
	var c2 attest.Claims
	if err := c2.UnmarshalCBOR(enc); err != nil || !bytes.Equal(c2.Submods["OS"].OtherMeasurements[0].Value, os.OtherMeasurements[0].Value) {
		t.Errorf("round trip: %v", err)
	}
}
