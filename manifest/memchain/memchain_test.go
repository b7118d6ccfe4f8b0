package memchain_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ztmkit/ztm"
	"github.com/ztmkit/ztm/manifest"
	"github.com/ztmkit/ztm/manifest/internal/steptest"
	"github.com/ztmkit/ztm/manifest/memchain"
)

// A Station can keep its steps in a memchain.Store.
var _ ztm.StepStore = (*memchain.Store)(nil)

func TestConformance(t *testing.T) {
	t.Parallel()
	steptest.Run(t, func(*testing.T) steptest.Store { return memchain.New() }, memchain.ErrClosed)
}

// TestZeroStore: the zero Store is a working one.
func TestZeroStore(t *testing.T) {
	t.Parallel()
	steptest.Run(t, func(*testing.T) steptest.Store { return new(memchain.Store) }, memchain.ErrClosed)
}

func signedStep(t *testing.T) *manifest.SignedStep {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	s, err := manifest.NewStepSigner(k, manifest.SignOptions{Issuer: "station-1"})
	require.NoError(t, err)
	ss, err := s.Sign(rand.Reader, &manifest.Step{Name: "die-sort", Subject: []byte{1, 2},
		Time: time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC), Lot: "L"})
	require.NoError(t, err)
	return ss
}

// TestMisuse: a nil Store, a nil or done context are errors, not panics,
// and store nothing.
func TestMisuse(t *testing.T) {
	t.Parallel()
	ss := signedStep(t)
	var nilStore *memchain.Store
	ctx := context.Background()
	_, err := nilStore.Append(ctx, ss.Raw)
	require.ErrorContains(t, err, "memchain: nil Store")
	_, err = nilStore.Chain(ctx, ss.Step.Subject)
	require.Error(t, err)
	_, err = nilStore.Last(ctx, ss.Step.Subject)
	require.Error(t, err)
	_, err = nilStore.Devices(ctx, "L")
	require.Error(t, err)
	require.Error(t, nilStore.Close())

	st := memchain.New()
	var nilCtx context.Context
	_, err = st.Append(nilCtx, ss.Raw)
	require.ErrorContains(t, err, "memchain: nil context")
	done, cancel := context.WithCancel(ctx)
	cancel()
	_, err = st.Append(done, ss.Raw)
	require.ErrorIs(t, err, context.Canceled)
	_, err = st.Chain(done, ss.Step.Subject)
	require.ErrorIs(t, err, context.Canceled)
	require.ErrorIs(t, st.Lot(done, "L", func(_, _ []byte) error { return nil }), context.Canceled)
	_, err = st.Chain(ctx, ss.Step.Subject)
	require.ErrorIs(t, err, manifest.ErrNoSteps, "an append with a done context stored its step")
	_, err = st.Append(ctx, ss.Raw)
	require.NoError(t, err)
}

// TestReturnedStepsOwnTheirBytes: the steps Append returns are parsed from
// the Store's copy, so a caller reusing its buffer does not change them
// (chainstore's alias the caller's bytes; memchain promises more).
func TestReturnedStepsOwnTheirBytes(t *testing.T) {
	t.Parallel()
	ss := signedStep(t)
	in := bytes.Clone(ss.Raw)
	got, err := memchain.New().Append(context.Background(), in)
	require.NoError(t, err)
	clear(in)
	require.Equal(t, ss.Raw, got.Raw)
}
