package ztm

import (
	"context"
	"crypto"
	"fmt"

	"github.com/ztmkit/ztm/identity/keystore"
	"github.com/ztmkit/ztm/internal/softkey"
)

// KeyExporter is the capability of handing out a key's private part so
// that the station can seal it to a device. Provision uses
// StationConfig.Exporter; by default keys of the software stores
// (identity/keystore/mem and identity/keystore/file) are exported, and keys
// of hardware stores are refused with ErrUnsupportedKey.
//
// # Experimental
//
// Export from a hardware store (a PKCS#11 wrap under the device's key) is
// not implemented yet; a KeyExporter for it may be supplied.
type KeyExporter interface {
	// ExportKey returns the private part of key, which must be a key of a
	// store the exporter serves, or an error wrapping ErrUnsupportedKey.
	ExportKey(ctx context.Context, key keystore.Key) (crypto.PrivateKey, error)
}

// softwareExporter exports keys of the in-process software stores.
type softwareExporter struct{}

var _ KeyExporter = softwareExporter{}

func (softwareExporter) ExportKey(ctx context.Context, key keystore.Key) (crypto.PrivateKey, error) {
	k, ok := key.(*softkey.Key)
	if !ok {
		return nil, fmt.Errorf("%w: key %q is not held in a software store", ErrUnsupportedKey, key.Label())
	}
	return k.Signer(), nil
}
