package mem_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/ztmkit/ztm/identity/keystore"
	"github.com/ztmkit/ztm/identity/keystore/mem"
)

// A device simulator keeps its keys in memory; deleting a key is its end of
// life, after which handles to it stop signing.
func Example() {
	ctx := context.Background()
	store := mem.New()
	defer store.Close()

	key, _ := store.Create(ctx, keystore.CreateRequest{Label: "attestation", Algorithm: keystore.EdDSA})
	labels, _ := store.List(ctx)
	fmt.Println(labels, key.Algorithm())

	_ = store.Delete(ctx, "attestation")
	_, err := key.Sign(nil, []byte("too late"), keystore.EdDSA.SignerOpts())
	fmt.Println(errors.Is(err, keystore.ErrNotFound))
	// Output:
	// [attestation] EdDSA
	// true
}
