package sqlitefile

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCheckHeader(t *testing.T) {
	t.Parallel()
	header := func(w, r byte) []byte {
		h := make([]byte, 4096)
		copy(h, magic)
		h[18], h[19] = w, r
		return h
	}
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		data []byte // nil: no file
		bad  bool
	}{
		{"missing", nil, false},
		{"empty", []byte{}, false},
		{"short", []byte(magic), false},
		{"not SQLite", make([]byte, 4096), false},
		{"rollback journal", header(1, 1), false},
		{"WAL", header(2, 2), false},
		{"write version 3", header(3, 2), true},
		{"read version 0", header(2, 0), true},
		{"write version 18", header(18, 2), true},
	} {
		path := filepath.Join(dir, tc.name)
		if tc.data != nil {
			require.NoError(t, os.WriteFile(path, tc.data, 0o600))
		}
		err := CheckHeader(path)
		if !tc.bad {
			require.NoError(t, err, tc.name)
			continue
		}
		var ve *VersionError
		require.ErrorAs(t, err, &ve, tc.name)
		require.Equal(t, tc.data[18], ve.Write, tc.name)
		require.Equal(t, tc.data[19], ve.Read, tc.name)
	}
}

func FuzzCheckHeader(f *testing.F) {
	h := make([]byte, 100)
	copy(h, magic)
	h[18], h[19] = 2, 2
	f.Add(h)
	f.Add([]byte(magic))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "f.db")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		err := CheckHeader(path)
		var ve *VersionError
		bad := len(data) >= 100 && string(data[:len(magic)]) == magic &&
			((data[18] != 1 && data[18] != 2) || (data[19] != 1 && data[19] != 2))
		if bad != (err != nil) || (bad && !errors.As(err, &ve)) {
			t.Fatalf("CheckHeader(%x...) = %v, want refusal %v", data[:min(len(data), 20)], err, bad)
		}
	})
}
