package attest_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ztmkit/ztm/attest"
)

// fuzzKey is a fixed P-256 key (the RFC 8392 A.2.3 example key), so that
// seeds and the corpus stay valid across runs.
func fuzzKey(f *testing.F) *ecdsa.PrivateKey {
	d, _ := hex.DecodeString("6c1382765aec5358f117733d281c1c7bdc39884d04a45a1e6c67c858bc206c19")
	k, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), d)
	if err != nil {
		f.Fatal(err)
	}
	return k
}

func fuzzVerifier(f *testing.F, key *ecdsa.PrivateKey) *attest.EATVerifier {
	claims := fuzzClaims()
	v, err := attest.NewVerifier(attest.Config{
		Keys: map[string]crypto.PublicKey{"fuzz": key.Public(), "AsymmetricECDSA256": key.Public()},
		ReferenceValues: []attest.ReferenceValues{{
			OEMID: claims.OEMID, HWModel: claims.HWModel, Measurements: claims.Measurements, MinSWVersion: "1.0",
		}},
		Time: func() time.Time { return t0 },
	})
	if err != nil {
		f.Fatal(err)
	}
	return v
}

func fuzzClaims() *attest.Claims {
	return &attest.Claims{
		Nonce: make([]byte, 32), UEID: testUEID, OEMID: testOEMID, HWModel: testHWModel,
		SWName: "fw", SWVersion: "1.2", SecureBoot: attest.BoolPtr(true),
		DebugStatus:  attest.DebugPtr(attest.DebugDisabled),
		Measurements: []attest.Measurement{{Name: "fw", Alg: -16, Digest: make([]byte, 32)}},
		Submods:      map[string]*attest.Claims{"radio": {SWName: "r", SWVersion: "2"}},
		IssuedAt:     t0,
	}
}

// checkVerify runs one input through Verify and checks the error contract.
func checkVerify(t *testing.T, v *attest.EATVerifier, data []byte) {
	r, err := v.Verify(context.Background(), data)
	if r == nil {
		t.Fatalf("no Result (err %v)", err)
	}
	if err != nil {
		var ve *attest.VerificationError
		if !errors.Is(err, attest.ErrVerification) || !errors.As(err, &ve) {
			t.Fatalf("untyped error %v", err)
		}
		if r.Status() != attest.StatusContraindicated {
			t.Fatalf("refused but status %v", r.Status())
		}
		return
	}
	if r.Status() == attest.StatusContraindicated || r.Evidence == nil || r.Evidence.Claims == nil {
		t.Fatalf("accepted with status %v", r.Status())
	}
}

func FuzzVerifyCWT(f *testing.F) {
	key := fuzzKey(f)
	v := fuzzVerifier(f, key)
	good, err := attest.SignCWT(nil, key, fuzzClaims(), &attest.SignOptions{KeyID: []byte("fuzz")})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(cnfSeed(f, key, attest.SignCWT))
	f.Add(append([]byte{0xd8, 0x3d}, good...))
	rfc, _ := hex.DecodeString("d28443a10126a104524173796d6d657472696345434453413235365850a70175636f61703a2f2f61732e6578616d706c652e636f6d02656572696b77037818636f61703a2f2f6c696768742e6578616d706c652e636f6d041a5612aeb0051a5610d9f0061a5610d9f007420b7158405427c1ff28d23fbad1f29c4c7c6a555e601d6fa29f9179bc3d7438bacaca5acd08c8d4d4f96131680c429a01f85951ecee743a52b9b63632c57209120e1c9e30")
	f.Add(rfc)
	f.Add([]byte{0xd2, 0x84, 0x40, 0xa0, 0x40, 0x40})
	f.Add([]byte{0xd2, 0x9f, 0xff})
	f.Add([]byte{0xd8})
	f.Fuzz(func(t *testing.T, data []byte) { checkVerify(t, v, data) })
}

// cnfSeed is evidence whose cnf confirms the fixed key.
func cnfSeed(f *testing.F, key *ecdsa.PrivateKey, sign func(io.Reader, crypto.Signer, *attest.Claims, *attest.SignOptions) ([]byte, error)) []byte {
	c := fuzzClaims()
	c.Confirmation = &attest.Confirmation{Key: key.Public()}
	b, err := sign(nil, key, c, &attest.SignOptions{KeyID: []byte("fuzz")})
	if err != nil {
		f.Fatal(err)
	}
	return b
}

func FuzzVerifyJWT(f *testing.F) {
	key := fuzzKey(f)
	v := fuzzVerifier(f, key)
	good, err := attest.SignJWT(nil, key, fuzzClaims(), &attest.SignOptions{KeyID: []byte("fuzz")})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(cnfSeed(f, key, attest.SignJWT))
	f.Add([]byte("eyJhbGciOiJub25lIn0.e30."))
	f.Add([]byte("eyJhbGciOiJIUzI1NiIsImtpZCI6ImZ1enoifQ.e30.AAAA"))
	f.Add([]byte("e.."))
	f.Fuzz(func(t *testing.T, data []byte) { checkVerify(t, v, data) })
}

func FuzzClaimsCBOR(f *testing.F) {
	b, err := fuzzClaims().MarshalCBOR()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	withCnf := fuzzClaims()
	withCnf.Confirmation = &attest.Confirmation{Key: fuzzKey(f).Public()}
	if b, err = withCnf.MarshalCBOR(); err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte{0xa1, 0x19, 0x01, 0x0a, 0xa1, 0x61, 0x61, 0xa0})
	if rfc, err := os.ReadFile(filepath.Join("testdata", "rfc9711-a15-claims.hex")); err == nil {
		if b, err := hex.DecodeString(strings.Join(strings.Fields(string(rfc)), "")); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var c attest.Claims
		if c.UnmarshalCBOR(data) != nil {
			return
		}
		// What decodes re-encodes, and decodes to the same encoding.
		enc, err := c.MarshalCBOR()
		if err != nil {
			t.Fatalf("decoded claims do not encode: %v", err)
		}
		var c2 attest.Claims
		if err := c2.UnmarshalCBOR(enc); err != nil {
			t.Fatalf("re-encoded claims do not decode: %v", err)
		}
	})
}
