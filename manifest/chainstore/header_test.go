package chainstore_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ztmkit/ztm/manifest/chainstore"
)

// TestFileFormatVersionFlip: a bit flipped in the header's file format
// versions (bytes 18 and 19) makes SQLite open the file read-only, so a
// store that opened it would refuse its first append, after the device's
// certificate was issued. Open refuses such a file instead, and changes
// nothing in it.
func TestFileFormatVersionFlip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l := newLine(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "chains.db")
	s, err := chainstore.Open(ctx, path)
	require.NoError(t, err)
	_, err = s.Append(ctx, l.Next(t, []byte{1, 2, 3}, "L", "die-sort", nil).Raw)
	require.NoError(t, err)
	require.NoError(t, s.Close())
	pristine, err := os.ReadFile(path)
	require.NoError(t, err)
	for _, flip := range []struct{ byte, bit int }{{18, 4}, {19, 0}, {18, 1}} {
		data := append([]byte(nil), pristine...)
		data[flip.byte] ^= 1 << flip.bit
		flipped := filepath.Join(t.TempDir(), "chains.db")
		require.NoError(t, os.WriteFile(flipped, data, 0o600))
		s, err := chainstore.Open(ctx, flipped)
		if err == nil {
			s.Close()
		}
		require.ErrorIs(t, err, chainstore.ErrFileHeader, "byte %d bit %d", flip.byte, flip.bit)
		after, rerr := os.ReadFile(flipped)
		require.NoError(t, rerr)
		require.Equal(t, data, after, "Open changed the refused file")
	}
}
