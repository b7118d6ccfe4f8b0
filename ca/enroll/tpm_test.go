package enroll_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"strconv"
	"testing"
	"time"

	"github.com/ztmkit/ztm/attest"
	attesttpm "github.com/ztmkit/ztm/attest/tpm"
	"github.com/ztmkit/ztm/ca"
	"github.com/ztmkit/ztm/ca/enroll"
	"github.com/ztmkit/ztm/identity"
	"github.com/ztmkit/ztm/identity/keystore"
	kstpm "github.com/ztmkit/ztm/identity/keystore/tpm"
	"github.com/ztmkit/ztm/internal/testpki"
	"github.com/ztmkit/ztm/internal/tpmtest"
)

// TestTPMKeySubstitution is the attack on a TPM device over swtpm: the
// device's quote and its AK's certification of its identity key are
// genuine and fresh, and the station asks a certificate for a key of its
// own. The CA refuses it (key-binding), issues nothing and records
// nothing; the device's own request passes.
func TestTPMKeySubstitution(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("-short: starts swtpm")
	}
	ctx := t.Context()
	newKey := func() *ecdsa.PrivateKey { return must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader)) }

	ledger := testpki.Ledger(t)
	authority := testpki.New(t, testpki.Config{}).Authority(t, ledger, nil)

	// The device: a TPM with an attestation key, certified by the chip
	// vendor for this device's UEID, and an identity key made in it.
	sw := tpmtest.StartSwtpm(t)
	ks, err := keystore.Open(ctx, "tpm:swtpm?dir="+t.TempDir()+"&port="+strconv.Itoa(sw.Port))
	if err != nil {
		t.Fatal(err)
	}
	defer ks.Close()
	store := ks.(*kstpm.Store)
	ak := must(store.CreateAttestationKey(ctx, "ak"))
	devKey := must(store.Create(ctx, keystore.CreateRequest{Label: "idevid"}))
	ueid := append([]byte{0x01}, make([]byte, 16)...)
	rand.Read(ueid[1:])
	hwType := []int{1, 3, 6, 1, 4, 1, 55555, 1}
	hmn := must(identity.HardwareModuleNameExtension(identity.HardwareModuleName{Type: hwType, SerialNumber: ueid}, false))
	vendorKey := newKey()
	vendorTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Chip vendor AK CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	vendor := must(x509.ParseCertificate(must(x509.CreateCertificate(rand.Reader, vendorTmpl, vendorTmpl, vendorKey.Public(), vendorKey))))
	akCert := must(x509.CreateCertificate(rand.Reader, &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "AK"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtraExtensions: []pkix.Extension{hmn}}, vendor, ak.Public(), vendorKey))
	pool := x509.NewCertPool()
	pool.AddCert(vendor)

	nonces := attest.NewNonces(attest.NonceConfig{})
	verifier := must(attesttpm.NewVerifier(attesttpm.Config{Roots: pool, Nonces: nonces,
		ReferenceValues: []attesttpm.ReferenceValues{{Name: "fresh", PCRs: map[int][]byte{0: make([]byte, 32)}}}}))
	svc := must(enroll.New(enroll.Config{Authority: authority, Verifier: verifier, Nonces: nonces}))
	station, stationKey := testpki.Station(t, authority, []string{"enrollment"}, []string{"idevid"})
	enroller := svc.Local(enroll.Requester{Certificate: station})
	info := identity.DeviceInfo{SerialNumber: "SN-TPM-1", HardwareModule: identity.HardwareModuleName{Type: hwType, SerialNumber: ueid}}

	// evidence is the device's answer to a nonce: a quote and the AK's
	// certification of its identity key, both over the nonce.
	evidence := func() []byte {
		nonce := must(enroller.Nonce(ctx))
		q := must(store.Quote(ctx, "ak", nonce, []int{0}))
		c := must(store.Certify(ctx, "idevid", "ak", nonce))
		pcrs := map[int][]byte{}
		for _, p := range q.PCRs {
			pcrs[p.Index] = p.Value
		}
		ev := &attesttpm.Evidence{Attest: q.Attest, Signature: q.Signature, PCRs: pcrs, AKChain: [][]byte{akCert},
			Certification: c.Attest, CertificationSignature: c.Signature, CertifiedPublic: c.PublicArea}
		return must(ev.Marshal())
	}
	head := must(ledger.Head(ctx))

	// The station's own key with the device's genuine evidence: refused.
	_, err = enroller.Enroll(ctx, &enroll.Request{CSR: must(identity.CreateCSR(nil, stationKey, info)), Profile: "idevid", Evidence: evidence()})
	var re *enroll.RefusalError
	if !errors.As(err, &re) || re.Reason != enroll.ReasonKeyBinding || re.Check != "key-not-confirmed" || !errors.Is(err, attest.ErrKeyNotConfirmed) {
		t.Fatalf("station's key: %v, want a key-binding refusal", err)
	}
	if h := must(ledger.Head(ctx)); h.Seq != head.Seq {
		t.Fatalf("the ledger grew from %d to %d", head.Seq, h.Seq)
	}
	// Without the certification the TPM evidence confirms no key: refused.
	nonce := must(enroller.Nonce(ctx))
	q := must(store.Quote(ctx, "ak", nonce, []int{0}))
	plain := must((&attesttpm.Evidence{Attest: q.Attest, Signature: q.Signature, PCRs: map[int][]byte{0: q.PCRs[0].Value}, AKChain: [][]byte{akCert}}).Marshal())
	_, err = enroller.Enroll(ctx, &enroll.Request{CSR: must(identity.CreateCSR(nil, devKey, info)), Profile: "idevid", Evidence: plain})
	if !errors.As(err, &re) || re.Reason != enroll.ReasonKeyBinding || re.Check != "missing-claim" {
		t.Fatalf("quote without certification: %v", err)
	}
	// A certification over another nonce than the quote's: refused.
	nonce = must(enroller.Nonce(ctx))
	q = must(store.Quote(ctx, "ak", nonce, []int{0}))
	stale := must(store.Certify(ctx, "idevid", "ak", make([]byte, 32)))
	mixed := must((&attesttpm.Evidence{Attest: q.Attest, Signature: q.Signature, PCRs: map[int][]byte{0: q.PCRs[0].Value}, AKChain: [][]byte{akCert},
		Certification: stale.Attest, CertificationSignature: stale.Signature, CertifiedPublic: stale.PublicArea}).Marshal())
	_, err = enroller.Enroll(ctx, &enroll.Request{CSR: must(identity.CreateCSR(nil, devKey, info)), Profile: "idevid", Evidence: mixed})
	if !errors.As(err, &re) || re.Reason != enroll.ReasonEvidence || re.Check != "nonce-unknown" {
		t.Fatalf("certification over another nonce: %v", err)
	}
	// The device's own key: issued.
	chain, err := enroller.Enroll(ctx, &enroll.Request{CSR: must(identity.CreateCSR(nil, devKey, info)), Profile: "idevid", Evidence: evidence()})
	if err != nil {
		t.Fatal(err)
	}
	if !chain[0].PublicKey.(*ecdsa.PublicKey).Equal(devKey.Public()) {
		t.Fatal("issued for another key")
	}
	// The ledger records how the key came to be: certified by the TPM.
	if st, err := ledger.Lookup(ctx, chain[0].SerialNumber); err != nil || st.Issuance.KeyProvenance != ca.ProvenanceTPMCertified {
		t.Fatalf("recorded provenance: %+v, %v; want tpm-certified", st, err)
	}
}
