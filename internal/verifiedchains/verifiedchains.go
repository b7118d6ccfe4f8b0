// Package verifiedchains is the one bounded cache of verified certificate
// chains that ca (station certificates) and attest (attestation-key
// x5chains) keep: an entry is served only while the time is inside the
// window in which every certificate of its chain is valid ([latest
// NotBefore, earliest NotAfter]), and dropped when asked for outside it.
// What else a caller checks (revocation, signatures over the evidence,
// authorization) stays outside the cache.
package verifiedchains

import (
	"container/list"
	"crypto/x509"
	"sync"
	"time"
)

// Cache is a bounded LRU of verified chains, keyed by K, each with a value
// V. It is safe for concurrent use.
type Cache[K comparable, V any] struct {
	mu    sync.Mutex
	max   int
	order *list.List // of *entry[K, V], most recently used first
	m     map[K]*list.Element
}

type entry[K comparable, V any] struct {
	key       K
	value     V
	notBefore time.Time
	notAfter  time.Time
}

// New returns a Cache holding at most bound chains (at least one).
func New[K comparable, V any](bound int) *Cache[K, V] {
	return &Cache[K, V]{max: max(bound, 1), order: list.New(), m: make(map[K]*list.Element)}
}

// Get returns the value of the chain verified under k if every
// certificate of that chain is valid at now. An entry outside its window
// is dropped.
func (c *Cache[K, V]) Get(k K, now time.Time) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var zero V
	el, ok := c.m[k]
	if !ok {
		return zero, false
	}
	e := el.Value.(*entry[K, V])
	if now.Before(e.notBefore) || now.After(e.notAfter) {
		c.order.Remove(el)
		delete(c.m, k)
		return zero, false
	}
	c.order.MoveToFront(el)
	return e.value, true
}

// Add remembers chain (leaf first) as verified under k, with value v,
// for the window in which all its certificates are valid; the least
// recently used entry goes when the cache is full. An empty chain is not
// remembered.
func (c *Cache[K, V]) Add(k K, chain []*x509.Certificate, v V) {
	if len(chain) == 0 {
		return
	}
	e := &entry[K, V]{key: k, value: v, notBefore: chain[0].NotBefore, notAfter: chain[0].NotAfter}
	for _, cert := range chain[1:] {
		if cert.NotBefore.After(e.notBefore) {
			e.notBefore = cert.NotBefore
		}
		if cert.NotAfter.Before(e.notAfter) {
			e.notAfter = cert.NotAfter
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.m[k]; ok {
		el.Value = e
		c.order.MoveToFront(el)
		return
	}
	c.m[k] = c.order.PushFront(e)
	for c.order.Len() > c.max {
		last := c.order.Back()
		c.order.Remove(last)
		delete(c.m, last.Value.(*entry[K, V]).key)
	}
}

// Len returns the number of chains held.
func (c *Cache[K, V]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}
