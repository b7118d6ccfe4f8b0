// Package steptest is the conformance suite of the step stores (package
// chainstore, package memchain): one set of behaviours every store must
// show, run from each store's tests with [Run].
package steptest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ztmkit/ztm/manifest"
)

// Store is what a step store offers: ztm.StepStore's methods (Last, Chain,
// AppendAll), Append, the lot queries and Close.
type Store interface {
	Append(ctx context.Context, raw []byte) (*manifest.SignedStep, error)
	AppendAll(ctx context.Context, raws ...[]byte) ([]*manifest.SignedStep, error)
	Last(ctx context.Context, subject []byte) (*manifest.SignedStep, error)
	Chain(ctx context.Context, subject []byte) (manifest.Chain, error)
	Lot(ctx context.Context, lot string, fn func(subject, latest []byte) error) error
	Devices(ctx context.Context, lot string) ([][]byte, error)
	Close() error
}

// Run runs the suite against stores made by newStore, each new and empty;
// errClosed is the store's sentinel for a call after Close. Run closes the
// stores when their test ends.
func Run(t *testing.T, newStore func(t *testing.T) Store, errClosed error) {
	open := func(t *testing.T) Store {
		st := newStore(t)
		t.Cleanup(func() { st.Close() })
		return st
	}
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, st Store)
	}{
		{"AppendReadVerify", testAppendReadVerify},
		{"Refusals", testRefusals},
		{"AppendAllAtomic", testAppendAllAtomic},
		{"Concurrent", testConcurrent},
		{"Lots", testLots},
		{"Copies", testCopies},
		{"Closed", func(t *testing.T, st Store) { testClosed(t, st, errClosed) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, open(t))
		})
	}
}

// T0 is the time of every device's first step a Line signs.
var T0 = time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)

// Line signs steps, as a station does: the store tests' source of valid
// signed steps.
type Line struct {
	Key    *ecdsa.PrivateKey
	Signer *manifest.StepSigner
}

// NewLine returns a Line with a new P-256 key, issuer "station-1".
func NewLine(t testing.TB) *Line {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	s, err := manifest.NewStepSigner(k, manifest.SignOptions{Issuer: "station-1"})
	require.NoError(t, err)
	return &Line{Key: k, Signer: s}
}

// Next signs the step after prev (nil for the first) for subject, in
// lot, named name.
func (l *Line) Next(t testing.TB, subject []byte, lot, name string, prev *manifest.SignedStep) *manifest.SignedStep {
	t.Helper()
	s := &manifest.Step{Name: name, Subject: subject, Time: T0, Lot: lot}
	if prev != nil {
		s.Sequence = prev.Step.Sequence + 1
		d := manifest.Sum(manifest.SHA256, prev.Raw)
		s.Prev = &d
		s.Time = prev.Step.Time.Add(time.Minute)
	}
	ss, err := l.Signer.Sign(rand.Reader, s)
	require.NoError(t, err)
	return ss
}

// Chain signs n linked steps for subject in lot.
func (l *Line) Chain(t testing.TB, subject []byte, lot string, n int) []*manifest.SignedStep {
	t.Helper()
	var out []*manifest.SignedStep
	var prev *manifest.SignedStep
	for i := range n {
		prev = l.Next(t, subject, lot, fmt.Sprintf("step-%d", i), prev)
		out = append(out, prev)
	}
	return out
}

// requireChain checks that st holds exactly want for want's subject, byte
// for byte.
func requireChain(t *testing.T, st Store, want []*manifest.SignedStep) {
	t.Helper()
	got, err := st.Chain(context.Background(), want[0].Step.Subject)
	require.NoError(t, err)
	require.Len(t, got, len(want))
	for i := range want {
		require.Equal(t, want[i].Raw, got[i].Raw, "step %d", i)
	}
}

func testAppendReadVerify(t *testing.T, st Store) {
	ctx := context.Background()
	l := NewLine(t)
	dev := []byte{0x01, 0xaa, 0xbb}
	var want []*manifest.SignedStep
	var prev *manifest.SignedStep
	for _, name := range []string{"die-sort", "final-test", "ship"} {
		prev = l.Next(t, dev, "LOT-1", name, prev)
		got, err := st.Append(ctx, prev.Raw)
		require.NoError(t, err)
		require.Equal(t, prev.Raw, got.Raw)
		require.Equal(t, name, got.Step.Name)
		want = append(want, prev)
	}
	requireChain(t, st, want)
	last, err := st.Last(ctx, dev)
	require.NoError(t, err)
	require.Equal(t, prev.Raw, last.Raw)
	require.Equal(t, uint64(2), last.Step.Sequence)

	got, err := st.Chain(ctx, dev)
	require.NoError(t, err)
	pol := &manifest.Policy{Name: "p", Keys: []manifest.PolicyKey{{Name: "s1", Public: l.Key.Public()}},
		Steps: []manifest.StepRule{{Name: "die-sort", Signers: []string{"s1"}},
			{Name: "final-test", Signers: []string{"s1"}}, {Name: "ship", Signers: []string{"s1"}}}}
	require.NoError(t, manifest.Verify(ctx, got, pol, &manifest.VerifyOptions{CurrentTime: T0}).Err())

	_, err = st.Chain(ctx, []byte{0x02})
	require.ErrorIs(t, err, manifest.ErrNoSteps)
	_, err = st.Last(ctx, []byte{0x02})
	require.ErrorIs(t, err, manifest.ErrNoSteps)
	// A subject that is a prefix of a stored one is another device.
	_, err = st.Chain(ctx, dev[:2])
	require.ErrorIs(t, err, manifest.ErrNoSteps)
}

func testRefusals(t *testing.T, st Store) {
	ctx := context.Background()
	l := NewLine(t)
	dev := []byte{0x01, 0x01}
	s0 := l.Next(t, dev, "L", "die-sort", nil)
	s1 := l.Next(t, dev, "L", "final-test", s0)
	s2 := l.Next(t, dev, "L", "ship", s1)
	_, err := st.AppendAll(ctx, s0.Raw, s1.Raw)
	require.NoError(t, err)
	other := l.Next(t, []byte{0x01, 0x02}, "L", "die-sort", nil)
	fork := l.Next(t, dev, "L", "rework", s0) // a second step 1
	relink := l.Next(t, dev, "L", "ship", fork)
	// A first step with sequence 1 (it names a predecessor that is not stored).
	orphan := l.Next(t, []byte{0x01, 0x03}, "L", "final-test", other)
	for _, tc := range []struct {
		name   string
		raw    []byte
		want   error
		seq    uint64 // the AppendError's, for a refusal
		stored uint64
	}{
		{"fork", fork.Raw, manifest.ErrFork, 1, 2},
		{"duplicate", s1.Raw, manifest.ErrFork, 1, 2},
		{"gap", l.Next(t, dev, "L", "pack", s2).Raw, manifest.ErrOutOfOrder, 3, 2},
		{"broken link", relink.Raw, manifest.ErrBrokenLink, 2, 2},
		{"first step not 0", orphan.Raw, manifest.ErrOutOfOrder, 1, 0},
		{"malformed", s2.Raw[:len(s2.Raw)-1], manifest.ErrMalformed, 0, 0},
		{"empty", []byte{}, manifest.ErrMalformed, 0, 0},
		{"too large", make([]byte, manifest.MaxStepSize+1), manifest.ErrTooLarge, 0, 0},
	} {
		_, err := st.Append(ctx, tc.raw)
		require.ErrorIs(t, err, tc.want, tc.name)
		var ae *manifest.AppendError
		if errors.Is(tc.want, manifest.ErrMalformed) || errors.Is(tc.want, manifest.ErrTooLarge) {
			var de *manifest.DecodeError
			require.ErrorAs(t, err, &de, tc.name)
			require.False(t, errors.As(err, &ae), tc.name)
			continue
		}
		require.ErrorAs(t, err, &ae, tc.name)
		require.Equal(t, tc.seq, ae.Sequence, tc.name)
		require.Equal(t, tc.stored, ae.Stored, tc.name)
	}
	requireChain(t, st, []*manifest.SignedStep{s0, s1})
	_, err = st.Chain(ctx, orphan.Step.Subject)
	require.ErrorIs(t, err, manifest.ErrNoSteps, "a refused first step was stored")
	_, err = st.Append(ctx, s2.Raw)
	require.NoError(t, err, "the right next step")
	requireChain(t, st, []*manifest.SignedStep{s0, s1, s2})
}

func testAppendAllAtomic(t *testing.T, st Store) {
	ctx := context.Background()
	l := NewLine(t)
	dev := []byte{0x01, 0x07}
	s0 := l.Next(t, dev, "L", "die-sort", nil)
	s1 := l.Next(t, dev, "L", "key-generation", s0)
	s2 := l.Next(t, dev, "L", "enrollment", s1)
	_, err := st.AppendAll(ctx)
	require.Error(t, err, "an empty append")
	// The second step does not follow the first: neither is stored.
	_, err = st.AppendAll(ctx, s0.Raw, s2.Raw)
	var ae *manifest.AppendError
	require.ErrorAs(t, err, &ae)
	require.ErrorIs(t, err, manifest.ErrOutOfOrder)
	require.Equal(t, uint64(2), ae.Sequence)
	require.Equal(t, dev, ae.Subject)
	_, err = st.Last(ctx, dev)
	require.ErrorIs(t, err, manifest.ErrNoSteps, "a refused append stored a step")
	// A malformed step after good ones stores none of them.
	_, err = st.AppendAll(ctx, s0.Raw, s1.Raw[:10])
	require.ErrorIs(t, err, manifest.ErrMalformed)
	_, err = st.Last(ctx, dev)
	require.ErrorIs(t, err, manifest.ErrNoSteps)
	// Steps of two devices in one append are refused.
	other := l.Next(t, []byte{0x01, 0x08}, "L", "die-sort", nil)
	_, err = st.AppendAll(ctx, s0.Raw, other.Raw)
	require.Error(t, err, "steps of two devices appended together")
	_, err = st.Last(ctx, other.Step.Subject)
	require.ErrorIs(t, err, manifest.ErrNoSteps)

	got, err := st.AppendAll(ctx, s0.Raw, s1.Raw, s2.Raw)
	require.NoError(t, err)
	require.Len(t, got, 3)
	require.Equal(t, s2.Raw, got[2].Raw)
	last, err := st.Last(ctx, dev)
	require.NoError(t, err)
	require.Equal(t, s2.Raw, last.Raw)
	// A fork of a stored step inside a longer append refuses it all.
	fork := l.Next(t, dev, "L", "rework", s1)
	after := l.Next(t, dev, "L", "ship", fork)
	_, err = st.AppendAll(ctx, fork.Raw, after.Raw)
	require.ErrorIs(t, err, manifest.ErrFork)
	// A good step followed by a broken link: neither is stored.
	s3 := l.Next(t, dev, "L", "ship", s2)
	rival3 := l.Next(t, dev, "L", "pack", s2)
	_, err = st.AppendAll(ctx, s3.Raw, l.Next(t, dev, "L", "x", rival3).Raw)
	require.ErrorIs(t, err, manifest.ErrBrokenLink)
	require.ErrorAs(t, err, &ae)
	require.Equal(t, uint64(4), ae.Sequence)
	require.Equal(t, uint64(4), ae.Stored, "counting the good step before it")
	_, err = st.AppendAll(ctx, s3.Raw, s3.Raw)
	require.ErrorIs(t, err, manifest.ErrFork, "one step twice in one append")
	requireChain(t, st, []*manifest.SignedStep{s0, s1, s2})
}

func testConcurrent(t *testing.T, st Store) {
	ctx := context.Background()
	l := NewLine(t)
	const devices, steps = 8, 5
	chains := make([][]*manifest.SignedStep, devices)
	for d := range devices {
		lot := "LOT-A"
		if d%2 == 1 {
			lot = "LOT-B"
		}
		chains[d] = l.Chain(t, []byte{0x01, byte(d)}, lot, steps)
	}
	// Rival first steps for one device, and rival second steps for another.
	race0, race1 := []byte{0x01, 0xfe}, []byte{0x01, 0xff}
	base := l.Next(t, race1, "LOT-A", "die-sort", nil)
	_, err := st.Append(ctx, base.Raw)
	require.NoError(t, err)
	var rivals0, rivals1 []*manifest.SignedStep
	for i := range 8 {
		rivals0 = append(rivals0, l.Next(t, race0, "LOT-A", fmt.Sprintf("candidate-%d", i), nil))
		rivals1 = append(rivals1, l.Next(t, race1, "LOT-A", fmt.Sprintf("candidate-%d", i), base))
	}
	var wg sync.WaitGroup
	errs := make(chan error, devices*steps+len(rivals0)+len(rivals1))
	for _, c := range chains {
		wg.Go(func() {
			for _, s := range c {
				if _, err := st.Append(ctx, s.Raw); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	var wins0, wins1 atomic.Int32
	for i := range rivals0 {
		for _, r := range []struct {
			s    *manifest.SignedStep
			wins *atomic.Int32
		}{{rivals0[i], &wins0}, {rivals1[i], &wins1}} {
			wg.Go(func() {
				switch _, err := st.Append(ctx, r.s.Raw); {
				case err == nil:
					r.wins.Add(1)
				case !errors.Is(err, manifest.ErrFork):
					errs <- err
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.Equal(t, int32(1), wins0.Load(), "racing first steps stored")
	require.Equal(t, int32(1), wins1.Load(), "racing second steps stored")
	for _, c := range chains {
		requireChain(t, st, c)
	}
	a, err := st.Devices(ctx, "LOT-A")
	require.NoError(t, err)
	require.Len(t, a, devices/2+2)

	// A lot manifest over the store's latest steps; each receipt verifies
	// against the device's latest step read back from the store.
	lot, err := manifest.NewLot("LOT-B", manifest.LotOptions{KeepProofs: true})
	require.NoError(t, err)
	var subjects [][]byte
	require.NoError(t, st.Lot(ctx, "LOT-B", func(subject, latest []byte) error {
		subjects = append(subjects, subject)
		_, err := lot.Add(latest)
		return err
	}))
	require.Len(t, subjects, devices/2)
	m, err := lot.Sign(rand.Reader, l.Signer, T0)
	require.NoError(t, err)
	for i, sub := range subjects {
		last, err := st.Last(ctx, sub)
		require.NoError(t, err)
		rc, err := m.Receipt(uint64(i))
		require.NoError(t, err)
		_, err = manifest.VerifyReceipt(rc, last.Raw, l.Key.Public())
		require.NoError(t, err)
	}
}

func testLots(t *testing.T, st Store) {
	ctx := context.Background()
	l := NewLine(t)
	// Subjects in bytewise order, a prefix before what it starts.
	want := [][]byte{{0x00, 0xff}, {0x01}, {0x01, 0x00}, {0x02}}
	for _, i := range []int{2, 0, 3, 1} {
		_, err := st.Append(ctx, l.Next(t, want[i], "LOT-1", "die-sort", nil).Raw)
		require.NoError(t, err)
	}
	got, err := st.Devices(ctx, "LOT-1")
	require.NoError(t, err)
	require.Equal(t, want, got)
	// A device belongs to the lot its latest step names.
	first, err := st.Last(ctx, want[1])
	require.NoError(t, err)
	moved := l.Next(t, want[1], "LOT-2", "repack", first)
	_, err = st.Append(ctx, moved.Raw)
	require.NoError(t, err)
	got, err = st.Devices(ctx, "LOT-1")
	require.NoError(t, err)
	require.Equal(t, [][]byte{want[0], want[2], want[3]}, got)
	var latest [][]byte
	require.NoError(t, st.Lot(ctx, "LOT-2", func(subject, raw []byte) error {
		require.Equal(t, want[1], subject)
		latest = append(latest, raw)
		return nil
	}))
	require.Equal(t, [][]byte{moved.Raw}, latest)
	// A step without a lot leaves every named lot.
	_, err = st.Append(ctx, l.Next(t, want[1], "", "scrap", moved).Raw)
	require.NoError(t, err)
	got, err = st.Devices(ctx, "LOT-2")
	require.NoError(t, err)
	require.Empty(t, got)
	got, err = st.Devices(ctx, "LOT-none")
	require.NoError(t, err)
	require.Empty(t, got)
	// Lot stops at fn's first error and returns it.
	stop := errors.New("stop")
	calls := 0
	err = st.Lot(ctx, "LOT-1", func(_, _ []byte) error {
		calls++
		return stop
	})
	require.ErrorIs(t, err, stop)
	require.Equal(t, 1, calls)
}

// testCopies: changing a slice passed to the store or got from it changes
// nothing stored.
func testCopies(t *testing.T, st Store) {
	ctx := context.Background()
	l := NewLine(t)
	dev := []byte{0x01, 0x0c}
	steps := l.Chain(t, dev, "LOT-C", 3)
	want := make([][]byte, len(steps))
	for i, s := range steps {
		want[i] = bytes.Clone(s.Raw)
	}
	spoil := func(b []byte) { // twice is as bad as once
		for i := range b {
			b[i] = 0x5a
		}
	}
	in := bytes.Clone(want[0])
	got, err := st.Append(ctx, in)
	require.NoError(t, err)
	spoil(in)
	spoil(got.Raw)
	all, err := st.AppendAll(ctx, bytes.Clone(want[1]), bytes.Clone(want[2]))
	require.NoError(t, err)
	for _, s := range all {
		spoil(s.Raw)
	}
	c, err := st.Chain(ctx, dev)
	require.NoError(t, err)
	for _, s := range c {
		spoil(s.Raw)
	}
	last, err := st.Last(ctx, dev)
	require.NoError(t, err)
	spoil(last.Raw)
	require.NoError(t, st.Lot(ctx, "LOT-C", func(subject, latest []byte) error {
		spoil(subject)
		spoil(latest)
		return nil
	}))
	devs, err := st.Devices(ctx, "LOT-C")
	require.NoError(t, err)
	require.Equal(t, [][]byte{dev}, devs)
	spoil(devs[0])
	query := bytes.Clone(dev)
	c, err = st.Chain(ctx, query)
	require.NoError(t, err)
	spoil(query)
	for i := range want {
		require.Equal(t, want[i], c[i].Raw, "step %d", i)
	}
	devs, err = st.Devices(ctx, "LOT-C")
	require.NoError(t, err)
	require.Equal(t, [][]byte{dev}, devs)
	// The chain still verifies its links, and the next step follows it.
	_, err = st.Append(ctx, l.Next(t, dev, "LOT-C", "ship", steps[2]).Raw)
	require.NoError(t, err)
}

func testClosed(t *testing.T, st Store, errClosed error) {
	ctx := context.Background()
	l := NewLine(t)
	s0 := l.Next(t, []byte{0x01, 0x0d}, "L", "die-sort", nil)
	_, err := st.Append(ctx, s0.Raw)
	require.NoError(t, err)
	require.NoError(t, st.Close())
	s1 := l.Next(t, s0.Step.Subject, "L", "final-test", s0)
	_, err = st.Append(ctx, s1.Raw)
	require.ErrorIs(t, err, errClosed, "Append")
	_, err = st.AppendAll(ctx, s1.Raw)
	require.ErrorIs(t, err, errClosed, "AppendAll")
	_, err = st.Last(ctx, s0.Step.Subject)
	require.ErrorIs(t, err, errClosed, "Last")
	_, err = st.Chain(ctx, s0.Step.Subject)
	require.ErrorIs(t, err, errClosed, "Chain")
	require.ErrorIs(t, st.Lot(ctx, "L", func(_, _ []byte) error { return nil }), errClosed, "Lot")
	_, err = st.Devices(ctx, "L")
	require.ErrorIs(t, err, errClosed, "Devices")
	require.ErrorIs(t, st.Close(), errClosed, "a second Close")
}
