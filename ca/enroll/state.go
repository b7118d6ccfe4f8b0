package enroll

import (
	"bytes"
	"crypto/sha256"
	"sync"
	"time"

	"github.com/ztmkit/ztm/ca"
)

// keyLocks is a set of mutexes by key, each kept while in use: one
// request (by its idempotency key) is decided at a time within a Service,
// so that a repeat waits for the first to be recorded. Across processes
// the ledger decides.
type keyLocks struct {
	mu sync.Mutex
	m  map[string]*keyLock
}

type keyLock struct {
	mu   sync.Mutex
	refs int
}

func (k *keyLocks) lock(key string) func() {
	k.mu.Lock()
	if k.m == nil {
		k.m = map[string]*keyLock{}
	}
	e := k.m[key]
	if e == nil {
		e = &keyLock{}
		k.m[key] = e
	}
	e.refs++
	k.mu.Unlock()
	e.mu.Lock()
	return func() {
		e.mu.Unlock()
		k.mu.Lock()
		if e.refs--; e.refs == 0 {
			delete(k.m, key)
		}
		k.mu.Unlock()
	}
}

// maxPassed bounds the evidence a Service remembers as passed.
const maxPassed = 4096

// passedKey names evidence that passed for one request: SHA-256 over the
// requester, the request's idempotency key and the exact evidence bytes.
func passedKey(requester string, reqKey [sha256.Size]byte, evidence []byte) [sha256.Size]byte {
	h := sha256.New()
	h.Write([]byte(requester))
	h.Write([]byte{0})
	h.Write(reqKey[:])
	h.Write(evidence)
	var k [sha256.Size]byte
	h.Sum(k[:0])
	return k
}

// approval is what checked evidence approves a request with: the digest
// of its appraisal result and the key provenance it establishes, both
// recorded in the ledger with the issuance.
type approval struct {
	digest []byte
	prov   ca.KeyProvenance
}

// passedCache remembers, for a nonce's lifetime, the approval of
// evidence that was verified and bound to a request whose issuance then
// failed or was refused for a reason a retry may cure, so that the retry
// of that exact request (same requester, CSR, profile and evidence bytes)
// is not refused for the nonce its first attempt spent. It is bounded
// (oldest first out) and safe for concurrent use.
type passedCache struct {
	mu    sync.Mutex
	ttl   time.Duration
	max   int
	m     map[[sha256.Size]byte]passedEntry
	order [][sha256.Size]byte
}

type passedEntry struct {
	approval
	expires time.Time
}

func newPassedCache(max int, ttl time.Duration) *passedCache {
	return &passedCache{ttl: ttl, max: max, m: make(map[[sha256.Size]byte]passedEntry)}
}

func (c *passedCache) put(k [sha256.Size]byte, a approval, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	// The oldest first: expired, forgotten, or over the bound.
	for len(c.order) > 0 {
		e, ok := c.m[c.order[0]]
		if ok && now.Before(e.expires) && len(c.m) < c.max {
			break
		}
		if ok {
			delete(c.m, c.order[0])
		}
		c.order = c.order[1:]
	}
	if len(c.order) > 2*len(c.m)+64 {
		// Mostly forgotten keys: keep the live ones, in order.
		kept := make([][sha256.Size]byte, 0, len(c.m)+1)
		for _, o := range c.order {
			if _, ok := c.m[o]; ok {
				kept = append(kept, o)
			}
		}
		c.order = kept
	}
	if _, ok := c.m[k]; !ok {
		c.order = append(c.order, k)
	}
	a.digest = bytes.Clone(a.digest)
	c.m[k] = passedEntry{approval: a, expires: now.Add(c.ttl)}
}

func (c *passedCache) get(k [sha256.Size]byte, now time.Time) (approval, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[k]
	if !ok || !now.Before(e.expires) {
		return approval{}, false
	}
	return approval{digest: bytes.Clone(e.digest), prov: e.prov}, true
}

// forget drops k once its request is issued; put trims the order.
func (c *passedCache) forget(k [sha256.Size]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, k)
}
