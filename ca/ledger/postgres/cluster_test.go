package postgres_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"
	"sync"
	"testing"

	"github.com/ztmkit/ztm/ca"
	"github.com/ztmkit/ztm/ca/ledger/postgres"
	"github.com/ztmkit/ztm/internal/pgtest"
)

// TestThreeInstances runs three CA instances (three Authorities, each on
// its own pool) on one database, 8 goroutines each, issuing 3,000
// certificates while revoking some through other instances: all serials
// distinct, the chain verifies, a hot requester gets exactly its quota,
// and one CRL from any instance lists every revocation.
func TestThreeInstances(t *testing.T) {
	t.Parallel()
	srv := pgtest.Start(t)
	dsn := srv.NewDatabase(t)
	ctx := context.Background()
	p := newPKI(t)
	const (
		instances = 3
		perInst   = 8
		workers   = instances * perInst
		limit     = 48  // quota per requester
		normal    = 123 // certificates per worker for its own requesters
		hotTries  = 5   // attempts per worker for the shared hot requester
		total     = workers*normal + limit
	)
	var ledgers []*postgres.Ledger
	var auths []*ca.Authority
	for range instances {
		l := open(t, dsn, postgres.Config{})
		ledgers = append(ledgers, l)
		auths = append(auths, p.authority(t, l, ca.QuotaPolicy{Limit: limit}))
	}

	var (
		mu        sync.Mutex
		issued    = map[string]*x509.Certificate{}
		revoked   = map[string]bool{}
		hotOK     int
		hotRefuse int
	)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			auth := auths[w%instances]
			revoker := auths[(w+1)%instances]
			for i := range normal {
				if i%25 == 0 {
					// The hot requester is shared by all workers on all
					// instances; only limit of its requests may pass.
					_, err := auth.Issue(ctx, &ca.Request{CSR: newDeviceCSR(t, "SN-HOT"), Profile: "idevid", Requester: "station-hot"})
					mu.Lock()
					switch {
					case err == nil:
						hotOK++
					case errors.Is(err, ca.ErrQuotaExceeded):
						hotRefuse++
					default:
						t.Errorf("hot request: %v", err)
					}
					mu.Unlock()
				}
				// Each of these requesters asks for 41 < limit.
				req := &ca.Request{CSR: newDeviceCSR(t, "SN"), Profile: "idevid", Requester: fmt.Sprintf("station-%d-%d", w, i/41)}
				cert, err := auth.Issue(ctx, req)
				if err != nil {
					t.Errorf("worker %d issue %d: %v", w, i, err)
					return
				}
				key := string(cert.SerialNumber.Bytes())
				mu.Lock()
				if _, dup := issued[key]; dup {
					t.Errorf("serial %x returned twice", cert.SerialNumber)
				}
				issued[key] = cert
				mu.Unlock()
				if i%20 == 7 {
					// Revoke through another instance.
					if err := revoker.Revoke(ctx, cert.SerialNumber, ca.ReasonKeyCompromise, "admin"); err != nil {
						t.Errorf("revoke: %v", err)
						return
					}
					mu.Lock()
					revoked[key] = true
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	if hotOK != limit || hotRefuse != workers*hotTries-limit {
		t.Fatalf("hot requester: %d granted, %d refused; want %d and %d", hotOK, hotRefuse, limit, workers*hotTries-limit)
	}
	if got := len(issued) + hotOK; got != total {
		t.Fatalf("%d certificates, want %d", got, total)
	}

	// Every instance sees the same, valid chain holding every record.
	want := uint64(total + len(revoked))
	for i, l := range ledgers {
		h, err := l.Verify(ctx)
		if err != nil || h.Seq != want {
			t.Fatalf("instance %d Verify: head %d, %v; want %d records", i, h.Seq, err, want)
		}
	}
	var commits, records uint64
	for _, l := range ledgers {
		st := l.Stats()
		commits += st.Commits
		records += st.Records
	}
	if records != want {
		t.Fatalf("instances appended %d records, ledger holds %d", records, want)
	}
	t.Logf("%d records in %d commits (%.1f per commit) over %d instances", records, commits, float64(records)/float64(commits), instances)

	// Each certificate returned is the one recorded, as any instance
	// sees it; the hot requester holds exactly its quota in the ledger.
	n := 0
	for key, cert := range issued {
		st, err := ledgers[n%instances].Lookup(ctx, cert.SerialNumber)
		n++
		if err != nil {
			t.Fatalf("Lookup %x: %v", cert.SerialNumber, err)
		}
		if !bytes.Equal(st.Issuance.Certificate, cert.Raw) {
			t.Fatalf("Lookup %x: recorded certificate differs from the one returned", cert.SerialNumber)
		}
		if (st.Revocation != nil) != revoked[key] {
			t.Fatalf("Lookup %x: revoked %v, want %v", cert.SerialNumber, st.Revocation != nil, revoked[key])
		}
	}
	if got := countRequester(t, dsn, "station-hot"); got != limit {
		t.Fatalf("ledger holds %d issuances for the hot requester, quota %d", got, limit)
	}

	// One CRL, from one instance, lists every revocation made through
	// the others.
	checkCRL := func(auth *ca.Authority, want map[string]bool) *big.Int {
		t.Helper()
		der, err := auth.CRL(ctx)
		if err != nil {
			t.Fatal(err)
		}
		crl, err := x509.ParseRevocationList(der)
		if err != nil {
			t.Fatal(err)
		}
		if err := crl.CheckSignatureFrom(p.inter); err != nil {
			t.Fatal(err)
		}
		got := map[string]bool{}
		for _, e := range crl.RevokedCertificateEntries {
			got[string(e.SerialNumber.Bytes())] = true
			if e.ReasonCode != int(ca.ReasonKeyCompromise) {
				t.Fatalf("CRL entry %x reason %d", e.SerialNumber, e.ReasonCode)
			}
		}
		if len(got) != len(want) || len(crl.RevokedCertificateEntries) != len(want) {
			t.Fatalf("CRL lists %d serials (%d entries), want %d", len(got), len(crl.RevokedCertificateEntries), len(want))
		}
		for k := range want {
			if !got[k] {
				t.Fatalf("CRL misses revoked serial %x", []byte(k))
			}
		}
		return crl.Number
	}
	n0 := checkCRL(auths[0], revoked)
	// A revocation through instance 2 is in the next CRL of instances 1
	// and 0 at once, and CRL numbers keep increasing across instances.
	var one *x509.Certificate
	for k, c := range issued {
		if !revoked[k] {
			one = c
			break
		}
	}
	if err := auths[2].Revoke(ctx, one.SerialNumber, ca.ReasonKeyCompromise, "admin"); err != nil {
		t.Fatal(err)
	}
	revoked[string(one.SerialNumber.Bytes())] = true
	n1 := checkCRL(auths[1], revoked)
	n2 := checkCRL(auths[0], revoked)
	if n1.Cmp(n0) <= 0 || n2.Cmp(n1) <= 0 {
		t.Fatalf("CRL numbers %v, %v, %v not increasing across instances", n0, n1, n2)
	}
	// Instance 2 revoked it; instance 0 refuses to revoke it again.
	if err := auths[0].Revoke(ctx, one.SerialNumber, ca.ReasonSuperseded, "admin"); !errors.Is(err, ca.ErrAlreadyRevoked) {
		t.Fatalf("second revocation through another instance: %v", err)
	}
}

func countRequester(t testing.TB, dsn, requester string) int {
	t.Helper()
	c := connect(t, dsn)
	var n int
	if err := c.QueryRow(context.Background(), "SELECT count(*) FROM ztm_ca.records WHERE kind = 1 AND requester = $1", requester).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
