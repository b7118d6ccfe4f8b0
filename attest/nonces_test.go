package attest_test

import (
	"bytes"
	"errors"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/ztmkit/ztm/attest"
)

func TestNoncesLifecycle(t *testing.T) {
	c := newClock()
	n := attest.NewNonces(attest.NonceConfig{TTL: time.Minute, MaxOutstanding: 3, Time: c.Now})
	a, err := n.Issue()
	if err != nil {
		t.Fatal(err)
	}
	if len(a) != attest.NonceSize {
		t.Fatalf("nonce of %d bytes", len(a))
	}
	b, _ := n.Issue()
	if bytes.Equal(a, b) {
		t.Fatal("two equal nonces")
	}
	if err := n.Consume(a); err != nil {
		t.Fatalf("first use: %v", err)
	}
	for _, tc := range []struct {
		name  string
		nonce []byte
		want  error
	}{
		{"reused", a, attest.ErrNonceReused},
		{"unknown", bytes.Repeat([]byte{1}, 32), attest.ErrNonceUnknown},
		{"short", []byte{1, 2, 3}, attest.ErrNonceUnknown},
		{"nil", nil, attest.ErrNonceUnknown},
	} {
		err := n.Consume(tc.nonce)
		if !errors.Is(err, tc.want) || !errors.Is(err, attest.ErrVerification) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	c.Advance(time.Minute)
	if err := n.Consume(b); !errors.Is(err, attest.ErrNonceExpired) {
		t.Errorf("expired: %v", err)
	}
	// Memory bound: 3 outstanding (a, b expired but not yet reclaimed).
	if got := n.Outstanding(); got != 2 {
		t.Errorf("outstanding %d, want 2", got)
	}
	// Issuing reclaims the expired ones.
	var fresh [][]byte
	for range 3 {
		x, err := n.Issue()
		if err != nil {
			t.Fatal(err)
		}
		fresh = append(fresh, x)
	}
	if got := n.Outstanding(); got != 3 {
		t.Errorf("outstanding %d, want 3", got)
	}
	if _, err := n.Issue(); !errors.Is(err, attest.ErrNoncesFull) {
		t.Errorf("over the bound: %v", err)
	}
	// A reclaimed nonce is unknown.
	if err := n.Consume(a); !errors.Is(err, attest.ErrNonceUnknown) {
		t.Errorf("reclaimed: %v", err)
	}
	// Consumed nonces still count until they expire.
	if err := n.Consume(fresh[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Issue(); !errors.Is(err, attest.ErrNoncesFull) {
		t.Errorf("consumed still remembered: %v", err)
	}
	c.Advance(time.Minute)
	if _, err := n.Issue(); err != nil {
		t.Errorf("after expiry: %v", err)
	}
}

func TestNoncesRandFailure(t *testing.T) {
	n := attest.NewNonces(attest.NonceConfig{Rand: bytes.NewReader(make([]byte, 40))})
	if _, err := n.Issue(); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Issue(); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("short rand: %v", err)
	}
	// A source that repeats itself is caught.
	n = attest.NewNonces(attest.NonceConfig{Rand: zeroReader{}})
	if _, err := n.Issue(); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Issue(); err == nil {
		t.Error("a repeated nonce was issued")
	}
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) { clear(p); return len(p), nil }

func TestNoncesConcurrentSingleUse(t *testing.T) {
	n := attest.NewNonces(attest.NonceConfig{})
	const issued = 200
	nonces := make([][]byte, issued)
	for i := range nonces {
		var err error
		if nonces[i], err = n.Issue(); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	wins := make(map[string]int)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, x := range nonces {
				if n.Consume(x) == nil {
					mu.Lock()
					wins[string(x)]++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if len(wins) != issued {
		t.Fatalf("%d nonces consumed, want %d", len(wins), issued)
	}
	for _, w := range wins {
		if w != 1 {
			t.Fatalf("a nonce was consumed %d times", w)
		}
	}
}
