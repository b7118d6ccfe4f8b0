package ztm_test

import (
	"context"
	"testing"

	"github.com/ztmkit/ztm/attest/tpm"
	"github.com/ztmkit/ztm/identity/keystore"
	"github.com/ztmkit/ztm/identity/keystore/file"
	"github.com/ztmkit/ztm/identity/keystore/pkcs11"
	tpmstore "github.com/ztmkit/ztm/identity/keystore/tpm"
)

// TestZeroValuesBackends is TestZeroValues for the hardware key stores
// and the TPM quote verifier. (The PostgreSQL ledger's cases are in
// ca/ledger/postgres's TestZeroValues.)
func TestZeroValuesBackends(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	errOf := func(_ any, err error) error { return err }
	runZeroCases(t, []zeroCase{
		{"pkcs11.Open(Config{})", func() error { return errOf(pkcs11.Open(ctx, pkcs11.Config{})) }},
		{"pkcs11.Store{}.Get", func() error { return errOf((&pkcs11.Store{}).Get(ctx, "k")) }},
		{"pkcs11.Store{}.Create", func() error { return errOf((&pkcs11.Store{}).Create(ctx, keystore.CreateRequest{Label: "k"})) }},
		{"pkcs11.Store{}.List", func() error { return errOf((&pkcs11.Store{}).List(ctx)) }},
		{"pkcs11.Store{}.Login", func() error { return (&pkcs11.Store{}).Login(ctx, "1234") }},
		{"pkcs11.Exporter{}.ExportKey", func() error { return errOf((&pkcs11.Exporter{}).ExportKey(ctx, nil)) }},
		{"tpm.New(nil, Config{})", func() error { return errOf(tpmstore.New(ctx, nil, tpmstore.Config{})) }},
		{"tpm.Store{}.Get", func() error { return errOf((&tpmstore.Store{}).Get(ctx, "k")) }},
		{"tpm.Store{}.Create", func() error { return errOf((&tpmstore.Store{}).Create(ctx, keystore.CreateRequest{Label: "k"})) }},
		{"tpm.Store{}.Quote", func() error { return errOf((&tpmstore.Store{}).Quote(ctx, "ak", make([]byte, 32), []int{0})) }},
		{"attest/tpm.NewVerifier(Config{}).Verify", func() error {
			v, err := tpm.NewVerifier(tpm.Config{}) // trusts no key: refuses everything
			if err != nil {
				return err
			}
			return errOf(v.Verify(ctx, []byte{0xa0}))
		}},
		{"attest/tpm.Verifier{}.Decode", func() error { return errOf((&tpm.Verifier{}).Decode([]byte{0xa0})) }},
		{"attest/tpm.Verifier{}.Verify", func() error { return errOf((&tpm.Verifier{}).Verify(ctx, []byte{0xa0})) }},
		{"file.Store{}.List", func() error { return errOf((&file.Store{}).List(ctx)) }},
	})
}
