package keystore_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/ztmkit/ztm/identity/keystore"
	_ "github.com/ztmkit/ztm/identity/keystore/mem" // registers "mem:"
)

// Open a store by URI, make a key, and sign with it.
func ExampleOpen() {
	ctx := context.Background()
	store, err := keystore.Open(ctx, "mem:")
	if err != nil {
		panic(err)
	}
	defer store.Close()

	key, err := store.Create(ctx, keystore.CreateRequest{Label: "station-1"})
	if err != nil {
		panic(err)
	}
	digest := sha256.Sum256([]byte("manufacturing step"))
	sig, err := key.Sign(rand.Reader, digest[:], key.Algorithm().SignerOpts())
	if err != nil {
		panic(err)
	}
	fmt.Println(key.Label(), key.Algorithm())
	fmt.Println("verifies:", ecdsa.VerifyASN1(key.Public().(*ecdsa.PublicKey), digest[:], sig))

	_, err = keystore.Open(ctx, "hsm:slot=1")
	fmt.Println(errors.Is(err, keystore.ErrInvalidURI))
	// Output:
	// station-1 ES256
	// verifies: true
	// true
}

// Labels become file names and token object labels, so anything that could
// escape a directory is refused.
func ExampleValidateLabel() {
	for _, label := range []string{"device-0042.idevid", "../x", ""} {
		fmt.Printf("%q: %v\n", label, keystore.ValidateLabel(label))
	}
	// Output:
	// "device-0042.idevid": <nil>
	// "../x": keystore: invalid label "../x": must start with a letter or digit
	// "": keystore: invalid label "": empty
}
