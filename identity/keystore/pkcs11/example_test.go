//go:build cgo

package pkcs11_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log"

	"github.com/ztmkit/ztm/identity/keystore"
	"github.com/ztmkit/ztm/identity/keystore/pkcs11"
)

// Opening a token by URI through the registry, as a provisioning station
// does: the import registers the "pkcs11" scheme, and the PIN is read from
// a file. (It needs the token, so it is compiled but not run here;
// TestOpenByURI runs the same steps on a fresh SoftHSM2 token.)
func Example() {
	ctx := context.Background()
	store, err := keystore.Open(ctx, "pkcs11:token=line1;object=station"+
		"?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/etc/ztm/line1.pin")
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()

	key, err := store.Get(ctx, "station")
	if err != nil {
		key, err = store.Create(ctx, keystore.CreateRequest{Label: "station"})
	}
	if err != nil {
		log.Fatal(err)
	}
	digest := sha256.Sum256([]byte("manifest step"))
	sig, err := key.Sign(nil, digest[:], key.Algorithm().SignerOpts())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s signature of %d bytes\n", key.Algorithm(), len(sig))
}

func ExampleParseURI() {
	cfg, err := pkcs11.ParseURI("pkcs11:token=Line%201;object=station" +
		"?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-value=1234")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(cfg.TokenLabel, cfg.Object, cfg.ModulePath)
	fmt.Println(cfg) // the PIN is never printed
	// Output:
	// Line 1 station /usr/lib/softhsm/libsofthsm2.so
	// pkcs11:token=Line%201;object=station?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-value=REDACTED
}

func ExampleParseURI_error() {
	_, err := pkcs11.ParseURI("pkcs11:token=line1;token=line2?module-path=/usr/lib/softhsm/libsofthsm2.so")
	var ue *keystore.URIError
	if errors.As(err, &ue) {
		fmt.Println("wrong part:", ue.Part)
	}
	fmt.Println(err)
	// Output:
	// wrong part: token
	// keystore: invalid URI "pkcs11:token=line1;token=line2?module-path=/usr/lib/softhsm/libsofthsm2.so": token: appears more than once
}
