package sqlite

import (
	"context"
	"path/filepath"
	"testing"
)

// TestConnectionPragmas checks the settings durability depends on, on the
// reader pool and on the writer connection.
func TestConnectionPragmas(t *testing.T) {
	ctx := context.Background()
	l, err := Open(ctx, filepath.Join(t.TempDir(), "l.db"), Options{BusyTimeout: 1234e6})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	check := func(who string, query func(string) (int64, string, error)) {
		sync, _, err := query("PRAGMA synchronous")
		if err != nil || sync != 2 {
			t.Errorf("%s: synchronous = %d, %v; want 2 (FULL)", who, sync, err)
		}
		bt, _, err := query("PRAGMA busy_timeout")
		if err != nil || bt != 1234 {
			t.Errorf("%s: busy_timeout = %d, %v", who, bt, err)
		}
		_, mode, err := query("PRAGMA journal_mode")
		if err != nil || mode != "wal" {
			t.Errorf("%s: journal_mode = %q, %v", who, mode, err)
		}
	}
	check("pool", func(q string) (int64, string, error) {
		var v any
		err := l.db.QueryRowContext(ctx, q).Scan(&v)
		return asInt(v), asString(v), err
	})
	check("writer", func(q string) (int64, string, error) {
		var v any
		err := l.writer.QueryRowContext(ctx, q).Scan(&v)
		return asInt(v), asString(v), err
	})
}

func asInt(v any) int64 {
	n, _ := v.(int64)
	return n
}

func asString(v any) string {
	s, _ := v.(string)
	return s
}
