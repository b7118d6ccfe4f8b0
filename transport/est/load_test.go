package est_test

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/ztmkit/ztm/attest"
	"github.com/ztmkit/ztm/ca/enroll"
	"github.com/ztmkit/ztm/internal/estline"
	"github.com/ztmkit/ztm/transport/est"
)

// TestLoad runs 200 concurrent clients × 20 attestation-gated enrollments
// over loopback mTLS (each client its own keep-alive connection): zero
// errors, every certificate distinct and in the ledger, and no goroutine
// left after shutdown. It takes about 12 s, 27 s under -race, on 2 cores;
// with -short it runs 50 × 8.
func TestLoad(t *testing.T) {
	clients, per := 200, 20
	if testing.Short() {
		clients, per = 50, 8
	}
	baseline := runtime.NumGoroutine()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	e := newEnv(t, estline.Config{Devices: clients, NonceConfig: attest.NonceConfig{MaxOutstanding: 2 * clients * per}})
	const stations = 10
	ecs := make([]*est.Client, clients)
	for i := range stations {
		st, key := e.Station("idevid")
		for j := i; j < clients; j += stations {
			ecs[j] = e.Client(st, key)
		}
	}
	before := e.Issuances()

	// Requests and evidence are made before the clock starts.
	type job struct {
		csr []byte
		dev *device
	}
	jobs := make([][]job, clients)
	for i := range clients {
		for k := range per {
			tw := e.Devices[i].Twin(t) // one device, one IDevID
			jobs[i] = append(jobs[i], job{csr: tw.CSR(t, fmt.Sprintf("SN-%03d-%02d", i, k)), dev: tw})
		}
	}
	var mu sync.Mutex
	var errs []error
	issued := map[string][]byte{}
	var wg sync.WaitGroup
	for i := range clients {
		wg.Go(func() {
			c := ecs[i]
			for _, j := range jobs[i] {
				d := j.dev
				nonce, err := c.Nonce(ctx)
				if err == nil {
					var ev []byte
					d.BindCSR(t, j.csr)
					if ev, err = d.Sim.EvidenceCWT(nonce); err == nil {
						var chain []*x509Cert
						chain, err = c.Enroll(ctx, &enroll.Request{CSR: j.csr, Profile: "idevid", Evidence: ev})
						if err == nil {
							mu.Lock()
							issued[chain[0].SerialNumber.String()] = chain[0].Raw
							mu.Unlock()
						}
					}
				}
				if err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("%d errors; first: %v", len(errs), errs[0])
	}
	if len(issued) != clients*per {
		t.Fatalf("%d distinct certificates, want %d", len(issued), clients*per)
	}
	if got := e.Issuances() - before; got != uint64(clients*per) {
		t.Fatalf("ledger grew by %d, want %d", got, clients*per)
	}
	for _, der := range issued {
		c, _ := parseCert(der)
		st, err := e.Ledger.Lookup(ctx, c.SerialNumber)
		if err != nil || !bytes.Equal(st.Issuance.Certificate, der) || len(st.Issuance.EvidenceDigest) == 0 {
			t.Fatalf("certificate %v not in the ledger as issued: %v", c.SerialNumber, err)
		}
	}
	if _, err := e.Ledger.Verify(ctx); err != nil {
		t.Fatal(err)
	}

	// Shut everything down; the goroutines must go back to the baseline.
	for _, c := range ecs {
		c.Close()
	}
	sctx, scancel := context.WithTimeout(ctx, 10*time.Second)
	defer scancel()
	if err := e.HTTP.Shutdown(sctx); err != nil {
		t.Fatal(err)
	}
	e.Ledger.Close()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > baseline && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > baseline {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		t.Fatalf("%d goroutines after shutdown, baseline %d:\n%s", n, baseline, buf)
	}
}
