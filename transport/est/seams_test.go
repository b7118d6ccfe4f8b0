package est_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ztmkit/ztm/attest"
	"github.com/ztmkit/ztm/attest/devicesim"
	"github.com/ztmkit/ztm/ca"
	"github.com/ztmkit/ztm/ca/enroll"
	"github.com/ztmkit/ztm/internal/estline"
	"github.com/ztmkit/ztm/internal/testhook"
	"github.com/ztmkit/ztm/transport/est"
)

// The tests in this file hold the seams of enrollment that leaked before
// package ca/enroll decided every enrollment in one place.

func wantRefusal(t *testing.T, what string, err error, reason enroll.Reason) *enroll.RefusalError {
	t.Helper()
	var re *enroll.RefusalError
	if !errors.As(err, &re) || re.Reason != reason || !errors.Is(err, enroll.ErrRefused) {
		t.Fatalf("%s: err = %v, want a %v refusal", what, err, reason)
	}
	return re
}

// TestRepeatUnderAnotherProfile: the same CSR sent under another profile
// is not a repeat of the first, and never answered with its certificate.
func TestRepeatUnderAnotherProfile(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, estline.Config{})
	st, key := e.Station("idevid", "ldevid")
	c := e.Client(st, key)
	d := e.Devices[0]
	csr := d.CSRFor(t, newKey(t), "SN-PROF")
	nonce, _ := c.Nonce(ctx)
	first, err := c.SimpleEnroll(ctx, "", csr, d.Evidence(t, nonce))
	if err != nil {
		t.Fatal(err)
	}
	if first[0].NotAfter.Year() != 9999 {
		t.Fatalf("IDevID notAfter %v", first[0].NotAfter)
	}
	nonce, _ = c.Nonce(ctx)
	second, err := c.SimpleEnroll(ctx, "ldevid", csr, d.Evidence(t, nonce))
	if err != nil {
		t.Fatal(err)
	}
	if second[0].SerialNumber.Cmp(first[0].SerialNumber) == 0 || second[0].NotAfter.Year() == 9999 || len(second[0].ExtKeyUsage) == 0 {
		t.Fatalf("ldevid request answered with the IDevID (serial %x, notAfter %v)", second[0].SerialNumber, second[0].NotAfter)
	}
	// A repeat under the first profile still gets the first certificate.
	again, err := c.SimpleEnroll(ctx, "", csr, nil)
	if err != nil || again[0].SerialNumber.Cmp(first[0].SerialNumber) != 0 {
		t.Fatalf("repeat: %v", err)
	}

	// The Authority itself: one idempotency key under two profiles.
	idem := []byte("one-key")
	k := newKey(t)
	if _, err := e.Authority.Issue(ctx, &ca.Request{CSR: d.CSRFor(t, k, "SN-AUTH"), Profile: "ldevid", Requester: "line", IdempotencyKey: idem}); err != nil {
		t.Fatal(err)
	}
	_, err = e.Authority.Issue(ctx, &ca.Request{CSR: d.CSRFor(t, k, "SN-AUTH"), Profile: "idevid", Requester: "line", IdempotencyKey: idem})
	if !errors.Is(err, ca.ErrRequestExists) {
		t.Fatalf("Issue(idevid) after Issue(ldevid) under one key: %v", err)
	}
}

// TestRepeatOfRevoked: a certificate revoked since its request is never
// delivered again, in process or over EST.
func TestRepeatOfRevoked(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, estline.Config{})
	st, key := e.Station("idevid")
	c := e.Client(st, key)
	l := e.Service.Local(enroll.Requester{Certificate: st})
	d := e.Devices[0]
	csr := d.CSR(t, "SN-REV")
	nonce, _ := c.Nonce(ctx)
	ev := d.Evidence(t, nonce)
	chain, err := c.SimpleEnroll(ctx, "", csr, ev)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Authority.Revoke(ctx, chain[0].SerialNumber, ca.ReasonKeyCompromise, "admin"); err != nil {
		t.Fatal(err)
	}
	before := e.Issuances()
	_, err = c.SimpleEnroll(ctx, "", csr, ev)
	wantRefusal(t, "over EST", err, enroll.ReasonRepeatRevoked)
	if !errors.Is(err, ca.ErrRepeatRevoked) {
		t.Errorf("over EST: %v does not wrap ca.ErrRepeatRevoked", err)
	}
	_, err = l.Enroll(ctx, &enroll.Request{CSR: csr, Profile: "idevid", Evidence: ev})
	wantRefusal(t, "in process", err, enroll.ReasonRepeatRevoked)
	// With fresh evidence too.
	nonce, _ = l.Nonce(ctx)
	_, err = l.Enroll(ctx, &enroll.Request{CSR: csr, Profile: "idevid", Evidence: d.Evidence(t, nonce)})
	wantRefusal(t, "fresh evidence", err, enroll.ReasonRepeatRevoked)
	if e.Issuances() != before {
		t.Fatal("a refused repeat was recorded")
	}
}

// TestIDevIDCannotRenew: an IDevID, whatever its extended key usage, does
// not re-key itself through simplereenroll, even where evidence is not
// required.
func TestIDevIDCannotRenew(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, estline.Config{Service: func(c *enroll.Config) { c.AllowNoEvidence = true }})
	st, key := e.Station("idevid")
	c := e.Client(st, key)
	d := e.Devices[0]
	devKey := newKey(t)
	nonce, _ := c.Nonce(ctx)
	chain, err := c.SimpleEnroll(ctx, "", d.CSRFor(t, devKey, "SN-IDEV"), d.Evidence(t, nonce))
	if err != nil {
		t.Fatal(err)
	}
	dc := e.Client(chain[0], devKey)
	before := e.Issuances()
	for _, ev := range [][]byte{nil, d.Evidence(t, must(c.Nonce(ctx)))} {
		_, err = dc.SimpleReenroll(ctx, "", d.CSRFor(t, newKey(t), "SN-IDEV"), ev)
		re := wantRefusal(t, "IDevID renewal", err, enroll.ReasonRenewal)
		if !errors.Is(err, est.ErrForbidden) || !strings.Contains(re.Detail+err.Error(), "renewal") {
			t.Fatalf("IDevID renewal: %v", err)
		}
	}
	if e.Issuances() != before {
		t.Fatal("a refused renewal was recorded")
	}
}

// TestRetryAfterSpentNonce: a request refused after its evidence passed
// (here the quota) is retried as it is, with the same evidence, and
// succeeds once the refusal's cause is gone, instead of failing for the
// nonce its first attempt spent.
func TestRetryAfterSpentNonce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var offset atomic.Int64
	clock := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	e := newEnv(t, estline.Config{Quota: ca.QuotaPolicy{Limit: 1, Period: time.Hour}, Time: clock})
	st, key := e.Station("idevid")
	c := e.Client(st, key)
	d := e.Devices[0]
	nonce, _ := c.Nonce(ctx)
	if _, err := c.SimpleEnroll(ctx, "", d.CSR(t, "SN-Q1"), d.Evidence(t, nonce)); err != nil {
		t.Fatal(err)
	}
	d2 := d.Twin(t) // a second device: one device has one IDevID
	csr := d2.CSR(t, "SN-Q2")
	nonce, _ = c.Nonce(ctx)
	ev := d2.Evidence(t, nonce)
	_, err := c.SimpleEnroll(ctx, "", csr, ev)
	wantRefusal(t, "over quota", err, enroll.ReasonQuota)
	if !enroll.Retryable(err) || !errors.Is(err, ca.ErrQuotaExceeded) {
		t.Fatalf("quota refusal not retryable: %v", err)
	}
	offset.Store(int64(2 * time.Hour))
	chain, err := c.SimpleEnroll(ctx, "", csr, ev)
	if err != nil {
		t.Fatalf("retry once the quota window slid: %v", err)
	}
	// Evidence that passed for one request does not pass for another.
	_, err = c.SimpleEnroll(ctx, "", d2.Twin(t).CSR(t, "SN-Q3"), ev)
	if re := wantRefusal(t, "other request, same evidence", err, enroll.ReasonEvidence); re.Check != "nonce-reused" {
		t.Fatalf("other request: check %q", re.Check)
	}
	if !bytes.Equal(mustCSRKey(t, csr), chain[0].RawSubjectPublicKeyInfo) {
		t.Fatal("certificate not for the request's key")
	}
}

// TestNonceCapacity: with a small nonce pool, an honest line enrolls ten
// times as many devices as the pool holds, and floods of ztm-nonce by a
// revoked station and by a valid one leave an honest station enrolling.
func TestNonceCapacity(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const capacity = 32
	e := newEnv(t, estline.Config{NonceConfig: attest.NonceConfig{MaxOutstanding: capacity}, Service: func(c *enroll.Config) { c.AllowNoEvidence = false }})
	st, key := e.Station("idevid")
	honest := e.Service.Local(enroll.Requester{Certificate: st})
	d := e.Devices[0]
	var wg sync.WaitGroup
	var refused atomic.Int64
	var firstErr atomic.Value
	for w := range 4 {
		wg.Go(func() {
			for i := range 10 * capacity / 4 {
				nonce, err := honest.Nonce(ctx)
				if err == nil {
					csr, ev := d.Twin(t).CSREvidence(t, "SN-C", nonce)
					_, err = honest.Enroll(ctx, &enroll.Request{CSR: csr, Profile: "idevid", Evidence: ev})
				}
				if err != nil {
					refused.Add(1)
					firstErr.CompareAndSwap(nil, err)
				}
				_ = w + i
			}
		})
	}
	wg.Wait()
	if n := refused.Load(); n != 0 {
		t.Fatalf("%d of %d honest enrollments refused, first: %v", n, 10*capacity, firstErr.Load())
	}

	// Floods over EST: a revoked station is refused every nonce; a valid
	// one gets its share and no more.
	revoked, rkey := e.Station("idevid")
	if err := e.Authority.Revoke(ctx, revoked.SerialNumber, ca.ReasonKeyCompromise, "admin"); err != nil {
		t.Fatal(err)
	}
	flooder, fkey := e.Station("idevid")
	rc, fc := e.Client(revoked, rkey), e.Client(flooder, fkey)
	var revokedOK, floodOK atomic.Int64
	for range 4 {
		wg.Go(func() {
			for range capacity {
				if _, err := rc.Nonce(ctx); err == nil {
					revokedOK.Add(1)
				} else if re := (*enroll.RefusalError)(nil); !errors.As(err, &re) || re.Reason != enroll.ReasonRequesterRevoked {
					firstErr.CompareAndSwap(nil, err)
				}
				if _, err := fc.Nonce(ctx); err == nil {
					floodOK.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if n := revokedOK.Load(); n != 0 {
		t.Fatalf("a revoked station got %d nonces", n)
	}
	if n := floodOK.Load(); n == 0 || n > int64(capacity/8) {
		t.Fatalf("a flooding station got %d nonces, want 1..%d", n, capacity/8)
	}
	c := e.Client(st, key)
	for i := range 8 {
		nonce, err := c.Nonce(ctx)
		if err != nil {
			t.Fatalf("honest station beside the floods, nonce %d: %v", i, err)
		}
		tw := d.Twin(t)
		if _, err := c.SimpleEnroll(ctx, "", tw.CSR(t, "SN-H"), tw.Evidence(t, nonce)); err != nil {
			t.Fatalf("honest station beside the floods, enrollment %d: %v", i, err)
		}
	}
}

// TestRefusalReasonsOverEST: each refusal reaches the station over EST
// with the reason it has in process, and the server logs it with the
// requester and the reason.
func TestRefusalReasonsOverEST(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var logBuf syncBuffer
	logger := slog.New(slog.NewTextHandler(&logBuf, nil))
	e := newEnv(t, estline.Config{Server: func(c *est.ServerConfig) { c.Logger = logger }})
	st, key := e.Station("idevid")
	c := e.Client(st, key)
	l := e.Service.Local(enroll.Requester{Certificate: st})
	d := e.Devices[0]

	type attempt func(en enroll.Enroller) error
	tamper := func(tm devicesim.Tamper) attempt {
		return func(en enroll.Enroller) error {
			d.Sim.SetTamper(tm)
			defer d.Sim.SetTamper(devicesim.Tamper{})
			nonce, err := en.Nonce(ctx)
			if err != nil {
				return err
			}
			_, err = en.Enroll(ctx, &enroll.Request{CSR: d.CSR(t, "SN-R"), Profile: "idevid", Evidence: d.Evidence(t, nonce)})
			return err
		}
	}
	for _, tc := range []struct {
		name   string
		try    attempt
		reason enroll.Reason
		check  string
		is     error
	}{
		{"debug enabled", tamper(devicesim.Tamper{DebugEnabled: true}), enroll.ReasonEvidence, "debug-enabled", attest.ErrPolicy},
		{"secure boot off", tamper(devicesim.Tamper{SecureBootOff: true}), enroll.ReasonEvidence, "secure-boot-off", attest.ErrPolicy},
		{"tampered firmware", tamper(devicesim.Tamper{WrongMeasurement: "firmware"}), enroll.ReasonEvidence, "measurement-mismatch", attest.ErrPolicy},
		{"missing nonce", tamper(devicesim.Tamper{OmitNonce: true}), enroll.ReasonEvidence, "missing-claim", attest.ErrMissingClaim},
		{"unknown nonce", func(en enroll.Enroller) error {
			_, err := en.Enroll(ctx, &enroll.Request{CSR: d.CSR(t, "SN-R"), Profile: "idevid", Evidence: d.Evidence(t, make([]byte, 32))})
			return err
		}, enroll.ReasonEvidence, "nonce-unknown", attest.ErrNonceUnknown},
		{"no evidence", func(en enroll.Enroller) error {
			_, err := en.Enroll(ctx, &enroll.Request{CSR: d.CSR(t, "SN-R"), Profile: "idevid"})
			return err
		}, enroll.ReasonEvidenceRequired, "", nil},
		{"JWT alg none", func(en enroll.Enroller) error {
			tok := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none"}`)) + "." +
				base64.RawURLEncoding.EncodeToString([]byte(`{"eat_nonce":"AAAA"}`)) + "."
			_, err := en.Enroll(ctx, &enroll.Request{CSR: d.CSR(t, "SN-R"), Profile: "idevid", Evidence: []byte(tok)})
			return err
		}, enroll.ReasonEvidence, "unsupported-algorithm", attest.ErrUnsupportedAlgorithm},
	} {
		t.Run(tc.name, func(t *testing.T) {
			local := wantRefusal(t, "in process", tc.try(l), tc.reason)
			err := tc.try(c)
			remote := wantRefusal(t, "over EST", err, tc.reason)
			if local.Check != tc.check || remote.Check != tc.check {
				t.Fatalf("check in process %q, over EST %q, want %q", local.Check, remote.Check, tc.check)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Fatalf("over EST: %v does not wrap %v", err, tc.is)
			}
		})
	}

	// A revoked station is told so, for a nonce and for an enrollment.
	nonce, _ := c.Nonce(ctx)
	if err := e.Authority.Revoke(ctx, st.SerialNumber, ca.ReasonKeyCompromise, "admin"); err != nil {
		t.Fatal(err)
	}
	_, err := c.Nonce(ctx)
	wantRefusal(t, "revoked station's nonce", err, enroll.ReasonRequesterRevoked)
	_, err = c.SimpleEnroll(ctx, "", d.CSR(t, "SN-RV"), d.Evidence(t, nonce))
	wantRefusal(t, "revoked station's enrollment", err, enroll.ReasonRequesterRevoked)
	_, err = l.Enroll(ctx, &enroll.Request{CSR: d.CSR(t, "SN-RV"), Profile: "idevid", Evidence: d.Evidence(t, nonce)})
	wantRefusal(t, "revoked station in process", err, enroll.ReasonRequesterRevoked)

	logged := logBuf.String()
	for _, want := range []string{"reason=evidence/debug-enabled", "reason=requester-revoked", `requester="CN=station-`} {
		if !strings.Contains(logged, want) {
			t.Errorf("server log lacks %q:\n%s", want, logged)
		}
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestEnrollParsesCSROnce: an enrollment over EST parses (and verifies)
// its certificate request once, however many checks read it.
func TestEnrollParsesCSROnce(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, estline.Config{})
	st, key := e.Station("idevid")
	c := e.Client(st, key)
	d := e.Devices[0]
	nonce, _ := c.Nonce(ctx)
	csr, ev := d.CSR(t, "SN-ONCE"), d.Evidence(t, nonce)
	before := testhook.CSRParsed.Load()
	if _, err := c.SimpleEnroll(ctx, "", csr, ev); err != nil {
		t.Fatal(err)
	}
	if n := testhook.CSRParsed.Load() - before; n != 1 {
		t.Fatalf("one enrollment parsed its request %d times", n)
	}
}
