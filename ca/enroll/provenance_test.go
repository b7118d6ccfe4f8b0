package enroll_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/ztmkit/ztm/attest"
	"github.com/ztmkit/ztm/attest/devicesim"
	"github.com/ztmkit/ztm/ca"
	"github.com/ztmkit/ztm/ca/enroll"
	"github.com/ztmkit/ztm/ca/ledger/memledger"
	"github.com/ztmkit/ztm/identity"
)

// TestKeyProvenanceEndToEnd enrolls devices through Services of different
// key policies and checks what the ledger records: a key the evidence
// confirms is eat-cnf (CWT and JWT); evidence without cnf passes as
// injected only from a station whose authorization lists key injection on
// a profile that accepts injected keys, and as unattested only on a
// profile configured for legacy evidence; every other combination is
// refused key-binding with no certificate and no ledger record.
func TestKeyProvenanceEndToEnd(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	newKey := func() *ecdsa.PrivateKey { return must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader)) }
	rootKey, caKey := newKey(), newKey()
	root := must(ca.NewRoot(ca.RootRequest{Subject: pkix.Name{CommonName: "Root"}, Signer: rootKey}))
	issuing := must(ca.NewIntermediate(ca.IntermediateRequest{Subject: pkix.Name{CommonName: "Line CA"},
		PublicKey: caKey.Public(), Parent: root, ParentSigner: rootKey}))
	ledger := memledger.New()
	authority := must(ca.New(ca.Config{Signer: caKey, Chain: []*x509.Certificate{issuing, root}, Ledger: ledger}))

	attKey := newKey()
	images := map[string][]byte{"firmware": []byte("image")}
	newDevice := func(ueid []byte) *devicesim.Device {
		return must(devicesim.New(devicesim.Config{Key: attKey, KeyID: []byte("dev"), UEID: ueid,
			OEMID: []byte{0x00, 0x1b, 0x63}, HWModel: []byte("sensor-v2"), SWName: "fw", SWVersion: "1", Images: images}))
	}
	ref := newDevice(append([]byte{0x01}, make([]byte, 16)...))
	nonces := attest.NewNonces(attest.NonceConfig{})
	verifier := must(attest.NewVerifier(attest.Config{Keys: map[string]crypto.PublicKey{"dev": attKey.Public()},
		Nonces: nonces, ReferenceValues: []attest.ReferenceValues{ref.ReferenceValues()}}))
	service := func(cfg enroll.Config) *enroll.Service {
		cfg.Authority, cfg.Verifier, cfg.Nonces = authority, verifier, nonces
		return must(enroll.New(cfg))
	}
	strict := service(enroll.Config{})
	injecting := service(enroll.Config{InjectedKeyProfiles: []string{"idevid"}})
	legacy := service(enroll.Config{UnconfirmedKeyProfiles: []string{"idevid"}})
	station := func(steps ...string) *x509.Certificate {
		csr := must(x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "station"}}, newKey()))
		return must(authority.Issue(ctx, &ca.Request{CSR: csr, Profile: "station", Requester: "ceremony",
			Station: &ca.StationAuthorization{Steps: steps, Profiles: []string{"idevid"}}}))
	}
	injector := station("enrollment", enroll.InjectionStep)
	plain := station("enrollment")

	n := byte(0)
	// enrollOne enrolls a fresh device through svc for st, its evidence
	// confirming its key (cnf) or not.
	enrollOne := func(svc *enroll.Service, st *x509.Certificate, cnf, jwt bool) ([]*x509.Certificate, error) {
		n++
		ueid := append([]byte{0x01, n}, make([]byte, 15)...)
		dev := newDevice(ueid)
		key := newKey()
		if cnf {
			dev.BindKey(key.Public())
		}
		e := svc.Local(enroll.Requester{Certificate: st})
		nonce := must(e.Nonce(ctx))
		ev := must(dev.EvidenceCWT(nonce))
		if jwt {
			ev = must(dev.EvidenceJWT(nonce))
		}
		info := identity.DeviceInfo{SerialNumber: "SN-" + hex.EncodeToString(ueid),
			HardwareModule: identity.HardwareModuleName{Type: []int{1, 3, 6, 1, 4, 1, 55555, 1}, SerialNumber: ueid}}
		return e.Enroll(ctx, &enroll.Request{CSR: must(identity.CreateCSR(nil, key, info)), Profile: "idevid", Evidence: ev})
	}

	for _, tc := range []struct {
		name      string
		svc       *enroll.Service
		station   *x509.Certificate
		cnf, jwt  bool
		want      ca.KeyProvenance
		refusedAs string // the refusal's Check, "" when issued
	}{
		{"cnf (CWT)", strict, plain, true, false, ca.ProvenanceEATConfirmed, ""},
		{"cnf (JWT)", strict, plain, true, true, ca.ProvenanceEATConfirmed, ""},
		{"cnf, from an injector", injecting, injector, true, false, ca.ProvenanceEATConfirmed, ""},
		{"no cnf, injector, injected-key profile", injecting, injector, false, false, ca.ProvenanceInjected, ""},
		{"no cnf, legacy profile", legacy, plain, false, false, ca.ProvenanceUnattested, ""},
		{"no cnf, station not authorized to inject", injecting, plain, false, false, 0, "missing-claim"},
		{"no cnf, injector, profile without injected keys", strict, injector, false, false, 0, "missing-claim"},
		{"no cnf, injector, legacy profile only", legacy, injector, false, false, ca.ProvenanceUnattested, ""},
	} {
		before := must(ledger.Head(ctx))
		chain, err := enrollOne(tc.svc, tc.station, tc.cnf, tc.jwt)
		if tc.refusedAs != "" {
			var re *enroll.RefusalError
			require.ErrorAs(t, err, &re, tc.name)
			require.Equal(t, enroll.ReasonKeyBinding, re.Reason, tc.name)
			require.Equal(t, tc.refusedAs, re.Check, tc.name)
			require.ErrorIs(t, err, enroll.ErrRefused, tc.name)
			require.Nil(t, chain, tc.name)
			require.Equal(t, before, must(ledger.Head(ctx)), "%s: the ledger changed", tc.name)
			continue
		}
		require.NoError(t, err, tc.name)
		st, err := ledger.Lookup(ctx, chain[0].SerialNumber)
		require.NoError(t, err, tc.name)
		require.Equal(t, tc.want, st.Issuance.KeyProvenance, tc.name)
		if tc.want == ca.ProvenanceInjected {
			// The record names the station that sealed the key.
			sum := sha256.Sum256(injector.RawSubjectPublicKeyInfo)
			require.Equal(t, "station:"+hex.EncodeToString(sum[:]), st.Issuance.Requester)
			require.Equal(t, injector.SerialNumber, st.Issuance.RequesterSerial)
		}
	}
	_, err := ledger.Verify(ctx)
	require.NoError(t, err)
}
