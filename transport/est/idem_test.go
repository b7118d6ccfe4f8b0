package est_test

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ztmkit/ztm/ca"
	"github.com/ztmkit/ztm/ca/enroll"
	"github.com/ztmkit/ztm/internal/estline"
)

// stallLedger simulates a ledger whose answer is lost: for the next
// append it either commits (commit true) or not, and then holds the
// answer until the caller's context ends.
type stallLedger struct {
	ca.Ledger
	armed  atomic.Bool
	commit bool
}

func (l *stallLedger) Append(ctx context.Context, rec *ca.Record, q *ca.Quota) error {
	if rec.Kind != ca.KindIssuance || !l.armed.CompareAndSwap(true, false) {
		return l.Ledger.Append(ctx, rec, q)
	}
	if l.commit {
		if err := l.Ledger.Append(context.WithoutCancel(ctx), rec, q); err != nil {
			return err
		}
	}
	<-ctx.Done()
	return ctx.Err()
}

// TestIdempotencyAnswerLost covers an enrollment whose ledger answer is
// lost: a retry of the same request finds the certificate the ledger
// committed, or, when the ledger never committed it, issues once.
func TestIdempotencyAnswerLost(t *testing.T) {
	t.Parallel()
	for _, commit := range []bool{true, false} {
		name := map[bool]string{true: "ledger committed", false: "ledger did not commit"}[commit]
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			var stall *stallLedger
			e := newEnv(t, estline.Config{NoServer: true})
			// Rebuild the Authority over the stalling ledger.
			stall = &stallLedger{Ledger: e.Ledger, commit: commit}
			auth, err := ca.New(ca.Config{Signer: mustSigner(t, e), Chain: e.Authority.Chain(), Ledger: stall})
			if err != nil {
				t.Fatal(err)
			}
			gate, err := enroll.New(enroll.Config{Authority: auth, Verifier: e.Verifier, Nonces: e.Nonces,
				CommitTimeout: time.Second}) // the stall's wait; a real commit must fit in it on a loaded machine
			if err != nil {
				t.Fatal(err)
			}
			st, _ := e.Station("idevid")
			l := gate.Local(enroll.Requester{Certificate: st})
			d := e.Devices[0]
			csr := d.CSR(t, "SN-PEND")
			before := e.Issuances()
			stall.armed.Store(true)
			nonce, _ := l.Nonce(ctx)
			if _, err := l.Enroll(ctx, &enroll.Request{CSR: csr, Profile: "idevid", Evidence: d.Evidence(t, nonce)}); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("stalled enrollment: err = %v", err)
			}
			nonce, _ = l.Nonce(ctx)
			chain, err := l.Enroll(ctx, &enroll.Request{CSR: csr, Profile: "idevid", Evidence: d.Evidence(t, nonce)})
			if err != nil {
				t.Fatal(err)
			}
			if got := e.Issuances() - before; got != 1 {
				t.Fatalf("%d issuances for one request", got)
			}
			s, err := e.Ledger.Lookup(ctx, chain[0].SerialNumber)
			if err != nil || !bytes.Equal(s.Issuance.Certificate, chain[0].Raw) {
				t.Fatalf("answer not the ledger's certificate: %v", err)
			}
			// And once more, without evidence: answered from the ledger.
			again, err := l.Enroll(ctx, &enroll.Request{CSR: csr, Profile: "idevid"})
			if err != nil || !again[0].Equal(chain[0]) {
				t.Fatalf("repeat: %v", err)
			}
		})
	}
}

// TestConcurrentSameRequest sends one request from many goroutines at once
// (through two requesters' Locals of one Service): one certificate, the
// same for all.
func TestConcurrentSameRequest(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, estline.Config{NoServer: true})
	st, _ := e.Station("idevid")
	d := e.Devices[0]
	csr := d.CSR(t, "SN-CONC")
	nonce, _ := e.Nonces.Issue()
	ev := d.Evidence(t, nonce)
	before := e.Issuances()
	const n = 20
	got := make([][]byte, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			chain, err := e.Service.Local(enroll.Requester{Certificate: st}).Enroll(ctx, &enroll.Request{CSR: csr, Profile: "idevid", Evidence: ev})
			errs[i] = err
			if err == nil {
				got[i] = chain[0].Raw
			}
		})
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("goroutine %d: %v", i, errs[i])
		}
		if !bytes.Equal(got[i], got[0]) {
			t.Fatal("two certificates for one request")
		}
	}
	if e.Issuances()-before != 1 {
		t.Fatalf("%d issuances", e.Issuances()-before)
	}
}
