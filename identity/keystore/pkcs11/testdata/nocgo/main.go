// Command nocgo is built with CGO_ENABLED=0 by TestBuildWithoutCgo: it
// opens a PKCS#11 store both ways and prints what it got.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/ztmkit/ztm/identity/keystore"
	"github.com/ztmkit/ztm/identity/keystore/pkcs11"
)

func main() {
	ctx := context.Background()
	_, err1 := keystore.Open(ctx, "pkcs11:token=line1?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-value=1234")
	_, err2 := pkcs11.Open(ctx, pkcs11.Config{ModulePath: "/usr/lib/softhsm/libsofthsm2.so", TokenLabel: "line1"})
	_, err3 := keystore.Open(ctx, "pkcs11:token=line1") // no module-path: the URI is still checked
	fmt.Println(errors.Is(err1, pkcs11.ErrCgoRequired), errors.Is(err2, pkcs11.ErrCgoRequired), errors.Is(err3, keystore.ErrInvalidURI))
	fmt.Println(err1)
	if err1 == nil || err2 == nil || err3 == nil {
		os.Exit(1)
	}
}
