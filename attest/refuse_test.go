package attest_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/veraison/go-cose"

	"github.com/ztmkit/ztm/attest"
	"github.com/ztmkit/ztm/attest/devicesim"
	"github.com/ztmkit/ztm/identity"
)

// rawKey is a plain key registered as "raw", for hand-crafted tokens.
var rawKey = func() *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	return k
}()

func withRawKey(c *attest.Config) {
	c.Keys["raw"] = rawKey.Public()
}

func mustCBOR(t testing.TB, v any) []byte {
	t.Helper()
	b, err := cbor.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// craftCWT assembles a tagged COSE_Sign1 from raw parts, signed by rawKey
// with ES256 over the exact protected bytes given.
func craftCWT(t testing.TB, prot, unprot, payload []byte) []byte {
	t.Helper()
	tbs := mustCBOR(t, []any{"Signature1", prot, []byte{}, payload})
	s, err := cose.NewSigner(cose.AlgorithmES256, rawKey)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := s.Sign(rand.Reader, tbs)
	if err != nil {
		t.Fatal(err)
	}
	out := []byte{0xd2, 0x84}
	out = append(out, mustCBOR(t, prot)...)
	out = append(out, unprot...)
	out = append(out, mustCBOR(t, payload)...)
	return append(out, mustCBOR(t, sig)...)
}

// craftJWT assembles a JWS from a raw header and payload; sign produces the
// signature over the signing input.
func craftJWT(header, payload string, sign func(input []byte) []byte) []byte {
	enc := base64.RawURLEncoding
	input := enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString([]byte(payload))
	return []byte(input + "." + enc.EncodeToString(sign([]byte(input))))
}

func es256Raw(t testing.TB) func([]byte) []byte {
	return func(in []byte) []byte {
		s, err := cose.NewSigner(cose.AlgorithmES256, rawKey)
		if err != nil {
			t.Fatal(err)
		}
		sig, err := s.Sign(rand.Reader, in)
		if err != nil {
			t.Fatal(err)
		}
		return sig
	}
}

// goodClaims returns honest claims for the env's device with a fresh nonce.
// akName is the subject alternative name of an attestation-key
// certificate that names its device by UEID.
func akName(t testing.TB, ueid []byte) pkix.Extension {
	ext, err := identity.HardwareModuleNameExtension(identity.HardwareModuleName{Type: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 32473, 1}, SerialNumber: ueid}, false)
	if err != nil {
		t.Fatal(err)
	}
	return ext
}

func goodClaims(t testing.TB, e *env) *attest.Claims {
	return e.dev.Claims(e.nonce(t))
}

func claimsCBOR(t testing.TB, c *attest.Claims) []byte {
	b, err := c.MarshalCBOR()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func claimsJSON(t testing.TB, c *attest.Claims) string {
	b, err := c.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestVerifyRefuses(t *testing.T) {
	t.Parallel()
	protKidRaw := func(t testing.TB, alg int64) []byte {
		return mustCBOR(t, map[int64]any{1: alg, 4: []byte("raw")})
	}
	emptyMap := []byte{0xa0}
	vendor := newPKI(t, "vendor attestation CA")
	other := newPKI(t, "someone else's CA")
	chainEnv := func(t testing.TB, o leafOpts, roots *pki) *env {
		return newEnv(t, envOpts{chain: func(pub crypto.PublicKey) ([]*x509.Certificate, *x509.CertPool) {
			return vendor.issue(t, pub, o), roots.pool
		}})
	}

	tests := []struct {
		name string
		// build returns the verifier and the evidence to refuse.
		build func(t *testing.T) (*attest.EATVerifier, []byte)
		want  attest.Reason
	}{
		{"CWT without alg", func(t *testing.T) (*attest.EATVerifier, []byte) {
			e := newEnv(t, envOpts{tweak: withRawKey})
			return e.ver, craftCWT(t, mustCBOR(t, map[int64]any{4: []byte("raw")}), emptyMap, claimsCBOR(t, goodClaims(t, e)))
		}, attest.ReasonUnsupportedAlgorithm},
		{"CWT unknown alg", func(t *testing.T) (*attest.EATVerifier, []byte) {
			e := newEnv(t, envOpts{tweak: withRawKey})
			return e.ver, craftCWT(t, protKidRaw(t, -999), emptyMap, claimsCBOR(t, goodClaims(t, e)))
		}, attest.ReasonUnsupportedAlgorithm},
		{"CWT HMAC alg", func(t *testing.T) (*attest.EATVerifier, []byte) {
			e := newEnv(t, envOpts{tweak: withRawKey})
			return e.ver, craftCWT(t, protKidRaw(t, 5), emptyMap, claimsCBOR(t, goodClaims(t, e)))
		}, attest.ReasonUnsupportedAlgorithm},
		{"CWT alg not matching the key", func(t *testing.T) (*attest.EATVerifier, []byte) {
			e := newEnv(t, envOpts{tweak: withRawKey})
			return e.ver, craftCWT(t, protKidRaw(t, -35), emptyMap, claimsCBOR(t, goodClaims(t, e)))
		}, attest.ReasonAlgorithmMismatch},
		{"CWT alg only in unprotected header", func(t *testing.T) (*attest.EATVerifier, []byte) {
			e := newEnv(t, envOpts{tweak: withRawKey})
			return e.ver, craftCWT(t, mustCBOR(t, map[int64]any{4: []byte("raw")}), mustCBOR(t, map[int64]any{1: -7}), claimsCBOR(t, goodClaims(t, e)))
		}, attest.ReasonAlgorithmUnprotected},
		{"CWT alg in both headers", func(t *testing.T) (*attest.EATVerifier, []byte) {
			e := newEnv(t, envOpts{tweak: withRawKey})
			return e.ver, craftCWT(t, protKidRaw(t, -7), mustCBOR(t, map[int64]any{1: -7}), claimsCBOR(t, goodClaims(t, e)))
		}, attest.ReasonAlgorithmUnprotected},
		{"CWT crit header", func(t *testing.T) (*attest.EATVerifier, []byte) {
			e := newEnv(t, envOpts{tweak: withRawKey})
			return e.ver, craftCWT(t, mustCBOR(t, map[int64]any{1: -7, 2: []int64{99}, 4: []byte("raw"), 99: 1}), emptyMap, claimsCBOR(t, goodClaims(t, e)))
		}, attest.ReasonMalformed},
		{"CWT unknown kid", func(t *testing.T) (*attest.EATVerifier, []byte) {
			e := newEnv(t, envOpts{})
			return e.ver, craftCWT(t, protKidRaw(t, -7), emptyMap, claimsCBOR(t, goodClaims(t, e)))
		}, attest.ReasonUntrustedSigner},
		{"CWT no signer named", func(t *testing.T) (*attest.EATVerifier, []byte) {
			e := newEnv(t, envOpts{tweak: withRawKey})
			return e.ver, craftCWT(t, mustCBOR(t, map[int64]any{1: -7}), emptyMap, claimsCBOR(t, goodClaims(t, e)))
		}, attest.ReasonUntrustedSigner},
		{"CWT bad signature", func(t *testing.T) (*attest.EATVerifier, []byte) {
			e := newEnv(t, envOpts{})
			ev, err := e.dev.EvidenceCWT(e.nonce(t))
			if err != nil {
				t.Fatal(err)
			}
			ev[len(ev)-1] ^= 1
			return e.ver, ev
		}, attest.ReasonBadSignature},
		{"CWT claims swapped under the signature", func(t *testing.T) (*attest.EATVerifier, []byte) {
			e := newEnv(t, envOpts{tweak: withRawKey})
			ev := craftCWT(t, protKidRaw(t, -7), emptyMap, claimsCBOR(t, goodClaims(t, e)))
			other := claimsCBOR(t, goodClaims(t, e))
			// Rebuild with the same signature but another payload.
			var msg []cbor.RawMessage
			if err := cbor.Unmarshal(ev[1:], &msg); err != nil {
				t.Fatal(err)
			}
			msg[2] = mustCBOR(t, other)
			return e.ver, append([]byte{0xd2}, mustCBOR(t, msg)...)
		}, attest.ReasonBadSignature},
		{"x5chain to an untrusted CA", func(t *testing.T) (*attest.EATVerifier, []byte) {
			e := chainEnv(t, leafOpts{}, other)
			ev, err := e.dev.EvidenceCWT(e.nonce(t))
			if err != nil {
				t.Fatal(err)
			}
			return e.ver, ev
		}, attest.ReasonUntrustedSigner},
		{"x5chain of another device's attestation key", func(t *testing.T) (*attest.EATVerifier, []byte) {
			other := append([]byte{0x01}, bytes.Repeat([]byte{7}, 16)...)
			e := chainEnv(t, leafOpts{exts: []pkix.Extension{akName(t, other)}}, vendor)
			ev, err := e.dev.EvidenceCWT(e.nonce(t))
			if err != nil {
				t.Fatal(err)
			}
			return e.ver, ev
		}, attest.ReasonUntrustedSigner},
		{"x5chain expired", func(t *testing.T) (*attest.EATVerifier, []byte) {
			e := chainEnv(t, leafOpts{notAfter: t0.Add(-time.Minute)}, vendor)
			ev, err := e.dev.EvidenceCWT(e.nonce(t))
			if err != nil {
				t.Fatal(err)
			}
			return e.ver, ev
		}, attest.ReasonUntrustedSigner},
		{"x5chain leaf without digitalSignature", func(t *testing.T) (*attest.EATVerifier, []byte) {
			e := chainEnv(t, leafOpts{usage: x509.KeyUsageKeyEncipherment}, vendor)
			ev, err := e.dev.EvidenceCWT(e.nonce(t))
			if err != nil {
				t.Fatal(err)
			}
			return e.ver, ev
		}, attest.ReasonUntrustedSigner},
		{"x5chain with no roots configured", func(t *testing.T) (*attest.EATVerifier, []byte) {
			e := newEnv(t, envOpts{
				chain: func(pub crypto.PublicKey) ([]*x509.Certificate, *x509.CertPool) {
					return vendor.issue(t, pub, leafOpts{}), nil
				},
			})
			ev, err := e.dev.EvidenceCWT(e.nonce(t))
			if err != nil {
				t.Fatal(err)
			}
			return e.ver, ev
		}, attest.ReasonUntrustedSigner},
		{"JWT x5c to an untrusted CA", func(t *testing.T) (*attest.EATVerifier, []byte) {
			e := chainEnv(t, leafOpts{}, other)
			ev, err := e.dev.EvidenceJWT(e.nonce(t))
			if err != nil {
				t.Fatal(err)
			}
			return e.ver, ev
		}, attest.ReasonUntrustedSigner},
		{"JWT x5c expired", func(t *testing.T) (*attest.EATVerifier, []byte) {
			e := chainEnv(t, leafOpts{notAfter: t0.Add(-time.Minute)}, vendor)
			ev, err := e.dev.EvidenceJWT(e.nonce(t))
			if err != nil {
				t.Fatal(err)
			}
			return e.ver, ev
		}, attest.ReasonUntrustedSigner},
		{"JWT x5c leaf without digitalSignature", func(t *testing.T) (*attest.EATVerifier, []byte) {
			e := chainEnv(t, leafOpts{usage: x509.KeyUsageKeyEncipherment}, vendor)
			ev, err := e.dev.EvidenceJWT(e.nonce(t))
			if err != nil {
				t.Fatal(err)
			}
			return e.ver, ev
		}, attest.ReasonUntrustedSigner},
		{"nonce never issued", func(t *testing.T) (*attest.EATVerifier, []byte) {
			e := newEnv(t, envOpts{})
			ev, err := e.dev.EvidenceCWT(bytes.Repeat([]byte{0x42}, 32))
			if err != nil {
				t.Fatal(err)
			}
			return e.ver, ev
		}, attest.ReasonNonceUnknown},
		{"nonce reused", func(t *testing.T) (*attest.EATVerifier, []byte) {
			e := newEnv(t, envOpts{})
			ev, err := e.dev.EvidenceCWT(e.nonce(t))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := e.ver.Verify(context.Background(), ev); err != nil {
				t.Fatal(err)
			}
			return e.ver, ev
		}, attest.ReasonNonceReused},
		{"nonce replayed by the device", func(t *testing.T) (*attest.EATVerifier, []byte) {
			e := newEnv(t, envOpts{})
			ev, err := e.dev.EvidenceJWT(e.nonce(t))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := e.ver.Verify(context.Background(), ev); err != nil {
				t.Fatal(err)
			}
			e.dev.SetTamper(devicesim.Tamper{ReplayNonce: true})
			ev, err = e.dev.EvidenceJWT(e.nonce(t))
			if err != nil {
				t.Fatal(err)
			}
			return e.ver, ev
		}, attest.ReasonNonceReused},
		{"nonce expired", func(t *testing.T) (*attest.EATVerifier, []byte) {
			e := newEnv(t, envOpts{})
			ev, err := e.dev.EvidenceCWT(e.nonce(t))
			if err != nil {
				t.Fatal(err)
			}
			e.clock.Advance(attest.DefaultNonceTTL + time.Second)
			return e.ver, ev
		}, attest.ReasonNonceExpired},
		{"nonce missing", func(t *testing.T) (*attest.EATVerifier, []byte) {
			e := newEnv(t, envOpts{})
			e.dev.SetTamper(devicesim.Tamper{OmitNonce: true})
			ev, err := e.dev.EvidenceCWT(e.nonce(t))
			if err != nil {
				t.Fatal(err)
			}
			return e.ver, ev
		}, attest.ReasonMissingClaim},
		{"ueid missing", func(t *testing.T) (*attest.EATVerifier, []byte) {
			e := newEnv(t, envOpts{})
			c := goodClaims(t, e)
			c.UEID = nil
			ev, err := attest.SignCWT(nil, e.key, c, &attest.SignOptions{KeyID: []byte("device-1")})
			if err != nil {
				t.Fatal(err)
			}
			return e.ver, ev
		}, attest.ReasonMissingClaim},
		{"ueid malformed (RAND of 10 bytes)", func(t *testing.T) (*attest.EATVerifier, []byte) {
			e := newEnv(t, envOpts{})
			c := goodClaims(t, e)
			c.UEID = append([]byte{0x01}, make([]byte, 10)...)
			ev, err := attest.SignCWT(nil, e.key, c, &attest.SignOptions{KeyID: []byte("device-1")})
			if err != nil {
				t.Fatal(err)
			}
			return e.ver, ev
		}, attest.ReasonMalformed},
		{"hwmodel missing (JWT)", func(t *testing.T) (*attest.EATVerifier, []byte) {
			e := newEnv(t, envOpts{})
			c := goodClaims(t, e)
			c.HWModel = nil
			ev, err := attest.SignJWT(nil, e.key, c, &attest.SignOptions{KeyID: []byte("device-1")})
			if err != nil {
				t.Fatal(err)
			}
			return e.ver, ev
		}, attest.ReasonMissingClaim},
		{"debug enabled", func(t *testing.T) (*attest.EATVerifier, []byte) {
			e := newEnv(t, envOpts{})
			e.dev.SetTamper(devicesim.Tamper{DebugEnabled: true})
			ev, err := e.dev.EvidenceCWT(e.nonce(t))
			if err != nil {
				t.Fatal(err)
			}
			return e.ver, ev
		}, attest.ReasonDebugEnabled},
		{"debug enabled (JWT)", func(t *testing.T) (*attest.EATVerifier, []byte) {
			e := newEnv(t, envOpts{})
			e.dev.SetTamper(devicesim.Tamper{DebugEnabled: true})
			ev, err := e.dev.EvidenceJWT(e.nonce(t))
			if err != nil {
				t.Fatal(err)
			}
			return e.ver, ev
		}, attest.ReasonDebugEnabled},
		{"secure boot off", func(t *testing.T) (*attest.EATVerifier, []byte) {
			e := newEnv(t, envOpts{})
			e.dev.SetTamper(devicesim.Tamper{SecureBootOff: true})
			ev, err := e.dev.EvidenceCWT(e.nonce(t))
			if err != nil {
				t.Fatal(err)
			}
			return e.ver, ev
		}, attest.ReasonSecureBootOff},
		{"measurement mismatch", func(t *testing.T) (*attest.EATVerifier, []byte) {
			e := newEnv(t, envOpts{})
			e.dev.SetTamper(devicesim.Tamper{WrongMeasurement: "firmware"})
			ev, err := e.dev.EvidenceCWT(e.nonce(t))
			if err != nil {
				t.Fatal(err)
			}
			return e.ver, ev
		}, attest.ReasonMeasurementMismatch},
		{"software below the minimum version", func(t *testing.T) (*attest.EATVerifier, []byte) {
			e := newEnv(t, envOpts{tweak: func(c *attest.Config) { c.ReferenceValues[0].MinSWVersion = "2.10" }})
			ev, err := e.dev.EvidenceCWT(e.nonce(t))
			if err != nil {
				t.Fatal(err)
			}
			return e.ver, ev
		}, attest.ReasonSoftwareVersion},
		{"no reference values for the model", func(t *testing.T) (*attest.EATVerifier, []byte) {
			e := newEnv(t, envOpts{tweak: func(c *attest.Config) { c.ReferenceValues[0].HWModel = []byte("other") }})
			ev, err := e.dev.EvidenceCWT(e.nonce(t))
			if err != nil {
				t.Fatal(err)
			}
			return e.ver, ev
		}, attest.ReasonNoReferenceValues},
		{"submodule with debug enabled", func(t *testing.T) (*attest.EATVerifier, []byte) {
			e := newEnv(t, envOpts{tweak: withRadioReference})
			c := goodClaims(t, e)
			c.Submods = map[string]*attest.Claims{"radio": radioClaims(attest.DebugEnabled, "radio-fw 1")}
			ev, err := attest.SignCWT(nil, e.key, c, &attest.SignOptions{KeyID: []byte("device-1")})
			if err != nil {
				t.Fatal(err)
			}
			return e.ver, ev
		}, attest.ReasonDebugEnabled},
		{"submodule measurement mismatch (JWT)", func(t *testing.T) (*attest.EATVerifier, []byte) {
			e := newEnv(t, envOpts{tweak: withRadioReference})
			c := goodClaims(t, e)
			c.Submods = map[string]*attest.Claims{"radio": radioClaims(attest.DebugDisabled, "radio-fw 2")}
			ev, err := attest.SignJWT(nil, e.key, c, &attest.SignOptions{KeyID: []byte("device-1")})
			if err != nil {
				t.Fatal(err)
			}
			return e.ver, ev
		}, attest.ReasonMeasurementMismatch},
		{"submodule missing", func(t *testing.T) (*attest.EATVerifier, []byte) {
			e := newEnv(t, envOpts{tweak: withRadioReference})
			ev, err := e.dev.EvidenceCWT(e.nonce(t))
			if err != nil {
				t.Fatal(err)
			}
			return e.ver, ev
		}, attest.ReasonMeasurementMismatch},
		{"token over 64 KiB", func(t *testing.T) (*attest.EATVerifier, []byte) {
			e := newEnv(t, envOpts{})
			c := goodClaims(t, e)
			c.Extensions = map[int64]cbor.RawMessage{-70100: mustCBOR(t, make([]byte, 65<<10))}
			ev, err := attest.SignCWT(nil, e.key, c, &attest.SignOptions{KeyID: []byte("device-1")})
			if err != nil {
				t.Fatal(err)
			}
			return e.ver, ev
		}, attest.ReasonTooLarge},
		{"token over the configured limit", func(t *testing.T) (*attest.EATVerifier, []byte) {
			e := newEnv(t, envOpts{tweak: func(c *attest.Config) { c.MaxSize = 200 }})
			ev, err := e.dev.EvidenceJWT(e.nonce(t))
			if err != nil {
				t.Fatal(err)
			}
			return e.ver, ev
		}, attest.ReasonTooLarge},
		{"duplicate claim keys", func(t *testing.T) (*attest.EATVerifier, []byte) {
			e := newEnv(t, envOpts{tweak: withRawKey})
			good := claimsCBOR(t, goodClaims(t, e))
			// Append a second ueid to the map: bump the pair count.
			dup := append([]byte{good[0] + 1}, good[1:]...)
			dup = append(dup, mustCBOR(t, int64(256))...)
			dup = append(dup, mustCBOR(t, testUEID)...)
			return e.ver, craftCWT(t, protKidRaw(t, -7), emptyMap, dup)
		}, attest.ReasonMalformed},
		{"duplicate protected header keys", func(t *testing.T) (*attest.EATVerifier, []byte) {
			e := newEnv(t, envOpts{tweak: withRawKey})
			prot := []byte{0xa3, 0x01, 0x26, 0x04, 0x43, 'r', 'a', 'w', 0x01, 0x26}
			return e.ver, craftCWT(t, prot, emptyMap, claimsCBOR(t, goodClaims(t, e)))
		}, attest.ReasonMalformed},
		{"duplicate unprotected header keys", func(t *testing.T) (*attest.EATVerifier, []byte) {
			e := newEnv(t, envOpts{tweak: withRawKey})
			return e.ver, craftCWT(t, protKidRaw(t, -7), []byte{0xa2, 0x04, 0x41, 'x', 0x04, 0x41, 'y'}, claimsCBOR(t, goodClaims(t, e)))
		}, attest.ReasonMalformed},
		{"indefinite-length claims map", func(t *testing.T) (*attest.EATVerifier, []byte) {
			e := newEnv(t, envOpts{tweak: withRawKey})
			good := claimsCBOR(t, goodClaims(t, e))
			var m map[int64]cbor.RawMessage
			if err := cbor.Unmarshal(good, &m); err != nil {
				t.Fatal(err)
			}
			indef := []byte{0xbf}
			for k, v := range m {
				indef = append(indef, mustCBOR(t, k)...)
				indef = append(indef, v...)
			}
			indef = append(indef, 0xff)
			return e.ver, craftCWT(t, protKidRaw(t, -7), emptyMap, indef)
		}, attest.ReasonMalformed},
		{"indefinite-length envelope", func(t *testing.T) (*attest.EATVerifier, []byte) {
			e := newEnv(t, envOpts{tweak: withRawKey})
			ev := craftCWT(t, protKidRaw(t, -7), emptyMap, claimsCBOR(t, goodClaims(t, e)))
			indef := append([]byte{0xd2, 0x9f}, ev[2:]...)
			return e.ver, append(indef, 0xff)
		}, attest.ReasonMalformed},
		{"indefinite-length payload string", func(t *testing.T) (*attest.EATVerifier, []byte) {
			e := newEnv(t, envOpts{tweak: withRawKey})
			p := claimsCBOR(t, goodClaims(t, e))
			prot := protKidRaw(t, -7)
			ev := craftCWT(t, prot, emptyMap, p)
			// Re-encode the payload bstr as one indefinite-length chunk.
			enc := mustCBOR(t, p)
			chunked := append(append([]byte{0x5f}, enc...), 0xff)
			return e.ver, bytes.Replace(ev, enc, chunked, 1)
		}, attest.ReasonMalformed},
		{"trailing bytes", func(t *testing.T) (*attest.EATVerifier, []byte) {
			e := newEnv(t, envOpts{})
			ev, err := e.dev.EvidenceCWT(e.nonce(t))
			if err != nil {
				t.Fatal(err)
			}
			return e.ver, append(ev, 0x00)
		}, attest.ReasonMalformed},
		{"untagged COSE_Sign1", func(t *testing.T) (*attest.EATVerifier, []byte) {
			e := newEnv(t, envOpts{})
			ev, err := e.dev.EvidenceCWT(e.nonce(t))
			if err != nil {
				t.Fatal(err)
			}
			return e.ver, ev[1:]
		}, attest.ReasonMalformed},
		{"JWT alg none", func(t *testing.T) (*attest.EATVerifier, []byte) {
			e := newEnv(t, envOpts{tweak: withRawKey})
			return e.ver, craftJWT(`{"alg":"none","kid":"raw"}`, claimsJSON(t, goodClaims(t, e)), func([]byte) []byte { return nil })
		}, attest.ReasonUnsupportedAlgorithm},
		{"JWT HMAC with the public key as secret", func(t *testing.T) (*attest.EATVerifier, []byte) {
			e := newEnv(t, envOpts{tweak: withRawKey})
			der, err := x509.MarshalPKIXPublicKey(rawKey.Public())
			if err != nil {
				t.Fatal(err)
			}
			secret := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
			return e.ver, craftJWT(`{"alg":"HS256","kid":"raw"}`, claimsJSON(t, goodClaims(t, e)), func(in []byte) []byte {
				m := hmac.New(sha256.New, secret)
				m.Write(in)
				return m.Sum(nil)
			})
		}, attest.ReasonUnsupportedAlgorithm},
		{"JWT alg not matching the key", func(t *testing.T) (*attest.EATVerifier, []byte) {
			e := newEnv(t, envOpts{tweak: withRawKey})
			return e.ver, craftJWT(`{"alg":"ES384","kid":"raw"}`, claimsJSON(t, goodClaims(t, e)), es256Raw(t))
		}, attest.ReasonAlgorithmMismatch},
		{"JWT without alg", func(t *testing.T) (*attest.EATVerifier, []byte) {
			e := newEnv(t, envOpts{tweak: withRawKey})
			return e.ver, craftJWT(`{"kid":"raw"}`, claimsJSON(t, goodClaims(t, e)), es256Raw(t))
		}, attest.ReasonUnsupportedAlgorithm},
		{"JWT bad signature", func(t *testing.T) (*attest.EATVerifier, []byte) {
			e := newEnv(t, envOpts{})
			ev, err := e.dev.EvidenceJWT(e.nonce(t))
			if err != nil {
				t.Fatal(err)
			}
			i := bytes.LastIndexByte(ev, '.') + 5
			if ev[i] == 'A' {
				ev[i] = 'B'
			} else {
				ev[i] = 'A'
			}
			return e.ver, ev
		}, attest.ReasonBadSignature},
		{"JWT duplicate claim names", func(t *testing.T) (*attest.EATVerifier, []byte) {
			e := newEnv(t, envOpts{tweak: withRawKey})
			js := claimsJSON(t, goodClaims(t, e))
			js = strings.TrimSuffix(js, "}") + `,"ueid":"AQAAAAAAAAAAAAAAAAAAAAAA"}`
			return e.ver, craftJWT(`{"alg":"ES256","kid":"raw"}`, js, es256Raw(t))
		}, attest.ReasonMalformed},
		{"JWT ueid in non-canonical base64url", func(t *testing.T) (*attest.EATVerifier, []byte) {
			// The last character of a 17-byte value carries two unused
			// bits; set one, which a lenient decoder ignores.
			e := newEnv(t, envOpts{tweak: withRawKey})
			js := claimsJSON(t, goodClaims(t, e))
			i := strings.Index(js, `"ueid":"`) + len(`"ueid":"`)
			end := i + strings.IndexByte(js[i:], '"')
			const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
			if (end-i)%4 == 0 {
				t.Fatalf("ueid %q has no unused bits", js[i:end])
			}
			last := strings.IndexByte(alphabet, js[end-1])
			js = js[:end-1] + string(alphabet[last^1]) + js[end:]
			return e.ver, craftJWT(`{"alg":"ES256","kid":"raw"}`, js, es256Raw(t))
		}, attest.ReasonMalformed},
		{"JWT claims of the wrong type", func(t *testing.T) (*attest.EATVerifier, []byte) {
			e := newEnv(t, envOpts{tweak: withRawKey})
			js := strings.Replace(claimsJSON(t, goodClaims(t, e)), `"dbgstat":"disabled-since-boot"`, `"dbgstat":2`, 1)
			return e.ver, craftJWT(`{"alg":"ES256","kid":"raw"}`, js, es256Raw(t))
		}, attest.ReasonMalformed},
		{"CWT nonce as an array of integers, beside an extension claim", func(t *testing.T) (*attest.EATVerifier, []byte) {
			e := newEnv(t, envOpts{tweak: withRawKey})
			var m map[int64]any
			if err := cbor.Unmarshal(claimsCBOR(t, goodClaims(t, e)), &m); err != nil {
				t.Fatal(err)
			}
			nonce, ok := m[attest.KeyNonce].([]byte)
			if !ok {
				t.Fatalf("no nonce in %v", m)
			}
			ints := make([]any, len(nonce))
			for i, b := range nonce {
				ints[i] = uint64(b)
			}
			m[attest.KeyNonce] = ints
			m[-70000] = 1 // an extension claim: the claims decode the general way
			return e.ver, craftCWT(t, protKidRaw(t, -7), emptyMap, mustCBOR(t, m))
		}, attest.ReasonMalformed},
		{"CWT one component measured twice", func(t *testing.T) (*attest.EATVerifier, []byte) {
			e := newEnv(t, envOpts{tweak: withRawKey})
			var m map[int64]any
			if err := cbor.Unmarshal(claimsCBOR(t, goodClaims(t, e)), &m); err != nil {
				t.Fatal(err)
			}
			ms, ok := m[attest.KeyMeasurements].([]any)
			if !ok || len(ms) == 0 {
				t.Fatalf("no measurements in %v", m)
			}
			m[attest.KeyMeasurements] = append(ms, ms[0])
			return e.ver, craftCWT(t, protKidRaw(t, -7), emptyMap, mustCBOR(t, m))
		}, attest.ReasonMalformed},
		{"JWT one component measured twice", func(t *testing.T) (*attest.EATVerifier, []byte) {
			e := newEnv(t, envOpts{tweak: withRawKey})
			var m map[string]any
			if err := json.Unmarshal([]byte(claimsJSON(t, goodClaims(t, e))), &m); err != nil {
				t.Fatal(err)
			}
			ms, ok := m["measurements"].([]any)
			if !ok || len(ms) == 0 {
				t.Fatalf("no measurements in %v", m)
			}
			m["measurements"] = append(ms, ms[0])
			js, err := json.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			return e.ver, craftJWT(`{"alg":"ES256","kid":"raw"}`, string(js), es256Raw(t))
		}, attest.ReasonMalformed},
		{"neither CWT nor JWT", func(t *testing.T) (*attest.EATVerifier, []byte) {
			e := newEnv(t, envOpts{})
			return e.ver, []byte("hello")
		}, attest.ReasonMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ver, ev := tc.build(t)
			r, err := ver.Verify(context.Background(), ev)
			if err == nil {
				t.Fatalf("accepted; status %v", r.Status())
			}
			if !errors.Is(err, attest.ErrVerification) {
				t.Errorf("error %v does not wrap ErrVerification", err)
			}
			if !errors.Is(err, tc.want.Sentinel()) {
				t.Errorf("error %v does not wrap %v", err, tc.want.Sentinel())
			}
			var ve *attest.VerificationError
			if !errors.As(err, &ve) || ve.Reason != tc.want {
				t.Fatalf("error %v: reason %v, want %v", err, ve.Reason, tc.want)
			}
			if r == nil {
				t.Fatal("no Result for a refusal")
			}
			if r.Status() != attest.StatusContraindicated {
				t.Errorf("status %v, want contraindicated", r.Status())
			}
			reasons := r.Reasons()
			found := false
			for _, s := range reasons {
				if strings.Contains(s, tc.want.String()+": ") {
					found = true
				}
			}
			if !found {
				t.Errorf("reasons %q do not say %v", reasons, tc.want)
			}
			// The refusal is still a well-formed, signable EAR.
			if _, err := r.SignJWT(nil, rawKey, &attest.SignOptions{KeyID: []byte("verifier")}); err != nil {
				t.Errorf("signing the refusal: %v", err)
			}
		})
	}
}

func radioClaims(dbg attest.DebugStatus, image string) *attest.Claims {
	d := sha256.Sum256([]byte(image))
	return &attest.Claims{
		SecureBoot: attest.BoolPtr(true), DebugStatus: attest.DebugPtr(dbg),
		SWName: "radio-fw", SWVersion: "1.0",
		Measurements: []attest.Measurement{{Name: "radio", Alg: -16, Digest: d[:]}},
	}
}

// withRadioReference expects a "radio" submodule running radio-fw 1.
func withRadioReference(c *attest.Config) {
	want := radioClaims(attest.DebugDisabled, "radio-fw 1")
	c.ReferenceValues[0].Submods = map[string]*attest.ReferenceValues{"radio": {
		Measurements: want.Measurements, SWName: "radio-fw", MinSWVersion: "1.0",
	}}
}

func TestVerifySubmodules(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// An honest radio submodule is appraised and affirmed.
	e := newEnv(t, envOpts{tweak: withRadioReference})
	c := goodClaims(t, e)
	c.Submods = map[string]*attest.Claims{"radio": radioClaims(attest.DebugDisabledPermanently, "radio-fw 1")}
	ev, err := attest.SignCWT(nil, e.key, c, &attest.SignOptions{KeyID: []byte("device-1")})
	if err != nil {
		t.Fatal(err)
	}
	r, err := e.ver.Verify(ctx, ev)
	if err != nil || r.Status() != attest.StatusAffirming {
		t.Fatalf("honest submodule: %v %v", err, r.Reasons())
	}
	// A submodule nobody gave reference values for is only a warning.
	c = goodClaims(t, e)
	c.Submods = map[string]*attest.Claims{
		"radio": radioClaims(attest.DebugDisabled, "radio-fw 1"),
		"gps":   radioClaims(attest.DebugDisabled, "gps"),
	}
	ev, err = attest.SignJWT(nil, e.key, c, &attest.SignOptions{KeyID: []byte("device-1")})
	if err != nil {
		t.Fatal(err)
	}
	r, err = e.ver.Verify(ctx, ev)
	if err != nil || r.Status() != attest.StatusWarning || r.Submods["device"].TrustVector.Executables != attest.TrustUnrecognizedRuntime {
		t.Fatalf("unknown submodule: %v %v %v", err, r.Status(), r.Reasons())
	}
}
