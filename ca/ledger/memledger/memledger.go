package memledger

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"sync"

	"github.com/ztmkit/ztm/ca"
	"github.com/ztmkit/ztm/ca/ledger/internal/sqlrecord"
)

// Ledger is a [ca.Ledger] in memory; see the package documentation for
// what it does not keep. It is safe for concurrent use. The zero value is
// not usable: make one with [New].
type Ledger struct {
	mu      sync.Mutex
	ready   bool
	closed  bool
	fault   error        // set once the ledger found itself corrupt
	records []*ca.Record // records[i] has Seq i+1; never handed out
	// Indexes into records.
	issued  map[string]int // serial → its issuance
	revoked map[string]int // serial → its revocation
	keys    map[string]int // idempotency key → its issuance
	live    map[string]int // device → its live issuance
	// requested holds each requester's issuance times (Unix ns), sorted,
	// for quotas.
	requested map[string][]int64
	crl       int64
}

// New returns an empty ledger.
func New() *Ledger {
	return &Ledger{
		ready:     true,
		issued:    make(map[string]int),
		revoked:   make(map[string]int),
		keys:      make(map[string]int),
		live:      make(map[string]int),
		requested: make(map[string][]int64),
	}
}

var errNotNew = errors.New("memledger: Ledger not made by New")

// setFault records that the ledger found itself corrupt and returns err.
// l.mu is held.
func (l *Ledger) setFault(err error) error {
	if l.fault == nil {
		l.fault = err
	}
	return err
}

// lockOpen takes l.mu if l is open (made by New, not closed) and ctx is
// not done; otherwise it returns why, with l.mu not held.
func (l *Ledger) lockOpen(ctx context.Context) error {
	if l == nil {
		return errNotNew
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	l.mu.Lock()
	switch {
	case !l.ready:
		l.mu.Unlock()
		return errNotNew
	case l.closed:
		l.mu.Unlock()
		return ca.ErrLedgerClosed
	}
	return nil
}

// lock is lockOpen for a call a corrupt ledger refuses: it also returns
// the fault the ledger found, with l.mu not held.
func (l *Ledger) lock(ctx context.Context) error {
	if err := l.lockOpen(ctx); err != nil {
		return err
	}
	if l.fault != nil {
		l.mu.Unlock()
		return l.fault
	}
	return nil
}

// Append implements [ca.Ledger], with the same checks, in the same order,
// as the durable ledgers; but the record is kept in memory only.
func (l *Ledger) Append(ctx context.Context, rec *ca.Record, quota *ca.Quota) error {
	if err := rec.CheckAppendable(); err != nil {
		return fmt.Errorf("memledger: %w", err)
	}
	if err := l.lock(ctx); err != nil {
		return err
	}
	defer l.mu.Unlock()
	r := rec.Clone()
	r.Time = r.Time.UTC()
	if err := l.refusal(r, quota); err != nil {
		return err
	}
	if rv := r.SupersedingRevocation(); rv != nil {
		if err := l.link(rv); err != nil {
			return err
		}
		if err := l.link(r); err != nil {
			l.unlink()
			return err
		}
		l.add(rv)
	} else if err := l.link(r); err != nil {
		return err
	}
	l.add(r)
	rec.Seq, rec.PrevHash, rec.Hash = r.Seq, bytes.Clone(r.PrevHash), bytes.Clone(r.Hash)
	return nil
}

// refusal returns why r may not be appended, or nil. l.mu is held.
func (l *Ledger) refusal(r *ca.Record, quota *ca.Quota) error {
	serial := r.Serial.Bytes()
	if r.Kind == ca.KindRevocation {
		if _, ok := l.issued[string(serial)]; !ok {
			return ca.ErrUnknownSerial
		}
		if _, ok := l.revoked[string(serial)]; ok {
			return ca.ErrAlreadyRevoked
		}
		return nil
	}
	// A revoked requester gets nothing, a repeat included.
	if r.RequesterSerial != nil {
		rs := r.RequesterSerial.Bytes()
		if _, ok := l.issued[string(rs)]; !ok {
			return ca.ErrRequesterUnknown
		}
		if _, ok := l.revoked[string(rs)]; ok {
			return ca.ErrRequesterRevoked
		}
	}
	if _, ok := l.issued[string(serial)]; ok {
		return ca.ErrSerialExists
	}
	// A repeat is answered as such, before the device and the quota.
	if len(r.IdempotencyKey) > 0 {
		if _, ok := l.keys[string(r.IdempotencyKey)]; ok {
			return ca.ErrRequestExists
		}
	}
	if len(r.Device) > 0 {
		i, live := l.live[string(r.Device)]
		switch {
		case !live && r.Supersedes == nil:
		case live && r.Supersedes != nil && l.records[i].Serial.Cmp(r.Supersedes) == 0:
		default:
			return ca.ErrDeviceProvisioned
		}
	}
	if quota != nil {
		times := l.requested[r.Requester]
		since, _ := slices.BinarySearch(times, quota.Since.UnixNano())
		if len(times)-since >= quota.Limit {
			return ca.ErrQuotaExceeded
		}
	}
	return nil
}

// link gives r its place at the chain's tail and appends it to
// l.records. l.mu is held.
func (l *Ledger) link(r *ca.Record) error {
	prev := make([]byte, sha256.Size)
	if n := len(l.records); n > 0 {
		prev = l.records[n-1].Hash
	}
	r.Seq = uint64(len(l.records)) + 1
	r.PrevHash = bytes.Clone(prev)
	h, err := r.ChainHash(r.PrevHash)
	if err != nil {
		r.Seq, r.PrevHash = 0, nil
		return fmt.Errorf("memledger: %w", err)
	}
	r.Hash = h
	l.records = append(l.records, r)
	return nil
}

// unlink takes the last record off the chain. l.mu is held.
func (l *Ledger) unlink() {
	l.records[len(l.records)-1] = nil
	l.records = l.records[:len(l.records)-1]
}

// add indexes r, the chain's last record or the one before it. l.mu is
// held.
func (l *Ledger) add(r *ca.Record) {
	i := int(r.Seq) - 1
	serial := string(r.Serial.Bytes())
	if r.Kind == ca.KindRevocation {
		l.revoked[serial] = i
		if iss := l.records[l.issued[serial]]; len(iss.Device) > 0 && l.live[string(iss.Device)] == l.issued[serial] {
			delete(l.live, string(iss.Device))
		}
		return
	}
	l.issued[serial] = i
	if len(r.IdempotencyKey) > 0 {
		l.keys[string(r.IdempotencyKey)] = i
	}
	if len(r.Device) > 0 {
		l.live[string(r.Device)] = i
	}
	times := l.requested[r.Requester]
	at := r.Time.UnixNano()
	j, _ := slices.BinarySearch(times, at)
	l.requested[r.Requester] = slices.Insert(times, j, at)
}

// NextCRLNumber implements [ca.Ledger].
func (l *Ledger) NextCRLNumber(ctx context.Context) (*big.Int, error) {
	if err := l.lock(ctx); err != nil {
		return nil, err
	}
	defer l.mu.Unlock()
	l.crl++
	return big.NewInt(l.crl), nil
}

// Lookup implements [ca.Ledger].
func (l *Ledger) Lookup(ctx context.Context, serial *big.Int) (*ca.Status, error) {
	if err := l.lock(ctx); err != nil {
		return nil, err
	}
	defer l.mu.Unlock()
	if serial == nil || serial.Sign() <= 0 {
		return nil, ca.ErrUnknownSerial
	}
	i, ok := l.issued[string(serial.Bytes())]
	if !ok {
		return nil, ca.ErrUnknownSerial
	}
	return l.status(i, serial, nil, ca.ErrUnknownSerial)
}

// LookupRequest implements [ca.Ledger].
func (l *Ledger) LookupRequest(ctx context.Context, key []byte) (*ca.Status, error) {
	if err := l.lock(ctx); err != nil {
		return nil, err
	}
	defer l.mu.Unlock()
	i, ok := l.keys[string(key)]
	if len(key) == 0 || !ok {
		return nil, ca.ErrUnknownRequest
	}
	return l.status(i, nil, key, ca.ErrUnknownRequest)
}

// LookupDevice implements [ca.Ledger].
func (l *Ledger) LookupDevice(ctx context.Context, device []byte) (*ca.Status, error) {
	if err := l.lock(ctx); err != nil {
		return nil, err
	}
	defer l.mu.Unlock()
	i, ok := l.live[string(device)]
	if len(device) == 0 || !ok {
		return nil, ca.ErrUnknownDevice
	}
	st, err := l.status(i, l.records[i].Serial, nil, ca.ErrUnknownDevice)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(st.Issuance.Device, device) || st.Revocation != nil {
		return nil, l.setFault(&ca.ChainError{Seq: st.Issuance.Seq, Reason: "lookup: record is not the device's live issuance"})
	}
	return st, nil
}

// status answers a lookup with the issuance at index i and its
// revocation, checked as the durable ledgers check what they read: what
// was asked for (serial, or key), matching its hash, linked into the
// chain. l.mu is held.
func (l *Ledger) status(i int, serial *big.Int, key []byte, notFound error) (*ca.Status, error) {
	var found sqlrecord.Lookup
	iss := l.records[i].Clone()
	if err := found.Add(iss); err != nil {
		return nil, l.setFault(err)
	}
	if j, ok := l.revoked[string(iss.Serial.Bytes())]; ok {
		if err := found.Add(l.records[j].Clone()); err != nil {
			return nil, l.setFault(err)
		}
	}
	st, err := found.Status(serial, key, func(seq uint64) ([]byte, int64, error) {
		var next []byte
		if seq < uint64(len(l.records)) {
			next = bytes.Clone(l.records[seq].PrevHash)
		}
		return next, int64(len(l.records)), nil
	})
	return sqlrecord.Answer(st, err, l.setFault, notFound)
}

// Record implements [ca.RecordReader]: the record with sequence number
// seq, or ca.ErrUnknownRecord.
func (l *Ledger) Record(ctx context.Context, seq uint64) (*ca.Record, error) {
	if err := l.lock(ctx); err != nil {
		return nil, err
	}
	defer l.mu.Unlock()
	if seq == 0 || seq > uint64(len(l.records)) {
		return nil, ca.ErrUnknownRecord
	}
	r := l.records[seq-1].Clone()
	if h, err := r.ChainHash(r.PrevHash); err != nil || !bytes.Equal(h, r.Hash) || r.Seq != seq {
		return nil, l.setFault(&ca.ChainError{Seq: seq, Reason: "record does not match its hash"})
	}
	return r, nil
}

// Revoked implements [ca.Ledger].
func (l *Ledger) Revoked(ctx context.Context) ([]ca.Revocation, error) {
	if err := l.lock(ctx); err != nil {
		return nil, err
	}
	defer l.mu.Unlock()
	out := make([]ca.Revocation, 0, len(l.revoked))
	for _, r := range l.records {
		if r.Kind == ca.KindRevocation {
			out = append(out, ca.Revocation{Seq: r.Seq, Serial: new(big.Int).Set(r.Serial), Time: r.Time, Reason: r.Reason})
		}
	}
	return out, nil
}

// Head implements [ca.Ledger].
func (l *Ledger) Head(ctx context.Context) (ca.Head, error) {
	if err := l.lockOpen(ctx); err != nil {
		return ca.Head{}, err
	}
	defer l.mu.Unlock()
	return l.head(), nil
}

// head returns the chain's head. l.mu is held.
func (l *Ledger) head() ca.Head {
	if len(l.records) == 0 {
		return ca.Head{Hash: make([]byte, sha256.Size)}
	}
	last := l.records[len(l.records)-1]
	return ca.Head{Seq: last.Seq, Hash: bytes.Clone(last.Hash)}
}

// Verify implements [ca.Ledger]: it recomputes the whole chain with a
// [ca.ChainVerifier]. A ledger found corrupt refuses every later append,
// lookup, Revoked and NextCRLNumber.
func (l *Ledger) Verify(ctx context.Context) (ca.Head, error) {
	if err := l.lockOpen(ctx); err != nil {
		return ca.Head{}, err
	}
	defer l.mu.Unlock()
	// Add only reads a record, and l.mu is held: no copy is needed.
	var v ca.ChainVerifier
	for _, r := range l.records {
		if err := v.Add(r); err != nil {
			return ca.Head{}, l.setFault(err)
		}
	}
	return v.Head(), nil
}

// Close implements [ca.Ledger]: it drops every record. Later calls return
// ca.ErrLedgerClosed; a second Close returns nil.
func (l *Ledger) Close() error {
	if l == nil {
		return errNotNew
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.ready {
		return errNotNew
	}
	if !l.closed {
		l.closed = true
		l.records, l.issued, l.revoked, l.keys, l.live, l.requested = nil, nil, nil, nil, nil, nil
	}
	return nil
}

var _ ca.RecordReader = (*Ledger)(nil)
