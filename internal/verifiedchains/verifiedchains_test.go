package verifiedchains

import (
	"crypto/x509"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func window(t0 time.Time) []*x509.Certificate {
	// The leaf is valid for 100 hours; its issuer from hour 10 to hour 50:
	// the chain is valid from hour 10 to hour 50.
	return []*x509.Certificate{
		{NotBefore: t0, NotAfter: t0.Add(100 * time.Hour)},
		{NotBefore: t0.Add(10 * time.Hour), NotAfter: t0.Add(50 * time.Hour)},
	}
}

func TestWindow(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		at   time.Duration
		want bool
	}{{5 * time.Hour, false}, {10 * time.Hour, true}, {30 * time.Hour, true}, {50 * time.Hour, true}, {51 * time.Hour, false}} {
		c := New[string, int](4)
		c.Add("k", window(t0), 7)
		v, ok := c.Get("k", t0.Add(tc.at))
		require.Equal(t, tc.want, ok, "at %v", tc.at)
		if ok {
			require.Equal(t, 7, v)
		} else {
			require.Zero(t, c.Len(), "an entry asked for outside its window is dropped")
		}
	}
	c := New[string, int](4)
	c.Add("empty", nil, 1)
	_, ok := c.Get("empty", t0)
	require.False(t, ok, "an empty chain is not remembered")
}

func TestBoundAndRecency(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2030, 1, 1, 20, 0, 0, 0, time.UTC).Add(-10 * time.Hour)
	at := t0.Add(20 * time.Hour)
	c := New[int, int](3)
	for i := range 3 {
		c.Add(i, window(t0), i)
	}
	c.Get(0, at) // 0 is now the most recent; 1 the least
	c.Add(3, window(t0), 3)
	require.Equal(t, 3, c.Len())
	for i, want := range []bool{true, false, true, true} {
		_, ok := c.Get(i, at)
		require.Equal(t, want, ok, "entry %d", i)
	}
	c.Add(2, window(t0), 20) // replaces, no growth
	v, _ := c.Get(2, at)
	require.Equal(t, 20, v)
	require.Equal(t, 3, c.Len())

	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 100 {
				c.Add(g*100+i, window(t0), i)
				c.Get(g*100+i, at)
			}
		})
	}
	wg.Wait()
	require.Equal(t, 3, c.Len())
}
