package memchain

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/ztmkit/ztm/manifest"
)

// Store is an in-memory step store. The zero Store is empty and ready to
// use; [New] returns one too. A Store must not be copied after first use.
type Store struct {
	mu      sync.RWMutex
	closed  bool
	devices map[string]*device         // by subject
	lots    map[string]map[string]bool // lot -> subjects whose latest step names it
}

// device is one device's chain: the exact bytes of its steps, in order,
// owned by the Store.
type device struct {
	raws [][]byte
	lot  string // the lot of the latest step
}

// New returns an empty Store.
func New() *Store {
	return &Store{}
}

// errNilStore is returned by the methods of a nil *Store.
var errNilStore = errors.New("memchain: nil Store (use memchain.New)")

// lock takes s.mu (shared or not) and returns nil, or returns the error
// that refuses the call without holding the lock: a nil Store, a closed
// one, or ctx done.
func (s *Store) lock(ctx context.Context, write bool) error {
	if s == nil {
		return errNilStore
	}
	if ctx == nil {
		return errors.New("memchain: nil context")
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if write {
		s.mu.Lock()
	} else {
		s.mu.RLock()
	}
	if s.closed {
		s.unlock(write)
		return ErrClosed
	}
	return nil
}

func (s *Store) unlock(write bool) {
	if write {
		s.mu.Unlock()
	} else {
		s.mu.RUnlock()
	}
}

// Close releases the steps stored. Further calls to any method return
// ErrClosed.
func (s *Store) Close() error {
	if err := s.lock(context.Background(), true); err != nil {
		return err
	}
	defer s.mu.Unlock()
	s.closed = true
	s.devices, s.lots = nil, nil
	return nil
}

// Append parses a signed step (its exact COSE_Sign1 bytes), checks that it
// follows its device's last stored step, and stores a copy of it. It
// returns the parsed step. Refusals are a [*manifest.AppendError] (wrapping
// [manifest.ErrFork], [manifest.ErrOutOfOrder] or [manifest.ErrBrokenLink])
// or a decoding error from [manifest.ParseSignedStep]; a refused step
// changes nothing.
func (s *Store) Append(ctx context.Context, raw []byte) (*manifest.SignedStep, error) {
	steps, err := s.AppendAll(ctx, raw)
	if err != nil {
		return nil, err
	}
	return steps[0], nil
}

// AppendAll is Append for consecutive steps of one device, in order: the
// first must follow the device's last stored step and each next one the
// step before it (see [manifest.CheckAppend]). They are stored together,
// all or none: a refusal of any of them (an [*manifest.AppendError] naming
// it) stores none. It returns them parsed from copies of raws.
func (s *Store) AppendAll(ctx context.Context, raws ...[]byte) ([]*manifest.SignedStep, error) {
	clones := make([][]byte, len(raws))
	for i, raw := range raws {
		clones[i] = bytes.Clone(raw)
	}
	steps, err := manifest.ParseAppend(clones...)
	if err != nil {
		return nil, err
	}
	if err := s.lock(ctx, true); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	subject := string(steps[0].Step.Subject)
	d := s.devices[subject]
	var stored uint64
	var last []byte
	if d != nil {
		stored, last = uint64(len(d.raws)), d.raws[len(d.raws)-1]
	}
	if err := manifest.CheckAppend(stored, last, steps...); err != nil {
		return nil, err
	}
	if d == nil {
		if s.devices == nil {
			s.devices, s.lots = map[string]*device{}, map[string]map[string]bool{}
		}
		d = &device{}
		s.devices[subject] = d
	} else {
		delete(s.lots[d.lot], subject)
		if len(s.lots[d.lot]) == 0 {
			delete(s.lots, d.lot)
		}
	}
	for _, ss := range steps {
		d.raws = append(d.raws, bytes.Clone(ss.Raw))
	}
	d.lot = steps[len(steps)-1].Step.Lot
	if s.lots[d.lot] == nil {
		s.lots[d.lot] = map[string]bool{}
	}
	s.lots[d.lot][subject] = true
	return steps, nil
}

// Last returns a device's latest stored step, parsed from a copy of its
// exact stored bytes: the step the device's next one must follow. It
// returns an error wrapping [manifest.ErrNoSteps] if none is stored.
func (s *Store) Last(ctx context.Context, subject []byte) (*manifest.SignedStep, error) {
	if err := s.lock(ctx, false); err != nil {
		return nil, err
	}
	d := s.devices[string(subject)]
	if d == nil {
		s.mu.RUnlock()
		return nil, manifest.ErrNoSteps
	}
	seq := uint64(len(d.raws) - 1)
	raw := bytes.Clone(d.raws[seq])
	s.mu.RUnlock()
	return parseStored(raw, subject, seq)
}

// Chain returns a device's stored steps in order, parsed from copies of
// their exact stored bytes. It returns an error wrapping
// [manifest.ErrNoSteps] if none is stored.
func (s *Store) Chain(ctx context.Context, subject []byte) (manifest.Chain, error) {
	if err := s.lock(ctx, false); err != nil {
		return nil, err
	}
	var raws [][]byte
	if d := s.devices[string(subject)]; d != nil {
		raws = make([][]byte, len(d.raws))
		for i, raw := range d.raws {
			raws[i] = bytes.Clone(raw)
		}
	}
	s.mu.RUnlock()
	if len(raws) == 0 {
		return nil, manifest.ErrNoSteps
	}
	c := make(manifest.Chain, len(raws))
	for i, raw := range raws {
		ss, err := parseStored(raw, subject, uint64(i))
		if err != nil {
			return nil, err
		}
		c[i] = ss
	}
	return c, nil
}

// parseStored parses a step the Store holds (it was parsed when appended,
// so an error here means memory was corrupted).
func parseStored(raw, subject []byte, seq uint64) (*manifest.SignedStep, error) {
	ss, err := manifest.ParseSignedStep(raw)
	if err != nil {
		return nil, fmt.Errorf("memchain: stored step %d of %x: %w", seq, subject, err)
	}
	return ss, nil
}

// Lot calls fn, in subject order (bytewise), for every device whose latest
// step names lot, with copies of its subject and of the exact bytes of
// that latest step: the leaves of the lot's manifest (see [manifest.Lot]).
// It stops at fn's first error and returns it, and returns ctx's error if
// ctx is done before the end. It reads the lot once, before the first call
// of fn: fn may call the Store, and appends it makes are not seen.
func (s *Store) Lot(ctx context.Context, lot string, fn func(subject, latest []byte) error) error {
	if err := s.lock(ctx, false); err != nil {
		return err
	}
	subjects := make([]string, 0, len(s.lots[lot]))
	for subject := range s.lots[lot] {
		subjects = append(subjects, subject)
	}
	slices.Sort(subjects) // Go compares strings bytewise
	latest := make([][]byte, len(subjects))
	for i, subject := range subjects {
		d := s.devices[subject]
		latest[i] = bytes.Clone(d.raws[len(d.raws)-1])
	}
	s.mu.RUnlock()
	for i, subject := range subjects {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn([]byte(subject), latest[i]); err != nil {
			return err
		}
	}
	return nil
}

// Devices returns the subjects of the devices whose latest step names lot,
// in order.
func (s *Store) Devices(ctx context.Context, lot string) ([][]byte, error) {
	var out [][]byte
	err := s.Lot(ctx, lot, func(subject, _ []byte) error {
		out = append(out, subject)
		return nil
	})
	return out, err
}
