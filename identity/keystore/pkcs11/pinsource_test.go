package pkcs11

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ztmkit/ztm/identity/keystore"
)

// pin-source takes the sources every key store URI takes: a file (as
// "file:" or an absolute path) and, as the file backend did, an
// environment variable.
func TestPINSources(t *testing.T) {
	const mod = "pkcs11:token=a?module-path=/m.so&pin-source="
	file := filepath.Join(t.TempDir(), "pin")
	require.NoError(t, os.WriteFile(file, []byte("1234\n"), 0o600))
	t.Setenv("ZTM_PKCS11_TEST_PIN", "5678")
	for src, want := range map[string]string{
		"file:" + file:            "1234",
		"file://" + file:          "1234",
		file:                      "1234",
		"env:ZTM_PKCS11_TEST_PIN": "5678",
	} {
		cfg, err := ParseURI(mod + src)
		require.NoError(t, err, src)
		pin, err := cfg.pin()
		require.NoError(t, err, src)
		require.Equal(t, want, pin, src)
	}
	cfg, err := ParseURI(mod + "env:ZTM_PKCS11_TEST_UNSET")
	require.NoError(t, err)
	_, err = cfg.pin()
	require.Error(t, err)
	for _, src := range []string{"env:", "file:pin", "pin", "vault:pin"} {
		_, err := ParseURI(mod + src)
		var ue *keystore.URIError
		require.True(t, errors.As(err, &ue) && ue.Part == "pin-source", "%s: %v", src, err)
	}
}
