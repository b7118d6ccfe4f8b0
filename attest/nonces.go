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
	// MaxOutstanding bounds the nonces issued and neither consumed nor
	// expired. A consumed nonce leaves the count at once, so the capacity
	// is set by how many requesters wait on a device at the same moment,
	// not by the rate of enrollments. If zero, DefaultMaxOutstanding is
	// used.
	MaxOutstanding int
	// MaxPerOwner bounds the outstanding nonces of one owner (see
	// [Nonces.IssueFor]; nonces issued without an owner are not limited),
	// so that no requester can take the capacity from the others. If zero,
	// MaxOutstanding/8 (at least 1).
	MaxPerOwner int
	// Time returns the current time. If nil, time.Now is used.
	Time func() time.Time
	// Rand is the source of nonces. If nil, crypto/rand.Reader is used.
	Rand io.Reader
}

type nonceEntry struct {
	expires time.Time
	owner   string
}

type nonceQueueItem struct {
	key     [NonceSize]byte
	expires time.Time
}

// Nonces issues single-use nonces of [NonceSize] bytes and consumes them
// once. A consumed nonce is forgotten at once: presented again it is not
// known, and refused. The last MaxOutstanding consumed nonces are
// remembered apart, only so that such a replay is reported as
// [ErrNonceReused] rather than [ErrNonceUnknown]. Memory is bounded by
// MaxOutstanding entries of each kind; expired entries are reclaimed as
// new nonces are issued. Nonces is safe for concurrent use.
type Nonces struct {
	ttl      time.Duration
	max      int
	perOwner int
	now      func() time.Time
	rand     io.Reader

	mu      sync.Mutex
	entries map[[NonceSize]byte]*nonceEntry
	owners  map[string]int
	queue   []nonceQueueItem // in order of expiry (issue time + fixed TTL)
	head    int
	// spent is a ring of the last consumed nonces, spentSet its index.
	spent    [][NonceSize]byte
	spentPos int
	spentSet map[[NonceSize]byte]struct{}
}

// NewNonces returns a nonce issuer configured by cfg.
func NewNonces(cfg NonceConfig) *Nonces {
	n := &Nonces{ttl: cfg.TTL, max: cfg.MaxOutstanding, perOwner: cfg.MaxPerOwner, now: cfg.Time, rand: cfg.Rand}
	if n.ttl <= 0 {
		n.ttl = DefaultNonceTTL
	}
	if n.max <= 0 {
		n.max = DefaultMaxOutstanding
	}
	if n.perOwner <= 0 {
		n.perOwner = max(n.max/8, 1)
	}
	if n.now == nil {
		n.now = time.Now
	}
	if n.rand == nil {
		n.rand = rand.Reader
	}
	n.entries = make(map[[NonceSize]byte]*nonceEntry)
	n.owners = make(map[string]int)
	n.spentSet = make(map[[NonceSize]byte]struct{})
	return n
}

// TTL returns how long a nonce may be consumed after it is issued.
func (n *Nonces) TTL() time.Duration { return n.ttl }

// drop forgets an outstanding entry. n.mu is held.
func (n *Nonces) drop(key [NonceSize]byte, e *nonceEntry) {
	delete(n.entries, key)
	if c := n.owners[e.owner] - 1; c > 0 {
		n.owners[e.owner] = c
	} else {
		delete(n.owners, e.owner)
	}
}

// reclaim drops the entries that expired at or before now, and compacts
// the expiry queue when most of it names nonces consumed already. n.mu is
// held.
func (n *Nonces) reclaim(now time.Time) {
	for n.head < len(n.queue) && !now.Before(n.queue[n.head].expires) {
		it := n.queue[n.head]
		if e, ok := n.entries[it.key]; ok && e.expires.Equal(it.expires) {
			n.drop(it.key, e)
		}
		n.queue[n.head] = nonceQueueItem{}
		n.head++
	}
	if live := len(n.queue) - n.head; live > 2*len(n.entries)+64 {
		// Most queued nonces were consumed: keep only the outstanding.
		kept := n.queue[:0]
		for _, it := range n.queue[n.head:] {
			if e, ok := n.entries[it.key]; ok && e.expires.Equal(it.expires) {
				kept = append(kept, it)
			}
		}
		clear(n.queue[len(kept):])
		n.queue, n.head = kept, 0
	} else if n.head > len(n.queue)/2 && n.head > 64 {
		n.queue = append(n.queue[:0], n.queue[n.head:]...)
		n.head = 0
	}
}

// Issue returns a fresh nonce, valid for the TTL, owned by no one in
// particular; see [Nonces.IssueFor].
func (n *Nonces) Issue() ([]byte, error) { return n.IssueFor("") }

// IssueFor returns a fresh nonce for owner (a requester's identity),
// valid for the TTL. The empty owner is not limited by MaxPerOwner. It
// returns an error wrapping [ErrNoncesFull] when
// MaxOutstanding nonces, or MaxPerOwner of owner's, are outstanding, and
// the error of the random source if it fails.
func (n *Nonces) IssueFor(owner string) ([]byte, error) {
	if n == nil || n.entries == nil {
		return nil, fmt.Errorf("%w: Nonces not made by NewNonces", ErrInvalidConfig)
	}
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
	if owner != "" && n.owners[owner] >= n.perOwner {
		return nil, fmt.Errorf("%w for this requester (%d)", ErrNoncesFull, n.perOwner)
	}
	if _, dup := n.entries[key]; dup {
		return nil, fmt.Errorf("attest: random source repeated a nonce")
	}
	exp := now.Add(n.ttl)
	// Keep the queue ordered by expiry even if the clock steps back.
	if last := len(n.queue) - 1; last >= n.head && exp.Before(n.queue[last].expires) {
		exp = n.queue[last].expires
	}
	n.entries[key] = &nonceEntry{expires: exp, owner: owner}
	n.owners[owner]++
	n.queue = append(n.queue, nonceQueueItem{key: key, expires: exp})
	out := make([]byte, NonceSize)
	copy(out, key[:])
	return out, nil
}

// Consume marks nonce as used. It returns a [*VerificationError] wrapping
// [ErrVerification] and [ErrNonceUnknown] (never issued, or forgotten),
// [ErrNonceReused] (consumed recently) or [ErrNonceExpired] (past its
// TTL). Only a nil return means the nonce was fresh and is now spent.
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
	if n == nil || n.entries == nil {
		return verr(ReasonNonceUnknown, nil, "Nonces not made by NewNonces issued no nonce")
	}
	key := [NonceSize]byte(nonce)
	now := n.now()
	n.mu.Lock()
	defer n.mu.Unlock()
	e, ok := n.entries[key]
	switch {
	case !ok:
		if _, spent := n.spentSet[key]; spent {
			return verr(ReasonNonceReused, nil, "already consumed")
		}
		return verr(ReasonNonceUnknown, nil, "not issued by this verifier, or forgotten")
	case !now.Before(e.expires):
		return verr(ReasonNonceExpired, nil, "expired at %s", e.expires.UTC().Format(time.RFC3339))
	}
	n.drop(key, e)
	n.rememberSpent(key)
	return nil
}

// rememberSpent adds key to the ring of recently consumed nonces. n.mu is
// held.
func (n *Nonces) rememberSpent(key [NonceSize]byte) {
	if len(n.spent) < n.max {
		n.spent = append(n.spent, key)
	} else {
		delete(n.spentSet, n.spent[n.spentPos])
		n.spent[n.spentPos] = key
		n.spentPos = (n.spentPos + 1) % n.max
	}
	n.spentSet[key] = struct{}{}
}

// Outstanding returns how many nonces are issued and neither consumed nor
// reclaimed after expiring.
func (n *Nonces) Outstanding() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.entries)
}
