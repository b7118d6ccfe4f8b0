package postgres

import (
	"bytes"
	"math/big"
	"testing"
	"time"

	"github.com/ztmkit/ztm/ca"
)

// FuzzSplitEncoding checks, for records of every shape, that the
// canonical encoding with sequence number seq is exactly prefix ||
// CBOR(seq) || suffix, which is how the database builds it, and that
// chainHash over the split is the record's ChainHash.
func FuzzSplitEncoding(f *testing.F) {
	f.Add(uint8(1), []byte{1}, "SERIALNUMBER=1", []byte("pkh"), "idevid", "station", []byte{}, []byte{}, int64(0), []byte("cert"), uint8(0), uint64(1))
	f.Add(uint8(2), []byte{0xff, 0}, "", []byte{}, "", "admin", []byte{}, []byte{}, int64(-1), []byte{}, uint8(1), uint64(24))
	f.Add(uint8(1), bytes.Repeat([]byte{7}, 20), "CN=x", bytes.Repeat([]byte{1}, 32), "ldevid", "st",
		bytes.Repeat([]byte{2}, 64), bytes.Repeat([]byte{3}, 32), int64(1_800_000_000_123456789), bytes.Repeat([]byte{4}, 700), uint8(9), uint64(1<<40))
	f.Fuzz(func(t *testing.T, kind uint8, serial []byte, subject string, pkh []byte, profile, requester string,
		ev, step []byte, tns int64, cert []byte, reason uint8, seq uint64) {
		r := &ca.Record{
			Kind: ca.RecordKind(kind), Serial: new(big.Int).SetBytes(serial), Subject: subject, PublicKeyHash: pkh,
			Profile: profile, Requester: requester, EvidenceDigest: ev, StepDigest: step,
			Time: time.Unix(0, tns).UTC(), Certificate: cert, Reason: ca.RevocationReason(reason),
			IdempotencyKey: step,
		}
		prefix, suffix, err := splitEncoding(r)
		if _, encErr := r.CanonicalEncoding(); (err == nil) != (encErr == nil) {
			t.Fatalf("splitEncoding error %v, CanonicalEncoding error %v", err, encErr)
		}
		if err != nil {
			return
		}
		seq = max(seq, 1)
		r.Seq = seq
		want, err := r.CanonicalEncoding()
		if err != nil {
			t.Fatal(err)
		}
		got := append(append(append([]byte{}, prefix...), cborUint(seq)...), suffix...)
		if !bytes.Equal(got, want) {
			t.Fatalf("seq %d: split encoding %x, want %x", seq, got, want)
		}
		prev := bytes.Repeat([]byte{0x5a}, 32)
		if h, err := r.ChainHash(prev); err != nil || !bytes.Equal(chainHash(prev, prefix, seq, suffix), h) {
			t.Fatalf("seq %d: chainHash differs from ChainHash (%v)", seq, err)
		}
	})
}
