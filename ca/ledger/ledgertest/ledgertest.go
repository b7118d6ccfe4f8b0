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

	"github.com/stretchr/testify/require"
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
	require.NoError(t, err)
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
	_, err := rand.Read(b[:])
	require.NoError(t, err)
	b[0] |= 0x01
	return new(big.Int).SetBytes(b[:])
}

var base = time.Date(2026, 11, 25, 8, 0, 0, 123456789, time.UTC)

func mustAppend(t testing.TB, l ca.Ledger, r *ca.Record, q *ca.Quota) {
	t.Helper()
	require.NoError(t, l.Append(context.Background(), r, q), "Append(%v %x)", r.Kind, r.Serial)
}

func head(t testing.TB, l ca.Ledger) ca.Head {
	t.Helper()
	h, err := l.Head(context.Background())
	require.NoError(t, err)
	return h
}

// verified runs l.Verify and requires it to pass with seq records.
func verified(t testing.TB, l ca.Ledger, seq uint64) ca.Head {
	t.Helper()
	h, err := l.Verify(context.Background())
	require.NoError(t, err, "Verify")
	require.Equal(t, seq, h.Seq, "Verify: records")
	return h
}

// unchanged requires that a refused Append left r and the ledger as they
// were (before is the head before it).
func unchanged(t testing.TB, l ca.Ledger, r *ca.Record, before ca.Head, what string) {
	t.Helper()
	require.Zero(t, r.Seq, "%s: refused Append numbered the record", what)
	require.Nil(t, r.Hash, "%s: refused Append modified the record", what)
	require.Nil(t, r.PrevHash, "%s: refused Append modified the record", what)
	require.Equal(t, before.Seq, head(t, l).Seq, "%s: refused Append grew the ledger", what)
}

func (k *kit) testEmpty(t *testing.T) {
	ctx := context.Background()
	l := k.open(t)
	h := head(t, l)
	require.Zero(t, h.Seq, "empty head")
	require.Equal(t, make([]byte, 32), h.Hash, "empty head")
	verified(t, l, 0)
	revs, err := l.Revoked(ctx)
	require.NoError(t, err)
	require.Empty(t, revs)
	_, err = l.Lookup(ctx, big.NewInt(1))
	require.ErrorIs(t, err, ca.ErrUnknownSerial, "Lookup on empty ledger")
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
		require.Equal(t, uint64(i+1), r.Seq, "Seq")
		require.Equal(t, prev, r.PrevHash, "record %d PrevHash does not link", r.Seq)
		want, err := r.ChainHash(prev)
		require.NoError(t, err)
		require.Equal(t, want, r.Hash, "record %d Hash is not ChainHash", r.Seq)
		prev = r.Hash
		recs = append(recs, r)
	}
	for _, r := range recs {
		st, err := l.Lookup(ctx, r.Serial)
		require.NoError(t, err)
		require.NoError(t, sameRecord(st.Issuance, r), "Lookup(%d)", r.Seq)
		require.Nil(t, st.Revocation, "Lookup(%d): revoked", r.Seq)
	}
	h := verified(t, l, 10)
	require.Equal(t, prev, h.Hash, "Verify: head hash")
	hh := head(t, l)
	require.Equal(t, uint64(10), hh.Seq, "Head")
	require.Equal(t, prev, hh.Hash, "Head")
}

func (k *kit) testDuplicateSerial(t *testing.T) {
	l := k.open(t)
	s := newSerial(t)
	mustAppend(t, l, k.issuance(t, s, "a", base), nil)
	before := head(t, l)
	dup := k.issuance(t, s, "b", base)
	require.ErrorIs(t, l.Append(context.Background(), dup, nil), ca.ErrSerialExists, "duplicate serial")
	unchanged(t, l, dup, before, "duplicate serial")
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
	require.Equal(t, uint64(3), rev.Seq, "revocation Seq")
	require.ErrorIs(t, l.Append(ctx, revocation(s1, at, ca.ReasonSuperseded), nil), ca.ErrAlreadyRevoked, "second revocation")
	require.ErrorIs(t, l.Append(ctx, revocation(newSerial(t), at, ca.ReasonSuperseded), nil), ca.ErrUnknownSerial, "revocation of unknown serial")
	revs, err := l.Revoked(ctx)
	require.NoError(t, err)
	require.Len(t, revs, 1)
	r := revs[0]
	require.Zero(t, r.Serial.Cmp(s1), "revoked serial")
	require.True(t, r.Time.Equal(at), "revocation time %v", r.Time)
	require.Equal(t, ca.ReasonKeyCompromise, r.Reason)
	require.Equal(t, uint64(3), r.Seq)
	st, err := l.Lookup(ctx, s1)
	require.NoError(t, err)
	require.NotNil(t, st.Revocation, "Lookup revoked")
	require.Equal(t, ca.ReasonKeyCompromise, st.Revocation.Reason)
	st, err = l.Lookup(ctx, s2)
	require.NoError(t, err)
	require.Nil(t, st.Revocation, "Lookup good")
	verified(t, l, 3)
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
	third := k.issuance(t, newSerial(t), "st", base.Add(3*time.Second))
	require.ErrorIs(t, l.Append(ctx, third, q), ca.ErrQuotaExceeded, "third issuance within quota 2")
	unchanged(t, l, third, before, "over quota")
	// Another requester has its own quota; no quota means no limit.
	mustAppend(t, l, k.issuance(t, newSerial(t), "other", base), q)
	mustAppend(t, l, k.issuance(t, newSerial(t), "st", base), nil)
	// The boundary is inclusive: Since itself counts.
	q2 := &ca.Quota{Limit: 1, Since: base.Add(10 * time.Second)}
	mustAppend(t, l, k.issuance(t, newSerial(t), "edge", base.Add(10*time.Second)), q2)
	require.ErrorIs(t, l.Append(ctx, k.issuance(t, newSerial(t), "edge", base.Add(11*time.Second)), q2), ca.ErrQuotaExceeded, "inclusive boundary")
	// A repeated request at the quota is a repeat, not a new issuance.
	q3 := &ca.Quota{Limit: 1, Since: base}
	first := k.issuance(t, newSerial(t), "keyed", base)
	first.IdempotencyKey = []byte("keyed-1")
	mustAppend(t, l, first, q3)
	again := k.issuance(t, newSerial(t), "keyed", base)
	again.IdempotencyKey = []byte("keyed-1")
	require.ErrorIs(t, l.Append(ctx, again, q3), ca.ErrRequestExists, "repeat at the quota")
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
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, r := range recs {
		wg.Go(func() { errs[i] = l.Append(ctx, r, q) })
	}
	wg.Wait()
	ok, over := 0, 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, ca.ErrQuotaExceeded):
			over++
		default:
			require.NoError(t, err)
		}
	}
	require.Equal(t, limit, ok, "granted")
	require.Equal(t, n-limit, over, "refused")
	verified(t, l, limit)
}

func (k *kit) testSerialRace(t *testing.T) {
	l := k.open(t)
	s := newSerial(t)
	ok := k.race(t, l, ca.ErrSerialExists, func() *ca.Record { return k.issuance(t, s, "racer", base) })
	require.Equal(t, 1, ok, "times the serial was recorded")
}

// race appends Concurrency records made by next at once and returns how
// many were recorded; every other append must fail with refusal.
func (k *kit) race(t *testing.T, l ca.Ledger, refusal error, next func() *ca.Record) (ok int) {
	t.Helper()
	recs := make([]*ca.Record, k.cfg.Concurrency)
	for i := range recs {
		recs[i] = next()
	}
	errs := make([]error, len(recs))
	var wg sync.WaitGroup
	for i, r := range recs {
		wg.Go(func() { errs[i] = l.Append(context.Background(), r, nil) })
	}
	wg.Wait()
	for _, err := range errs {
		if err == nil {
			ok++
			continue
		}
		require.ErrorIs(t, err, refusal)
	}
	return ok
}

// testIdempotencyKey: a key is recorded with its issuance, found again by
// LookupRequest (with the revocation, once there is one), survives in the
// chain, and cannot be recorded twice.
func (k *kit) testIdempotencyKey(t *testing.T) {
	ctx := context.Background()
	l := k.open(t)
	key := bytes.Repeat([]byte{0xa5}, sha256.Size)
	_, err := l.LookupRequest(ctx, key)
	require.ErrorIs(t, err, ca.ErrUnknownRequest, "LookupRequest on an empty ledger")
	for _, bad := range [][]byte{nil, {}, bytes.Repeat([]byte{1}, ca.MaxIdempotencyKey+1)} {
		_, err := l.LookupRequest(ctx, bad)
		require.ErrorIs(t, err, ca.ErrUnknownRequest, "LookupRequest(%d bytes)", len(bad))
	}
	mustAppend(t, l, k.issuance(t, newSerial(t), "a", base), nil) // no key
	r := k.issuance(t, newSerial(t), "a", base)
	r.IdempotencyKey = key
	mustAppend(t, l, r, nil)
	st, err := l.LookupRequest(ctx, key)
	require.NoError(t, err)
	require.NoError(t, sameRecord(st.Issuance, r), "LookupRequest")
	require.Nil(t, st.Revocation, "LookupRequest")
	_, err = l.LookupRequest(ctx, key[:16])
	require.ErrorIs(t, err, ca.ErrUnknownRequest, "LookupRequest of a prefix of the key")
	// The same key again, even from the same requester, is refused and
	// changes nothing.
	before := head(t, l)
	dup := k.issuance(t, newSerial(t), "a", base)
	dup.IdempotencyKey = bytes.Clone(key)
	require.ErrorIs(t, l.Append(ctx, dup, nil), ca.ErrRequestExists, "second issuance under one key")
	unchanged(t, l, dup, before, "second issuance under one key")
	// A key on a revocation, or longer than the limit, is refused.
	rev := revocation(r.Serial, base.Add(time.Minute), ca.ReasonSuperseded)
	rev.IdempotencyKey = []byte("k")
	require.Error(t, l.Append(ctx, rev, nil), "revocation with an idempotency key was recorded")
	long := k.issuance(t, newSerial(t), "a", base)
	long.IdempotencyKey = bytes.Repeat([]byte{2}, ca.MaxIdempotencyKey+1)
	require.Error(t, l.Append(ctx, long, nil), "over-long idempotency key was recorded")
	mustAppend(t, l, revocation(r.Serial, base.Add(time.Minute), ca.ReasonSuperseded), nil)
	st, err = l.LookupRequest(ctx, key)
	require.NoError(t, err)
	require.NotNil(t, st.Revocation, "LookupRequest after revocation")
	require.Equal(t, ca.ReasonSuperseded, st.Revocation.Reason)
	verified(t, l, 3)
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
	require.Equal(t, 1, ok, "times the idempotency key was recorded")
	verified(t, l, 1)
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
		require.Error(t, err, what)
		if want != nil {
			require.ErrorIs(t, err, want, what)
		}
		unchanged(t, l, r, before, what)
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
	require.NoError(t, err)
	require.NoError(t, sameRecord(st.Issuance, first), "Lookup")
	rev := revocation(station, base.Add(time.Minute), ca.ReasonKeyCompromise)
	rev.RequesterSerial = station
	refused("requester serial on a revocation", rev, nil)
	bad := byStation(station, nil)
	bad.RequesterSerial = new(big.Int).Neg(station)
	refused("negative requester serial", bad, nil)
	mustAppend(t, l, revocation(station, base.Add(time.Minute), ca.ReasonKeyCompromise), nil)
	refused("revoked requester", byStation(station, nil), ca.ErrRequesterRevoked)
	refused("revoked requester, repeated request", byStation(station, bytes.Clone(key)), ca.ErrRequesterRevoked)
	verified(t, l, 3)
}

// testRequesterRevokedRace: a station's revocation races its requests. No
// issuance it requested may follow the revocation in the ledger, which
// Verify checks (see ca.ChainVerifier).
func (k *kit) testRequesterRevokedRace(t *testing.T) {
	l := k.open(t)
	station := newSerial(t)
	mustAppend(t, l, k.issuance(t, station, "line-setup", base), nil)
	const n = 24
	recs := make([]*ca.Record, n)
	for i := range recs {
		if i == n/2 {
			recs[i] = revocation(station, base, ca.ReasonKeyCompromise)
			continue
		}
		recs[i] = k.issuance(t, newSerial(t), "station:s1", base)
		recs[i].RequesterSerial = station
	}
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, r := range recs {
		wg.Go(func() { errs[i] = l.Append(context.Background(), r, nil) })
	}
	wg.Wait()
	require.NoError(t, errs[n/2], "the station's revocation")
	ok := 0
	for i, err := range errs {
		if i == n/2 {
			continue
		}
		if err == nil {
			ok++
			continue
		}
		require.ErrorIs(t, err, ca.ErrRequesterRevoked)
	}
	verified(t, l, uint64(ok+2))
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
	seqs := make([][]uint64, workers)
	errs := make([]error, workers)
	for w := range workers {
		wg.Go(func() {
			for i, r := range recs[w] {
				if errs[w] = l.Append(ctx, r, nil); errs[w] != nil {
					return
				}
				// Revoke some as we go, interleaving record kinds.
				if i%4 == 0 {
					rv := revocation(r.Serial, base.Add(time.Second), ca.ReasonSuperseded)
					if errs[w] = l.Append(ctx, rv, nil); errs[w] != nil {
						return
					}
					seqs[w] = append(seqs[w], rv.Seq)
				}
				seqs[w] = append(seqs[w], r.Seq)
			}
		})
	}
	wg.Wait()
	var all []uint64
	for w := range workers {
		require.NoError(t, errs[w], "worker %d", w)
		all = append(all, seqs[w]...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	for i, s := range all {
		require.Equal(t, uint64(i+1), s, "sequence numbers not 1..%d", len(all))
	}
	verified(t, l, uint64(len(all)))
}

func (k *kit) testCRLNumbers(t *testing.T) {
	ctx := context.Background()
	l := k.open(t)
	for want := int64(1); want <= 3; want++ {
		n, err := l.NextCRLNumber(ctx)
		require.NoError(t, err)
		require.Equal(t, want, n.Int64(), "NextCRLNumber")
	}
	const each = 5
	got := make([][]int64, k.cfg.Concurrency)
	errs := make([]error, k.cfg.Concurrency)
	var wg sync.WaitGroup
	for w := range k.cfg.Concurrency {
		wg.Go(func() {
			for range each {
				n, err := l.NextCRLNumber(ctx)
				if err != nil {
					errs[w] = err
					return
				}
				got[w] = append(got[w], n.Int64())
			}
		})
	}
	wg.Wait()
	seen := map[int64]bool{}
	for w := range got {
		require.NoError(t, errs[w])
		for i, n := range got[w] {
			if i > 0 {
				require.Greater(t, n, got[w][i-1], "CRL numbers of one caller must increase")
			}
			require.False(t, seen[n], "CRL number %d handed out twice", n)
			seen[n] = true
		}
	}
	total := int64(3 + each*k.cfg.Concurrency)
	for n := int64(4); n <= total; n++ {
		require.True(t, seen[n], "CRL number %d skipped", n)
	}
	// CRL numbers are not chain records.
	require.Zero(t, head(t, l).Seq, "CRL numbers added records")
}

func (k *kit) testCanceled(t *testing.T) {
	l := k.open(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.ErrorIs(t, l.Append(ctx, k.issuance(t, newSerial(t), "a", base), nil), context.Canceled, "Append with a canceled context")
	// The ledger still works and its chain is intact.
	mustAppend(t, l, k.issuance(t, newSerial(t), "a", base), nil)
	_, err := l.Verify(context.Background())
	require.NoError(t, err)
}

func (k *kit) testClosed(t *testing.T) {
	ctx := context.Background()
	l := k.newLedger(t)
	mustAppend(t, l, k.issuance(t, newSerial(t), "a", base), nil)
	require.NoError(t, l.Close())
	require.NoError(t, l.Close(), "second Close")
	check := func(name string, err error) {
		require.ErrorIs(t, err, ca.ErrLedgerClosed, "%s after Close", name)
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
	verified(t, l, 5)
	k.cfg.Tamper(t, l, 3)
	_, err := l.Verify(ctx)
	var ce *ca.ChainError
	require.ErrorIs(t, err, ca.ErrLedgerCorrupt, "Verify after tampering")
	require.ErrorAs(t, err, &ce, "Verify after tampering")
	require.True(t, ce.Seq == 3 || ce.Seq == 4, "tampering with record 3 reported at record %d", ce.Seq)
}

func (k *kit) testReopen(t *testing.T) {
	ctx := context.Background()
	l := k.newLedger(t)
	var last *ca.Record
	for range 3 {
		last = k.issuance(t, newSerial(t), "a", base)
		mustAppend(t, l, last, nil)
	}
	_, err := l.NextCRLNumber(ctx)
	require.NoError(t, err)
	l = k.cfg.Reopen(t, l)
	t.Cleanup(func() { l.Close() })
	h := verified(t, l, 3)
	require.Equal(t, last.Hash, h.Hash, "head hash after reopen")
	n, err := l.NextCRLNumber(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(2), n.Int64(), "CRL number after reopen")
	next := k.issuance(t, newSerial(t), "a", base)
	mustAppend(t, l, next, nil)
	require.Equal(t, uint64(4), next.Seq, "chain does not continue after reopen")
	require.Equal(t, last.Hash, next.PrevHash, "chain does not continue after reopen")
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
		require.NoError(t, err)
		require.NoError(t, sameRecord(got, want), "Record(%d)", want.Seq)
	}
	for _, seq := range []uint64{0, 4, 1 << 63} {
		_, err := rr.Record(ctx, seq)
		require.ErrorIs(t, err, ca.ErrUnknownRecord, "Record(%d)", seq)
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
	st, err := l.Lookup(ctx, recs[1].Serial)
	require.ErrorIs(t, err, ca.ErrLedgerCorrupt, "Lookup of a tampered record: %+v", st)
	require.ErrorIs(t, l.Append(ctx, k.issuance(t, newSerial(t), "a", base), nil), ca.ErrLedgerCorrupt, "Append after a lookup found tampering")
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
	require.NoError(t, err)
	serial := newSerial(t)
	tmpl := &x509.Certificate{
		SerialNumber:    serial,
		Subject:         pkix.Name{SerialNumber: serial.Text(16)},
		NotBefore:       at.Truncate(time.Second),
		NotAfter:        at.Add(time.Hour),
		ExtraExtensions: []pkix.Extension{{Id: asn1.ObjectIdentifier{2, 5, 29, 17}, Value: san}},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.key.Public(), k.key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	dev, err := ca.DeviceID(cert)
	require.NoError(t, err)
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
	_, err := l.LookupDevice(ctx, []byte("no such device"))
	require.ErrorIs(t, err, ca.ErrUnknownDevice, "LookupDevice(unknown)")
	st, err := l.LookupDevice(ctx, a.Device)
	require.NoError(t, err)
	require.Zero(t, st.Issuance.Serial.Cmp(a.Serial), "LookupDevice serial")
	require.Equal(t, a.Device, st.Issuance.Device, "LookupDevice device")
	h := head(t, l)
	second := k.deviceIssuance(t, hw, base.Add(time.Second))
	require.ErrorIs(t, l.Append(ctx, second, nil), ca.ErrDeviceProvisioned, "second live issuance for one device")
	// A superseding issuance whose own serial is taken is refused, and
	// the revocation it brought is not recorded.
	clash := k.deviceIssuance(t, hw, base.Add(time.Second))
	clash.Serial, clash.Supersedes = new(big.Int).Set(a.Serial), new(big.Int).Set(a.Serial)
	require.Error(t, l.Append(ctx, clash, nil), "an issuance with a taken serial and a supersedes was recorded")
	require.Equal(t, h.Seq, head(t, l).Seq, "refusals changed the ledger")
	st, err = l.Lookup(ctx, a.Serial)
	require.NoError(t, err)
	require.Nil(t, st.Revocation, "the first issuance after refusals")
	// Re-provisioning: the new one supersedes the live one.
	c := k.deviceIssuance(t, hw, base.Add(2*time.Second))
	c.Supersedes = new(big.Int).Set(a.Serial)
	mustAppend(t, l, c, nil)
	st, err = l.Lookup(ctx, a.Serial)
	require.NoError(t, err)
	require.NotNil(t, st.Revocation, "superseded issuance")
	require.Equal(t, ca.ReasonSuperseded, st.Revocation.Reason, "superseded issuance")
	require.Equal(t, c.Seq-1, st.Revocation.Seq, "the superseding revocation comes just before its issuance")
	st, err = l.LookupDevice(ctx, c.Device)
	require.NoError(t, err)
	require.Zero(t, st.Issuance.Serial.Cmp(c.Serial), "LookupDevice after re-provisioning")
	// A stale supersedes (a, revoked already) is refused.
	stale := k.deviceIssuance(t, hw, base.Add(3*time.Second))
	stale.Supersedes = new(big.Int).Set(a.Serial)
	require.ErrorIs(t, l.Append(ctx, stale, nil), ca.ErrDeviceProvisioned, "stale supersedes")
	// Once revoked, the device may be provisioned afresh.
	mustAppend(t, l, revocation(c.Serial, base.Add(4*time.Second), ca.ReasonKeyCompromise), nil)
	mustAppend(t, l, k.deviceIssuance(t, hw, base.Add(5*time.Second)), nil)
	_, err = l.Verify(ctx)
	require.NoError(t, err)
	// Concurrent first issuances for one device: one wins.
	hw2 := newSerial(t).Bytes()
	ok := k.race(t, l, ca.ErrDeviceProvisioned, func() *ca.Record { return k.deviceIssuance(t, hw2, base.Add(6*time.Second)) })
	require.Equal(t, 1, ok, "concurrent first issuances for one device recorded")
	_, err = l.Verify(ctx)
	require.NoError(t, err)
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
		require.ErrorIs(t, errs[0], ca.ErrDeviceProvisioned, "round %d: second live issuance for a device", round)
		for i, err := range errs[1:] {
			require.NoError(t, err, "round %d: append %d beside a device refusal", round, i+1)
		}
	}
	_, err := l.Verify(ctx)
	require.NoError(t, err)
}
