package sqlite_test

import (
	"context"
	"math/big"
	"testing"

	"github.com/ztmkit/ztm/ca"
	"github.com/ztmkit/ztm/ca/ledger/sqlite"
	"github.com/ztmkit/ztm/internal/zerotest"
)

// TestZeroValues is the root package's zero-value walk (TestZeroValues
// there) for the SQLite ledger: Open without a path and the methods of a
// zero Ledger return an error, never panic.
func TestZeroValues(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	errOf := func(_ any, err error) error { return err }
	zerotest.Run(t, zerotest.Prefixes("sqlite", "ca"), []zerotest.Case{
		{Name: "sqlite.Open(\"\")", Call: func() error { return errOf(sqlite.Open(ctx, "", sqlite.Options{})) }},
		{Name: "sqlite.Ledger{}.Head", Call: func() error { return errOf((&sqlite.Ledger{}).Head(ctx)) }},
		{Name: "sqlite.Ledger{}.Lookup", Call: func() error { return errOf((&sqlite.Ledger{}).Lookup(ctx, big.NewInt(1))) }},
		{Name: "sqlite.Ledger{}.Append", Call: func() error { return (&sqlite.Ledger{}).Append(ctx, &ca.Record{}, nil) }},
	})
}
