package queue_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ztmkit/ztm/transport/est/queue"
)

// TestFileFormatVersionFlip: a queue file whose SQLite header names file
// format versions SQLite would open read-only (a flipped bit in bytes 18
// or 19) is refused by Open with ErrFileHeader, rather than failing at the
// station's first enrollment it tries to keep.
func TestFileFormatVersionFlip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "queue.db")
	q, err := queue.Open(ctx, path, queue.Options{})
	require.NoError(t, err)
	require.NoError(t, q.Close())
	pristine, err := os.ReadFile(path)
	require.NoError(t, err)
	data := append([]byte(nil), pristine...)
	data[18] ^= 1 << 4
	flipped := filepath.Join(t.TempDir(), "queue.db")
	require.NoError(t, os.WriteFile(flipped, data, 0o600))
	q, err = queue.Open(ctx, flipped, queue.Options{})
	if err == nil {
		q.Close()
	}
	require.ErrorIs(t, err, queue.ErrFileHeader)
}
