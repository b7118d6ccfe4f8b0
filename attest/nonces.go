package attest

import (
	"crypto/rand"
	"fmt"
	"io"
	"sync"
	"time"
)

// NonceSize is the size of the nonces [Nonces] issues.
const NonceSize = 32

// Defaults of [NonceConfig].
const (
	DefaultNonceTTL       = 5 * time.Minute
	DefaultMaxOutstanding = 1 << 16
)

// NonceConfig configures [NewNonces]. Its zero value works.
type NonceConfig struct {
	// TTL is how long a nonce may be consumed after it is issued. If
	// zero, DefaultNonceTTL (5 minutes) is used.
	TTL time.Duration
	// MaxOutstanding bounds the nonces remembered at once, issued or
	// consumed but not yet expired. If zero, DefaultMaxOutstanding is used.
	MaxOutstanding int
	// Time returns the current time. If nil, time.Now is used.
	Time func() time.Time
	// Rand is the source of nonces. If nil, crypto/rand.Reader is used.
	Rand io.Reader
}

type nonceEntry struct {
	expires  time.Time
	consumed bool
}

type nonceQueueItem struct {
	key     [NonceSize]byte
	expires time.Time
}

// Nonces issues single-use nonces of [NonceSize] bytes and consumes them
// once. A consumed nonce is remembered until its TTL runs out, so a replay
// within that time is reported as [ErrNonceReused]; after it, the nonce is
// forgotten and reported as [ErrNonceUnknown]. Memory is bounded by
// MaxOutstanding entries; expired entries are reclaimed as new nonces are
// issued. Nonces is safe for concurrent use.
type Nonces struct {
	ttl  time.Duration
	max  int
	now  func() time.Time
	rand io.Reader

	mu      sync.Mutex
	entries map[[NonceSize]byte]*nonceEntry
	queue   []nonceQueueItem // in order of expiry (issue time + fixed TTL)
	head    int
}

// NewNonces returns a nonce issuer configured by cfg.
func NewNonces(cfg NonceConfig) *Nonces {
	n := &Nonces{ttl: cfg.TTL, max: cfg.MaxOutstanding, now: cfg.Time, rand: cfg.Rand}
	if n.ttl <= 0 {
		n.ttl = DefaultNonceTTL
	}
	if n.max <= 0 {
		n.max = DefaultMaxOutstanding
	}
	if n.now == nil {
		n.now = time.Now
	}
	if n.rand == nil {
		n.rand = rand.Reader
	}
	n.entries = make(map[[NonceSize]byte]*nonceEntry)
	return n
}

// reclaim drops the entries that expired at or before now. n.mu is held.
func (n *Nonces) reclaim(now time.Time) {
	for n.head < len(n.queue) && !now.Before(n.queue[n.head].expires) {
		it := n.queue[n.head]
		if e, ok := n.entries[it.key]; ok && e.expires.Equal(it.expires) {
			delete(n.entries, it.key)
		}
		n.queue[n.head] = nonceQueueItem{}
		n.head++
	}
	if n.head > len(n.queue)/2 && n.head > 64 {
		n.queue = append(n.queue[:0], n.queue[n.head:]...)
		n.head = 0
	}
}

// Issue returns a fresh nonce, valid for the TTL. It returns an error
// wrapping [ErrNoncesFull] when MaxOutstanding nonces are remembered and
// none has expired, and the error of the random source if it fails.
func (n *Nonces) Issue() ([]byte, error) {
	var key [NonceSize]byte
	if _, err := io.ReadFull(n.rand, key[:]); err != nil {
		return nil, fmt.Errorf("attest: reading nonce: %w", err)
	}
	now := n.now()
	n.mu.Lock()
	defer n.mu.Unlock()
	n.reclaim(now)
	if len(n.entries) >= n.max {
		return nil, fmt.Errorf("%w (%d)", ErrNoncesFull, n.max)
	}
	if _, dup := n.entries[key]; dup {
		return nil, fmt.Errorf("attest: random source repeated a nonce")
	}
	exp := now.Add(n.ttl)
	// Keep the queue ordered by expiry even if the clock steps back.
	if last := len(n.queue) - 1; last >= n.head && exp.Before(n.queue[last].expires) {
		exp = n.queue[last].expires
	}
	n.entries[key] = &nonceEntry{expires: exp}
	n.queue = append(n.queue, nonceQueueItem{key: key, expires: exp})
	out := make([]byte, NonceSize)
	copy(out, key[:])
	return out, nil
}

// Consume marks nonce as used. It returns a [*VerificationError] wrapping
// [ErrVerification] and [ErrNonceUnknown] (never issued, or forgotten),
// [ErrNonceReused] (already consumed) or [ErrNonceExpired] (past its TTL).
// Only a nil return means the nonce was fresh and is now spent.
func (n *Nonces) Consume(nonce []byte) error {
	if e := n.consume(nonce); e != nil {
		return e
	}
	return nil
}

func (n *Nonces) consume(nonce []byte) *VerificationError {
	if len(nonce) != NonceSize {
		return verr(ReasonNonceUnknown, nil, "nonce of %d bytes (ztm issues %d)", len(nonce), NonceSize)
	}
	key := [NonceSize]byte(nonce)
	now := n.now()
	n.mu.Lock()
	defer n.mu.Unlock()
	e, ok := n.entries[key]
	switch {
	case !ok:
		return verr(ReasonNonceUnknown, nil, "not issued by this verifier, or forgotten")
	case e.consumed:
		return verr(ReasonNonceReused, nil, "already consumed")
	case !now.Before(e.expires):
		return verr(ReasonNonceExpired, nil, "expired at %s", e.expires.UTC().Format(time.RFC3339))
	}
	e.consumed = true
	return nil
}

// Outstanding returns how many nonces are remembered, issued or consumed and
// not yet reclaimed.
func (n *Nonces) Outstanding() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.entries)
}
