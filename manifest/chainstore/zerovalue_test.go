package chainstore_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/ztmkit/ztm"
	"github.com/ztmkit/ztm/internal/zerotest"
	"github.com/ztmkit/ztm/manifest"
	"github.com/ztmkit/ztm/manifest/chainstore"
)

// A *chainstore.Store is a ztm.StepStore: the store a Station keeps its
// steps in on a line.
var _ ztm.StepStore = (*chainstore.Store)(nil)

// TestZeroValues is the root package's zero-value walk (TestZeroValues
// there) for the chain store: Open without a path and the methods of a
// zero Store return an error, never panic.
func TestZeroValues(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	signer, err := manifest.NewStepSigner(key, manifest.SignOptions{Issuer: "s"})
	require.NoError(t, err)
	signed, err := signer.Sign(rand.Reader, &manifest.Step{Name: "final-test", Subject: []byte{1, 2, 3}, Time: time.Unix(1700000000, 0)})
	require.NoError(t, err)
	errOf := func(_ any, err error) error { return err }
	zerotest.Run(t, zerotest.Prefixes("chainstore", "manifest"), []zerotest.Case{
		{Name: "chainstore.Store{}.Last", Call: func() error { return errOf((&chainstore.Store{}).Last(ctx, []byte{1})) }},
		{Name: "chainstore.Store{}.AppendAll", Call: func() error { return errOf((&chainstore.Store{}).AppendAll(ctx, signed.Raw)) }},
		{Name: "chainstore.Store{}.Close", Call: func() error { return (&chainstore.Store{}).Close() }},
		{Name: "chainstore.Open(\"\")", Call: func() error { return errOf(chainstore.Open(ctx, "")) }},
	})
}
