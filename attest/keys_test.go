package attest_test

import (
	"context"
	"crypto"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ztmkit/ztm/attest"
	"github.com/ztmkit/ztm/attest/devicesim"
	"github.com/ztmkit/ztm/identity/keystore"
)

// newDevice is a simulated device of the env's model whose attestation key
// is named by kid.
func (e *env) newDevice(t testing.TB, kid string) (*devicesim.Device, crypto.PublicKey) {
	t.Helper()
	key := newKey(t, keystore.ES256)
	d, err := devicesim.New(devicesim.Config{
		Key: key, KeyID: []byte(kid), UEID: testUEID, OEMID: testOEMID, HWModel: testHWModel,
		SWName: "sensor-fw", SWVersion: "2.3.1", HWVersion: "1.0", Images: testImages(), Time: e.clock.Now,
	})
	require.NoError(t, err)
	return d, key.Public()
}

// lookupEnv is an env whose verifier looks keys up in a KeySet, empty at
// first.
func lookupEnv(t testing.TB) (*env, *attest.KeySet) {
	t.Helper()
	var set attest.KeySet // the zero value is ready to use
	e := newEnv(t, envOpts{tweak: func(c *attest.Config) { c.Keys, c.KeyLookup = nil, set.Lookup }})
	return e, &set
}

// TestKeyLookupAddedWhileRunning: a key added to the set while the
// verifier runs is accepted without making a new verifier; a removed or
// replaced key is not.
func TestKeyLookupAddedWhileRunning(t *testing.T) {
	e, set := lookupEnv(t)
	ctx := context.Background()
	ev, err := e.dev.EvidenceCWT(e.nonce(t))
	require.NoError(t, err)
	_, err = e.ver.Verify(ctx, ev)
	require.ErrorIs(t, err, attest.ErrUntrustedSigner, "kid not registered yet")

	require.NoError(t, set.Add([]byte("device-1"), e.key.Public()))
	ev, err = e.dev.EvidenceCWT(e.nonce(t))
	require.NoError(t, err)
	_, err = e.ver.Verify(ctx, ev)
	require.NoError(t, err, "key added while running")
	ev, err = e.dev.EvidenceJWT(e.nonce(t))
	require.NoError(t, err)
	_, err = e.ver.Verify(ctx, ev)
	require.NoError(t, err, "JWT, same key")

	// The kid now names another device's key: the first device's evidence
	// no longer verifies (the cached verifier of the old key is not used).
	set.Remove([]byte("device-1"))
	other, otherKey := e.newDevice(t, "device-1")
	require.NoError(t, set.Add([]byte("device-1"), otherKey))
	ev, err = e.dev.EvidenceCWT(e.nonce(t))
	require.NoError(t, err)
	_, err = e.ver.Verify(ctx, ev)
	require.ErrorIs(t, err, attest.ErrVerification, "evidence of the replaced key")
	ev, err = other.EvidenceCWT(e.nonce(t))
	require.NoError(t, err)
	_, err = e.ver.Verify(ctx, ev)
	require.NoError(t, err, "evidence of the new key")

	set.Remove([]byte("device-1"))
	ev, err = other.EvidenceCWT(e.nonce(t))
	require.NoError(t, err)
	_, err = e.ver.Verify(ctx, ev)
	require.ErrorIs(t, err, attest.ErrUntrustedSigner, "removed key")
}

// TestKeyLookupConcurrent verifies evidence from many goroutines while
// keys are added (run with -race): each device's evidence is accepted once
// its key is in the set.
func TestKeyLookupConcurrent(t *testing.T) {
	e, set := lookupEnv(t)
	const n = 8
	devs := make([]*devicesim.Device, n)
	keys := make([]crypto.PublicKey, n)
	for i := range devs {
		devs[i], keys[i] = e.newDevice(t, fmt.Sprintf("ak-%d", i))
	}
	view := e.ver.WithoutNonces() // evidence verified many times over
	evs := make([][]byte, n)
	for i, d := range devs {
		var err error
		evs[i], err = d.EvidenceCWT(nil)
		require.NoError(t, err)
	}
	var wg sync.WaitGroup
	for i := range devs {
		wg.Add(2)
		go func() {
			defer wg.Done()
			require.NoError(t, set.Add(fmt.Appendf(nil, "ak-%d", i), keys[i]))
		}()
		go func() {
			defer wg.Done()
			for range 20 {
				_, _ = view.Verify(context.Background(), evs[i]) // before or after its key: either
			}
		}()
	}
	wg.Wait()
	require.Equal(t, n, set.Len())
	for i := range devs {
		_, err := view.Verify(context.Background(), evs[i])
		require.NoError(t, err, "device %d", i)
	}
}

func TestKeySetAdd(t *testing.T) {
	var set attest.KeySet
	k1, k2 := newKey(t, keystore.ES256).Public(), newKey(t, keystore.ES256).Public()
	require.NoError(t, set.Add([]byte("a"), k1))
	require.NoError(t, set.Add([]byte("a"), k1), "the same key again")
	require.ErrorIs(t, set.Add([]byte("a"), k2), attest.ErrInvalidConfig, "another key under the same kid")
	require.ErrorIs(t, set.Add(nil, k1), attest.ErrInvalidConfig, "empty kid")
	require.ErrorIs(t, set.Add([]byte("b"), "not a key"), attest.ErrInvalidConfig, "unsupported key")
	require.Equal(t, 1, set.Len())
	got, ok := set.Lookup([]byte("a"))
	require.True(t, ok)
	require.Equal(t, k1, got)
	_, ok = set.Lookup([]byte("b"))
	require.False(t, ok)

	s2, err := attest.NewKeySet(map[string]crypto.PublicKey{"a": k1, "b": k2})
	require.NoError(t, err)
	require.Equal(t, 2, s2.Len())
	_, err = attest.NewKeySet(map[string]crypto.PublicKey{"": k1})
	require.ErrorIs(t, err, attest.ErrInvalidConfig)
}

func TestNewVerifierKeysOrLookup(t *testing.T) {
	var set attest.KeySet
	_, err := attest.NewVerifier(attest.Config{Keys: map[string]crypto.PublicKey{}, KeyLookup: set.Lookup})
	require.ErrorIs(t, err, attest.ErrInvalidConfig)
}

// TestWithoutNonces: the nonce-free view of a verifier checks evidence as
// the verifier does but consumes no nonce, so that a station may appraise
// evidence that its CA, with the same verifier, then accepts once.
func TestWithoutNonces(t *testing.T) {
	e := newEnv(t, envOpts{})
	ctx := context.Background()
	view := e.ver.WithoutNonces()
	require.Nil(t, view.Nonces())
	require.Equal(t, e.nonces, e.ver.Nonces(), "the verifier keeps its nonces")

	ev, err := e.dev.EvidenceCWT(e.nonce(t))
	require.NoError(t, err)
	for range 2 {
		_, err = view.Verify(ctx, ev)
		require.NoError(t, err, "the view consumes no nonce")
	}
	_, err = e.ver.Verify(ctx, ev)
	require.NoError(t, err, "the nonce is still there for the verifier")
	_, err = e.ver.Verify(ctx, ev)
	require.ErrorIs(t, err, attest.ErrNonceReused)

	// The view refuses what the verifier refuses on other grounds.
	bad := append([]byte(nil), ev...)
	bad[len(bad)-1] ^= 1
	_, err = view.Verify(ctx, bad)
	require.ErrorIs(t, err, attest.ErrVerification)

	var zero attest.EATVerifier
	_, err = zero.WithoutNonces().Verify(ctx, ev)
	require.ErrorIs(t, err, attest.ErrInvalidConfig)
}
