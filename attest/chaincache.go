package attest

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"sync"
	"time"

	"github.com/ztmkit/ztm/internal/verifiedchains"
)

// Default bounds of a chainCache made by newChainCache with zero
// arguments.
const (
	defaultCachedChains = 256
	defaultCachedParsed = 64
)

// chainVerifyFunc verifies certs (leaf first, as received) to roots at now and
// returns the verified chain, leaf first, ending at a root. Only a chain
// it returns without error is remembered.
type chainVerifyFunc func(certs []*x509.Certificate, roots *x509.CertPool, now time.Time) ([]*x509.Certificate, error)

// chainParseError is a certificate of a chain that does not parse.
type chainParseError struct {
	index int // position in the chain, leaf 0
	err   error
}

func (e *chainParseError) Error() string {
	return "attest: certificate does not parse: " + e.err.Error()
}

func (e *chainParseError) Unwrap() error { return e.err }

// chainCache remembers the certificate chains (x5chain) a verifier has
// verified, and the certificates of those chains after the leaf, so that
// evidence signed with the same attestation-key chain, or with chains that
// share their intermediates and roots, costs no parse and path build for
// what was verified before. It is a bounded cache of verified chains, keyed by the chain's exact
// bytes (every DER, in order) and the trust-anchor pool they were
// verified to. A chain is served from it only while the time is within
// the window in which every certificate of the verified chain is valid
// ([latest NotBefore, earliest NotAfter]); outside it the chain is
// verified again, and so refused when a certificate has expired. The same
// bytes under another pool are another entry: a chain verified to one
// pool is never taken as verified to another. A *x509.CertPool can only
// gain certificates, so a chain verified to a pool stays verified to it.
// Nothing else of the evidence (its signature, nonce, claims) is cached.
//
// Certificates after the leaf (intermediates, and roots a chain carries)
// are kept parsed by their DER, as x509.ParseCertificate would return
// them, and shared between the chains that carry them: callers must not
// modify the certificates a chainCache returns.
//
// A chainCache is safe for concurrent use.
type chainCache struct {
	chains    *verifiedchains.Cache[key, []*x509.Certificate]
	mu        sync.Mutex // guards parsed
	maxParsed int
	parsed    map[string]*x509.Certificate
}

type key struct {
	roots *x509.CertPool
	sum   [sha256.Size]byte
}

// newChainCache returns a chainCache holding at most chains verified
// chains and parsed certificates other than leaves; a zero bound is the
// default (defaultCachedChains, defaultCachedParsed).
func newChainCache(chains, parsed int) *chainCache {
	if chains <= 0 {
		chains = defaultCachedChains
	}
	if parsed <= 0 {
		parsed = defaultCachedParsed
	}
	return &chainCache{
		chains:    verifiedchains.New[key, []*x509.Certificate](chains),
		maxParsed: parsed, parsed: make(map[string]*x509.Certificate),
	}
}

// Verify returns the verified chain of ders (DER certificates, leaf
// first) to roots at now: from the cache when the same bytes were
// verified to the same roots and every certificate of that chain is valid
// at now, else by parsing ders (a *chainParseError for one that does not parse)
// and calling verify, whose error is returned as is.
func (c *chainCache) Verify(ders [][]byte, roots *x509.CertPool, now time.Time, verify chainVerifyFunc) ([]*x509.Certificate, error) {
	k := key{roots: roots, sum: chainSum(ders)}
	if chain := c.lookup(k, now); chain != nil {
		return chain, nil
	}
	certs, err := c.parse(ders)
	if err != nil {
		return nil, err
	}
	chain, err := verify(certs, roots, now)
	if err != nil {
		return nil, err
	}
	chain = chain[:len(chain):len(chain)] // an append by a caller copies
	c.add(k, chain)
	return chain, nil
}

// chainSum hashes the chain's DERs, each length-prefixed so that no two
// chains share a sum by moving bytes between certificates.
func chainSum(ders [][]byte) [sha256.Size]byte {
	h := sha256.New()
	var n [8]byte
	for _, d := range ders {
		binary.BigEndian.PutUint64(n[:], uint64(len(d)))
		h.Write(n[:])
		h.Write(d)
	}
	var s [sha256.Size]byte
	h.Sum(s[:0])
	return s
}

func (c *chainCache) lookup(k key, now time.Time) []*x509.Certificate {
	chain, ok := c.chains.Get(k, now)
	if !ok {
		return nil
	}
	return chain[:len(chain):len(chain)]
}

// parse parses ders; certificates after the leaf come from, and go to,
// the parsed map.
func (c *chainCache) parse(ders [][]byte) ([]*x509.Certificate, error) {
	certs := make([]*x509.Certificate, len(ders))
	for i, der := range ders {
		if i > 0 {
			c.mu.Lock()
			cert := c.parsed[string(der)]
			c.mu.Unlock()
			if cert != nil {
				certs[i] = cert
				continue
			}
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, &chainParseError{index: i, err: err}
		}
		certs[i] = cert
		if i > 0 {
			c.mu.Lock()
			if len(c.parsed) >= c.maxParsed {
				for d := range c.parsed { // drop one, any
					delete(c.parsed, d)
					break
				}
			}
			c.parsed[string(cert.Raw)] = cert
			c.mu.Unlock()
		}
	}
	return certs, nil
}

func (c *chainCache) add(k key, chain []*x509.Certificate) {
	c.chains.Add(k, chain, chain)
}

// len returns the number of verified chains held.
func (c *chainCache) len() int { return c.chains.Len() }
