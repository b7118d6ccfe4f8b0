package postgres_test

import (
	"context"
	"math/big"
	"testing"

	"github.com/ztmkit/ztm/ca"
	"github.com/ztmkit/ztm/ca/ledger/postgres"
	"github.com/ztmkit/ztm/internal/zerotest"
)

// TestZeroValues is the root package's zero-value walk (TestZeroValues
// there) for the PostgreSQL ledger: Open without a DSN, New without a
// pool and the methods of a zero Ledger return an error, never panic. No
// server is needed.
func TestZeroValues(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	errOf := func(_ any, err error) error { return err }
	zerotest.Run(t, zerotest.Prefixes("postgres", "ca"), []zerotest.Case{
		{Name: "postgres.Open(\"\")", Call: func() error { return errOf(postgres.Open(ctx, "", postgres.Config{})) }},
		{Name: "postgres.New(nil pool)", Call: func() error { return errOf(postgres.New(ctx, nil, postgres.Config{})) }},
		{Name: "postgres.Ledger{}.Head", Call: func() error { return errOf((&postgres.Ledger{}).Head(ctx)) }},
		{Name: "postgres.Ledger{}.Lookup", Call: func() error { return errOf((&postgres.Ledger{}).Lookup(ctx, big.NewInt(1))) }},
		{Name: "postgres.Ledger{}.Revoked", Call: func() error { return errOf((&postgres.Ledger{}).Revoked(ctx)) }},
		{Name: "postgres.Ledger{}.Verify", Call: func() error { return errOf((&postgres.Ledger{}).Verify(ctx)) }},
		{Name: "postgres.Ledger{}.Record", Call: func() error { return errOf((&postgres.Ledger{}).Record(ctx, 1)) }},
		{Name: "postgres.Ledger{}.Append", Call: func() error { return (&postgres.Ledger{}).Append(ctx, &ca.Record{}, nil) }},
	})
}
