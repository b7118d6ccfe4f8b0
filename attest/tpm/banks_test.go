package tpm_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha1"
	"crypto/sha256"
	"errors"
	"testing"
	"time"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"

	"github.com/ztmkit/ztm/attest"
	attesttpm "github.com/ztmkit/ztm/attest/tpm"
	"github.com/ztmkit/ztm/internal/tpmtest"
)

// endorsementAK creates a restricted ECDSA P-256 signing key (the TCG AK
// shape) as a primary key of the endorsement hierarchy, whose clock
// counters the TPM does not obfuscate, and which the same seed gives back
// after a reboot.
func endorsementAK(t *testing.T, tpm transport.TPM) (tpm2.NamedHandle, crypto.PublicKey) {
	t.Helper()
	tmpl := tpm2.TPMTPublic{
		Type:    tpm2.TPMAlgECC,
		NameAlg: tpm2.TPMAlgSHA256,
		ObjectAttributes: tpm2.TPMAObject{
			FixedTPM: true, FixedParent: true, SensitiveDataOrigin: true,
			UserWithAuth: true, Restricted: true, SignEncrypt: true,
		},
		Parameters: tpm2.NewTPMUPublicParms(tpm2.TPMAlgECC, &tpm2.TPMSECCParms{
			Scheme: tpm2.TPMTECCScheme{
				Scheme:  tpm2.TPMAlgECDSA,
				Details: tpm2.NewTPMUAsymScheme(tpm2.TPMAlgECDSA, &tpm2.TPMSSigSchemeECDSA{HashAlg: tpm2.TPMAlgSHA256}),
			},
			CurveID: tpm2.TPMECCNistP256,
		}),
	}
	rsp, err := tpm2.CreatePrimary{
		PrimaryHandle: tpm2.AuthHandle{Handle: tpm2.TPMRHEndorsement, Auth: tpm2.PasswordAuth(nil)},
		InPublic:      tpm2.New2B(tmpl),
	}.Execute(tpm)
	if err != nil {
		t.Fatal(err)
	}
	area, err := rsp.OutPublic.Contents()
	if err != nil {
		t.Fatal(err)
	}
	pub, err := tpm2.Pub(*area)
	if err != nil {
		t.Fatal(err)
	}
	return tpm2.NamedHandle{Handle: rsp.ObjectHandle, Name: rsp.Name}, pub
}

// bankQuote quotes PCRs of the given banks with ak and returns the
// evidence: SHA-256 values in PCRs, the others in OtherBanks.
func bankQuote(t *testing.T, tpm transport.TPM, ak tpm2.NamedHandle, nonce []byte, banks []tpm2.TPMAlgID, pcrs ...uint) *attesttpm.Evidence {
	t.Helper()
	var sel tpm2.TPMLPCRSelection
	for _, b := range banks {
		sel.PCRSelections = append(sel.PCRSelections, tpm2.TPMSPCRSelection{Hash: b, PCRSelect: tpm2.PCClientCompatible.PCRs(pcrs...)})
	}
	rsp, err := tpm2.Quote{
		SignHandle:     tpm2.AuthHandle{Handle: ak.Handle, Name: ak.Name, Auth: tpm2.PasswordAuth(nil)},
		QualifyingData: tpm2.TPM2BData{Buffer: nonce},
		InScheme:       tpm2.TPMTSigScheme{Scheme: tpm2.TPMAlgNull},
		PCRSelect:      sel,
	}.Execute(tpm)
	if err != nil {
		t.Fatal(err)
	}
	ev := &attesttpm.Evidence{Attest: bytes.Clone(rsp.Quoted.Bytes()), Signature: tpm2.Marshal(&rsp.Signature), PCRs: map[int][]byte{}, AKKeyID: []byte("ak")}
	for _, b := range banks {
		vals := map[int][]byte{}
		for _, p := range pcrs {
			r, err := tpm2.PCRRead{PCRSelectionIn: tpm2.TPMLPCRSelection{PCRSelections: []tpm2.TPMSPCRSelection{{Hash: b, PCRSelect: tpm2.PCClientCompatible.PCRs(p)}}}}.Execute(tpm)
			if err != nil || len(r.PCRValues.Digests) != 1 {
				t.Fatalf("PCRRead bank %#x PCR %d: %v", b, p, err)
			}
			vals[int(p)] = bytes.Clone(r.PCRValues.Digests[0].Buffer)
		}
		if b == tpm2.TPMAlgSHA256 {
			ev.PCRs = vals
			continue
		}
		if ev.OtherBanks == nil {
			ev.OtherBanks = map[uint16]map[int][]byte{}
		}
		ev.OtherBanks[uint16(b)] = vals
	}
	return ev
}

func extendBoth(t *testing.T, tpm transport.TPM, pcr int, data string) {
	t.Helper()
	d256 := sha256.Sum256([]byte(data))
	d1 := sha1.Sum([]byte(data))
	_, err := tpm2.PCRExtend{
		PCRHandle: tpm2.AuthHandle{Handle: tpm2.TPMHandle(pcr), Auth: tpm2.PasswordAuth(nil)},
		Digests: tpm2.TPMLDigestValues{Digests: []tpm2.TPMTHA{
			{HashAlg: tpm2.TPMAlgSHA1, Digest: d1[:]},
			{HashAlg: tpm2.TPMAlgSHA256, Digest: d256[:]},
		}},
	}.Execute(tpm)
	if err != nil {
		t.Fatal(err)
	}
}

func tpmReason(err error) attest.Reason {
	var ve *attest.VerificationError
	if errors.As(err, &ve) {
		return ve.Reason
	}
	return -1
}

// TestMultiBankQuote quotes the SHA-1 and SHA-256 banks together on the TPM
// simulator, as many platforms do: the quote verifies, reference values are
// compared with the SHA-256 bank only, and SHA-1 values count only towards
// the signed digest.
func TestMultiBankQuote(t *testing.T) {
	ctx := context.Background()
	sim := tpmtest.Open(t)
	ak, pub := endorsementAK(t, sim)
	extendBoth(t, sim, 0, "bootloader 1.4")
	extendBoth(t, sim, 7, "secure boot on")
	nonces := attest.NewNonces(attest.NonceConfig{Time: func() time.Time { return t0 }})
	newVer := func(ref map[int][]byte) *attesttpm.Verifier {
		v, err := attesttpm.NewVerifier(attesttpm.Config{
			Keys:            map[string]crypto.PublicKey{"ak": pub},
			Nonces:          nonces,
			ReferenceValues: []attesttpm.ReferenceValues{{Name: "fw", PCRs: ref}},
			Time:            func() time.Time { return t0 },
		})
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	ver := newVer(map[int][]byte{0: extended("bootloader 1.4"), 7: extended("secure boot on")})
	nonce := func() []byte {
		n, err := nonces.Issue()
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	both := []tpm2.TPMAlgID{tpm2.TPMAlgSHA1, tpm2.TPMAlgSHA256}

	ev := bankQuote(t, sim, ak, nonce(), both, 0, 7)
	if len(ev.OtherBanks[0x0004]) != 2 {
		t.Fatalf("no SHA-1 values: %+v", ev.OtherBanks)
	}
	r, err := ver.Verify(ctx, marshal(t, ev))
	if err != nil || r.Status() != attest.StatusAffirming {
		t.Fatalf("SHA-1 + SHA-256 quote: %v %v", err, r.Reasons())
	}

	// A SHA-1 value changed: the digest no longer matches.
	ev = bankQuote(t, sim, ak, nonce(), both, 0, 7)
	ev.OtherBanks[0x0004][0][0] ^= 1
	if _, err := ver.Verify(ctx, marshal(t, ev)); tpmReason(err) != attest.ReasonBadSignature {
		t.Errorf("altered SHA-1 value: %v", err)
	}
	// SHA-1 values left out: the quote's digest cannot be recomputed.
	ev = bankQuote(t, sim, ak, nonce(), both, 0, 7)
	ev.OtherBanks = nil
	if _, err := ver.Verify(ctx, marshal(t, ev)); tpmReason(err) != attest.ReasonBadSignature {
		t.Errorf("SHA-1 values missing: %v", err)
	}

	// A reference value for a PCR that only the SHA-1 bank quotes is not
	// met: SHA-1 values are never appraised.
	ev = bankQuote(t, sim, ak, nonce(), []tpm2.TPMAlgID{tpm2.TPMAlgSHA1}, 0, 7)
	ev.PCRs = nil
	if _, err := ver.Verify(ctx, marshal(t, ev)); tpmReason(err) != attest.ReasonMeasurementMismatch {
		t.Errorf("SHA-1-only quote: %v", err)
	}
}

// TestRebootBetweenQuotes: the clock counters of two quotes of one device
// show a reboot (TPM reset) between them, and VerifyQuote with Since
// refuses the second quote; without a reboot it is accepted. (The
// simulator's power cycle always shuts down with CLEAR, so restarts are
// tested with software-signed quotes: TestClockChecks.)
func TestRebootBetweenQuotes(t *testing.T) {
	ctx := context.Background()
	sim := tpmtest.Open(t)
	ak, pub := endorsementAK(t, sim)
	extendBoth(t, sim, 0, "bootloader 1.4")
	nonces := attest.NewNonces(attest.NonceConfig{Time: func() time.Time { return t0 }})
	cfg := attesttpm.Config{
		Keys:            map[string]crypto.PublicKey{"ak": pub},
		Nonces:          nonces,
		ReferenceValues: []attesttpm.ReferenceValues{{Name: "fw", PCRs: map[int][]byte{0: extended("bootloader 1.4")}}},
		Time:            func() time.Time { return t0 },
	}
	ver, err := attesttpm.NewVerifier(cfg)
	if err != nil {
		t.Fatal(err)
	}
	quote := func(ak tpm2.NamedHandle) []byte {
		n, err := nonces.Issue()
		if err != nil {
			t.Fatal(err)
		}
		return marshal(t, bankQuote(t, sim, ak, n, []tpm2.TPMAlgID{tpm2.TPMAlgSHA256}, 0))
	}
	_, first, err := ver.VerifyQuote(ctx, quote(ak), attesttpm.VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, second, err := ver.VerifyQuote(ctx, quote(ak), attesttpm.VerifyOptions{Since: first})
	if err != nil {
		t.Fatalf("no reboot: %v", err)
	}
	ci1, ci2 := first.Attest.ClockInfo, second.Attest.ClockInfo
	if ci2.ResetCount != ci1.ResetCount || ci2.RestartCount != ci1.RestartCount || ci2.Clock < ci1.Clock {
		t.Fatalf("clock info %+v then %+v", ci1, ci2)
	}

	// A host reboot (power cycle): the resetCount moves on.
	if err := sim.Reset(); err != nil {
		t.Fatal(err)
	}
	ak, _ = endorsementAK(t, sim) // the same key, from the same seed
	extendBoth(t, sim, 0, "bootloader 1.4")
	ev := quote(ak)
	r, third, err := ver.VerifyQuote(ctx, ev, attesttpm.VerifyOptions{Since: second})
	if tpmReason(err) != attest.ReasonReboot || r.Status() != attest.StatusContraindicated || third == nil {
		t.Fatalf("after a reboot: %v %v", err, r)
	}
	if third.Attest.ClockInfo.ResetCount == ci2.ResetCount {
		t.Fatalf("resetCount unchanged: %+v", third.Attest.ClockInfo)
	}
	t.Logf("before reboot %+v, after %+v", ci2, third.Attest.ClockInfo)
	// The same quote, appraised on its own, is fine.
	if _, err := ver.Decode(ev); err != nil {
		t.Fatalf("Decode: %v", err)
	}
	// Another device's quote as Since: refused too.
	other := *second
	other.AK = nil
	if _, _, err := ver.VerifyQuote(ctx, quote(ak), attesttpm.VerifyOptions{Since: &other}); tpmReason(err) != attest.ReasonReboot {
		t.Errorf("Since from another AK: %v", err)
	}

}
