package sign1

import (
	"crypto/ed25519"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ztmkit/ztm/identity/keystore"
	"github.com/ztmkit/ztm/internal/detcbor"
)

func signed(t testing.TB) []byte {
	_, k, err := ed25519.GenerateKey(zeroReader{})
	require.NoError(t, err)
	s, err := NewSigner(k, keystore.EdDSA)
	require.NoError(t, err)
	raw, _, err := Sign(nil, s, []byte{0xa1, 0x01, 0x27}, []byte("payload"))
	require.NoError(t, err)
	return raw
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// TestDecode: what Sign writes decodes to its parts; each way a message
// departs from the strict form is refused and said.
func TestDecode(t *testing.T) {
	t.Parallel()
	raw := signed(t)
	env, err := Decode(raw, DecodeOptions{Shortest: true})
	require.NoError(t, err)
	require.Equal(t, []byte{0xa1, 0x01, 0x27}, env.Protected)
	require.Equal(t, []byte("payload"), env.Payload)
	require.Len(t, env.Signature, ed25519.SignatureSize)
	require.Equal(t, []byte{0xa0}, env.Unprotected)
	_, err = Decode(append([]byte{0xd8, TagCWT}, raw...), DecodeOptions{CWTTag: true})
	require.NoError(t, err)

	detached := append([]byte{0xd2, 0x84, 0x43, 0xa1, 0x01, 0x27, 0xa0, 0xf6}, raw[len(raw)-66:]...)
	_, err = Decode(detached, DecodeOptions{Detached: true})
	require.NoError(t, err)

	longProt := append([]byte{0xd2, 0x84, 0x58, 0x03}, raw[3:]...)
	for name, tc := range map[string]struct {
		raw  []byte
		o    DecodeOptions
		want string
	}{
		"untagged":                 {raw[1:], DecodeOptions{}, "tag 18"},
		"CWT tag not asked":        {append([]byte{0xd8, TagCWT}, raw...), DecodeOptions{}, "tag 18"},
		"three items":              {[]byte{0xd2, 0x83, 0x40, 0xa0, 0x40}, DecodeOptions{}, "COSE_Sign1 of 3 items, want 4"},
		"a map":                    {[]byte{0xd2, 0xa0}, DecodeOptions{}, "not an array"},
		"trailing data":            {append(append([]byte{}, raw...), 0), DecodeOptions{}, "trailing"},
		"detached not asked":       {detached, DecodeOptions{}, "not an attached byte string"},
		"attached, detached asked": {raw, DecodeOptions{Detached: true}, "not detached"},
		"long protected head":      {longProt, DecodeOptions{Shortest: true}, "protected header length is not in its shortest form"},
		"empty signature":          {[]byte{0xd2, 0x84, 0x40, 0xa0, 0x40, 0x40}, DecodeOptions{}, "empty signature"},
		"protected not a bstr":     {[]byte{0xd2, 0x84, 0xa0, 0xa0, 0x40, 0x41, 0x00}, DecodeOptions{}, "protected header is not a byte string"},
		"unprotected not a map":    {[]byte{0xd2, 0x84, 0x40, 0x40, 0x40, 0x41, 0x00}, DecodeOptions{}, "unprotected header is not a map"},
		"tag inside":               {[]byte{0xd2, 0x84, 0x40, 0xa0, 0xc1, 0x40, 0x41, 0x00}, DecodeOptions{}, "tag"},
		"too large":                {raw, DecodeOptions{MaxSize: 10}, "limit 10"},
	} {
		_, err := Decode(tc.raw, tc.o)
		require.ErrorContains(t, err, tc.want, name)
	}
	_, err = Decode([]byte{0xd2, 0x83, 0x40, 0xa0, 0x40}, DecodeOptions{})
	require.ErrorIs(t, err, ErrItems)
	require.ErrorContains(t, err, "not an array of 4 items")
	_, longOK := Decode(longProt, DecodeOptions{})
	require.NoError(t, longOK, "heads need not be shortest unless asked")
}

func TestCheckUnprotected(t *testing.T) {
	t.Parallel()
	u, bad, err := CheckUnprotected([]byte{0xa0})
	require.NoError(t, err)
	require.Empty(t, bad)
	require.Nil(t, u)
	enc, err := detcbor.Marshal(map[any]any{int64(4): []byte("k"), int64(-70000): 1, "note": 1, int64(33): []byte{1}})
	require.NoError(t, err)
	u, bad, err = CheckUnprotected(enc, HeaderKid)
	require.NoError(t, err)
	require.Equal(t, `-70000, 33 (x5chain), "note"`, bad)
	kid, ok := Label(u, HeaderKid)
	require.True(t, ok)
	require.Equal(t, []byte{0x41, 'k'}, []byte(kid))
	_, _, err = CheckUnprotected([]byte{0xa2, 0x04, 0x40, 0x04, 0x40})
	require.ErrorContains(t, err, "duplicate")
	_, _, err = CheckUnprotected([]byte{0x80})
	require.ErrorContains(t, err, "not a map")
}

func FuzzDecode(f *testing.F) {
	raw := signed(f)
	f.Add(raw)
	f.Add([]byte{0xd2, 0x84, 0x40, 0xa0, 0xf6, 0x41, 0x00})
	f.Add([]byte{0xd2, 0x83, 0x40, 0xa0, 0x40})
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, o := range []DecodeOptions{{}, {Detached: true, Shortest: true, CWTTag: true}} {
			env, err := Decode(data, o)
			if err != nil {
				continue
			}
			if len(env.Signature) == 0 || (o.Detached != (env.Payload == nil)) {
				t.Fatalf("accepted %x as %+v", data, env)
			}
			if env.Unprotected[0]>>5 != 5 {
				t.Fatalf("unprotected header not a map: %x", env.Unprotected)
			}
			// The signed parts re-encode to a message that decodes to
			// the same parts.
			if o.Detached {
				continue
			}
			again, err := Decode(Encode(env.Protected, env.Payload, env.Signature), DecodeOptions{Shortest: true})
			if err != nil || string(again.Protected) != string(env.Protected) || string(again.Payload) != string(env.Payload) || string(again.Signature) != string(env.Signature) {
				t.Fatalf("parts of %x do not round-trip: %v", data, err)
			}
		}
	})
}
