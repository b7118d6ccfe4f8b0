package zerotest

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestDoubled(t *testing.T) {
	t.Parallel()
	prefixes := Prefixes("sqlite", "ca")
	for _, tc := range []struct{ msg, want string }{
		{"", ""},
		{"sqlite: ledger is closed", ""},
		{"sqlite: open: ca: ledger corrupt", ""},
		{"sqlite: open: sqlite: no path", "sqlite"},
		{"sqlite: ca: x: ca: y", "ca"},
		{"sqlite: open: open: x", "open"},
		{"chainstore: chainstore: x", "chainstore"}, // repeated, though not listed
		{"other: x: other thing", ""},
		{"ca: " + RuntimeText + ": " + RuntimeText, ""}, // run-time text is never a repeat
	} {
		require.Equal(t, tc.want, Doubled(tc.msg, prefixes), tc.msg)
	}
}
