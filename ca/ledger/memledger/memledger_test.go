package memledger

import (
	"context"
	"math/big"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ztmkit/ztm/ca"
	"github.com/ztmkit/ztm/ca/ledger/ledgertest"
)

// tamper changes the stored record seq behind the ledger's back, as an
// edit of a database file would.
func tamper(t *testing.T, l ca.Ledger, seq uint64, change func(r *ca.Record)) {
	t.Helper()
	m := l.(*Ledger)
	m.mu.Lock()
	defer m.mu.Unlock()
	require.LessOrEqual(t, seq, uint64(len(m.records)), "no record %d to tamper with", seq)
	change(m.records[seq-1])
}

func TestConformance(t *testing.T) {
	t.Parallel()
	ledgertest.Run(t, func(t *testing.T) ca.Ledger { return New() }, ledgertest.Config{
		Tamper: func(t *testing.T, l ca.Ledger, seq uint64) {
			tamper(t, l, seq, func(r *ca.Record) { r.Subject += " (edited)" })
		},
		TamperProvenance: func(t *testing.T, l ca.Ledger, seq uint64) {
			tamper(t, l, seq, func(r *ca.Record) {
				if r.KeyProvenance == ca.ProvenanceInjected {
					r.KeyProvenance = ca.ProvenanceUnattested
				} else {
					r.KeyProvenance = ca.ProvenanceInjected
				}
			})
		},
	})
}

// TestZeroValue: a Ledger not made by New answers every call with an
// error, and no call panics.
func TestZeroValue(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, l := range []*Ledger{nil, {}} {
		require.ErrorIs(t, l.Append(ctx, &ca.Record{Kind: ca.KindRevocation, Serial: big.NewInt(1)}, nil), errNotNew)
		_, err := l.Lookup(ctx, big.NewInt(1))
		require.ErrorIs(t, err, errNotNew)
		_, err = l.LookupRequest(ctx, []byte("k"))
		require.ErrorIs(t, err, errNotNew)
		_, err = l.LookupDevice(ctx, []byte("d"))
		require.ErrorIs(t, err, errNotNew)
		_, err = l.Revoked(ctx)
		require.ErrorIs(t, err, errNotNew)
		_, err = l.NextCRLNumber(ctx)
		require.ErrorIs(t, err, errNotNew)
		_, err = l.Head(ctx)
		require.ErrorIs(t, err, errNotNew)
		_, err = l.Verify(ctx)
		require.ErrorIs(t, err, errNotNew)
		_, err = l.Record(ctx, 1)
		require.ErrorIs(t, err, errNotNew)
		require.ErrorIs(t, l.Close(), errNotNew)
	}
}

// withIssuance returns a new ledger holding one issuance, rec.
func withIssuance(t *testing.T) (*Ledger, *ca.Record) {
	t.Helper()
	l := New()
	rec, err := ledgertest.NewIssuance("station", time.Now())
	require.NoError(t, err)
	require.NoError(t, l.Append(context.Background(), rec, nil))
	return l, rec
}

// TestStoredCopies: neither the record a caller appended nor one a lookup
// returned shares memory with what the ledger holds.
func TestStoredCopies(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l, rec := withIssuance(t)
	rec.Certificate[0] ^= 0xff
	rec.Serial.SetInt64(-1)
	st, err := l.Lookup(ctx, new(big.Int).Set(l.records[0].Serial))
	require.NoError(t, err)
	st.Issuance.Subject = "changed"
	st.Issuance.Hash[0] ^= 0xff
	rr, err := l.Record(ctx, 1)
	require.NoError(t, err)
	rr.PrevHash[0] ^= 0xff
	_, err = l.Verify(ctx)
	require.NoError(t, err, "a caller's copy changed the ledger")
}

// TestTamperedRecordRead: Record refuses a record that no longer matches
// its hash, and the ledger then refuses appends.
func TestTamperedRecordRead(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l, _ := withIssuance(t)
	tamper(t, l, 1, func(r *ca.Record) { r.Profile = "other" })
	_, err := l.Record(ctx, 1)
	require.ErrorIs(t, err, ca.ErrLedgerCorrupt)
	next, err := ledgertest.NewIssuance("station", time.Now())
	require.NoError(t, err)
	require.ErrorIs(t, l.Append(ctx, next, nil), ca.ErrLedgerCorrupt)
}

// TestQuotaWindow: the quota counts a requester's issuances at or after
// Since, whatever order their times were appended in, and no other
// requester's.
func TestQuotaWindow(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(h int) time.Time { return base.Add(time.Duration(h) * time.Hour) }
	for _, c := range []struct{ since, counted int }{{0, 5}, {1, 4}, {2, 3}, {5, 1}, {6, 0}} {
		l := New()
		for _, h := range []int{5, 1, 3, 0, 4} {
			rec, err := ledgertest.NewIssuance("station", at(h))
			require.NoError(t, err)
			require.NoError(t, l.Append(ctx, rec, nil))
		}
		other, err := ledgertest.NewIssuance("other station", at(6))
		require.NoError(t, err)
		require.NoError(t, l.Append(ctx, other, nil))
		rec, err := ledgertest.NewIssuance("station", at(7))
		require.NoError(t, err)
		err = l.Append(ctx, rec, &ca.Quota{Limit: c.counted, Since: at(c.since)})
		require.ErrorIs(t, err, ca.ErrQuotaExceeded, "since %dh: %d counted, limit %d", c.since, c.counted, c.counted)
		require.NoError(t, l.Append(ctx, rec, &ca.Quota{Limit: c.counted + 1, Since: at(c.since)}),
			"since %dh: %d counted, limit %d", c.since, c.counted, c.counted+1)
	}
}
