package ca

import (
	"container/list"
	"crypto/sha256"
	"crypto/x509"
	"sync"
	"time"
)

// maxVerifiedStations bounds the station certificates whose chain
// verification an Authority remembers.
const maxVerifiedStations = 256

// verifiedCache remembers station certificates whose chain crypto/x509
// verified to the Authority's chain, so that a station's next request
// costs no signature check. It is keyed by the SHA-256 of the
// certificate's DER: the Authority's chain, and so the pools the
// certificate is verified against, are fixed for the life of the
// Authority, so the DER alone determines the result but for the time. An
// entry therefore holds the window in which every certificate of the
// verified chain is valid ([latest NotBefore, earliest NotAfter]) and is
// used only within it. Revocation, the station's authorization and the
// profile are checked on every request, outside the cache. It is a
// bounded LRU, safe for concurrent use.
type verifiedCache struct {
	mu    sync.Mutex
	max   int
	order *list.List // of *verifiedEntry, most recent first
	m     map[[sha256.Size]byte]*list.Element
}

type verifiedEntry struct {
	key       [sha256.Size]byte
	notBefore time.Time
	notAfter  time.Time
	// value is what the verification produced, if the user keeps it.
	value any
}

func newVerifiedCache(max int) *verifiedCache {
	return &verifiedCache{max: max, order: list.New(), m: make(map[[sha256.Size]byte]*list.Element)}
}

// verified reports whether the certificate with DER hash key was verified
// and its whole chain is valid at now. An entry outside its window is
// dropped.
func (c *verifiedCache) verified(key [sha256.Size]byte, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.m[key]
	if !ok {
		return false
	}
	e := el.Value.(*verifiedEntry)
	if now.Before(e.notBefore) || now.After(e.notAfter) {
		c.order.Remove(el)
		delete(c.m, key)
		return false
	}
	c.order.MoveToFront(el)
	return true
}

// add remembers a verified chain (leaf first, ending at the root).
func (c *verifiedCache) add(key [sha256.Size]byte, chain []*x509.Certificate) {
	if len(chain) == 0 {
		return
	}
	nb, na := chain[0].NotBefore, chain[0].NotAfter
	for _, cert := range chain[1:] {
		if cert.NotBefore.After(nb) {
			nb = cert.NotBefore
		}
		if cert.NotAfter.Before(na) {
			na = cert.NotAfter
		}
	}
	c.put(key, nb, na, nil)
}

// put remembers key as verified from notBefore to notAfter inclusive,
// with value.
func (c *verifiedCache) put(key [sha256.Size]byte, notBefore, notAfter time.Time, value any) {
	e := &verifiedEntry{key: key, notBefore: notBefore, notAfter: notAfter, value: value}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.m[key]; ok {
		el.Value = e
		c.order.MoveToFront(el)
		return
	}
	c.m[key] = c.order.PushFront(e)
	for c.order.Len() > c.max {
		last := c.order.Back()
		c.order.Remove(last)
		delete(c.m, last.Value.(*verifiedEntry).key)
	}
}

// len returns the number of entries.
func (c *verifiedCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}
