// Package sqlrecord reads a ledger record from the row of an SQL ledger
// (ca/ledger/sqlite, ca/ledger/postgres): both store a record in the same
// columns, in the same order, and check them the same way.
package sqlrecord

import (
	"bytes"
	"errors"
	"math/big"
	"time"

	"github.com/ztmkit/ztm/ca"
)

// Columns is the column list, in the order [Scan] reads them.
const Columns = "seq, kind, serial, subject, pubkey_hash, profile, requester, evidence, step, time_ns, cert, reason, prev_hash, hash, idem_key, requester_serial, device, key_provenance"

// Scanner is a row: *sql.Row, *sql.Rows, pgx.Row or pgx.Rows.
type Scanner interface{ Scan(dest ...any) error }

// Scan reads a record from s, whose columns are [Columns]. A column
// outside its range is a *ca.ChainError: the stored record was altered.
func Scan(s Scanner) (*ca.Record, error) {
	var (
		r                      ca.Record
		seq, kind, t, rsn, kpr int64
		serial, rserial        []byte
		pkh, ev, step, crt     []byte
	)
	if err := s.Scan(&seq, &kind, &serial, &r.Subject, &pkh, &r.Profile, &r.Requester, &ev, &step, &t, &crt, &rsn, &r.PrevHash, &r.Hash, &r.IdempotencyKey, &rserial, &r.Device, &kpr); err != nil {
		return nil, err
	}
	if rserial != nil {
		r.RequesterSerial = new(big.Int).SetBytes(rserial)
	}
	if seq < 1 || kind < 1 || kind > 255 || rsn < 0 || rsn > 255 || kpr < 0 || kpr > 255 {
		return nil, &ca.ChainError{Seq: uint64(max(seq, 0)), Reason: "column out of range"}
	}
	r.Seq, r.Kind, r.Reason = uint64(seq), ca.RecordKind(kind), ca.RevocationReason(rsn)
	r.KeyProvenance = ca.KeyProvenance(kpr)
	r.Serial = new(big.Int).SetBytes(serial)
	r.PublicKeyHash, r.EvidenceDigest, r.StepDigest, r.Certificate = pkh, ev, step, crt
	r.Time = time.Unix(0, t).UTC()
	return &r, nil
}

// Lookup collects the records a lookup read for one serial or one
// idempotency key: one issuance at most, and one revocation at most.
type Lookup struct{ issuance, revocation *ca.Record }

// Add files r as the issuance or the revocation; a second record of one
// kind is a *ca.ChainError.
func (l *Lookup) Add(r *ca.Record) error {
	dst := &l.issuance
	if r.Kind == ca.KindRevocation {
		dst = &l.revocation
	}
	if *dst != nil {
		return &ca.ChainError{Seq: r.Seq, Reason: "lookup: two records of one kind for one key"}
	}
	*dst = r
	return nil
}

// Status checks what the lookup read and returns it as a *ca.Status: the
// records must be what was asked for (serial, or key) and hash as they
// should ([ca.VerifyLookup]), and each must be linked into the chain,
// which next tells: the prev_hash of the record after seq (nil if there
// is none) and the last sequence number. Status returns nil, nil when no
// issuance was read; a *ca.ChainError, for the caller to mark the ledger
// corrupt, when what was read is not what was asked for or not linked;
// and next's error as it is.
func (l *Lookup) Status(serial *big.Int, key []byte, next func(seq uint64) ([]byte, int64, error)) (*ca.Status, error) {
	iss, rev := l.issuance, l.revocation
	if iss == nil {
		if rev != nil {
			return nil, &ca.ChainError{Seq: rev.Seq, Reason: "lookup: revocation without its issuance"}
		}
		return nil, nil
	}
	if err := ca.VerifyLookup(iss, rev, serial, key); err != nil {
		return nil, err
	}
	for _, r := range []*ca.Record{iss, rev} {
		if r == nil {
			continue
		}
		after, last, err := next(r.Seq)
		if err != nil {
			return nil, err
		}
		if (after == nil && uint64(last) != r.Seq) || (after != nil && !bytes.Equal(after, r.Hash)) {
			return nil, &ca.ChainError{Seq: r.Seq, Reason: "lookup: record is not linked into the chain"}
		}
	}
	st := &ca.Status{Issuance: iss}
	if rev != nil {
		st.Revocation = &ca.Revocation{Seq: rev.Seq, Serial: rev.Serial, Time: rev.Time, Reason: rev.Reason}
	}
	return st, nil
}

// Answer is a ledger's answer to a lookup from what [Lookup.Status]
// returned: a *ca.ChainError goes through fault, which marks the ledger
// corrupt; no issuance is notFound; other errors are returned as they are.
func Answer(st *ca.Status, err error, fault func(error) error, notFound error) (*ca.Status, error) {
	var ce *ca.ChainError
	switch {
	case errors.As(err, &ce):
		return nil, fault(err)
	case err != nil:
		return nil, err
	case st == nil:
		return nil, notFound
	}
	return st, nil
}
