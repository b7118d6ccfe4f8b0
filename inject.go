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
// For keys generated in a PKCS#11 token, use the exporter of
// identity/keystore/pkcs11 (pkcs11.Exporter): it exports keys made
// exportable only under a wrapping key the token's security officer
// installed as trusted. TPM keys are never exportable.
type KeyExporter interface {
	// ExportKey returns the private part of key, which must be a key of a
	// store the exporter serves. Keys it does not serve are refused with
	// an error: the default exporter's wraps ErrUnsupportedKey, a
	// backend's its own sentinel (pkcs11.ErrNotExportable).
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
