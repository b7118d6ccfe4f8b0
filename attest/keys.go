package attest

import (
	"crypto"
	"fmt"
	"reflect"
	"sync"

	"github.com/veraison/go-cose"

	"github.com/ztmkit/ztm/identity/keystore"
)

// KeyLookup returns the registered attestation key that a key ID names
// (the kid header of evidence, compared as bytes), and false when none is
// registered. A verifier calls it for each piece of evidence that names its
// signer by kid, from any goroutine: it must be safe for concurrent use, and
// it may return keys registered after the verifier was made.
// [KeySet.Lookup] is one.
type KeyLookup func(kid []byte) (crypto.PublicKey, bool)

// KeySet is a set of registered attestation keys by key ID that can change
// while a line runs: a verifier configured with its Lookup
// (Config.KeyLookup) sees a key from the moment Add returns. The zero
// value is an empty set ready to use. A KeySet is safe for concurrent use;
// it must not be copied after first use.
type KeySet struct {
	mu   sync.RWMutex
	keys map[string]crypto.PublicKey
}

// NewKeySet returns a set holding keys (copied). It returns an error, as
// [KeySet.Add] does, for a key ztm cannot verify with.
func NewKeySet(keys map[string]crypto.PublicKey) (*KeySet, error) {
	s := &KeySet{keys: make(map[string]crypto.PublicKey, len(keys))}
	for kid, pub := range keys {
		if err := s.Add([]byte(kid), pub); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Add registers pub under kid. It returns an error wrapping
// [ErrInvalidConfig] for an empty kid, a key of an algorithm ztm does not
// verify (see keystore.AlgorithmOf), or a kid already registered with
// another key (use Remove first to replace one); adding the same key twice
// is not an error.
func (s *KeySet) Add(kid []byte, pub crypto.PublicKey) error {
	if len(kid) == 0 {
		return fmt.Errorf("%w: empty attestation key ID", ErrInvalidConfig)
	}
	if _, err := keystore.AlgorithmOf(pub); err != nil {
		return fmt.Errorf("%w: attestation key %q: %w", ErrInvalidConfig, kid, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.keys[string(kid)]; ok {
		if keystore.PublicKeysEqual(old, pub) {
			return nil
		}
		return fmt.Errorf("%w: key ID %q is registered with another key", ErrInvalidConfig, kid)
	}
	if s.keys == nil {
		s.keys = make(map[string]crypto.PublicKey)
	}
	s.keys[string(kid)] = pub
	return nil
}

// Remove unregisters the key kid names, if any: evidence naming it is
// refused from the moment Remove returns.
func (s *KeySet) Remove(kid []byte) {
	s.mu.Lock()
	delete(s.keys, string(kid))
	s.mu.Unlock()
}

// Lookup is the set's [KeyLookup].
func (s *KeySet) Lookup(kid []byte) (crypto.PublicKey, bool) {
	s.mu.RLock()
	pub, ok := s.keys[string(kid)]
	s.mu.RUnlock()
	return pub, ok
}

// Len returns the number of registered keys.
func (s *KeySet) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.keys)
}

// registeredKey is a registered key ready to verify with.
type registeredKey struct {
	pub  crypto.PublicKey
	alg  keystore.Algorithm
	cose cose.Verifier
	err  error
}

func newRegisteredKey(pub crypto.PublicKey) *registeredKey {
	rk := &registeredKey{pub: pub}
	rk.alg, rk.err = keystore.AlgorithmOf(pub)
	if rk.err == nil {
		rk.cose, rk.err = cose.NewVerifier(coseAlg(rk.alg), pub)
	}
	return rk
}

// keyCache keeps, by key ID, the verifier built for the key a lookup last
// returned, so that each piece of evidence does not build it again. An
// entry is used only while the lookup still returns an equal key.
type keyCache struct {
	lookup KeyLookup
	mu     sync.RWMutex
	m      map[string]*registeredKey
}

// maxCachedKeys bounds the cache; past it, the cache starts over (the
// lookup still answers, at the cost of building verifiers again).
const maxCachedKeys = 1 << 16

// get returns the registered key kid names, or nil.
func (c *keyCache) get(kid []byte) *registeredKey {
	pub, ok := c.lookup(kid)
	if !ok || pub == nil {
		return nil
	}
	c.mu.RLock()
	rk := c.m[string(kid)]
	c.mu.RUnlock()
	if rk != nil && sameKey(rk.pub, pub) {
		return rk
	}
	rk = newRegisteredKey(pub)
	c.mu.Lock()
	if c.m == nil || len(c.m) >= maxCachedKeys {
		c.m = make(map[string]*registeredKey)
	}
	c.m[string(kid)] = rk
	c.mu.Unlock()
	return rk
}

// mapLookup is the KeyLookup of Config.Keys: a copy of the map, fixed
// when the verifier is made.
func mapLookup(keys map[string]crypto.PublicKey) KeyLookup {
	m := make(map[string]crypto.PublicKey, len(keys))
	for k, v := range keys {
		m[k] = v
	}
	return func(kid []byte) (crypto.PublicKey, bool) {
		pub, ok := m[string(kid)]
		return pub, ok
	}
}

// sameKey reports whether b is the key a: the very value a lookup
// returned before (a pointer compare, for the common case of a set
// returning what was added), or an equal key (the Equal of ECDSA and RSA
// keys allocates).
func sameKey(a, b crypto.PublicKey) bool {
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	if va.Kind() == reflect.Pointer && va.Type() == vb.Type() && va.Pointer() == vb.Pointer() {
		return true
	}
	return keystore.PublicKeysEqual(a, b)
}
