package ca

import (
	"crypto/sha256"
	"crypto/x509"
	"sync"
	"testing"
	"time"
)

func TestVerifiedCacheWindow(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := newVerifiedCache(4)
	key := sha256.Sum256([]byte("station"))
	// The window is the intersection of the chain's validities: the
	// latest NotBefore (the intermediate's) and the earliest NotAfter (the
	// root's), whichever certificate they come from.
	chain := []*x509.Certificate{
		{NotBefore: t0, NotAfter: t0.Add(100 * time.Hour)},
		{NotBefore: t0.Add(time.Hour), NotAfter: t0.Add(200 * time.Hour)},
		{NotBefore: t0.Add(-time.Hour), NotAfter: t0.Add(50 * time.Hour)},
	}
	c.add(key, chain)
	for _, tc := range []struct {
		at   time.Duration
		want bool
	}{
		{30 * time.Minute, false}, // before the intermediate's NotBefore
		{time.Hour, true},
		{50 * time.Hour, true},
		{50*time.Hour + time.Second, false}, // after the root's NotAfter
	} {
		if got := c.verified(key, t0.Add(tc.at)); got != tc.want {
			t.Errorf("at +%v: verified %v, want %v", tc.at, got, tc.want)
		}
		if !tc.want {
			if c.len() != 0 {
				t.Errorf("at +%v: stale entry kept", tc.at)
			}
			c.add(key, chain) // put it back for the next probe
		}
	}
	// An entry found stale is dropped: back in the window it is unknown.
	c.verified(key, t0.Add(51*time.Hour))
	if c.verified(key, t0.Add(2*time.Hour)) {
		t.Error("stale entry not dropped")
	}
	if c.verified(sha256.Sum256([]byte("other")), t0.Add(2*time.Hour)) {
		t.Error("unknown key verified")
	}
}

func TestVerifiedCacheBounded(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	chain := []*x509.Certificate{{NotBefore: t0, NotAfter: t0.Add(time.Hour)}}
	c := newVerifiedCache(3)
	k := func(i byte) [32]byte { return sha256.Sum256([]byte{i}) }
	for i := byte(0); i < 3; i++ {
		c.add(k(i), chain)
	}
	c.verified(k(0), t0) // 0 is now the most recent; 1 the least
	c.add(k(3), chain)
	if c.len() != 3 {
		t.Fatalf("%d entries, bound 3", c.len())
	}
	for i, want := range []bool{true, false, true, true} {
		if got := c.verified(k(byte(i)), t0); got != want {
			t.Errorf("entry %d: verified %v, want %v", i, got, want)
		}
	}
	// Concurrent use keeps the bound.
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 100 {
				key := sha256.Sum256([]byte{byte(g), byte(i)})
				c.add(key, chain)
				c.verified(key, t0)
			}
		}()
	}
	wg.Wait()
	if c.len() != 3 {
		t.Fatalf("%d entries after concurrent use, bound 3", c.len())
	}
}
