package ca

import (
	"crypto/sha256"
	"crypto/x509"
	"time"

	"github.com/ztmkit/ztm/internal/verifiedchains"
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
// bounded LRU (package internal/verifiedchains), safe for concurrent use.
type verifiedCache struct {
	c *verifiedchains.Cache[[sha256.Size]byte, struct{}]
}

func newVerifiedCache(max int) *verifiedCache {
	return &verifiedCache{c: verifiedchains.New[[sha256.Size]byte, struct{}](max)}
}

// verified reports whether the certificate with DER hash key was verified
// and its whole chain is valid at now. An entry outside its window is
// dropped.
func (c *verifiedCache) verified(key [sha256.Size]byte, now time.Time) bool {
	_, ok := c.c.Get(key, now)
	return ok
}

// add remembers a verified chain (leaf first, ending at the root).
func (c *verifiedCache) add(key [sha256.Size]byte, chain []*x509.Certificate) {
	c.c.Add(key, chain, struct{}{})
}

// len returns the number of entries.
func (c *verifiedCache) len() int { return c.c.Len() }
