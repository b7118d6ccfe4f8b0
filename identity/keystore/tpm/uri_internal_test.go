package tpm

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// A '+' in a value is a plus, as RFC 3986 has it (it was read as a space,
// as in an HTML form), and names are matched without regard to case, as in
// every key store URI.
func TestParseURIValues(t *testing.T) {
	c, err := parseURI("tpm:?dir=/var/lib/a+b&MAX-LOADED=2")
	require.NoError(t, err)
	require.Equal(t, "/var/lib/a+b", c.dir)
	require.Equal(t, 2, c.maxLoaded)
	c, err = parseURI("tpm:swtpm?dir=/k&port=2400")
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1:2400", c.addr)
	require.Empty(t, c.device)
}
