package postgres_test

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ztmkit/ztm/ca"
	"github.com/ztmkit/ztm/ca/ledger/postgres"
	"github.com/ztmkit/ztm/identity"
	"github.com/ztmkit/ztm/internal/benchcpu"
	"github.com/ztmkit/ztm/internal/pgtest"
)

// The Issue benchmarks start one PostgreSQL server in the top-level
// benchmark (which runs once) and measure in a sub-benchmark (which the
// framework runs repeatedly with growing b.N); the Raw twins have the same
// sub-benchmark name.

// benchIssue issues from 32×GOMAXPROCS goroutines spread over instances
// CA instances, each with its own pool, on one database.
func benchIssue(b *testing.B, instances int) {
	srv := pgtest.Start(b)
	dsn := srv.NewDatabase(b)
	p := newPKI(b)
	var ledgers []*postgres.Ledger
	var auths []*ca.Authority
	for range instances {
		l := open(b, dsn, postgres.Config{})
		ledgers = append(ledgers, l)
		auths = append(auths, p.authority(b, l, ca.QuotaPolicy{}))
	}
	ctx := context.Background()
	b.Run("P-256", func(b *testing.B) {
		// One device per issuance: a device holds one live IDevID.
		reqs := make([]*ca.Request, b.N)
		for i := range reqs {
			reqs[i] = &ca.Request{CSR: newDeviceCSR(b, "BENCH"), Profile: "idevid", Requester: "bench"}
		}
		var nextReq atomic.Int64
		var before postgres.Stats
		for _, l := range ledgers {
			st := l.Stats()
			before.Commits += st.Commits
			before.Records += st.Records
		}
		var next atomic.Int64
		b.SetParallelism(32)
		b.ResetTimer()
		defer benchcpu.Start(b)()
		pg0 := srv.CPUTime()
		defer func() { b.ReportMetric(float64(srv.CPUTime()-pg0)/float64(b.N), "pg-cpu-ns/op") }()
		b.RunParallel(func(pb *testing.PB) {
			auth := auths[int(next.Add(1))%len(auths)]
			for pb.Next() {
				if _, err := auth.Issue(ctx, reqs[nextReq.Add(1)-1]); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.StopTimer()
		var after postgres.Stats
		for _, l := range ledgers {
			st := l.Stats()
			after.Commits += st.Commits
			after.Records += st.Records
		}
		if c := after.Commits - before.Commits; c > 0 {
			b.ReportMetric(float64(after.Records-before.Records)/float64(c), "issues/commit")
		}
	})
}

// benchIssueRaw is the raw primitive Issue wraps, as in the ca package's
// raw twin: parse the request, check its signature, sign a certificate
// with the CA key. No ledger, no server.
func benchIssueRaw(b *testing.B) {
	p := newPKI(b)
	csrDER := idevidCSR(b, "BENCH-1")
	san, err := identity.HardwareModuleNameExtension(ca.HardwareModuleName{Type: hwType, SerialNumber: []byte("BENCH-1")}, false)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("P-256", func(b *testing.B) {
		b.SetParallelism(32)
		b.ResetTimer()
		defer benchcpu.Start(b)()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				c, err := x509.ParseCertificateRequest(csrDER)
				if err != nil {
					b.Error(err)
					return
				}
				if err := c.CheckSignature(); err != nil {
					b.Error(err)
					return
				}
				var s [16]byte
				rand.Read(s[:])
				now := time.Now().Truncate(time.Second)
				tmpl := &x509.Certificate{
					SerialNumber:          new(big.Int).SetBytes(s[:]),
					Subject:               c.Subject,
					NotBefore:             now,
					NotAfter:              time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC),
					KeyUsage:              x509.KeyUsageDigitalSignature,
					BasicConstraintsValid: true,
					ExtraExtensions:       []pkix.Extension{san},
				}
				if _, err := x509.CreateCertificate(rand.Reader, tmpl, p.inter, c.PublicKey, p.key); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// BenchmarkIssueParallel is ca.Authority.Issue on one instance with the
// PostgreSQL ledger, under b.RunParallel: concurrent calls share group
// commits.
func BenchmarkIssueParallel(b *testing.B) { benchIssue(b, 1) }

func BenchmarkIssueParallelRaw(b *testing.B) { benchIssueRaw(b) }

// BenchmarkIssueParallel3 is the same spread over three instances (three
// pools, three writers) on one database: their batches take turns on the
// chain lock.
func BenchmarkIssueParallel3(b *testing.B) { benchIssue(b, 3) }

func BenchmarkIssueParallel3Raw(b *testing.B) { benchIssueRaw(b) }

// BenchmarkAppendParallel measures the ledger alone: appends of ready
// records from many goroutines on one instance, with the database on
// loopback and behind a proxy that adds 1 ms of round-trip time.
func BenchmarkAppendParallel(b *testing.B) { benchAppend(b, 1) }

// BenchmarkAppendParallel3 is the same over three instances.
func BenchmarkAppendParallel3(b *testing.B) { benchAppend(b, 3) }

func benchAppend(b *testing.B, instances int) {
	srv := pgtest.Start(b)
	dsn := srv.NewDatabase(b)
	tmpl := issuance(b, "bench", time.Unix(1_800_000_000, 0))
	for _, net := range []struct {
		name   string
		oneWay time.Duration
	}{{"loopback", 0}, {"rtt=1ms", 500 * time.Microsecond}} {
		dsn := dsn
		if net.oneWay > 0 {
			dsn = delayProxy(b, dsn, net.oneWay)
		}
		var ls []*postgres.Ledger
		for range instances {
			ls = append(ls, open(b, dsn, postgres.Config{}))
		}
		b.Run(net.name, func(b *testing.B) { benchAppendOn(b, srv, ls, tmpl) })
		for _, l := range ls {
			l.Close()
		}
	}
}

// benchAppendOn appends ready records from 32×GOMAXPROCS goroutines
// spread over ls.
func benchAppendOn(b *testing.B, srv *pgtest.Server, ls []*postgres.Ledger, tmpl *ca.Record) {
	ctx := context.Background()
	{
		var before, after postgres.Stats
		for _, l := range ls {
			before.Commits += l.Stats().Commits
			before.Records += l.Stats().Records
		}
		var next atomic.Int64
		b.SetParallelism(32)
		b.ResetTimer()
		defer benchcpu.Start(b)()
		pg0 := srv.CPUTime()
		defer func() { b.ReportMetric(float64(srv.CPUTime()-pg0)/float64(b.N), "pg-cpu-ns/op") }()
		b.RunParallel(func(pb *testing.PB) {
			l := ls[int(next.Add(1))%len(ls)]
			for pb.Next() {
				r := tmpl.Clone()
				var s [16]byte
				rand.Read(s[:])
				r.Serial = new(big.Int).SetBytes(s[:])
				r.Serial.SetBit(r.Serial, 127, 1)
				// The certificate's serial is not the record's; the ledger
				// does not look inside certificates on Append.
				if err := l.Append(ctx, r, nil); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.StopTimer()
		for _, l := range ls {
			after.Commits += l.Stats().Commits
			after.Records += l.Stats().Records
		}
		if c := after.Commits - before.Commits; c > 0 {
			b.ReportMetric(float64(after.Records-before.Records)/float64(c), "records/commit")
		}
	}
}
