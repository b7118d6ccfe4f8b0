package tpm_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"testing"

	"golang.org/x/crypto/cryptobyte"

	"github.com/ztmkit/ztm/attest"
	attesttpm "github.com/ztmkit/ztm/attest/tpm"
)

// buildAttest lays out a TPMS_ATTEST of a quote by hand (TPM 2.0 Library
// Part 2 §10.12.12), for structures a real TPM never signs.
func buildAttest(magic uint32, typ uint16, nonce []byte, pcrs []int, digest []byte) []byte {
	return buildAttestSels(magic, typ, nonce, [][]int{pcrs}, digest)
}

// buildAttestSels is buildAttest with one SHA-256 selection per element
// of sels.
func buildAttestSels(magic uint32, typ uint16, nonce []byte, sels [][]int, digest []byte) []byte {
	return buildAttestClock(magic, typ, nonce, sels, digest, attesttpm.ClockInfo{Clock: 1000, ResetCount: 1, Safe: true})
}

// buildAttestClock is buildAttestSels with the given clock information.
func buildAttestClock(magic uint32, typ uint16, nonce []byte, sels [][]int, digest []byte, ci attesttpm.ClockInfo) []byte {
	var b cryptobyte.Builder
	b.AddUint32(magic)
	b.AddUint16(typ)
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte{0x00, 0x0b, 1, 2, 3}) })
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(nonce) })
	b.AddUint64(ci.Clock)
	b.AddUint32(ci.ResetCount)
	b.AddUint32(ci.RestartCount)
	if ci.Safe {
		b.AddUint8(1)
	} else {
		b.AddUint8(0)
	}
	b.AddUint64(0x2023)
	b.AddUint32(uint32(len(sels)))
	for _, pcrs := range sels {
		b.AddUint16(0x000b)
		b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) {
			bitmap := make([]byte, 3)
			for _, p := range pcrs {
				bitmap[p/8] |= 1 << (p % 8)
			}
			b.AddBytes(bitmap)
		})
	}
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(digest) })
	return b.BytesOrPanic()
}

func tpmSig(alg uint16, parts ...[]byte) []byte {
	var b cryptobyte.Builder
	b.AddUint16(alg)
	b.AddUint16(0x000b) // SHA-256
	for _, p := range parts {
		b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(p) })
	}
	return b.BytesOrPanic()
}

// TestSoftwareSignedQuotes checks the RSA schemes and the structure checks
// with quotes signed in software: a TPM's restricted AK would never sign a
// structure without the TPM_GENERATED magic, so only a software key can
// show that the verifier refuses one anyway.
func TestSoftwareSignedQuotes(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pcr := make([]byte, 32)
	pcrs := map[int][]byte{0: pcr}
	d := sha256.Sum256(pcr)
	nonces := attest.NewNonces(attest.NonceConfig{})
	v, err := attesttpm.NewVerifier(attesttpm.Config{
		Keys:            map[string]crypto.PublicKey{"rsa": rsaKey.Public(), "ec": ecKey.Public()},
		Nonces:          nonces,
		ReferenceValues: []attesttpm.ReferenceValues{{Name: "zero", PCRs: pcrs}},
	})
	if err != nil {
		t.Fatal(err)
	}
	sign := func(kid string, scheme uint16, att []byte) []byte {
		h := sha256.Sum256(att)
		var sig []byte
		switch scheme {
		case 0x0014:
			s, err := rsa.SignPKCS1v15(rand.Reader, rsaKey, crypto.SHA256, h[:])
			if err != nil {
				t.Fatal(err)
			}
			sig = tpmSig(scheme, s)
		case 0x0016:
			s, err := rsa.SignPSS(rand.Reader, rsaKey, crypto.SHA256, h[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
			if err != nil {
				t.Fatal(err)
			}
			sig = tpmSig(scheme, s)
		case 0x0018:
			r, s, err := ecdsa.Sign(rand.Reader, ecKey, h[:])
			if err != nil {
				t.Fatal(err)
			}
			sig = tpmSig(scheme, r.Bytes(), s.Bytes())
		}
		ev := &attesttpm.Evidence{Attest: att, Signature: sig, PCRs: pcrs, AKKeyID: []byte(kid)}
		b, err := ev.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	fresh := func() []byte {
		n, err := nonces.Issue()
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	for _, tc := range []struct {
		name string
		ev   func() []byte
		want *attest.Reason
	}{
		{"RSASSA", func() []byte { return sign("rsa", 0x0014, buildAttest(0xff544347, 0x8018, fresh(), []int{0}, d[:])) }, nil},
		{"RSAPSS", func() []byte { return sign("rsa", 0x0016, buildAttest(0xff544347, 0x8018, fresh(), []int{0}, d[:])) }, nil},
		{"ECDSA", func() []byte { return sign("ec", 0x0018, buildAttest(0xff544347, 0x8018, fresh(), []int{0}, d[:])) }, nil},
		{"not TPM-generated", func() []byte { return sign("ec", 0x0018, buildAttest(0x12345678, 0x8018, fresh(), []int{0}, d[:])) }, reason(attest.ReasonMalformed)},
		{"certify, not quote", func() []byte { return sign("ec", 0x0018, buildAttest(0xff544347, 0x8017, fresh(), []int{0}, d[:])) }, reason(attest.ReasonMalformed)},
		{"ECDSA scheme from an RSA key", func() []byte { return sign("rsa", 0x0018, buildAttest(0xff544347, 0x8018, fresh(), []int{0}, d[:])) }, reason(attest.ReasonAlgorithmMismatch)},
		{"RSA scheme from an EC key", func() []byte {
			ev := sign("rsa", 0x0014, buildAttest(0xff544347, 0x8018, fresh(), []int{0}, d[:]))
			e, _ := attesttpm.ParseEvidence(ev, 0)
			e.AKKeyID = []byte("ec")
			b, _ := e.Marshal()
			return b
		}, reason(attest.ReasonAlgorithmMismatch)},
		{"a PCR quoted twice, to carry an unquoted one", func() []byte {
			// The quote covers PCR 1 twice; the evidence adds PCR 0 (the
			// reference value) that no selection covers, keeping the count.
			v := sha256.Sum256([]byte("any value of PCR 1"))
			one := v[:]
			h := sha256.New()
			h.Write(one)
			h.Write(one)
			att := buildAttestSels(0xff544347, 0x8018, fresh(), [][]int{{1}, {1}}, h.Sum(nil))
			hd := sha256.Sum256(att)
			r, s, err := ecdsa.Sign(rand.Reader, ecKey, hd[:])
			if err != nil {
				t.Fatal(err)
			}
			ev := &attesttpm.Evidence{Attest: att, Signature: tpmSig(0x0018, r.Bytes(), s.Bytes()),
				PCRs: map[int][]byte{0: pcr, 1: one}, AKKeyID: []byte("ec")}
			b, err := ev.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			return b
		}, reason(attest.ReasonMalformed)},
		{"trailing bytes in TPMS_ATTEST", func() []byte {
			return sign("ec", 0x0018, append(buildAttest(0xff544347, 0x8018, fresh(), []int{0}, d[:]), 0))
		}, reason(attest.ReasonMalformed)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := v.Verify(context.Background(), tc.ev())
			if tc.want == nil {
				if err != nil || r.Status() != attest.StatusAffirming {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var ve *attest.VerificationError
			if !errors.As(err, &ve) || ve.Reason != *tc.want || r.Status() != attest.StatusContraindicated {
				t.Fatalf("err %v, want %v", err, *tc.want)
			}
		})
	}
}

func reason(r attest.Reason) *attest.Reason { return &r }

// TestClockChecks: with software-signed quotes whose clock information is
// chosen, a restart, a reset and a clock that went back since an earlier
// quote are refused with VerifyOptions.Since, and an unsafe clock with
// Config.RequireSafeClock; otherwise they are accepted.
func TestClockChecks(t *testing.T) {
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pcr := make([]byte, 32)
	d := sha256.Sum256(pcr)
	nonces := attest.NewNonces(attest.NonceConfig{})
	cfg := attesttpm.Config{
		Keys:            map[string]crypto.PublicKey{"ec": ecKey.Public()},
		Nonces:          nonces,
		ReferenceValues: []attesttpm.ReferenceValues{{Name: "zero", PCRs: map[int][]byte{0: pcr}}},
	}
	quote := func(ci attesttpm.ClockInfo) []byte {
		n, err := nonces.Issue()
		if err != nil {
			t.Fatal(err)
		}
		att := buildAttestClock(0xff544347, 0x8018, n, [][]int{{0}}, d[:], ci)
		h := sha256.Sum256(att)
		r, s, err := ecdsa.Sign(rand.Reader, ecKey, h[:])
		if err != nil {
			t.Fatal(err)
		}
		b, err := (&attesttpm.Evidence{Attest: att, Signature: tpmSig(0x0018, r.Bytes(), s.Bytes()),
			PCRs: map[int][]byte{0: pcr}, AKKeyID: []byte("ec")}).Marshal()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	ver, err := attesttpm.NewVerifier(cfg)
	if err != nil {
		t.Fatal(err)
	}
	base := attesttpm.ClockInfo{Clock: 5000, ResetCount: 7, RestartCount: 2, Safe: true}
	_, first, err := ver.VerifyQuote(context.Background(), quote(base), attesttpm.VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if first.Attest.ClockInfo != base {
		t.Fatalf("clock info %+v", first.Attest.ClockInfo)
	}
	for name, tc := range map[string]struct {
		ci   attesttpm.ClockInfo
		want *attest.Reason
	}{
		"later, same boot":   {attesttpm.ClockInfo{Clock: 9000, ResetCount: 7, RestartCount: 2, Safe: true}, nil},
		"restart":            {attesttpm.ClockInfo{Clock: 9000, ResetCount: 7, RestartCount: 3, Safe: true}, reason(attest.ReasonReboot)},
		"reset":              {attesttpm.ClockInfo{Clock: 100, ResetCount: 8, RestartCount: 0, Safe: true}, reason(attest.ReasonReboot)},
		"clock went back":    {attesttpm.ClockInfo{Clock: 4000, ResetCount: 7, RestartCount: 2, Safe: true}, reason(attest.ReasonReboot)},
		"unsafe, not needed": {attesttpm.ClockInfo{Clock: 9000, ResetCount: 7, RestartCount: 2}, nil},
	} {
		r, _, err := ver.VerifyQuote(context.Background(), quote(tc.ci), attesttpm.VerifyOptions{Since: first})
		if tc.want == nil {
			if err != nil || r.Status() != attest.StatusAffirming {
				t.Errorf("%s: %v", name, err)
			}
			continue
		}
		var ve *attest.VerificationError
		if !errors.As(err, &ve) || ve.Reason != *tc.want || r.Status() != attest.StatusContraindicated || !errors.Is(err, attest.ErrVerification) {
			t.Errorf("%s: %v, want %v", name, err, *tc.want)
		}
	}
	cfg.RequireSafeClock = true
	strict, err := attesttpm.NewVerifier(cfg)
	if err != nil {
		t.Fatal(err)
	}
	unsafe := base
	unsafe.Safe = false
	var ve *attest.VerificationError
	if _, err := strict.Verify(context.Background(), quote(unsafe)); !errors.As(err, &ve) || ve.Reason != attest.ReasonClockUnsafe {
		t.Errorf("unsafe clock, required safe: %v", err)
	}
	if _, err := strict.Verify(context.Background(), quote(base)); err != nil {
		t.Errorf("safe clock, required safe: %v", err)
	}
}
