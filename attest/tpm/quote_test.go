package tpm_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"flag"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"

	"github.com/ztmkit/ztm/attest"
	attesttpm "github.com/ztmkit/ztm/attest/tpm"
	kstpm "github.com/ztmkit/ztm/identity/keystore/tpm"
	"github.com/ztmkit/ztm/internal/tpmtest"
)

var update = flag.Bool("update", false, "rewrite testdata/quote-evidence.cbor from the TPM simulator")

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func extend(t *testing.T, tpm transport.TPM, pcr int, data string) {
	t.Helper()
	d := sha256.Sum256([]byte(data))
	_, err := tpm2.PCRExtend{
		PCRHandle: tpm2.AuthHandle{Handle: tpm2.TPMHandle(pcr), Auth: tpm2.PasswordAuth(nil)},
		Digests:   tpm2.TPMLDigestValues{Digests: []tpm2.TPMTHA{{HashAlg: tpm2.TPMAlgSHA256, Digest: d[:]}}},
	}.Execute(tpm)
	if err != nil {
		t.Fatal(err)
	}
}

// extended returns the value of a PCR that started at zero and was
// extended with the SHA-256 of each of data.
func extended(data ...string) []byte {
	v := make([]byte, 32)
	for _, s := range data {
		d := sha256.Sum256([]byte(s))
		h := sha256.Sum256(append(v, d[:]...))
		v = h[:]
	}
	return v
}

type ca struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newCA(t *testing.T) *ca {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "TPM vendor AK CA"},
		NotBefore: t0.Add(-time.Hour), NotAfter: t0.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &ca{cert, key, pool}
}

func (c *ca) issue(t *testing.T, pub crypto.PublicKey, usage x509.KeyUsage) []byte {
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "AK"},
		NotBefore: t0.Add(-time.Hour), NotAfter: t0.Add(time.Hour), KeyUsage: usage,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.cert, pub, c.key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func evidenceOf(q *kstpm.Quote, chain [][]byte, kid []byte) *attesttpm.Evidence {
	e := &attesttpm.Evidence{Attest: q.Attest, Signature: q.Signature, PCRs: map[int][]byte{}, AKChain: chain, AKKeyID: kid}
	for _, p := range q.PCRs {
		e.PCRs[p.Index] = p.Value
	}
	return e
}

func marshal(t *testing.T, e *attesttpm.Evidence) []byte {
	b, err := e.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestQuoteFromTPMSimulator runs the whole path against the reference TPM
// 2.0 simulator: an AK made by the TPM key store, PCRs extended as a boot
// would, real TPM2_Quote output, and this package's verifier.
func TestQuoteFromTPMSimulator(t *testing.T) {
	ctx := context.Background()
	sim := tpmtest.Open(t)
	store, err := kstpm.New(ctx, sim, kstpm.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	ak, err := store.CreateAttestationKey(ctx, "ak")
	if err != nil {
		t.Fatal(err)
	}
	extend(t, sim, 0, "bootloader 1.4")
	extend(t, sim, 7, "secure boot on")

	vendor := newCA(t)
	chain := [][]byte{vendor.issue(t, ak.Public(), x509.KeyUsageDigitalSignature)}
	now := t0
	nonces := attest.NewNonces(attest.NonceConfig{Time: func() time.Time { return now }})
	ref := attesttpm.ReferenceValues{Name: "bootloader 1.4", PCRs: map[int][]byte{0: extended("bootloader 1.4"), 7: extended("secure boot on")}}
	ver, err := attesttpm.NewVerifier(attesttpm.Config{
		Roots:           vendor.pool,
		Keys:            map[string]crypto.PublicKey{"ak-1": ak.Public()},
		Nonces:          nonces,
		ReferenceValues: []attesttpm.ReferenceValues{ref},
		Time:            func() time.Time { return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	quote := func(pcrs ...int) (*kstpm.Quote, []byte) {
		t.Helper()
		n, err := nonces.Issue()
		if err != nil {
			t.Fatal(err)
		}
		q, err := store.Quote(ctx, "ak", n, pcrs)
		if err != nil {
			t.Fatal(err)
		}
		return q, n
	}

	// An honest quote is affirmed.
	q, n := quote(0, 7)
	good := marshal(t, evidenceOf(q, chain, nil))
	r, err := ver.Verify(ctx, good)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if r.Status() != attest.StatusAffirming || !bytes.Equal(r.Nonce, n) {
		t.Fatalf("status %v nonce %x reasons %v", r.Status(), r.Nonce, r.Reasons())
	}
	if *update {
		if err := os.WriteFile(filepath.Join("testdata", "quote-evidence.cbor"), good, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// Our parser agrees with go-tpm's on the TPM's own bytes.
	att, err := attesttpm.ParseAttest(q.Attest)
	if err != nil {
		t.Fatal(err)
	}
	ref2, err := tpm2.Unmarshal[tpm2.TPMSAttest](q.Attest)
	if err != nil {
		t.Fatal(err)
	}
	qi, err := ref2.Attested.Quote()
	if err != nil {
		t.Fatal(err)
	}
	if uint32(ref2.Magic) != att.Magic || !bytes.Equal(ref2.ExtraData.Buffer, att.ExtraData) ||
		!bytes.Equal(qi.PCRDigest.Buffer, att.PCRDigest) || ref2.FirmwareVersion != att.FirmwareVersion ||
		ref2.ClockInfo.Clock != att.ClockInfo.Clock || len(att.PCRSelection) != 1 ||
		len(att.PCRSelection[0].PCRs) != 2 || att.PCRSelection[0].PCRs[1] != 7 {
		t.Errorf("ParseAttest %+v disagrees with go-tpm %+v", att, ref2)
	}

	type tc struct {
		name     string
		evidence func() []byte
		want     attest.Reason
	}
	cases := []tc{
		{"replayed quote", func() []byte { return good }, attest.ReasonNonceReused},
		{"nonce never issued", func() []byte {
			q, err := store.Quote(ctx, "ak", bytes.Repeat([]byte{9}, 32), []int{0, 7})
			if err != nil {
				t.Fatal(err)
			}
			return marshal(t, evidenceOf(q, chain, nil))
		}, attest.ReasonNonceUnknown},
		{"nonce expired", func() []byte {
			q, _ := quote(0, 7)
			now = now.Add(attest.DefaultNonceTTL)
			return marshal(t, evidenceOf(q, chain, nil))
		}, attest.ReasonNonceExpired},
		{"PCR value lied about", func() []byte {
			q, _ := quote(0, 7)
			e := evidenceOf(q, chain, nil)
			e.PCRs[0] = extended("bootloader 1.4")
			e.PCRs[7] = extended("secure boot off")
			return marshal(t, e)
		}, attest.ReasonBadSignature},
		{"quoted PCR withheld", func() []byte {
			q, _ := quote(0, 7)
			e := evidenceOf(q, chain, nil)
			delete(e.PCRs, 7)
			return marshal(t, e)
		}, attest.ReasonBadSignature},
		{"extra PCR value", func() []byte {
			q, _ := quote(0, 7)
			e := evidenceOf(q, chain, nil)
			e.PCRs[1] = make([]byte, 32)
			return marshal(t, e)
		}, attest.ReasonBadSignature},
		{"quote bytes altered", func() []byte {
			q, _ := quote(0, 7)
			e := evidenceOf(q, chain, nil)
			e.Attest[len(e.Attest)-1] ^= 1
			return marshal(t, e)
		}, attest.ReasonBadSignature},
		{"reference PCR not quoted", func() []byte {
			q, _ := quote(0)
			return marshal(t, evidenceOf(q, chain, nil))
		}, attest.ReasonMeasurementMismatch},
		{"AK chain to an untrusted CA", func() []byte {
			q, _ := quote(0, 7)
			return marshal(t, evidenceOf(q, [][]byte{newCA(t).issue(t, ak.Public(), x509.KeyUsageDigitalSignature)}, nil))
		}, attest.ReasonUntrustedSigner},
		{"AK certificate may not sign", func() []byte {
			q, _ := quote(0, 7)
			return marshal(t, evidenceOf(q, [][]byte{vendor.issue(t, ak.Public(), x509.KeyUsageKeyEncipherment)}, nil))
		}, attest.ReasonUntrustedSigner},
		{"AK certificate of another key", func() []byte {
			other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			q, _ := quote(0, 7)
			return marshal(t, evidenceOf(q, [][]byte{vendor.issue(t, other.Public(), x509.KeyUsageDigitalSignature)}, nil))
		}, attest.ReasonBadSignature},
		{"AK key of another curve", func() []byte {
			other, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
			q, _ := quote(0, 7)
			return marshal(t, evidenceOf(q, [][]byte{vendor.issue(t, other.Public(), x509.KeyUsageDigitalSignature)}, nil))
		}, attest.ReasonAlgorithmMismatch},
		{"unregistered AK key ID", func() []byte {
			q, _ := quote(0, 7)
			return marshal(t, evidenceOf(q, nil, []byte("nobody")))
		}, attest.ReasonUntrustedSigner},
		{"firmware changed", func() []byte {
			extend(t, sim, 0, "implant")
			q, _ := quote(0, 7)
			return marshal(t, evidenceOf(q, chain, nil))
		}, attest.ReasonMeasurementMismatch},
		{"oversize", func() []byte { return make([]byte, attest.DefaultMaxSize+1) }, attest.ReasonTooLarge},
		{"not CBOR", func() []byte { return []byte("quote") }, attest.ReasonMalformed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			now = t0
			r, err := ver.Verify(ctx, c.evidence())
			var ve *attest.VerificationError
			if !errors.As(err, &ve) || ve.Reason != c.want || !errors.Is(err, attest.ErrVerification) {
				t.Fatalf("err %v, want reason %v", err, c.want)
			}
			if r == nil || r.Status() != attest.StatusContraindicated || len(r.Reasons()) == 0 {
				t.Fatalf("result %+v", r)
			}
		})
	}

	// A registered AK (by key ID) is accepted too; the firmware changed
	// above, so a second reference state is needed.
	now = t0
	ver2, err := attesttpm.NewVerifier(attesttpm.Config{
		Keys:   map[string]crypto.PublicKey{"ak-1": ak.Public()},
		Nonces: nonces,
		ReferenceValues: []attesttpm.ReferenceValues{ref,
			{Name: "patched", PCRs: map[int][]byte{0: extended("bootloader 1.4", "implant")}}},
		Time: func() time.Time { return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	q, _ = quote(0, 7)
	if r, err := ver2.Verify(ctx, marshal(t, evidenceOf(q, nil, []byte("ak-1")))); err != nil || r.Status() != attest.StatusAffirming {
		t.Fatalf("registered AK: %v", err)
	}

	// An AK registered while the verifier runs (KeyLookup) is accepted
	// without making a new verifier; its nonce-free view consumes nothing.
	var aks attest.KeySet
	ver3, err := attesttpm.NewVerifier(attesttpm.Config{
		KeyLookup: aks.Lookup, Nonces: nonces, ReferenceValues: []attesttpm.ReferenceValues{ref,
			{Name: "patched", PCRs: map[int][]byte{0: extended("bootloader 1.4", "implant")}}},
		Time: func() time.Time { return now },
	})
	require.NoError(t, err)
	require.Equal(t, nonces, ver3.Nonces())
	q, _ = quote(0, 7)
	ev := marshal(t, evidenceOf(q, nil, []byte("ak-1")))
	_, err = ver3.WithoutNonces().Verify(ctx, ev)
	require.ErrorIs(t, err, attest.ErrUntrustedSigner, "AK not registered yet")
	require.NoError(t, aks.Add([]byte("ak-1"), ak.Public()))
	_, err = ver3.WithoutNonces().Verify(ctx, ev)
	require.NoError(t, err, "AK registered while running, nonce-free view")
	_, err = ver3.Verify(ctx, ev)
	require.NoError(t, err, "the nonce was left for the verifier")
	_, err = ver3.Verify(ctx, ev)
	require.ErrorIs(t, err, attest.ErrNonceReused)
	_, err = attesttpm.NewVerifier(attesttpm.Config{Keys: map[string]crypto.PublicKey{}, KeyLookup: aks.Lookup})
	require.ErrorIs(t, err, attest.ErrInvalidConfig)
}

// TestGoldenQuote verifies a quote the simulator produced earlier (kept in
// testdata, regenerated with -update), without a TPM: signature, structure
// and PCR digest, with nonce checking off.
func TestGoldenQuote(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "quote-evidence.cbor"))
	if err != nil {
		t.Fatal(err)
	}
	e, err := attesttpm.ParseEvidence(b, 0)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(e.AKChain[0])
	if err != nil {
		t.Fatal(err)
	}
	ver, err := attesttpm.NewVerifier(attesttpm.Config{
		Keys: map[string]crypto.PublicKey{"ak": leaf.PublicKey},
		ReferenceValues: []attesttpm.ReferenceValues{{Name: "bootloader 1.4",
			PCRs: map[int][]byte{0: extended("bootloader 1.4"), 7: extended("secure boot on")}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	e.AKChain, e.AKKeyID = nil, []byte("ak")
	r, err := ver.Verify(context.Background(), marshal(t, e))
	if err != nil || r.Status() != attest.StatusAffirming {
		t.Fatalf("golden quote: %v", err)
	}
}
