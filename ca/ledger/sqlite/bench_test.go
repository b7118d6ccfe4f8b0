package sqlite_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/ztmkit/ztm/ca"
)

func benchRecords(b *testing.B, n int) []*ca.Record {
	recs := make([]*ca.Record, n)
	for i := range recs {
		recs[i] = mustIssuance(b, "bench", time.Unix(1_800_000_000, 0))
	}
	return recs
}

// BenchmarkAppendParallel measures the ledger alone: appends from many
// goroutines sharing group commits.
func BenchmarkAppendParallel(b *testing.B) {
	l := openAt(b, filepath.Join(b.TempDir(), "l.db"))
	defer l.Close()
	recs := benchRecords(b, b.N)
	ch := make(chan *ca.Record, len(recs))
	for _, r := range recs {
		ch <- r
	}
	close(ch)
	ctx := context.Background()
	b.SetParallelism(32)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := l.Append(ctx, <-ch, nil); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	if st := l.Stats(); st.Commits > 0 {
		b.ReportMetric(float64(st.Ops)/float64(st.Commits), "records/commit")
	}
}

// BenchmarkAppendParallelRaw is the raw primitive without group commit:
// each goroutine INSERTs one record per transaction into the same table on
// its own connection (WAL, synchronous=FULL), as a ledger without a
// single writer would.
func BenchmarkAppendParallelRaw(b *testing.B) {
	path := filepath.Join(b.TempDir(), "raw.db")
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(60000)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)")
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(8)
	if _, err := db.Exec(`CREATE TABLE records (seq INTEGER PRIMARY KEY, serial BLOB NOT NULL UNIQUE, cert BLOB, hash BLOB)`); err != nil {
		b.Fatal(err)
	}
	recs := benchRecords(b, b.N)
	ch := make(chan *ca.Record, len(recs))
	for _, r := range recs {
		ch <- r
	}
	close(ch)
	b.SetParallelism(32)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r := <-ch
			if _, err := db.Exec("INSERT INTO records (serial, cert, hash) VALUES (?, ?, ?)", r.Serial.Bytes(), r.Certificate, r.PublicKeyHash); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
