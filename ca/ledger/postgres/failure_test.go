package postgres_test

import (
	"bytes"
	"context"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/ztmkit/ztm/ca"
	"github.com/ztmkit/ztm/ca/ledger/postgres"
	"github.com/ztmkit/ztm/internal/pgtest"
)

// TestCommitUnknown loses the ledger's connection while its batch (BEGIN,
// append, COMMIT, sent together) waits for the chain lock another
// transaction holds: Append must not report success, says the outcome is
// unknown, and the ledger goes on working. A batch that runs out of
// BatchTimeout fails the same way.
func TestCommitUnknown(t *testing.T) {
	t.Parallel()
	srv := pgtest.Start(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		timeout time.Duration
		kill    bool
	}{
		{"terminated", 30 * time.Second, true},
		{"timeout", time.Second, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dsn := srv.NewDatabase(t)
			l := open(t, dsn, postgres.Config{BatchTimeout: tc.timeout})
			first := issuance(t, "st", time.Unix(1_800_000_000, 0))
			if err := l.Append(ctx, first, nil); err != nil {
				t.Fatal(err)
			}
			// Another instance's transaction holds the chain lock.
			holder, err := connect(t, dsn).Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := holder.Exec(ctx, postgres.ChainLockSQL("ztm_ca")); err != nil {
				t.Fatal(err)
			}
			rec := issuance(t, "st", time.Unix(1_800_000_001, 0))
			errc := make(chan error, 1)
			go func() { errc <- l.Append(ctx, rec, nil) }()
			admin := connect(t, dsn)
			var pid int32
			deadline := time.Now().Add(20 * time.Second)
			for {
				err := admin.QueryRow(ctx, `SELECT pid FROM pg_stat_activity
					WHERE application_name = 'ztm-ca-ledger' AND wait_event_type = 'Lock'`).Scan(&pid)
				if err == nil {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("the ledger's batch never waited for the chain lock: %v", err)
				}
				time.Sleep(10 * time.Millisecond)
			}
			if tc.kill {
				if _, err := admin.Exec(ctx, "SELECT pg_terminate_backend($1)", pid); err != nil {
					t.Fatal(err)
				}
			}
			err = <-errc
			var pe *postgres.Error
			if !errors.Is(err, postgres.ErrUnavailable) || !errors.As(err, &pe) || pe.Op != "append" {
				t.Fatalf("Append with its connection lost during the commit: %v", err)
			}
			t.Logf("Append: %v", err)
			if tc.kill && pe.Reason != postgres.ReasonCommitUnknown {
				t.Fatalf("connection lost with the COMMIT sent: reason %v, want %v", pe.Reason, postgres.ReasonCommitUnknown)
			}
			if rec.Seq != 0 || rec.Hash != nil {
				t.Fatal("failed Append modified the record")
			}
			if err := holder.Rollback(ctx); err != nil {
				t.Fatal(err)
			}
			// The transaction did not commit: it never got the lock (the
			// server ended it before the client gave up). The ledger works
			// on with the same pool.
			time.Sleep(100 * time.Millisecond)
			if _, err := l.Lookup(ctx, rec.Serial); !errors.Is(err, ca.ErrUnknownSerial) {
				t.Fatalf("Lookup of the failed record: %v", err)
			}
			next := issuance(t, "st", time.Unix(1_800_000_002, 0))
			if err := l.Append(ctx, next, nil); err != nil {
				t.Fatal(err)
			}
			if next.Seq != 2 || !bytes.Equal(next.PrevHash, first.Hash) {
				t.Fatalf("chain after the failure: seq %d", next.Seq)
			}
			if h, err := l.Verify(ctx); err != nil || h.Seq != 2 {
				t.Fatalf("Verify: %v %v", h, err)
			}
		})
	}
}

// TestCBORUint checks the database's CBOR encoding of sequence numbers,
// with which it links records, against the record's own canonical
// encoding at every length boundary.
func TestCBORUint(t *testing.T) {
	t.Parallel()
	srv := pgtest.Start(t)
	dsn := srv.NewDatabase(t)
	open(t, dsn, postgres.Config{}).Close()
	c := connect(t, dsn)
	rec := issuance(t, "st", time.Unix(1_800_000_000, 0))
	base := *rec
	base.Seq = 0
	enc0, err := base.CanonicalEncoding()
	if err != nil {
		t.Fatal(err)
	}
	for _, seq := range []uint64{1, 23, 24, 255, 256, 65535, 65536, 1<<32 - 1, 1 << 32, math.MaxInt64} {
		r := *rec
		r.Seq = seq
		want, err := r.CanonicalEncoding()
		if err != nil {
			t.Fatal(err)
		}
		var got []byte
		if err := c.QueryRow(context.Background(), "SELECT $1::bytea || ztm_ca.cbor_uint($2) || $3::bytea",
			enc0[:2], int64(seq), enc0[3:]).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("seq %d: database encoding %x, want %x", seq, got[:12], want[:12])
		}
	}
}

// TestBatchWithDuplicates: a batch of issuances is first tried without
// looking its serials and keys up; one that repeats a recorded serial or
// key fails that try on the unique index, and the batch is run again the
// careful way — the duplicates are refused, the others recorded, the
// chain linear.
func TestBatchWithDuplicates(t *testing.T) {
	t.Parallel()
	srv := pgtest.Start(t)
	ctx := context.Background()
	l := open(t, srv.NewDatabase(t), postgres.Config{})
	at := time.Unix(1_800_000_000, 0)
	old := issuance(t, "st", at)
	old.IdempotencyKey = []byte("request-1")
	if err := l.Append(ctx, old, nil); err != nil {
		t.Fatal(err)
	}
	dupSerial := issuance(t, "st", at)
	dupSerial.Serial = old.Serial
	dupKey := issuance(t, "st", at)
	dupKey.IdempotencyKey = []byte("request-1")
	fresh1, fresh2 := issuance(t, "st", at), issuance(t, "st", at)
	errs := l.AppendTogether(ctx, []*ca.Record{fresh1, dupSerial, dupKey, fresh2})
	for i, want := range []error{nil, ca.ErrSerialExists, ca.ErrRequestExists, nil} {
		if !errors.Is(errs[i], want) {
			t.Errorf("record %d: %v, want %v", i, errs[i], want)
		}
	}
	if st := l.Stats(); st.Records != 3 {
		t.Errorf("%d records counted, want 3", st.Records)
	}
	if h, err := l.Verify(ctx); err != nil || h.Seq != 3 {
		t.Fatalf("Verify: %v %v", h, err)
	}
	// A batch of fresh issuances alone takes the fast way and commits.
	errs = l.AppendTogether(ctx, []*ca.Record{issuance(t, "st", at), issuance(t, "st", at)})
	if errs[0] != nil || errs[1] != nil {
		t.Fatal(errs)
	}
	if h, err := l.Verify(ctx); err != nil || h.Seq != 5 {
		t.Fatalf("Verify: %v %v", h, err)
	}
}
