package durable

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ztmkit/ztm/internal/sqlitefile"
)

// TestFileFormatVersionFlip: a bit flipped in the header's file format
// versions (bytes 18 and 19) makes SQLite open the file read-only, so the
// queue would fail at its first write. Open refuses such a file instead.
func TestFileFormatVersionFlip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const schema = `CREATE TABLE IF NOT EXISTS t (k INTEGER PRIMARY KEY)`
	path := filepath.Join(t.TempDir(), "q.db")
	db, err := Open(ctx, path, schema)
	require.NoError(t, err)
	require.NoError(t, db.Do(ctx, func(tx *sql.Tx) error { _, err := tx.Exec(`INSERT INTO t (k) VALUES (1)`); return err }))
	require.NoError(t, db.Close())
	pristine, err := os.ReadFile(path)
	require.NoError(t, err)
	for _, flip := range []struct{ byte, bit int }{{18, 4}, {19, 0}, {18, 1}} {
		data := append([]byte(nil), pristine...)
		data[flip.byte] ^= 1 << flip.bit
		flipped := filepath.Join(t.TempDir(), "q.db")
		require.NoError(t, os.WriteFile(flipped, data, 0o600))
		db, err := Open(ctx, flipped, schema)
		if err == nil {
			db.Close()
		}
		var ve *sqlitefile.VersionError
		require.ErrorAs(t, err, &ve, "byte %d bit %d", flip.byte, flip.bit)
	}
}
