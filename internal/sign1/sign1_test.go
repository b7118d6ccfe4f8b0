package sign1

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/veraison/go-cose"

	"github.com/ztmkit/ztm/identity/keystore"
	"github.com/ztmkit/ztm/internal/detcbor"
)

// TestSigStructureIsDeterministicCBOR: the hand-built Sig_structure is
// byte for byte the core deterministic encoding of RFC 9052 §4.4's array,
// for every length class of the heads.
func TestSigStructureIsDeterministicCBOR(t *testing.T) {
	t.Parallel()
	for _, n := range []int{0, 1, 23, 24, 255, 256, 65535, 65536} {
		prot := bytes.Repeat([]byte{0xa1}, n%300)
		payload := bytes.Repeat([]byte{7}, n)
		want, err := detcbor.Marshal([]any{"Signature1", prot, []byte{}, payload})
		require.NoError(t, err)
		require.Equal(t, want, SigStructure(prot, payload), "payload of %d bytes", n)
	}
}

// TestSignMatchesGoCOSE: a message Sign writes is what go-cose writes for
// the same parts, and go-cose verifies it; Verify accepts go-cose's
// signature and refuses a changed payload.
func TestSignMatchesGoCOSE(t *testing.T) {
	t.Parallel()
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	for _, tc := range []struct {
		name string
		key  crypto.Signer
		alg  keystore.Algorithm
	}{
		{"EdDSA", edKey, keystore.EdDSA},
		{"ES256", ecKey, keystore.ES256},
		{"ES256 behind an opaque signer", opaqueSigner{ecKey}, keystore.ES256},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			signer, err := NewSigner(tc.key, tc.alg)
			require.NoError(t, err)
			prot, err := detcbor.Marshal(map[int64]any{HeaderAlg: tc.alg.COSE(), HeaderKid: []byte("k1")})
			require.NoError(t, err)
			payload := []byte("claims")
			raw, sig, err := Sign(nil, signer, prot, payload)
			require.NoError(t, err)

			var msg cose.Sign1Message
			require.NoError(t, msg.UnmarshalCBOR(raw))
			require.Equal(t, payload, msg.Payload)
			require.Equal(t, sig, msg.Signature)
			again, err := msg.MarshalCBOR()
			require.NoError(t, err)
			require.Equal(t, raw, again, "go-cose re-encodes the message to the same bytes")

			v, err := cose.NewVerifier(cose.Algorithm(tc.alg.COSE()), tc.key.Public())
			require.NoError(t, err)
			require.NoError(t, msg.Verify(nil, v), "go-cose verifies")
			require.NoError(t, (&Message{Protected: prot, Payload: payload, Signature: sig}).Verify(v))
			err = Verify(v, prot, []byte("claimz"), sig)
			require.ErrorIs(t, err, cose.ErrVerification)
		})
	}
}

// opaqueSigner hides the key's type, as a keystore key does, and insists
// on being told the hash.
type opaqueSigner struct{ k *ecdsa.PrivateKey }

func (o opaqueSigner) Public() crypto.PublicKey { return o.k.Public() }

func (o opaqueSigner) Sign(r io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	if opts == nil || opts.HashFunc() != crypto.SHA256 {
		return nil, io.ErrUnexpectedEOF
	}
	return o.k.Sign(r, digest, opts)
}

func TestSignRefusesNil(t *testing.T) {
	t.Parallel()
	_, err := NewSigner(nil, keystore.ES256)
	require.Error(t, err)
	_, _, err = Sign(nil, nil, nil, nil)
	require.Error(t, err)
	require.Error(t, Verify(nil, nil, nil, nil))
}

func TestX5ChainRoundTrip(t *testing.T) {
	t.Parallel()
	certs := []*x509.Certificate{{Raw: []byte("leaf")}, {Raw: []byte("ca")}}
	for n := 1; n <= 2; n++ {
		enc, err := detcbor.Marshal(X5Chain(certs[:n]))
		require.NoError(t, err)
		ders, err := ParseX5Chain(enc)
		require.NoError(t, err)
		require.Len(t, ders, n)
		for i := range ders {
			require.Equal(t, certs[i].Raw, ders[i])
		}
	}
	require.Nil(t, X5Chain(nil))
}

// TestParseX5ChainLimits: one bstr, or an array of 2 to MaxX5Chain bstr;
// nothing else.
func TestParseX5ChainLimits(t *testing.T) {
	t.Parallel()
	bstrs := func(n int) [][]byte {
		out := make([][]byte, n)
		for i := range out {
			out[i] = []byte{byte(i)}
		}
		return out
	}
	mustEnc := func(v any) []byte {
		b, err := detcbor.Marshal(v)
		require.NoError(t, err)
		return b
	}
	_, err := ParseX5Chain(mustEnc(bstrs(MaxX5Chain)))
	require.NoError(t, err)
	for _, tc := range []struct {
		name string
		raw  []byte
		want string
	}{
		{"empty", nil, "neither"},
		{"array of one", mustEnc(bstrs(1)), "neither"},
		{"empty array", mustEnc([][]byte{}), "neither"},
		{"too many", mustEnc(bstrs(MaxX5Chain + 1)), "limit 8"},
		{"array of integers", mustEnc([]int{1, 2}), "item 0 is not a bstr"},
		{"text", mustEnc("cert"), "neither"},
		{"indefinite bstr", []byte{0x5f, 0x41, 0x00, 0xff}, "x5chain"},
		{"trailing data", append(mustEnc([]byte{1}), 0), "trailing"},
		{"truncated", []byte{0x82, 0x41}, "neither"},
	} {
		_, err := ParseX5Chain(tc.raw)
		require.Error(t, err, tc.name)
		require.True(t, strings.Contains(err.Error(), tc.want), "%s: %v", tc.name, err)
	}
}

func FuzzParseX5Chain(f *testing.F) {
	for _, v := range []any{[]byte{1, 2}, [][]byte{{1}, {2}}, [][]byte{{1}}, []int{1, 2}, "x"} {
		b, err := detcbor.Marshal(v)
		require.NoError(f, err)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		ders, err := ParseX5Chain(raw)
		if err != nil {
			return
		}
		if len(ders) < 1 || len(ders) > MaxX5Chain {
			t.Fatalf("%d certificates accepted", len(ders))
		}
		certs := make([]*x509.Certificate, len(ders))
		for i, d := range ders {
			certs[i] = &x509.Certificate{Raw: d}
		}
		enc, err := detcbor.Marshal(X5Chain(certs))
		if err != nil {
			t.Fatal(err)
		}
		again, err := ParseX5Chain(enc)
		if err != nil || len(again) != len(ders) {
			t.Fatalf("accepted %x; its re-encoding %x gives %v", raw, enc, err)
		}
		for i := range ders {
			if !bytes.Equal(again[i], ders[i]) {
				t.Fatalf("certificate %d changed in a round trip", i)
			}
		}
	})
}
