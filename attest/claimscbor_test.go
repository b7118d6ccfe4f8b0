package attest_test

import (
	"encoding/hex"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ztmkit/ztm/attest"
)

// TestClaimsCBORWrongTypes: the one CBOR claims decoder refuses values the
// CBOR library let through before: a NumericDate behind tag 1 (RFC 8392
// §2 omits it), null and undefined for claims and for the claims set, and
// a simple value as a claim key.
func TestClaimsCBORWrongTypes(t *testing.T) {
	for name, h := range map[string]string{
		"claims set null":      "f6",
		"claims set undefined": "f7",
		"iat tagged 1":         "a106c11a5612aeb0",
		"iat null":             "a106f6",
		"exp undefined":        "a104f7",
		"dbgstat null":         "a1190107f6",
		"swname tagged":        "a119010ed8206466776e",
		"submods null":         "a119010af6",
		"simple value as key":  "a1e030",
	} {
		t.Run(name, func(t *testing.T) {
			b, err := hex.DecodeString(h)
			require.NoError(t, err)
			var c attest.Claims
			require.Error(t, c.UnmarshalCBOR(b))
		})
	}
	// The same claims untagged and with their types decode.
	var c attest.Claims
	b, _ := hex.DecodeString("a2061a5612aeb019010e6266770a")
	require.Error(t, c.UnmarshalCBOR(b), "text 'fw' then a stray byte")
	b, _ = hex.DecodeString("a2061a5612aeb019010e626677")
	require.NoError(t, c.UnmarshalCBOR(b))
	require.Equal(t, "fw", c.SWName)
	require.Equal(t, int64(0x5612aeb0), c.IssuedAt.Unix())
}
