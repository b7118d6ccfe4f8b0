package ledgertest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/ztmkit/ztm/ca"
)

// provenances are the values an issuance may record, the zero value
// (unrecorded, as records made before provenance) first.
var provenances = []ca.KeyProvenance{
	ca.ProvenanceUnrecorded, ca.ProvenanceUnattested, ca.ProvenanceEATConfirmed,
	ca.ProvenanceTPMCertified, ca.ProvenanceInjected,
}

// testKeyProvenance: Record.KeyProvenance is stored as appended and read
// back by Lookup, LookupDevice and, when the ledger has it, RecordReader;
// it is under the record's hash, so a record whose provenance changed
// does not verify; a provenance the record may not carry is refused
// before anything is recorded; records appended together (one group
// commit) each keep their own.
func (k *kit) testKeyProvenance(t *testing.T) {
	ctx := context.Background()
	l := k.open(t)
	var recs []*ca.Record
	for i, p := range provenances {
		r := k.issuance(t, newSerial(t), "station:prov", base.Add(time.Duration(i)*time.Second))
		r.KeyProvenance = p
		mustAppend(t, l, r, nil)
		recs = append(recs, r)
	}
	dev := k.deviceIssuance(t, newSerial(t).Bytes(), base)
	dev.KeyProvenance = ca.ProvenanceTPMCertified
	mustAppend(t, l, dev, nil)
	recs = append(recs, dev)
	mustAppend(t, l, revocation(recs[1].Serial, base.Add(time.Minute), ca.ReasonKeyCompromise), nil)

	for _, r := range recs {
		st, err := l.Lookup(ctx, r.Serial)
		require.NoError(t, err, "Lookup(%d)", r.Seq)
		require.Equal(t, r.KeyProvenance, st.Issuance.KeyProvenance, "Lookup(%d) provenance", r.Seq)
		require.NoError(t, sameRecord(st.Issuance, r), "Lookup(%d)", r.Seq)
	}
	st, err := l.LookupDevice(ctx, dev.Device)
	require.NoError(t, err)
	require.Equal(t, ca.ProvenanceTPMCertified, st.Issuance.KeyProvenance, "LookupDevice provenance")
	if rr, ok := l.(ca.RecordReader); ok {
		for _, r := range recs {
			got, err := rr.Record(ctx, r.Seq)
			require.NoError(t, err)
			require.Equal(t, r.KeyProvenance, got.KeyProvenance, "Record(%d) provenance", r.Seq)
		}
	}
	verified(t, l, uint64(len(recs)+1))

	k.provenanceRefusals(t, l)
	k.provenanceUnderHash(t, recs)
	k.provenanceBatch(t, l)
	if k.cfg.TamperProvenance != nil {
		// Changed in storage: Verify and a lookup of the record refuse.
		r := recs[2]
		k.cfg.TamperProvenance(t, l, r.Seq)
		_, err := l.Verify(ctx)
		var ce *ca.ChainError
		require.ErrorIs(t, err, ca.ErrLedgerCorrupt)
		require.ErrorAs(t, err, &ce)
		require.Equal(t, r.Seq, ce.Seq, "tampered provenance reported at another record")
		_, err = l.Lookup(ctx, r.Serial)
		require.ErrorIs(t, err, ca.ErrLedgerCorrupt, "Lookup of a record whose provenance changed")
	}
}

// provenanceRefusals: a provenance on a revocation, or one ztm does not
// know, is refused and nothing is recorded.
func (k *kit) provenanceRefusals(t *testing.T, l ca.Ledger) {
	ctx := context.Background()
	before := head(t, l)
	rev := revocation(newSerial(t), base, ca.ReasonUnspecified)
	rev.KeyProvenance = ca.ProvenanceInjected
	require.Error(t, l.Append(ctx, rev, nil), "a revocation with a key provenance")
	unchanged(t, l, rev, before, "a revocation with a key provenance")
	unknown := k.issuance(t, newSerial(t), "station:prov", base)
	unknown.KeyProvenance = ca.KeyProvenance(200)
	require.Error(t, l.Append(ctx, unknown, nil), "an unknown key provenance")
	unchanged(t, l, unknown, before, "an unknown key provenance")
	require.Equal(t, before, head(t, l), "refusals changed the ledger")
}

// provenanceUnderHash: each record's hash covers its provenance: with any
// other value, ca.ChainVerifier refuses the record.
func (k *kit) provenanceUnderHash(t *testing.T, recs []*ca.Record) {
	for _, r := range recs {
		for _, other := range provenances {
			if other == r.KeyProvenance {
				continue
			}
			flipped := r.Clone()
			flipped.KeyProvenance = other
			h, err := flipped.ChainHash(r.PrevHash)
			require.NoError(t, err)
			require.NotEqual(t, r.Hash, h, "record %d: provenance %v and %v hash alike", r.Seq, r.KeyProvenance, other)
		}
	}
	var v ca.ChainVerifier
	for i := range recs {
		r := recs[i].Clone()
		if i == len(recs)-1 {
			r.KeyProvenance = (r.KeyProvenance + 1) % ca.KeyProvenance(len(provenances))
		}
		err := (&v).Add(r)
		if i == len(recs)-1 {
			var ce *ca.ChainError
			require.ErrorAs(t, err, &ce, "a record whose provenance changed verified")
			require.Equal(t, r.Seq, ce.Seq)
		} else {
			require.NoError(t, err)
		}
	}
}

// provenanceBatch: records appended at once, each with its own
// provenance, keep each their own (a group commit must not mix them up).
func (k *kit) provenanceBatch(t *testing.T, l ca.Ledger) {
	ctx := context.Background()
	n := k.cfg.Concurrency
	recs := make([]*ca.Record, n)
	errs := make([]error, n)
	for i := range recs {
		recs[i] = k.issuance(t, newSerial(t), "station:batch", base)
		recs[i].KeyProvenance = provenances[i%len(provenances)]
	}
	var wg sync.WaitGroup
	for i := range recs {
		wg.Go(func() { errs[i] = l.Append(ctx, recs[i], nil) })
	}
	wg.Wait()
	for i, r := range recs {
		require.NoError(t, errs[i])
		st, err := l.Lookup(ctx, r.Serial)
		require.NoError(t, err)
		require.Equal(t, r.KeyProvenance, st.Issuance.KeyProvenance, "record %d of a batch", i)
	}
	_, err := l.Verify(ctx)
	require.NoError(t, err)
}
