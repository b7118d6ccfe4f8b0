package postgres_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ztmkit/ztm/ca"
	"github.com/ztmkit/ztm/ca/ledger/postgres"
	"github.com/ztmkit/ztm/internal/pgtest"
)

// TestRestartDuringIssuance kills PostgreSQL (immediate stop, as a crash)
// while two CA instances issue from 16 goroutines, and starts it again.
// Every Issue either succeeds or fails with an error wrapping
// ErrUnavailable; every certificate returned is in the ledger after
// recovery; the chain verifies; and the instances issue again without
// being reopened.
func TestRestartDuringIssuance(t *testing.T) {
	t.Parallel()
	srv := pgtest.Start(t)
	dsn := srv.NewDatabase(t)
	ctx := context.Background()
	p := newPKI(t)
	const instances, perInst = 2, 8
	var ledgers []*postgres.Ledger
	var auths []*ca.Authority
	for range instances {
		l := open(t, dsn, postgres.Config{BatchTimeout: 10 * time.Second})
		ledgers = append(ledgers, l)
		auths = append(auths, p.authority(t, l, ca.QuotaPolicy{}))
	}

	// phase: 0 before the kill, 1 from the kill until Start returned, 2
	// after; a call counts in the phase it ended in.
	var phase atomic.Int32
	var (
		mu       sync.Mutex
		returned []*x509.Certificate
		ok       [3]int
		failed   [3]int
		unknown  int
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range instances * perInst {
		wg.Add(1)
		go func() {
			defer wg.Done()
			auth := auths[w%instances]
			for {
				select {
				case <-stop:
					return
				default:
				}
				cert, err := auth.Issue(ctx, &ca.Request{CSR: newDeviceCSR(t, "SN-RESTART"), Profile: "idevid", Requester: fmt.Sprint("st-", w)})
				ph := phase.Load() // when the call ended
				mu.Lock()
				switch {
				case err == nil:
					returned = append(returned, cert)
					ok[ph]++
				case errors.Is(err, postgres.ErrUnavailable):
					failed[ph]++
					if errors.Is(err, postgres.ErrCommitUnknown) {
						unknown++
					}
					var pe *postgres.Error
					if !errors.As(err, &pe) {
						t.Errorf("unavailable error without *postgres.Error: %v", err)
					}
				default:
					t.Errorf("Issue failed with an untyped error: %v", err)
				}
				mu.Unlock()
				if err != nil {
					time.Sleep(20 * time.Millisecond)
				}
			}
		}()
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				close(stop)
				wg.Wait()
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	count := func(ph int) int {
		mu.Lock()
		defer mu.Unlock()
		return ok[ph]
	}
	waitFor("issuance before the kill", func() bool { return count(0) >= 200 })
	phase.Store(1)
	if err := srv.Kill(); err != nil {
		t.Fatal(err)
	}
	// Down for longer than the ledger's retries of a batch (0.75 s), so
	// calls fail while it is down.
	time.Sleep(1500 * time.Millisecond)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	phase.Store(2)
	waitFor("issuance after the restart", func() bool { return count(2) >= 200 })
	close(stop)
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("issued %d before the kill, %d around it, %d after; failed %d before, %d around, %d after (%d with commit outcome unknown)",
		ok[0], ok[1], ok[2], failed[0], failed[1], failed[2], unknown)
	if failed[0] != 0 {
		t.Fatalf("%d Issue calls failed before the kill", failed[0])
	}
	if failed[1]+failed[2] == 0 {
		t.Fatal("no Issue call failed while the database was down: the test did not exercise the outage")
	}

	// Each instance issues again, on its existing pool.
	for i, a := range auths {
		if _, err := a.Issue(ctx, &ca.Request{CSR: newDeviceCSR(t, "SN-AFTER"), Profile: "idevid", Requester: "after"}); err != nil {
			t.Fatalf("instance %d after restart: %v", i, err)
		}
	}
	// Every certificate returned is recorded, as returned.
	for i, c := range returned {
		st, err := ledgers[i%instances].Lookup(ctx, c.SerialNumber)
		if err != nil {
			t.Fatalf("returned certificate %x not in the ledger: %v", c.SerialNumber, err)
		}
		if !bytes.Equal(st.Issuance.Certificate, c.Raw) {
			t.Fatalf("returned certificate %x differs from the recorded one", c.SerialNumber)
		}
	}
	h, err := ledgers[0].Verify(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Records beyond those returned are issuances whose commit outcome was
	// unknown: recorded, never returned.
	extra := int(h.Seq) - len(returned) - len(auths)
	if extra < 0 || extra > unknown {
		t.Fatalf("ledger holds %d records for %d returned certificates (+%d) and %d unknown commits", h.Seq, len(returned), len(auths), unknown)
	}
	t.Logf("ledger: %d records, %d recorded but never returned", h.Seq, extra)
}
