package ledgertest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/ztmkit/ztm/ca"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// Config holds the backend-specific hooks of the kit. The zero value runs
// every test that needs no hook.
type Config struct {
	// Tamper, if set, changes the stored record with sequence number seq
	// behind the ledger's back (for instance its subject or certificate),
	// so that the kit can check that Verify reports ErrLedgerCorrupt.
	Tamper func(t *testing.T, l ca.Ledger, seq uint64)
	// TamperProvenance, if set, changes the stored key provenance
	// (ca.Record.KeyProvenance) of the issuance with sequence number seq
	// to another valid value behind the ledger's back, so that the kit can
	// check that the record's hash covers it.
	TamperProvenance func(t *testing.T, l ca.Ledger, seq uint64)
	// Reopen, if set, closes l and opens the same storage again, so that
	// the kit can check that records persist.
	Reopen func(t *testing.T, l ca.Ledger) ca.Ledger
	// Concurrency is the number of goroutines of the race tests. If zero,
	// 16.
	Concurrency int
}

// Run runs the conformance tests. newLedger returns a new, empty ledger
// for each subtest; the kit closes it.
func Run(t *testing.T, newLedger func(t *testing.T) ca.Ledger, cfg Config) {
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 16
	}
	k := &kit{cfg: cfg, newLedger: newLedger}
	t.Run("Empty", k.testEmpty)
	t.Run("AppendAndVerify", k.testAppendAndVerify)
	t.Run("DuplicateSerial", k.testDuplicateSerial)
	t.Run("Revocation", k.testRevocation)
	t.Run("Quota", k.testQuota)
	t.Run("QuotaRace", k.testQuotaRace)
	t.Run("SerialRace", k.testSerialRace)
	t.Run("IdempotencyKey", k.testIdempotencyKey)
	t.Run("IdempotencyKeyRace", k.testIdempotencyKeyRace)
	t.Run("RequesterSerial", k.testRequesterSerial)
	t.Run("RequesterRevokedRace", k.testRequesterRevokedRace)
	t.Run("OneLiveDevice", k.testOneLiveDevice)
	t.Run("DeviceRefusalAlone", k.testDeviceRefusalAlone)
	t.Run("KeyProvenance", k.testKeyProvenance)
	t.Run("ConcurrentChainLinear", k.testConcurrentChain)
	t.Run("CRLNumbers", k.testCRLNumbers)
	t.Run("CanceledContext", k.testCanceled)
	t.Run("Closed", k.testClosed)
	t.Run("RecordReader", k.testRecordReader)
	if cfg.Tamper != nil {
		t.Run("Tamper", k.testTamper)
		t.Run("TamperedLookup", k.testTamperedLookup)
	}
	if cfg.Reopen != nil {
		t.Run("Reopen", k.testReopen)
	}
}

type kit struct {
	cfg       Config
	newLedger func(t *testing.T) ca.Ledger

	keyOnce sync.Once
	key     *ecdsa.PrivateKey
}

func (k *kit) open(t *testing.T) ca.Ledger {
	t.Helper()
	l := k.newLedger(t)
	t.Cleanup(func() { l.Close() })
	return l
}

// issuance returns an issuance record with a real self-signed certificate
// carrying serial, as the ChainVerifier requires.
func (k *kit) issuance(t testing.TB, serial *big.Int, requester string, at time.Time) *ca.Record {
	t.Helper()
	k.keyOnce.Do(func() {
		var err error
		if k.key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			panic(err)
		}
	})
	r, err := issuanceRecord(k.key, serial, requester, at)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// NewIssuance returns an issuance record for a fresh random serial, with a
// real self-signed certificate (a new P-256 key) as [ca.ChainVerifier]
// requires, for backend tests and examples that need records of their own.
func NewIssuance(requester string, at time.Time) (*ca.Record, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	b[0] |= 0x01
	return issuanceRecord(key, new(big.Int).SetBytes(b[:]), requester, at)
}

func issuanceRecord(key *ecdsa.PrivateKey, serial *big.Int, requester string, at time.Time) (*ca.Record, error) {
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{SerialNumber: serial.Text(16)},
		NotBefore:    at.Truncate(time.Second),
		NotAfter:     at.Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	pkh := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return &ca.Record{
		Kind:           ca.KindIssuance,
		Serial:         new(big.Int).Set(serial),
		Subject:        cert.Subject.String(),
		PublicKeyHash:  pkh[:],
		Profile:        "idevid",
		Requester:      requester,
		EvidenceDigest: bytes.Repeat([]byte{0xe1}, 32),
		StepDigest:     bytes.Repeat([]byte{0x57}, 32),
		Time:           at,
		Certificate:    der,
	}, nil
}

func revocation(serial *big.Int, at time.Time, reason ca.RevocationReason) *ca.Record {
	return &ca.Record{Kind: ca.KindRevocation, Serial: new(big.Int).Set(serial), Requester: "admin", Time: at, Reason: reason}
}

// newSerial returns a fresh positive serial (a random 128-bit value).
func newSerial(t testing.TB) *big.Int {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	b[0] |= 0x01
	return new(big.Int).SetBytes(b[:])
}

var base = time.Date(2026, 11, 25, 8, 0, 0, 123456789, time.UTC)

func mustAppend(t testing.TB, l ca.Ledger, r *ca.Record, q *ca.Quota) {
	t.Helper()
	if err := l.Append(context.Background(), r, q); err != nil {
		t.Fatalf("Append(%v %x): %v", r.Kind, r.Serial, err)
	}
}

func head(t testing.TB, l ca.Ledger) ca.Head {
	t.Helper()
	h, err := l.Head(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func (k *kit) testEmpty(t *testing.T) {
	ctx := context.Background()
	l := k.open(t)
	h := head(t, l)
	if h.Seq != 0 || !bytes.Equal(h.Hash, make([]byte, 32)) {
		t.Fatalf("empty head %d %x", h.Seq, h.Hash)
	}
	if v, err := l.Verify(ctx); err != nil || v.Seq != 0 {
		t.Fatalf("Verify on empty ledger: %v %v", v, err)
	}
	if revs, err := l.Revoked(ctx); err != nil || len(revs) != 0 {
		t.Fatalf("Revoked: %v %v", revs, err)
	}
	if _, err := l.Lookup(ctx, big.NewInt(1)); !errors.Is(err, ca.ErrUnknownSerial) {
		t.Fatalf("Lookup on empty ledger: %v", err)
	}
}

func sameRecord(a, b *ca.Record) error {
	switch {
	case a.Seq != b.Seq, a.Kind != b.Kind, a.Serial.Cmp(b.Serial) != 0, a.Subject != b.Subject,
		a.Profile != b.Profile, a.Requester != b.Requester, a.Reason != b.Reason,
		a.KeyProvenance != b.KeyProvenance:
		return fmt.Errorf("scalar fields differ: %+v vs %+v", a, b)
	case !a.Time.Equal(b.Time):
		return fmt.Errorf("time %v vs %v", a.Time, b.Time)
	case (a.RequesterSerial == nil) != (b.RequesterSerial == nil),
		a.RequesterSerial != nil && a.RequesterSerial.Cmp(b.RequesterSerial) != 0:
		return fmt.Errorf("requester serial %v vs %v", a.RequesterSerial, b.RequesterSerial)
	case !bytes.Equal(a.PublicKeyHash, b.PublicKeyHash), !bytes.Equal(a.EvidenceDigest, b.EvidenceDigest),
		!bytes.Equal(a.StepDigest, b.StepDigest), !bytes.Equal(a.Certificate, b.Certificate),
		!bytes.Equal(a.IdempotencyKey, b.IdempotencyKey), !bytes.Equal(a.Device, b.Device),
		!bytes.Equal(a.PrevHash, b.PrevHash), !bytes.Equal(a.Hash, b.Hash):
		return fmt.Errorf("byte fields differ")
	}
	return nil
}

func (k *kit) testAppendAndVerify(t *testing.T) {
	ctx := context.Background()
	l := k.open(t)
	prev := make([]byte, 32)
	var recs []*ca.Record
	for i := range 10 {
		r := k.issuance(t, newSerial(t), "station-a", base.Add(time.Duration(i)*time.Second))
		if i%3 == 0 {
			r.EvidenceDigest, r.StepDigest = nil, nil
		}
		mustAppend(t, l, r, nil)
		if r.Seq != uint64(i+1) {
			t.Fatalf("record %d got Seq %d", i+1, r.Seq)
		}
		if !bytes.Equal(r.PrevHash, prev) {
			t.Fatalf("record %d PrevHash does not link", r.Seq)
		}
		want, err := r.ChainHash(prev)
		if err != nil || !bytes.Equal(want, r.Hash) {
			t.Fatalf("record %d Hash is not ChainHash: %v", r.Seq, err)
		}
		prev = r.Hash
		recs = append(recs, r)
	}
	for _, r := range recs {
		st, err := l.Lookup(ctx, r.Serial)
		if err != nil {
			t.Fatal(err)
		}
		if err := sameRecord(st.Issuance, r); err != nil {
			t.Fatalf("Lookup(%d): %v", r.Seq, err)
		}
		if st.Revocation != nil {
			t.Fatalf("Lookup(%d): revoked", r.Seq)
		}
	}
	h, err := l.Verify(ctx)
	if err != nil || h.Seq != 10 || !bytes.Equal(h.Hash, prev) {
		t.Fatalf("Verify: %d %v", h.Seq, err)
	}
	if hh := head(t, l); hh.Seq != 10 || !bytes.Equal(hh.Hash, prev) {
		t.Fatalf("Head %d", hh.Seq)
	}
}

func (k *kit) testDuplicateSerial(t *testing.T) {
	l := k.open(t)
	s := newSerial(t)
	mustAppend(t, l, k.issuance(t, s, "a", base), nil)
	before := head(t, l)
	dup := k.issuance(t, s, "b", base)
	err := l.Append(context.Background(), dup, nil)
	if !errors.Is(err, ca.ErrSerialExists) {
		t.Fatalf("duplicate serial: %v", err)
	}
	if dup.Seq != 0 || dup.Hash != nil || dup.PrevHash != nil {
		t.Fatalf("failed Append modified the record")
	}
	if h := head(t, l); h.Seq != before.Seq {
		t.Fatalf("failed Append grew the ledger")
	}
}

func (k *kit) testRevocation(t *testing.T) {
	ctx := context.Background()
	l := k.open(t)
	s1, s2 := newSerial(t), newSerial(t)
	mustAppend(t, l, k.issuance(t, s1, "a", base), nil)
	mustAppend(t, l, k.issuance(t, s2, "a", base), nil)
	at := base.Add(time.Minute)
	rev := revocation(s1, at, ca.ReasonKeyCompromise)
	mustAppend(t, l, rev, nil)
	if rev.Seq != 3 {
		t.Fatalf("revocation Seq %d", rev.Seq)
	}
	if err := l.Append(ctx, revocation(s1, at, ca.ReasonSuperseded), nil); !errors.Is(err, ca.ErrAlreadyRevoked) {
		t.Fatalf("second revocation: %v", err)
	}
	if err := l.Append(ctx, revocation(newSerial(t), at, ca.ReasonSuperseded), nil); !errors.Is(err, ca.ErrUnknownSerial) {
		t.Fatalf("revocation of unknown serial: %v", err)
	}
	revs, err := l.Revoked(ctx)
	if err != nil || len(revs) != 1 {
		t.Fatalf("Revoked: %v %v", revs, err)
	}
	r := revs[0]
	if r.Serial.Cmp(s1) != 0 || !r.Time.Equal(at) || r.Reason != ca.ReasonKeyCompromise || r.Seq != 3 {
		t.Fatalf("revocation %+v", r)
	}
	st, err := l.Lookup(ctx, s1)
	if err != nil || st.Revocation == nil || st.Revocation.Reason != ca.ReasonKeyCompromise {
		t.Fatalf("Lookup revoked: %+v %v", st, err)
	}
	if st, err := l.Lookup(ctx, s2); err != nil || st.Revocation != nil {
		t.Fatalf("Lookup good: %+v %v", st, err)
	}
	if h, err := l.Verify(ctx); err != nil || h.Seq != 3 {
		t.Fatalf("Verify: %v %v", h, err)
	}
}

func (k *kit) testQuota(t *testing.T) {
	ctx := context.Background()
	l := k.open(t)
	// An old issuance, before the window, does not count.
	mustAppend(t, l, k.issuance(t, newSerial(t), "st", base.Add(-2*time.Hour)), nil)
	q := &ca.Quota{Limit: 2, Since: base.Add(-time.Hour)}
	mustAppend(t, l, k.issuance(t, newSerial(t), "st", base), q)
	s := newSerial(t)
	mustAppend(t, l, k.issuance(t, s, "st", base.Add(time.Second)), q)
	// Revocations do not free quota nor count against it.
	mustAppend(t, l, revocation(s, base.Add(2*time.Second), ca.ReasonSuperseded), q)
	before := head(t, l)
	if err := l.Append(ctx, k.issuance(t, newSerial(t), "st", base.Add(3*time.Second)), q); !errors.Is(err, ca.ErrQuotaExceeded) {
		t.Fatalf("third issuance within quota 2: %v", err)
	}
	if h := head(t, l); h.Seq != before.Seq {
		t.Fatal("refused Append grew the ledger")
	}
	// Another requester has its own quota; no quota means no limit.
	mustAppend(t, l, k.issuance(t, newSerial(t), "other", base), q)
	mustAppend(t, l, k.issuance(t, newSerial(t), "st", base), nil)
	// The boundary is inclusive: Since itself counts.
	q2 := &ca.Quota{Limit: 1, Since: base.Add(10 * time.Second)}
	mustAppend(t, l, k.issuance(t, newSerial(t), "edge", base.Add(10*time.Second)), q2)
	if err := l.Append(ctx, k.issuance(t, newSerial(t), "edge", base.Add(11*time.Second)), q2); !errors.Is(err, ca.ErrQuotaExceeded) {
		t.Fatalf("inclusive boundary: %v", err)
	}
	// A repeated request at the quota is a repeat, not a new issuance.
	q3 := &ca.Quota{Limit: 1, Since: base}
	first := k.issuance(t, newSerial(t), "keyed", base)
	first.IdempotencyKey = []byte("keyed-1")
	mustAppend(t, l, first, q3)
	again := k.issuance(t, newSerial(t), "keyed", base)
	again.IdempotencyKey = []byte("keyed-1")
	if err := l.Append(ctx, again, q3); !errors.Is(err, ca.ErrRequestExists) {
		t.Fatalf("repeat at the quota: %v, want ErrRequestExists", err)
	}
}

func (k *kit) testQuotaRace(t *testing.T) {
	ctx := context.Background()
	l := k.open(t)
	const limit = 5
	n := k.cfg.Concurrency * 2
	recs := make([]*ca.Record, n)
	for i := range recs {
		recs[i] = k.issuance(t, newSerial(t), "racer", base)
	}
	q := &ca.Quota{Limit: limit, Since: base.Add(-time.Hour)}
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok, over := 0, 0
	for _, r := range recs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := l.Append(ctx, r, q)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
			case errors.Is(err, ca.ErrQuotaExceeded):
				over++
			default:
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if ok != limit || over != n-limit {
		t.Fatalf("%d granted, %d refused; want %d and %d", ok, over, limit, n-limit)
	}
	if h, err := l.Verify(ctx); err != nil || h.Seq != limit {
		t.Fatalf("Verify: %v %v", h, err)
	}
}

func (k *kit) testSerialRace(t *testing.T) {
	l := k.open(t)
	s := newSerial(t)
	if ok := k.race(t, l, ca.ErrSerialExists, func() *ca.Record { return k.issuance(t, s, "racer", base) }); ok != 1 {
		t.Fatalf("serial recorded %d times", ok)
	}
}

// race appends Concurrency records made by next at once and returns how
// many were recorded; every other append must fail with refusal.
func (k *kit) race(t *testing.T, l ca.Ledger, refusal error, next func() *ca.Record) (ok int) {
	t.Helper()
	var wg sync.WaitGroup
	var mu sync.Mutex
	for range k.cfg.Concurrency {
		r := next()
		wg.Go(func() {
			err := l.Append(context.Background(), r, nil)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
			case errors.Is(err, refusal):
			default:
				t.Error(err)
			}
		})
	}
	wg.Wait()
	return ok
}

// testIdempotencyKey: a key is recorded with its issuance, found again by
// LookupRequest (with the revocation, once there is one), survives in the
// chain, and cannot be recorded twice.
func (k *kit) testIdempotencyKey(t *testing.T) {
	ctx := context.Background()
	l := k.open(t)
	key := bytes.Repeat([]byte{0xa5}, sha256.Size)
	if _, err := l.LookupRequest(ctx, key); !errors.Is(err, ca.ErrUnknownRequest) {
		t.Fatalf("LookupRequest on an empty ledger: %v", err)
	}
	for _, bad := range [][]byte{nil, {}, bytes.Repeat([]byte{1}, ca.MaxIdempotencyKey+1)} {
		if _, err := l.LookupRequest(ctx, bad); !errors.Is(err, ca.ErrUnknownRequest) {
			t.Fatalf("LookupRequest(%d bytes): %v", len(bad), err)
		}
	}
	mustAppend(t, l, k.issuance(t, newSerial(t), "a", base), nil) // no key
	r := k.issuance(t, newSerial(t), "a", base)
	r.IdempotencyKey = key
	mustAppend(t, l, r, nil)
	st, err := l.LookupRequest(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if err := sameRecord(st.Issuance, r); err != nil || st.Revocation != nil {
		t.Fatalf("LookupRequest: %v (revocation %v)", err, st.Revocation)
	}
	if _, err := l.LookupRequest(ctx, key[:16]); !errors.Is(err, ca.ErrUnknownRequest) {
		t.Fatalf("LookupRequest of a prefix of the key: %v", err)
	}
	// The same key again, even from the same requester, is refused and
	// changes nothing.
	before := head(t, l)
	dup := k.issuance(t, newSerial(t), "a", base)
	dup.IdempotencyKey = bytes.Clone(key)
	if err := l.Append(ctx, dup, nil); !errors.Is(err, ca.ErrRequestExists) {
		t.Fatalf("second issuance under one key: %v", err)
	}
	if dup.Seq != 0 || dup.Hash != nil {
		t.Fatal("refused Append modified the record")
	}
	if h := head(t, l); h.Seq != before.Seq {
		t.Fatal("refused Append grew the ledger")
	}
	// A key on a revocation, or longer than the limit, is refused.
	rev := revocation(r.Serial, base.Add(time.Minute), ca.ReasonSuperseded)
	rev.IdempotencyKey = []byte("k")
	if err := l.Append(ctx, rev, nil); err == nil {
		t.Fatal("revocation with an idempotency key was recorded")
	}
	long := k.issuance(t, newSerial(t), "a", base)
	long.IdempotencyKey = bytes.Repeat([]byte{2}, ca.MaxIdempotencyKey+1)
	if err := l.Append(ctx, long, nil); err == nil {
		t.Fatal("over-long idempotency key was recorded")
	}
	mustAppend(t, l, revocation(r.Serial, base.Add(time.Minute), ca.ReasonSuperseded), nil)
	st, err = l.LookupRequest(ctx, key)
	if err != nil || st.Revocation == nil || st.Revocation.Reason != ca.ReasonSuperseded {
		t.Fatalf("LookupRequest after revocation: %+v %v", st, err)
	}
	if h, err := l.Verify(ctx); err != nil || h.Seq != 3 {
		t.Fatalf("Verify: %v %v", h, err)
	}
}

// testIdempotencyKeyRace: of many concurrent issuances under one key,
// exactly one is recorded.
func (k *kit) testIdempotencyKeyRace(t *testing.T) {
	l := k.open(t)
	key := []byte("one request")
	ok := k.race(t, l, ca.ErrRequestExists, func() *ca.Record {
		r := k.issuance(t, newSerial(t), "racer", base)
		r.IdempotencyKey = key
		return r
	})
	if ok != 1 {
		t.Fatalf("idempotency key recorded %d times", ok)
	}
	if h, err := l.Verify(context.Background()); err != nil || h.Seq != 1 {
		t.Fatalf("Verify: %v %v", h, err)
	}
}

// testRequesterSerial: an issuance naming its requester's certificate is
// refused when the ledger has no issuance of it, or its revocation —
// checked before the idempotency key, so a revoked requester does not get
// even a repeat — and the field is kept.
func (k *kit) testRequesterSerial(t *testing.T) {
	ctx := context.Background()
	l := k.open(t)
	refused := func(what string, r *ca.Record, want error) {
		t.Helper()
		before := head(t, l)
		err := l.Append(ctx, r, nil)
		if want != nil && !errors.Is(err, want) || err == nil {
			t.Fatalf("%s: %v, want %v", what, err, want)
		}
		if r.Seq != 0 || r.Hash != nil {
			t.Fatalf("%s: refused Append modified the record", what)
		}
		if h := head(t, l); h.Seq != before.Seq {
			t.Fatalf("%s: refused Append grew the ledger", what)
		}
	}
	byStation := func(station *big.Int, key []byte) *ca.Record {
		r := k.issuance(t, newSerial(t), "station:s1", base)
		r.RequesterSerial, r.IdempotencyKey = station, key
		return r
	}
	station := newSerial(t)
	refused("unknown requester", byStation(station, nil), ca.ErrRequesterUnknown)
	mustAppend(t, l, k.issuance(t, station, "line-setup", base), nil)
	key := []byte("request 1")
	first := byStation(station, key)
	mustAppend(t, l, first, nil)
	st, err := l.Lookup(ctx, first.Serial)
	if err != nil {
		t.Fatal(err)
	}
	if err := sameRecord(st.Issuance, first); err != nil {
		t.Fatalf("Lookup: %v", err)
	}
	rev := revocation(station, base.Add(time.Minute), ca.ReasonKeyCompromise)
	rev.RequesterSerial = station
	refused("requester serial on a revocation", rev, nil)
	bad := byStation(station, nil)
	bad.RequesterSerial = new(big.Int).Neg(station)
	refused("negative requester serial", bad, nil)
	mustAppend(t, l, revocation(station, base.Add(time.Minute), ca.ReasonKeyCompromise), nil)
	refused("revoked requester", byStation(station, nil), ca.ErrRequesterRevoked)
	refused("revoked requester, repeated request", byStation(station, bytes.Clone(key)), ca.ErrRequesterRevoked)
	if h, err := l.Verify(ctx); err != nil || h.Seq != 3 {
		t.Fatalf("Verify: %v %v", h, err)
	}
}

// testRequesterRevokedRace: a station's revocation races its requests. No
// issuance it requested may follow the revocation in the ledger, which
// Verify checks (see ca.ChainVerifier).
func (k *kit) testRequesterRevokedRace(t *testing.T) {
	ctx := context.Background()
	l := k.open(t)
	station := newSerial(t)
	mustAppend(t, l, k.issuance(t, station, "line-setup", base), nil)
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		ok, no  int
		unknown []error
	)
	for i := range 24 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i == 12 {
				if err := l.Append(ctx, revocation(station, base, ca.ReasonKeyCompromise), nil); err != nil {
					t.Error(err)
				}
				return
			}
			r := k.issuance(t, newSerial(t), "station:s1", base)
			r.RequesterSerial = station
			err := l.Append(ctx, r, nil)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
			case errors.Is(err, ca.ErrRequesterRevoked):
				no++
			default:
				unknown = append(unknown, err)
			}
		}()
	}
	wg.Wait()
	if len(unknown) > 0 || ok+no != 23 {
		t.Fatalf("%d recorded, %d refused, other errors %v", ok, no, unknown)
	}
	if h, err := l.Verify(ctx); err != nil || h.Seq != uint64(ok+2) {
		t.Fatalf("Verify: %v %v (%d recorded)", h, err, ok)
	}
}

func (k *kit) testConcurrentChain(t *testing.T) {
	ctx := context.Background()
	l := k.open(t)
	const each = 10
	workers := k.cfg.Concurrency
	recs := make([][]*ca.Record, workers)
	for w := range recs {
		for range each {
			recs[w] = append(recs[w], k.issuance(t, newSerial(t), fmt.Sprint("w", w), base))
		}
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var seqs []uint64
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i, r := range recs[w] {
				if err := l.Append(ctx, r, nil); err != nil {
					t.Error(err)
					return
				}
				// Revoke some as we go, interleaving record kinds.
				if i%4 == 0 {
					rv := revocation(r.Serial, base.Add(time.Second), ca.ReasonSuperseded)
					if err := l.Append(ctx, rv, nil); err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					seqs = append(seqs, rv.Seq)
					mu.Unlock()
				}
				mu.Lock()
				seqs = append(seqs, r.Seq)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	sort.Slice(seqs, func(i, j int) bool { return seqs[i] < seqs[j] })
	for i, s := range seqs {
		if s != uint64(i+1) {
			t.Fatalf("sequence numbers not 1..%d: position %d has %d", len(seqs), i, s)
		}
	}
	h, err := l.Verify(ctx)
	if err != nil || h.Seq != uint64(len(seqs)) {
		t.Fatalf("Verify: %v %v (want %d records)", h, err, len(seqs))
	}
}

func (k *kit) testCRLNumbers(t *testing.T) {
	ctx := context.Background()
	l := k.open(t)
	for want := int64(1); want <= 3; want++ {
		n, err := l.NextCRLNumber(ctx)
		if err != nil || n.Int64() != want {
			t.Fatalf("NextCRLNumber = %v, %v; want %d", n, err, want)
		}
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	got := map[int64]bool{}
	for range k.cfg.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			last := int64(0)
			for range 5 {
				n, err := l.NextCRLNumber(ctx)
				if err != nil {
					t.Error(err)
					return
				}
				if n.Int64() <= last {
					t.Errorf("CRL number went from %d to %d", last, n.Int64())
				}
				last = n.Int64()
				mu.Lock()
				if got[last] {
					t.Errorf("CRL number %d handed out twice", last)
				}
				got[last] = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	total := int64(3 + 5*k.cfg.Concurrency)
	for n := int64(4); n <= total; n++ {
		if !got[n] {
			t.Fatalf("CRL number %d skipped", n)
		}
	}
	// CRL numbers are not chain records.
	if h := head(t, l); h.Seq != 0 {
		t.Fatalf("CRL numbers added %d records", h.Seq)
	}
}

func (k *kit) testCanceled(t *testing.T) {
	l := k.open(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := l.Append(ctx, k.issuance(t, newSerial(t), "a", base), nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("Append with a canceled context: %v", err)
	}
	// The ledger still works and its chain is intact.
	mustAppend(t, l, k.issuance(t, newSerial(t), "a", base), nil)
	if _, err := l.Verify(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func (k *kit) testClosed(t *testing.T) {
	ctx := context.Background()
	l := k.newLedger(t)
	mustAppend(t, l, k.issuance(t, newSerial(t), "a", base), nil)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	check := func(name string, err error) {
		if !errors.Is(err, ca.ErrLedgerClosed) {
			t.Errorf("%s after Close: %v", name, err)
		}
	}
	check("Append", l.Append(ctx, k.issuance(t, newSerial(t), "a", base), nil))
	_, err := l.Lookup(ctx, big.NewInt(1))
	check("Lookup", err)
	_, err = l.LookupRequest(ctx, []byte("key"))
	check("LookupRequest", err)
	_, err = l.Revoked(ctx)
	check("Revoked", err)
	_, err = l.NextCRLNumber(ctx)
	check("NextCRLNumber", err)
	_, err = l.Head(ctx)
	check("Head", err)
	_, err = l.Verify(ctx)
	check("Verify", err)
}

func (k *kit) testTamper(t *testing.T) {
	ctx := context.Background()
	l := k.open(t)
	for range 5 {
		mustAppend(t, l, k.issuance(t, newSerial(t), "a", base), nil)
	}
	if _, err := l.Verify(ctx); err != nil {
		t.Fatal(err)
	}
	k.cfg.Tamper(t, l, 3)
	_, err := l.Verify(ctx)
	var ce *ca.ChainError
	if !errors.Is(err, ca.ErrLedgerCorrupt) || !errors.As(err, &ce) {
		t.Fatalf("Verify after tampering: %v", err)
	}
	if ce.Seq > 4 || ce.Seq < 3 {
		t.Fatalf("tampering with record 3 reported at record %d", ce.Seq)
	}
}

func (k *kit) testReopen(t *testing.T) {
	ctx := context.Background()
	l := k.newLedger(t)
	var last *ca.Record
	for range 3 {
		last = k.issuance(t, newSerial(t), "a", base)
		mustAppend(t, l, last, nil)
	}
	if _, err := l.NextCRLNumber(ctx); err != nil {
		t.Fatal(err)
	}
	l = k.cfg.Reopen(t, l)
	t.Cleanup(func() { l.Close() })
	h, err := l.Verify(ctx)
	if err != nil || h.Seq != 3 || !bytes.Equal(h.Hash, last.Hash) {
		t.Fatalf("after reopen: %v %v", h, err)
	}
	if n, err := l.NextCRLNumber(ctx); err != nil || n.Int64() != 2 {
		t.Fatalf("CRL number after reopen: %v %v", n, err)
	}
	next := k.issuance(t, newSerial(t), "a", base)
	mustAppend(t, l, next, nil)
	if next.Seq != 4 || !bytes.Equal(next.PrevHash, last.Hash) {
		t.Fatalf("chain does not continue after reopen")
	}
}

// testRecordReader checks ca.RecordReader, for a ledger that has it.
func (k *kit) testRecordReader(t *testing.T) {
	ctx := context.Background()
	l := k.open(t)
	rr, ok := l.(ca.RecordReader)
	if !ok {
		t.Skip("ledger is not a ca.RecordReader")
	}
	var recs []*ca.Record
	for range 3 {
		r := k.issuance(t, newSerial(t), "a", base)
		mustAppend(t, l, r, nil)
		recs = append(recs, r)
	}
	for _, want := range recs {
		got, err := rr.Record(ctx, want.Seq)
		if err != nil {
			t.Fatal(err)
		}
		if err := sameRecord(got, want); err != nil {
			t.Fatalf("Record(%d): %v", want.Seq, err)
		}
	}
	for _, seq := range []uint64{0, 4, 1 << 63} {
		if _, err := rr.Record(ctx, seq); !errors.Is(err, ca.ErrUnknownRecord) {
			t.Fatalf("Record(%d): %v", seq, err)
		}
	}
}

// testTamperedLookup changes a record behind the ledger: a lookup that
// reads it must refuse (ErrLedgerCorrupt) rather than answer with it, and
// the ledger must then refuse appends.
func (k *kit) testTamperedLookup(t *testing.T) {
	ctx := context.Background()
	l := k.open(t)
	var recs []*ca.Record
	for range 4 {
		r := k.issuance(t, newSerial(t), "a", base)
		mustAppend(t, l, r, nil)
		recs = append(recs, r)
	}
	k.cfg.Tamper(t, l, 2)
	if st, err := l.Lookup(ctx, recs[1].Serial); !errors.Is(err, ca.ErrLedgerCorrupt) {
		t.Fatalf("Lookup of a tampered record: %+v, %v", st, err)
	}
	if err := l.Append(ctx, k.issuance(t, newSerial(t), "a", base), nil); !errors.Is(err, ca.ErrLedgerCorrupt) {
		t.Fatalf("Append after a lookup found tampering: %v", err)
	}
}

// deviceIssuance is an issuance whose certificate names a device by a
// hardwareModuleName (hwSerialNum hw), with Record.Device set.
func (k *kit) deviceIssuance(t testing.TB, hw []byte, at time.Time) *ca.Record {
	t.Helper()
	k.issuance(t, newSerial(t), "line", at) // the kit's key
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // GeneralNames
		b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) { // otherName
			b.AddASN1ObjectIdentifier(asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 8, 4})
			b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
					b.AddASN1ObjectIdentifier(asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 55555, 1})
					b.AddASN1OctetString(hw)
				})
			})
		})
	})
	san, err := b.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	serial := newSerial(t)
	tmpl := &x509.Certificate{
		SerialNumber:    serial,
		Subject:         pkix.Name{SerialNumber: serial.Text(16)},
		NotBefore:       at.Truncate(time.Second),
		NotAfter:        at.Add(time.Hour),
		ExtraExtensions: []pkix.Extension{{Id: asn1.ObjectIdentifier{2, 5, 29, 17}, Value: san}},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.key.Public(), k.key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	dev, err := ca.DeviceID(cert)
	if err != nil {
		t.Fatal(err)
	}
	pkh := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return &ca.Record{
		Kind: ca.KindIssuance, Serial: serial, Subject: cert.Subject.String(), PublicKeyHash: pkh[:],
		Profile: "idevid", Requester: "line", Time: at, Certificate: der, Device: dev,
	}
}

// testOneLiveDevice: a device (Record.Device) holds one live issuance at
// most; a second is refused unless it supersedes the first, whose
// revocation (reason superseded) is then recorded just before it, or not
// at all when the issuance is refused.
func (k *kit) testOneLiveDevice(t *testing.T) {
	ctx := context.Background()
	l := k.open(t)
	hw := newSerial(t).Bytes()
	a := k.deviceIssuance(t, hw, base)
	mustAppend(t, l, a, nil)
	if _, err := l.LookupDevice(ctx, []byte("no such device")); !errors.Is(err, ca.ErrUnknownDevice) {
		t.Fatalf("LookupDevice(unknown) = %v", err)
	}
	st, err := l.LookupDevice(ctx, a.Device)
	if err != nil || st.Issuance.Serial.Cmp(a.Serial) != 0 || !bytes.Equal(st.Issuance.Device, a.Device) {
		t.Fatalf("LookupDevice = %+v, %v", st, err)
	}
	h := head(t, l)
	second := k.deviceIssuance(t, hw, base.Add(time.Second))
	if err := l.Append(ctx, second, nil); !errors.Is(err, ca.ErrDeviceProvisioned) {
		t.Fatalf("second live issuance for one device: %v", err)
	}
	// A superseding issuance whose own serial is taken is refused, and
	// the revocation it brought is not recorded.
	clash := k.deviceIssuance(t, hw, base.Add(time.Second))
	clash.Serial, clash.Supersedes = new(big.Int).Set(a.Serial), new(big.Int).Set(a.Serial)
	if err := l.Append(ctx, clash, nil); err == nil {
		t.Fatal("an issuance with a taken serial and a supersedes was recorded")
	}
	if got := head(t, l); got.Seq != h.Seq {
		t.Fatalf("refusals changed the ledger: head %d, was %d", got.Seq, h.Seq)
	}
	if st, err := l.Lookup(ctx, a.Serial); err != nil || st.Revocation != nil {
		t.Fatalf("the first issuance after refusals: %+v, %v", st, err)
	}
	// Re-provisioning: the new one supersedes the live one.
	c := k.deviceIssuance(t, hw, base.Add(2*time.Second))
	c.Supersedes = new(big.Int).Set(a.Serial)
	mustAppend(t, l, c, nil)
	st, err = l.Lookup(ctx, a.Serial)
	if err != nil || st.Revocation == nil || st.Revocation.Reason != ca.ReasonSuperseded || st.Revocation.Seq != c.Seq-1 {
		t.Fatalf("superseded issuance: %+v, %v (superseding issuance at %d)", st, err, c.Seq)
	}
	if st, err := l.LookupDevice(ctx, c.Device); err != nil || st.Issuance.Serial.Cmp(c.Serial) != 0 {
		t.Fatalf("LookupDevice after re-provisioning = %+v, %v", st, err)
	}
	// A stale supersedes (a, revoked already) is refused.
	stale := k.deviceIssuance(t, hw, base.Add(3*time.Second))
	stale.Supersedes = new(big.Int).Set(a.Serial)
	if err := l.Append(ctx, stale, nil); !errors.Is(err, ca.ErrDeviceProvisioned) {
		t.Fatalf("stale supersedes: %v", err)
	}
	// Once revoked, the device may be provisioned afresh.
	mustAppend(t, l, revocation(c.Serial, base.Add(4*time.Second), ca.ReasonKeyCompromise), nil)
	mustAppend(t, l, k.deviceIssuance(t, hw, base.Add(5*time.Second)), nil)
	if _, err := l.Verify(ctx); err != nil {
		t.Fatal(err)
	}
	// Concurrent first issuances for one device: one wins.
	hw2 := newSerial(t).Bytes()
	if ok := k.race(t, l, ca.ErrDeviceProvisioned, func() *ca.Record { return k.deviceIssuance(t, hw2, base.Add(6*time.Second)) }); ok != 1 {
		t.Fatalf("%d concurrent first issuances for one device recorded", ok)
	}
	if _, err := l.Verify(ctx); err != nil {
		t.Fatal(err)
	}
}

// testDeviceRefusalAlone: a device's refusal (ErrDeviceProvisioned) in a
// group commit refuses that append alone; the others, committed with it,
// succeed.
func (k *kit) testDeviceRefusalAlone(t *testing.T) {
	ctx := context.Background()
	l := k.open(t)
	hw := newSerial(t).Bytes()
	mustAppend(t, l, k.deviceIssuance(t, hw, base), nil)
	for round := range 5 {
		var wg sync.WaitGroup
		errs := make([]error, k.cfg.Concurrency+1)
		for i := range errs {
			var r *ca.Record
			if i == 0 {
				r = k.deviceIssuance(t, hw, base.Add(time.Duration(round)*time.Second))
			} else {
				r = k.issuance(t, newSerial(t), "line", base)
			}
			wg.Go(func() { errs[i] = l.Append(ctx, r, nil) })
		}
		wg.Wait()
		if !errors.Is(errs[0], ca.ErrDeviceProvisioned) {
			t.Fatalf("round %d: second live issuance for a device: %v", round, errs[0])
		}
		for i, err := range errs[1:] {
			if err != nil {
				t.Fatalf("round %d: append %d beside a device refusal: %v", round, i+1, err)
			}
		}
	}
	if _, err := l.Verify(ctx); err != nil {
		t.Fatal(err)
	}
}
