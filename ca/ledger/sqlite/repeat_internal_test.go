package sqlite

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ztmkit/ztm/ca"
	"github.com/ztmkit/ztm/ca/ledger/ledgertest"
)

// TestRepeatBeforeOtherRefusals: a repeated request (its idempotency key
// recorded) is answered ErrRequestExists where the device check or the
// quota would refuse it otherwise, now that its key is looked up only on
// those refusals (the INSERT's unique index finds a repeat on its own);
// another key for the same device is refused ErrDeviceProvisioned, and a
// re-provisioning repeat is undone whole.
func TestRepeatBeforeOtherRefusals(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l, err := Open(ctx, filepath.Join(t.TempDir(), "l.db"), Options{})
	require.NoError(t, err)
	defer l.Close()
	at := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	issuance := func(key string) *ca.Record {
		r, err := ledgertest.NewIssuance("line", at)
		require.NoError(t, err)
		r.Device, r.IdempotencyKey = []byte("device-1"), []byte(key)
		return r
	}
	first := issuance("request-1")
	require.NoError(t, l.Append(ctx, first, nil))
	head := first.Seq

	require.ErrorIs(t, l.Append(ctx, issuance("request-1"), nil), ca.ErrRequestExists)
	require.ErrorIs(t, l.Append(ctx, issuance("request-1"), &ca.Quota{Limit: 1}), ca.ErrRequestExists)
	require.ErrorIs(t, l.Append(ctx, issuance("request-2"), nil), ca.ErrDeviceProvisioned)
	require.ErrorIs(t, l.Append(ctx, issuance("request-2"), &ca.Quota{Limit: 1}), ca.ErrDeviceProvisioned)

	// Re-provisioning under the key already recorded: the revocation of
	// the superseded certificate is undone with the refused issuance.
	again := issuance("request-1")
	again.Supersedes = first.Serial
	require.ErrorIs(t, l.Append(ctx, again, nil), ca.ErrRequestExists)
	h, err := l.Head(ctx)
	require.NoError(t, err)
	require.Equal(t, head, h.Seq)
	st, err := l.LookupDevice(ctx, first.Device)
	require.NoError(t, err)
	require.Nil(t, st.Revocation)

	// A new request that re-provisions goes through.
	next := issuance("request-3")
	next.Supersedes = first.Serial
	require.NoError(t, l.Append(ctx, next, &ca.Quota{Limit: 10}))
	require.Equal(t, head+2, next.Seq)
	st, err = l.Lookup(ctx, first.Serial)
	require.NoError(t, err)
	require.NotNil(t, st.Revocation)
}
