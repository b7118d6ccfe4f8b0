package sqlite

import (
	"context"
	"errors"
	"testing"

	"github.com/ztmkit/ztm/ca"
)

// TestStorageErrCutShort: a storage check cut short by its context (or
// failing with a context error) is not storage damage: it must not mark
// the ledger corrupt.
func TestStorageErrCutShort(t *testing.T) {
	t.Parallel()
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		ctx    context.Context
		err    error
		damage bool
	}{
		{context.Background(), errors.New("database disk image is malformed"), true},
		{cancelled, errors.New("interrupted"), false},
		{context.Background(), context.DeadlineExceeded, false},
	} {
		err := storageErr(tc.ctx, "schema", tc.err)
		var se *ca.StorageError
		if got := errors.As(err, &se); got != tc.damage {
			t.Errorf("storageErr(%v, %v) = %v: damage %v, want %v", tc.ctx.Err(), tc.err, err, got, tc.damage)
		}
	}
}
