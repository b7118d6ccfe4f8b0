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
		{Name: "pkcs11.Open(Config{})", Call: func() error { return errOf(pkcs11.Open(ctx, pkcs11.Config{})) }},
		{Name: "pkcs11.Store{}.Get", Call: func() error { return errOf((&pkcs11.Store{}).Get(ctx, "k")) }},
		{Name: "pkcs11.Store{}.Create", Call: func() error { return errOf((&pkcs11.Store{}).Create(ctx, keystore.CreateRequest{Label: "k"})) }},
		{Name: "pkcs11.Store{}.List", Call: func() error { return errOf((&pkcs11.Store{}).List(ctx)) }},
		{Name: "pkcs11.Store{}.Login", Call: func() error { return (&pkcs11.Store{}).Login(ctx, "1234") }},
		{Name: "pkcs11.Exporter{}.ExportKey", Call: func() error { return errOf((&pkcs11.Exporter{}).ExportKey(ctx, nil)) }},
		{Name: "tpm.New(nil, Config{})", Call: func() error { return errOf(tpmstore.New(ctx, nil, tpmstore.Config{})) }},
		{Name: "tpm.Store{}.Get", Call: func() error { return errOf((&tpmstore.Store{}).Get(ctx, "k")) }},
		{Name: "tpm.Store{}.Create", Call: func() error { return errOf((&tpmstore.Store{}).Create(ctx, keystore.CreateRequest{Label: "k"})) }},
		{Name: "tpm.Store{}.Quote", Call: func() error { return errOf((&tpmstore.Store{}).Quote(ctx, "ak", make([]byte, 32), []int{0})) }},
		{Name: "attest/tpm.NewVerifier(Config{}).Verify", Call: func() error {
			v, err := tpm.NewVerifier(tpm.Config{}) // trusts no key: refuses everything
			if err != nil {
				return err
			}
			return errOf(v.Verify(ctx, []byte{0xa0}))
		}},
		{Name: "attest/tpm.Verifier{}.Decode", Call: func() error { return errOf((&tpm.Verifier{}).Decode([]byte{0xa0})) }},
		{Name: "attest/tpm.Verifier{}.Verify", Call: func() error { return errOf((&tpm.Verifier{}).Verify(ctx, []byte{0xa0})) }},
		{Name: "file.Store{}.List", Call: func() error { return errOf((&file.Store{}).List(ctx)) }},
	})
}
