package queue_test

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ztmkit/ztm/ca/enroll"
	"github.com/ztmkit/ztm/identity"
	"github.com/ztmkit/ztm/transport/est"
	"github.com/ztmkit/ztm/transport/est/queue"
)

// scripted is an Enroller whose answers the test sets per call.
type scripted struct {
	mu     sync.Mutex
	calls  map[string]int
	answer func(req *enroll.Request, n int) ([]*x509.Certificate, error)
}

func (s *scripted) Nonce(context.Context) ([]byte, error) { return make([]byte, 32), nil }

func (s *scripted) Enroll(ctx context.Context, req *enroll.Request) ([]*x509.Certificate, error) {
	s.mu.Lock()
	s.calls[string(req.CSR)]++
	n := s.calls[string(req.CSR)]
	s.mu.Unlock()
	return s.answer(req, n)
}

func TestQueueOutcomes(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	path := filepath.Join(t.TempDir(), "q.db")
	q, err := queue.Open(ctx, path, queue.Options{MinBackoff: time.Second, MaxBackoff: 8 * time.Second, Time: clock})
	if err != nil {
		t.Fatal(err)
	}
	leaf := selfSigned(t)
	e := &scripted{calls: map[string]int{}, answer: func(req *enroll.Request, n int) ([]*x509.Certificate, error) {
		switch string(req.CSR) {
		case "ok":
			return []*x509.Certificate{leaf}, nil
		case "flaky": // unreachable twice, then issued
			if n <= 2 {
				return nil, errors.New("dial tcp: connection refused")
			}
			return []*x509.Certificate{leaf}, nil
		case "busy":
			return nil, &est.RetryLaterError{After: 5 * time.Second, Err: &est.StatusError{Code: 503}}
		case "quota":
			return nil, &est.StatusError{Code: 429}
		case "refused":
			return nil, &est.StatusError{Code: 403, Body: "evidence refused: nonce reused"}
		case "badcsr":
			return nil, &enroll.RefusalError{Reason: enroll.ReasonBadRequest, Err: fmt.Errorf("wrapped: %w", identity.ErrInvalidCSR)}
		}
		return nil, errors.New("unexpected")
	}}
	keys := map[string]queue.Key{}
	for _, name := range []string{"ok", "flaky", "busy", "quota", "refused", "badcsr"} {
		k, err := q.Add(ctx, &enroll.Request{CSR: []byte(name), Profile: "idevid", Evidence: []byte("ev")})
		if err != nil {
			t.Fatal(err)
		}
		keys[name] = k
	}
	// Adding the same request again changes nothing.
	if k, err := q.Add(ctx, &enroll.Request{CSR: []byte("ok"), Profile: "other"}); err != nil || k != keys["ok"] {
		t.Fatalf("re-add: %v", err)
	}
	if _, err := q.Add(ctx, &enroll.Request{Profile: "idevid"}); !errors.Is(err, est.ErrBadRequest) {
		t.Fatalf("empty CSR: %v", err)
	}
	st, err := q.Flush(ctx, e)
	if err != nil {
		t.Fatal(err)
	}
	if st.Done != 1 || st.Failed != 2 || st.Retry != 3 || st.Pending != 3 {
		t.Fatalf("first flush: %+v", st)
	}
	// Nothing is due before its backoff.
	if st, _ := q.Flush(ctx, e); st.Done+st.Failed+st.Retry != 0 {
		t.Fatalf("flush before backoff: %+v", st)
	}
	it, _ := q.Get(ctx, keys["busy"])
	if d := it.NextAttempt.Sub(clock()); d < 5*time.Second || d > 8*time.Second {
		t.Fatalf("busy retried after %v, want Retry-After 5 s", d)
	}
	for range 3 {
		advance(10 * time.Second)
		if _, err := q.Flush(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	want := map[string]queue.State{"ok": queue.Done, "flaky": queue.Done, "busy": queue.Pending, "quota": queue.Pending, "refused": queue.Failed, "badcsr": queue.Failed}
	for name, s := range want {
		it, err := q.Get(ctx, keys[name])
		if err != nil {
			t.Fatal(err)
		}
		if it.State != s {
			t.Errorf("%s: %v (%s), want %v", name, it.State, it.LastError, s)
		}
		if it.Request.Profile != "idevid" || string(it.Request.Evidence) != "ev" {
			t.Errorf("%s: stored request changed", name)
		}
	}
	it, _ = q.Get(ctx, keys["flaky"])
	if it.Attempts != 3 || len(it.Chain) != 1 || !it.Chain[0].Equal(leaf) {
		t.Fatalf("flaky: %d attempts, chain %d", it.Attempts, len(it.Chain))
	}
	if _, err := q.Wait(ctx, keys["refused"], time.Millisecond); !errors.As(err, new(*queue.FailedError)) {
		t.Fatalf("wait on refused: %v", err)
	}
	if c, err := q.Wait(ctx, keys["ok"], time.Millisecond); err != nil || !c[0].Equal(leaf) {
		t.Fatalf("wait on ok: %v", err)
	}
	// Everything survives a reopen.
	q.Close()
	q, err = queue.Open(ctx, path, queue.Options{Time: clock})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	items, err := q.List(ctx)
	if err != nil || len(items) != 6 {
		t.Fatalf("reopened: %d items, %v", len(items), err)
	}
	if _, err := q.Get(ctx, queue.KeyOf([]byte("never"))); !errors.Is(err, queue.ErrNotFound) {
		t.Fatalf("unknown key: %v", err)
	}
}
