package file

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ztmkit/ztm/identity/keystore"
)

// The file backend reads its URI with the syntax every key store URI has
// (internal/keyuri): a secret after a '#' stays out of the error, a stray
// separator and a ';' in the query are refused, names match without
// regard to case.
func TestURISyntaxShared(t *testing.T) {
	for _, tc := range []struct{ uri, part string }{
		{"file:/k#passphrase=hunter2", "fragment"},
		{"file:/k?passphrase=hunter2#x", "fragment"},
		{"file:/k?passphrase=hunter2&", "attribute"},
		{"file:/k?passphrase=hunter2;x=1", "query"},
		{"file:/k?passphrase-source=file:relative", "passphrase-source"},
	} {
		_, _, err := parseURI(tc.uri)
		var ue *keystore.URIError
		require.True(t, errors.As(err, &ue), "%s: %v", tc.uri, err)
		require.Equal(t, tc.part, ue.Part, "%s: %v", tc.uri, err)
		require.NotContains(t, err.Error(), "hunter2", tc.uri)
	}
	dir, cfg, err := parseURI("file:/k?PASSPHRASE=x%3By")
	require.NoError(t, err)
	require.Equal(t, "/k", dir)
	require.Equal(t, "x;y", string(cfg.Passphrase))
}
