// Package sqlrecord reads a ledger record from the row of an SQL ledger
// (ca/ledger/sqlite, ca/ledger/postgres): both store a record in the same
// columns, in the same order, and check them the same way.
package sqlrecord

import (
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
