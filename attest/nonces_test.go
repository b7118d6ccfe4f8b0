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
	t.Parallel()
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
	// a was consumed and left the pool; b expired but is not reclaimed yet.
	if got := n.Outstanding(); got != 1 {
		t.Errorf("outstanding %d, want 1", got)
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
	// A consumed nonce stays refused; a reclaimed one is unknown.
	if err := n.Consume(a); !errors.Is(err, attest.ErrNonceReused) {
		t.Errorf("consumed: %v", err)
	}
	if err := n.Consume(b); !errors.Is(err, attest.ErrNonceUnknown) {
		t.Errorf("reclaimed: %v", err)
	}
	// A consumed nonce leaves the pool at once, and its replay is still
	// refused.
	if err := n.Consume(fresh[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Issue(); err != nil {
		t.Errorf("consumed nonce still takes a place: %v", err)
	}
	if err := n.Consume(fresh[0]); !errors.Is(err, attest.ErrNonceReused) {
		t.Errorf("replay after leaving the pool: %v", err)
	}
	c.Advance(time.Minute)
	if _, err := n.Issue(); err != nil {
		t.Errorf("after expiry: %v", err)
	}
}

// TestNoncesCapacityByThroughput checks that a small pool serves any
// number of enrollments that consume their nonces, that a replay is
// refused however long ago its nonce left the reuse memory, and that one
// owner cannot take more than its share.
func TestNoncesCapacityByThroughput(t *testing.T) {
	t.Parallel()
	c := newClock()
	n := attest.NewNonces(attest.NonceConfig{TTL: time.Minute, MaxOutstanding: 100, MaxPerOwner: 10, Time: c.Now})
	var first []byte
	for i := range 10 * 100 {
		x, err := n.IssueFor("station-a")
		if err != nil {
			t.Fatalf("enrollment %d: %v", i, err)
		}
		if err := n.Consume(x); err != nil {
			t.Fatalf("enrollment %d: %v", i, err)
		}
		if first == nil {
			first = x
		}
	}
	if err := n.Consume(first); !errors.Is(err, attest.ErrNonceUnknown) && !errors.Is(err, attest.ErrNonceReused) {
		t.Errorf("replay of an old nonce: %v", err)
	}
	// A flooding owner gets its share and no more; the others go on.
	for range 10 {
		if _, err := n.IssueFor("flood"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := n.IssueFor("flood"); !errors.Is(err, attest.ErrNoncesFull) {
		t.Errorf("over the owner's share: %v", err)
	}
	x, err := n.IssueFor("honest")
	if err != nil {
		t.Fatalf("honest owner beside a flood: %v", err)
	}
	if err := n.Consume(x); err != nil {
		t.Fatal(err)
	}
	// Expired nonces give the flooding owner its share back.
	c.Advance(time.Minute)
	if _, err := n.IssueFor("flood"); err != nil {
		t.Errorf("after expiry: %v", err)
	}
}

func TestNoncesRandFailure(t *testing.T) {
	t.Parallel()
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
	t.Parallel()
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
