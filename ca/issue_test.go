package ca_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ztmkit/ztm/ca"
	"github.com/ztmkit/ztm/identity"
	"github.com/ztmkit/ztm/identity/keystore"
)

// checkSerial checks the form of an issued serial number: 128 random bits
// under 31 bits of the issuance time in milliseconds, 20 DER octets at
// most.
func checkSerial(t *testing.T, cert *x509.Certificate) {
	t.Helper()
	s := cert.SerialNumber
	if s.Sign() <= 0 || s.BitLen() > 159 {
		t.Errorf("serial %x: %d bits", s, s.BitLen())
	}
	der, err := asn1.Marshal(s)
	if err != nil || len(der) > 2+20 {
		t.Errorf("serial %x: DER %x, %v", s, der, err)
	}
	random := new(big.Int).And(s, new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 128), big.NewInt(1)))
	if random.BitLen() < 100 {
		t.Errorf("serial %x: random part has %d bits", s, random.BitLen())
	}
	// The time bits are the issuance time, of which notBefore is the
	// second.
	const mod = 1 << 31
	ms := new(big.Int).Rsh(s, 128).Int64()
	if d := (ms - cert.NotBefore.UnixMilli()%mod + mod) % mod; d >= 1000 {
		t.Errorf("serial %x: time bits %d, %d ms after notBefore %v", s, ms, d, cert.NotBefore)
	}
}

func TestIssueProfiles(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, caAlg := range keystore.Algorithms() {
		t.Run("CA-"+caAlg.String(), func(t *testing.T) {
			p := newPKI(t, caAlg, func(c *ca.Config) { c.CRLDistributionPoint = "http://127.0.0.1:8080/crl" })
			for _, kind := range []string{"P-256", "P-384", "Ed25519", "RSA-3072"} {
				key := deviceKey(t, kind)
				serial := "SN-" + kind
				cert, err := p.auth.Issue(ctx, &ca.Request{
					CSR:            idevidCSR(t, key, serial),
					Profile:        "idevid",
					Requester:      "station-1",
					EvidenceDigest: bytes.Repeat([]byte{1}, 32),
					StepDigest:     bytes.Repeat([]byte{2}, 32),
				})
				if err != nil {
					t.Fatalf("%s: %v", kind, err)
				}
				if cert.Subject.SerialNumber != serial {
					t.Errorf("subject serialNumber %q", cert.Subject.SerialNumber)
				}
				if !cert.NotAfter.Equal(time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)) {
					t.Errorf("notAfter %v", cert.NotAfter)
				}
				if cert.KeyUsage != x509.KeyUsageDigitalSignature || len(cert.ExtKeyUsage) != 0 || cert.IsCA {
					t.Errorf("usage %v %v CA %v", cert.KeyUsage, cert.ExtKeyUsage, cert.IsCA)
				}
				if len(cert.CRLDistributionPoints) != 1 {
					t.Errorf("CRL DP %v", cert.CRLDistributionPoints)
				}
				checkSerial(t, cert)
				hw, err := ca.HardwareModuleNames(cert)
				if err != nil || len(hw) != 1 || !hw[0].Type.Equal(exampleHWType) || string(hw[0].SerialNumber) != serial {
					t.Fatalf("hardwareModuleName %v %v", hw, err)
				}
				pool := x509.NewCertPool()
				pool.AddCert(p.root)
				inter := x509.NewCertPool()
				inter.AddCert(p.inter)
				if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
					t.Fatalf("verify: %v", err)
				}
				st, err := p.ledger.Lookup(ctx, cert.SerialNumber)
				if err != nil {
					t.Fatal(err)
				}
				pkh := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
				r := st.Issuance
				if !bytes.Equal(r.Certificate, cert.Raw) || !bytes.Equal(r.PublicKeyHash, pkh[:]) ||
					r.Profile != "idevid" || r.Requester != "station-1" || r.Subject != cert.Subject.String() ||
					len(r.EvidenceDigest) != 32 || len(r.StepDigest) != 32 || st.Revocation != nil {
					t.Fatalf("record %+v", r)
				}
			}
			head, err := p.ledger.Verify(ctx)
			if err != nil || head.Seq != 4 {
				t.Fatalf("verify %v %v", head, err)
			}
		})
	}
}

func TestIssueOtherProfiles(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p := newPKI(t, keystore.ES256, func(c *ca.Config) { c.Time = func() time.Time { return testNow } })
	key := deviceKey(t, "P-256")

	ldev, err := p.auth.Issue(ctx, &ca.Request{
		CSR:       csr(t, key, pkix.Name{CommonName: "sensor-7"}, hwModuleSAN(t, exampleHWType, []byte("7"), "sensor-7.line1.example.com")),
		Profile:   "ldevid",
		Requester: "station-1",
	})
	if err != nil {
		t.Fatal(err)
	}
	if !ldev.NotBefore.Equal(testNow) || !ldev.NotAfter.Equal(testNow.Add(90*24*time.Hour-time.Second)) {
		t.Errorf("LDevID validity %v – %v", ldev.NotBefore, ldev.NotAfter)
	}
	if len(ldev.DNSNames) != 1 || ldev.DNSNames[0] != "sensor-7.line1.example.com" || len(ldev.ExtKeyUsage) != 2 {
		t.Errorf("LDevID %v %v", ldev.DNSNames, ldev.ExtKeyUsage)
	}

	st, err := p.auth.Issue(ctx, &ca.Request{
		CSR:       csr(t, key, pkix.Name{CommonName: "Station 3, Line 1"}),
		Profile:   "station",
		Requester: "admin",
		Station:   &ca.StationAuthorization{Steps: []string{"test", "provision"}, Profiles: []string{"ldevid", "idevid"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	auth, err := ca.ParseStationAuthorization(st)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(auth.Steps, auth.Profiles) != "[provision test] [idevid ldevid]" {
		t.Errorf("authorization %v %v", auth.Steps, auth.Profiles)
	}
	if len(st.ExtKeyUsage) != 1 || st.ExtKeyUsage[0] != x509.ExtKeyUsageClientAuth {
		t.Errorf("station EKU %v", st.ExtKeyUsage)
	}

	ak, err := p.auth.Issue(ctx, &ca.Request{
		CSR:       csr(t, key, pkix.Name{SerialNumber: "AK-1"}),
		Profile:   "ak",
		Requester: "station-1",
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(ak.UnknownExtKeyUsage) != 1 || !ak.UnknownExtKeyUsage[0].Equal(asn1.ObjectIdentifier{2, 23, 133, 8, 3}) {
		t.Errorf("AK EKU %v", ak.UnknownExtKeyUsage)
	}
	if _, err := p.ledger.Verify(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestStationRequester(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p := newPKI(t, keystore.ES256, nil)
	issueStation := func(a *ca.Authority, steps, profiles []string) *x509.Certificate {
		t.Helper()
		c, err := a.Issue(ctx, &ca.Request{
			CSR:       csr(t, deviceKey(t, "P-256"), pkix.Name{CommonName: "station"}),
			Profile:   "station",
			Requester: "admin",
			Station:   &ca.StationAuthorization{Steps: steps, Profiles: profiles},
		})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	station := issueStation(p.auth, []string{"provision"}, []string{"idevid"})

	// Allowed profile.
	issued, err := p.auth.Issue(ctx, &ca.Request{CSR: idevidCSR(t, deviceKey(t, "P-256"), "A1"), Profile: "idevid", RequesterCertificate: station})
	if err != nil {
		t.Fatal(err)
	}
	if st, err := p.ledger.Lookup(ctx, issued.SerialNumber); err != nil || !strings.HasPrefix(st.Issuance.Requester, "station:") || len(st.Issuance.Requester) != 8+64 {
		t.Fatalf("requester recorded as %q (%v)", st.Issuance.Requester, err)
	} else if st.Issuance.RequesterSerial == nil || st.Issuance.RequesterSerial.Cmp(station.SerialNumber) != 0 {
		t.Fatalf("requester serial recorded as %v, want %v", st.Issuance.RequesterSerial, station.SerialNumber)
	}
	// Requester and RequesterCertificate are exclusive.
	if _, err := p.auth.Issue(ctx, &ca.Request{CSR: idevidCSR(t, deviceKey(t, "P-256"), "A9"), Profile: "idevid", Requester: "someone", RequesterCertificate: station}); !errors.Is(err, ca.ErrInvalidRequest) {
		t.Fatalf("both requester forms: %v", err)
	}
	var ae *ca.AuthorizationError
	// Profile not listed.
	_, err = p.auth.Issue(ctx, &ca.Request{CSR: csr(t, deviceKey(t, "P-256"), pkix.Name{CommonName: "x"}), Profile: "ldevid", RequesterCertificate: station})
	if !errors.Is(err, ca.ErrNotAuthorized) || !errors.As(err, &ae) {
		t.Fatalf("unlisted profile: %v", err)
	}
	// A station may not grant more than it holds.
	_, err = p.auth.Issue(ctx, &ca.Request{
		CSR: csr(t, deviceKey(t, "P-256"), pkix.Name{CommonName: "x"}), Profile: "station", RequesterCertificate: issueStation(p.auth, []string{"provision"}, []string{"station"}),
		Station: &ca.StationAuthorization{Profiles: []string{"ldevid"}},
	})
	if !errors.Is(err, ca.ErrNotAuthorized) {
		t.Fatalf("escalation: %v", err)
	}
	// A station certificate from another CA.
	other := newPKI(t, keystore.ES256, nil)
	foreign := issueStation(other.auth, nil, []string{"idevid"})
	_, err = p.auth.Issue(ctx, &ca.Request{CSR: idevidCSR(t, deviceKey(t, "P-256"), "A2"), Profile: "idevid", RequesterCertificate: foreign})
	if !errors.Is(err, ca.ErrNotAuthorized) {
		t.Fatalf("foreign station: %v", err)
	}
	// A revoked station.
	if err := p.auth.Revoke(ctx, station.SerialNumber, ca.ReasonPrivilegeWithdrawn, "admin"); err != nil {
		t.Fatal(err)
	}
	before, err := p.ledger.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.auth.Issue(ctx, &ca.Request{CSR: idevidCSR(t, deviceKey(t, "P-256"), "A3"), Profile: "idevid", RequesterCertificate: station})
	if !errors.Is(err, ca.ErrNotAuthorized) || !errors.Is(err, ca.ErrRequesterRevoked) || !errors.As(err, &ae) || ae.Reason != "station certificate revoked" {
		t.Fatalf("revoked station: %v", err)
	}
	if h, err := p.ledger.Head(ctx); err != nil || h.Seq != before.Seq {
		t.Fatalf("refused issuance recorded: head %d, was %d (%v)", h.Seq, before.Seq, err)
	}
}

func TestBadInput(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	policyErr := errors.New("evidence not approved")
	p := newPKI(t, keystore.ES256, func(c *ca.Config) {
		c.Quota = ca.QuotaPolicy{Limit: 1, Period: time.Hour}
		c.Policy = func(ctx context.Context, req *ca.Request, csr *x509.CertificateRequest) error {
			if bytes.Equal(req.EvidenceDigest, []byte("bad")) {
				return policyErr
			}
			return nil
		}
	})
	good := deviceKey(t, "P-256")
	// Use up the quota of "full".
	if _, err := p.auth.Issue(ctx, &ca.Request{CSR: idevidCSR(t, good, "Q1"), Profile: "idevid", Requester: "full"}); err != nil {
		t.Fatal(err)
	}
	station, err := p.auth.Issue(ctx, &ca.Request{
		CSR: csr(t, good, pkix.Name{CommonName: "s"}), Profile: "station", Requester: "admin",
		Station: &ca.StationAuthorization{Profiles: []string{"ldevid"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	badSig := idevidCSR(t, good, "S1")
	badSig[len(badSig)-5] ^= 0xff
	sha1CSR, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{SerialNumber: "S1"}, ExtraExtensions: []pkix.Extension{hwModuleSAN(t, exampleHWType, []byte("S1"))},
		SignatureAlgorithm: x509.ECDSAWithSHA1,
	}, good)
	if err != nil {
		t.Fatal(err)
	}
	caTrue := func() pkix.Extension {
		v, _ := asn1.Marshal(struct{ IsCA bool }{true})
		return pkix.Extension{Id: asn1.ObjectIdentifier{2, 5, 29, 19}, Critical: true, Value: v}
	}()
	kuCertSign := pkix.Extension{Id: asn1.ObjectIdentifier{2, 5, 29, 15}, Critical: true, Value: []byte{3, 2, 1, 0x06}}
	eku := pkix.Extension{Id: asn1.ObjectIdentifier{2, 5, 29, 37}, Value: []byte{0x30, 0x0a, 0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01}}
	san := hwModuleSAN(t, exampleHWType, []byte("S1"))
	email := pkix.Extension{Id: oidSAN, Value: func() []byte {
		v, _ := asn1.Marshal(asn1.RawValue{Tag: 16, IsCompound: true, Bytes: []byte{0x81, 3, 'a', '@', 'b'}})
		return v
	}()}

	cases := []struct {
		name   string
		req    *ca.Request
		is     error
		reason identity.CSRErrorReason
	}{
		{"garbage CSR", &ca.Request{CSR: []byte{0x30, 3, 1, 2, 3}, Profile: "idevid", Requester: "r"}, identity.ErrInvalidCSR, identity.CSRMalformed},
		{"empty CSR", &ca.Request{Profile: "idevid", Requester: "r"}, identity.ErrInvalidCSR, identity.CSRMalformed},
		{"bad CSR signature", &ca.Request{CSR: badSig, Profile: "idevid", Requester: "r"}, identity.ErrInvalidCSR, identity.CSRBadSignature},
		{"SHA-1 CSR signature", &ca.Request{CSR: sha1CSR, Profile: "idevid", Requester: "r"}, identity.ErrInvalidCSR, identity.CSRBadSignature},
		{"CA:true", &ca.Request{CSR: csr(t, good, pkix.Name{SerialNumber: "S1"}, san, caTrue), Profile: "idevid", Requester: "r"}, identity.ErrInvalidCSR, identity.CSRUnexpectedExtension},
		{"keyUsage keyCertSign", &ca.Request{CSR: csr(t, good, pkix.Name{SerialNumber: "S1"}, san, kuCertSign), Profile: "idevid", Requester: "r"}, identity.ErrInvalidCSR, identity.CSRUnexpectedExtension},
		{"extra extension", &ca.Request{CSR: csr(t, good, pkix.Name{SerialNumber: "S1"}, san, eku), Profile: "idevid", Requester: "r"}, identity.ErrInvalidCSR, identity.CSRUnexpectedExtension},
		{"private extension", &ca.Request{CSR: csr(t, good, pkix.Name{SerialNumber: "S1"}, san, pkix.Extension{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 99999, 9}, Value: []byte{5, 0}}), Profile: "idevid", Requester: "r"}, identity.ErrInvalidCSR, identity.CSRUnexpectedExtension},
		{"SAN on station", &ca.Request{CSR: csr(t, good, pkix.Name{CommonName: "s"}, san), Profile: "station", Requester: "r", Station: &ca.StationAuthorization{}}, identity.ErrInvalidCSR, identity.CSRUnexpectedExtension},
		{"email SAN", &ca.Request{CSR: csr(t, good, pkix.Name{CommonName: "s"}, email), Profile: "ldevid", Requester: "r"}, identity.ErrInvalidCSR, identity.CSRUnexpectedExtension},
		{"DNS in IDevID", &ca.Request{CSR: csr(t, good, pkix.Name{SerialNumber: "S1"}, hwModuleSAN(t, exampleHWType, []byte("S1"), "a.example")), Profile: "idevid", Requester: "r"}, identity.ErrInvalidCSR, identity.CSRUnexpectedExtension},
		{"bad DNS name", &ca.Request{CSR: csr(t, good, pkix.Name{CommonName: "s"}, hwModuleSAN(t, nil, nil, "Bad_Name")), Profile: "ldevid", Requester: "r"}, identity.ErrInvalidCSR, identity.CSRUnexpectedExtension},
		{"no hwModule", &ca.Request{CSR: csr(t, good, pkix.Name{SerialNumber: "S1"}), Profile: "idevid", Requester: "r"}, identity.ErrInvalidCSR, identity.CSRMissingField},
		{"no serialNumber", &ca.Request{CSR: csr(t, good, pkix.Name{CommonName: "S1"}, san), Profile: "idevid", Requester: "r"}, identity.ErrInvalidCSR, identity.CSRMissingField},
		{"serialNumber not printable", &ca.Request{CSR: csr(t, good, pkix.Name{SerialNumber: "S_1"}, san), Profile: "idevid", Requester: "r"}, identity.ErrInvalidCSR, identity.CSRMalformed},
		{"subject attribute not allowed", &ca.Request{CSR: csr(t, good, pkix.Name{SerialNumber: "S1", Locality: []string{"X"}}, san), Profile: "idevid", Requester: "r"}, identity.ErrInvalidCSR, identity.CSRMalformed},
		{"RSA-2048", &ca.Request{CSR: idevidCSR(t, deviceKey(t, "RSA-2048"), "S1"), Profile: "idevid", Requester: "r"}, identity.ErrInvalidCSR, identity.CSRWeakKey},
		{"RSA-1024", &ca.Request{CSR: idevidCSR(t, deviceKey(t, "RSA-1024"), "S1"), Profile: "idevid", Requester: "r"}, identity.ErrInvalidCSR, identity.CSRWeakKey},
		{"P-224", &ca.Request{CSR: idevidCSR(t, deviceKey(t, "P-224"), "S1"), Profile: "idevid", Requester: "r"}, identity.ErrInvalidCSR, identity.CSRWeakKey},
		{"unknown profile", &ca.Request{CSR: idevidCSR(t, good, "S1"), Profile: "root", Requester: "r"}, ca.ErrUnknownProfile, 0},
		{"no requester", &ca.Request{CSR: idevidCSR(t, good, "S1"), Profile: "idevid"}, ca.ErrInvalidRequest, 0},
		{"station without authorization", &ca.Request{CSR: csr(t, good, pkix.Name{CommonName: "s"}), Profile: "station", Requester: "r"}, ca.ErrInvalidRequest, 0},
		{"authorization on idevid", &ca.Request{CSR: idevidCSR(t, good, "S1"), Profile: "idevid", Requester: "r", Station: &ca.StationAuthorization{}}, ca.ErrInvalidRequest, 0},
		{"authorization names unknown profile", &ca.Request{CSR: csr(t, good, pkix.Name{CommonName: "s"}), Profile: "station", Requester: "r", Station: &ca.StationAuthorization{Profiles: []string{"root"}}}, ca.ErrInvalidRequest, 0},
		{"requester not allowed profile", &ca.Request{CSR: idevidCSR(t, good, "S1"), Profile: "idevid", RequesterCertificate: station}, ca.ErrNotAuthorized, 0},
		{"policy refuses", &ca.Request{CSR: idevidCSR(t, good, "S1"), Profile: "idevid", Requester: "r", EvidenceDigest: []byte("bad")}, ca.ErrPolicy, 0},
		{"over quota", &ca.Request{CSR: idevidCSR(t, good, "S1"), Profile: "idevid", Requester: "full"}, ca.ErrQuotaExceeded, 0},
		{"oversize digest", &ca.Request{CSR: idevidCSR(t, good, "S1"), Profile: "idevid", Requester: "r", StepDigest: make([]byte, 65)}, ca.ErrInvalidRequest, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := p.records(t)
			cert, err := p.auth.Issue(ctx, tc.req)
			if cert != nil || !errors.Is(err, tc.is) {
				t.Fatalf("got %v, %v; want %v", cert, err, tc.is)
			}
			if tc.reason != 0 {
				var ce *identity.CSRError
				if !errors.As(err, &ce) || ce.Reason != tc.reason {
					t.Fatalf("got %v; want reason %v", err, tc.reason)
				}
			}
			if tc.is == ca.ErrPolicy && !errors.Is(err, policyErr) {
				t.Fatalf("policy error not wrapped: %v", err)
			}
			if after := p.records(t); after != before {
				t.Fatalf("ledger grew from %d to %d records", before, after)
			}
		})
	}
	if _, err := p.ledger.Verify(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestQuotaConcurrent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const limit, workers = 5, 24
	p := newPKI(t, keystore.ES256, func(c *ca.Config) { c.Quota = ca.QuotaPolicy{Limit: limit, Period: 24 * time.Hour} })
	key := deviceKey(t, "P-256")
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok, over := 0, 0
	for i := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, requester := range []string{"s1", "s2"} {
				_, err := p.auth.Issue(ctx, &ca.Request{CSR: newDeviceCSR(t, key, "Q"), Profile: "idevid", Requester: requester})
				mu.Lock()
				switch {
				case err == nil:
					ok++
				case errors.Is(err, ca.ErrQuotaExceeded):
					over++
				default:
					t.Errorf("worker %d: %v", i, err)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if ok != 2*limit || over != 2*workers-2*limit {
		t.Fatalf("%d issued, %d over quota; want %d and %d", ok, over, 2*limit, 2*workers-2*limit)
	}
	if h, err := p.ledger.Verify(ctx); err != nil || h.Seq != 2*limit {
		t.Fatalf("verify: %v %v", h, err)
	}
}

func TestConcurrentIssueChain(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p := newPKI(t, keystore.ES256, nil)
	key := deviceKey(t, "P-256")

	const workers, each = 16, 8
	var wg sync.WaitGroup
	serials := make(chan string, workers*each)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				c, err := p.auth.Issue(ctx, &ca.Request{CSR: newDeviceCSR(t, key, "C"), Profile: "idevid", Requester: "s"})
				if err != nil {
					t.Error(err)
					return
				}
				serials <- c.SerialNumber.String()
			}
		}()
	}
	wg.Wait()
	close(serials)
	seen := map[string]bool{}
	for s := range serials {
		if seen[s] {
			t.Fatalf("serial %s twice", s)
		}
		seen[s] = true
	}
	h, err := p.ledger.Verify(ctx)
	if err != nil || h.Seq != workers*each || len(seen) != workers*each {
		t.Fatalf("verify %v %v, %d serials", h, err, len(seen))
	}
}

// TestIdempotencyKey: Issue under a key already recorded returns the
// recorded certificate to its requester, concurrently too, and refuses
// everyone else; the ledger holds one issuance per key.
func TestIdempotencyKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p := newPKI(t, keystore.ES256, nil)
	csr := idevidCSR(t, deviceKey(t, "P-256"), "IDEM-1")
	key := sha256.Sum256(csr)
	req := &ca.Request{CSR: csr, Profile: "idevid", Requester: "st-1", IdempotencyKey: key[:]}
	const n = 8
	certs := make([]*x509.Certificate, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := p.auth.Issue(ctx, req)
			if err != nil {
				t.Error(err)
				return
			}
			certs[i] = c
		}()
	}
	wg.Wait()
	for _, c := range certs[1:] {
		if c == nil || certs[0] == nil || !bytes.Equal(c.Raw, certs[0].Raw) {
			t.Fatal("one idempotency key gave different certificates")
		}
	}
	other := *req
	other.Requester = "st-2"
	if _, err := p.auth.Issue(ctx, &other); !errors.Is(err, ca.ErrRequestExists) {
		t.Fatalf("another requester under the key: %v", err)
	}
	st, err := p.ledger.LookupRequest(ctx, key[:])
	if err != nil || !bytes.Equal(st.Issuance.Certificate, certs[0].Raw) {
		t.Fatalf("LookupRequest: %v", err)
	}
	if h, err := p.ledger.Verify(ctx); err != nil || h.Seq != 1 {
		t.Fatalf("ledger holds %d records (%v), want 1", h.Seq, err)
	}
	long := *req
	long.IdempotencyKey = make([]byte, ca.MaxIdempotencyKey+1)
	if _, err := p.auth.Issue(ctx, &long); !errors.Is(err, ca.ErrInvalidRequest) {
		t.Fatalf("over-long key: %v", err)
	}
}
