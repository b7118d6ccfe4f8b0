package manifest_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ztmkit/ztm/manifest"
)

// TestCheckAppend: the rule every step store applies, without a store.
func TestCheckAppend(t *testing.T) {
	t.Parallel()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	signer, err := manifest.NewStepSigner(k, manifest.SignOptions{Issuer: "station-1"})
	require.NoError(t, err)
	at := time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)
	next := func(subject []byte, name string, prev *manifest.SignedStep) *manifest.SignedStep {
		s := &manifest.Step{Name: name, Subject: subject, Time: at}
		if prev != nil {
			d := manifest.Sum(manifest.SHA384, prev.Raw)
			s.Sequence, s.Prev = prev.Step.Sequence+1, &d
		}
		ss, err := signer.Sign(rand.Reader, s)
		require.NoError(t, err)
		return ss
	}
	dev := []byte{0x0a}
	s0 := next(dev, "die-sort", nil)
	s1 := next(dev, "final-test", s0)
	s2 := next(dev, "ship", s1)
	rival1 := next(dev, "rework", s0)
	other := next([]byte{0x0b}, "die-sort", nil)
	// A step 1 linked to empty bytes: it would pass a check that took no
	// last bytes for an empty step.
	emptyPrev := manifest.Sum(manifest.SHA384, nil)
	linkedToNothing, err := signer.Sign(rand.Reader, &manifest.Step{Name: "final-test", Subject: dev, Sequence: 1, Prev: &emptyPrev, Time: at})
	require.NoError(t, err)

	for _, tc := range []struct {
		name   string
		stored uint64
		last   []byte
		steps  []*manifest.SignedStep
		want   error // nil: accepted
		seq    uint64
		count  uint64 // the AppendError's Stored
	}{
		{"first step", 0, nil, []*manifest.SignedStep{s0}, nil, 0, 0},
		{"whole chain", 0, nil, []*manifest.SignedStep{s0, s1, s2}, nil, 0, 0},
		{"next step", 2, s1.Raw, []*manifest.SignedStep{s2}, nil, 0, 0},
		{"first step again", 1, s0.Raw, []*manifest.SignedStep{s0}, manifest.ErrFork, 0, 1},
		{"first step not 0", 0, nil, []*manifest.SignedStep{s1}, manifest.ErrOutOfOrder, 1, 0},
		{"gap", 1, s0.Raw, []*manifest.SignedStep{s2}, manifest.ErrOutOfOrder, 2, 1},
		{"gap inside", 0, nil, []*manifest.SignedStep{s0, s2}, manifest.ErrOutOfOrder, 2, 1},
		{"broken link", 2, rival1.Raw, []*manifest.SignedStep{s2}, manifest.ErrBrokenLink, 2, 2},
		{"broken link inside", 1, s0.Raw, []*manifest.SignedStep{rival1, s2}, manifest.ErrBrokenLink, 2, 2},
		{"fork inside", 0, nil, []*manifest.SignedStep{s0, s1, rival1}, manifest.ErrFork, 1, 2},
	} {
		err := manifest.CheckAppend(tc.stored, tc.last, tc.steps...)
		if tc.want == nil {
			require.NoError(t, err, tc.name)
			continue
		}
		require.ErrorIs(t, err, tc.want, tc.name)
		var ae *manifest.AppendError
		require.ErrorAs(t, err, &ae, tc.name)
		require.Equal(t, dev, ae.Subject, tc.name)
		require.Equal(t, tc.seq, ae.Sequence, tc.name)
		require.Equal(t, tc.count, ae.Stored, tc.name)
		require.Regexp(t, `^manifest: .*: device 0a, step \d+, \d+ stored$`, err.Error(), tc.name)
	}

	// Misuse is an error, not an AppendError and not a panic.
	for name, fn := range map[string]func() error{
		"no step":           func() error { return manifest.CheckAppend(0, nil) },
		"nil step":          func() error { return manifest.CheckAppend(0, nil, s0, nil) },
		"nil payload":       func() error { return manifest.CheckAppend(0, nil, &manifest.SignedStep{}) },
		"two devices":       func() error { return manifest.CheckAppend(0, nil, s0, other) },
		"no last bytes":     func() error { return manifest.CheckAppend(1, nil, linkedToNothing) },
		"empty last bytes":  func() error { return manifest.CheckAppend(1, []byte{}, linkedToNothing) },
		"parse no step":     func() error { return errOf(manifest.ParseAppend()) },
		"parse two devices": func() error { return errOf(manifest.ParseAppend(s0.Raw, other.Raw)) },
	} {
		err := manifest.CheckAppend(0, nil, s0) // a sound call between
		require.NoError(t, err)
		err = fn()
		require.Error(t, err, name)
		var ae *manifest.AppendError
		require.False(t, errors.As(err, &ae), name)
		require.Regexp(t, `^manifest: `, err.Error(), name)
	}

	// ParseAppend parses what CheckAppend then checks, and refuses bytes
	// that are not a signed step.
	steps, err := manifest.ParseAppend(s0.Raw, s1.Raw)
	require.NoError(t, err)
	require.Len(t, steps, 2)
	require.Equal(t, s1.Raw, steps[1].Raw)
	require.NoError(t, manifest.CheckAppend(0, nil, steps...))
	_, err = manifest.ParseAppend(s0.Raw, []byte{0xa0})
	require.Error(t, err)
}

func errOf(_ any, err error) error { return err }
