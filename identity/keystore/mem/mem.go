package mem

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/ztmkit/ztm/identity/keystore"
	"github.com/ztmkit/ztm/internal/softkey"
)

func init() {
	keystore.Register("mem", func(ctx context.Context, uri string) (keystore.Store, error) {
		if uri != "mem:" && uri != "mem://" {
			return nil, &keystore.URIError{URI: keystore.RedactURI(uri), Part: "path", Reason: `the in-memory store takes no path or attributes; use "mem:"`}
		}
		return New(), nil
	})
}

// Store is an in-memory [keystore.Store]. The zero Store is an empty store
// ready to use. It is safe for concurrent use.
type Store struct {
	mu     sync.RWMutex
	keys   map[string]*softkey.Key
	closed bool
}

var _ keystore.Store = (*Store)(nil)

// New returns an empty in-memory store.
func New() *Store { return &Store{keys: make(map[string]*softkey.Key)} }

// Create generates a key of req.Algorithm under req.Label.
func (s *Store) Create(ctx context.Context, req keystore.CreateRequest) (keystore.Key, error) {
	if err := keystore.ValidateLabel(req.Label); err != nil {
		return nil, err
	}
	if !req.Algorithm.Valid() {
		return nil, fmt.Errorf("mem: %w: %v", keystore.ErrUnsupportedAlgorithm, req.Algorithm)
	}
	if err := s.check(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	signer, err := softkey.Generate(nil, req.Algorithm)
	if err != nil {
		return nil, fmt.Errorf("mem: failed to generate %v key: %w", req.Algorithm, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, keystore.ErrClosed
	}
	if _, ok := s.keys[req.Label]; ok {
		return nil, fmt.Errorf("mem: %w: %q", keystore.ErrExists, req.Label)
	}
	if s.keys == nil {
		s.keys = make(map[string]*softkey.Key)
	}
	var k *softkey.Key
	k = softkey.New(req.Label, req.Algorithm, signer, func() error { return s.live(req.Label, k) })
	s.keys[req.Label] = k
	return k, nil
}

// Get returns the key with the given label.
func (s *Store) Get(ctx context.Context, label string) (keystore.Key, error) {
	if err := keystore.ValidateLabel(label); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, keystore.ErrClosed
	}
	k, ok := s.keys[label]
	if !ok {
		return nil, fmt.Errorf("mem: %w: %q", keystore.ErrNotFound, label)
	}
	return k, nil
}

// List returns the labels of all keys, sorted.
func (s *Store) List(ctx context.Context) ([]string, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, keystore.ErrClosed
	}
	return slices.Sorted(maps.Keys(s.keys)), nil
}

// Delete forgets the key with the given label; keys already fetched stop
// signing.
func (s *Store) Delete(ctx context.Context, label string) error {
	if err := keystore.ValidateLabel(label); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return keystore.ErrClosed
	}
	if _, ok := s.keys[label]; !ok {
		return fmt.Errorf("mem: %w: %q", keystore.ErrNotFound, label)
	}
	delete(s.keys, label)
	return nil
}

// Close forgets every key. It is idempotent.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	clear(s.keys)
	return nil
}

func (s *Store) check() error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return keystore.ErrClosed
	}
	return nil
}

// live reports whether k is still the key stored under label.
func (s *Store) live(label string, k *softkey.Key) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return keystore.ErrClosed
	}
	if s.keys[label] != k {
		return fmt.Errorf("mem: %w: %q was deleted", keystore.ErrNotFound, label)
	}
	return nil
}
