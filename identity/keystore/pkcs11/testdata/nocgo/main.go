// Command nocgo is built with CGO_ENABLED=0 by TestBuildWithoutCgo: it
// opens a PKCS#11 store both ways and prints what it got. It uses the
// whole API of the package, so that the build without cgo keeps it.
package main

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"os"

	"github.com/ztmkit/ztm/identity/keystore"
	"github.com/ztmkit/ztm/identity/keystore/pkcs11"
)

// The API both builds have.
var (
	_ keystore.Store                                                                   = (*pkcs11.Store)(nil)
	_ keystore.Key                                                                     = (*pkcs11.Key)(nil)
	_ func(*pkcs11.Store, context.Context, string) error                               = (*pkcs11.Store).Login
	_ func(*pkcs11.Store) pkcs11.Config                                                = (*pkcs11.Store).Config
	_ func(*pkcs11.Store) []keystore.Algorithm                                         = (*pkcs11.Store).Algorithms
	_ func(*pkcs11.Key) []byte                                                         = (*pkcs11.Key).ID
	_ func(*pkcs11.Exporter, context.Context, keystore.Key) (crypto.PrivateKey, error) = (*pkcs11.Exporter).ExportKey
	_ func(context.Context, pkcs11.Config, string, string, []byte) error               = pkcs11.InstallWrappingKey
	_                                                                                  = []error{pkcs11.ErrCgoRequired, pkcs11.ErrNotExportable, pkcs11.ErrNoWrappingKey, pkcs11.ErrTokenNotFound}
	_                                                                                  = pkcs11.Config{ID: []byte{1}}
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
