package sqlite_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/ztmkit/ztm/ca/ledger/ledgertest"
	"github.com/ztmkit/ztm/ca/ledger/sqlite"
)

// ExampleOpen opens a ledger file, appends a record, and verifies the
// hash chain after reopening.
func ExampleOpen() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "ledger-example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "ca-ledger.db")

	l, err := sqlite.Open(ctx, path, sqlite.Options{})
	if err != nil {
		log.Fatal(err)
	}
	// An Authority appends records; here one made by the conformance kit.
	rec, err := ledgertest.NewIssuance("station-3", time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC))
	if err != nil {
		log.Fatal(err)
	}
	if err := l.Append(ctx, rec, nil); err != nil {
		log.Fatal(err)
	}
	fmt.Println("appended record", rec.Seq)
	l.Close()

	l, err = sqlite.Open(ctx, path, sqlite.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()
	head, err := l.Verify(ctx)
	fmt.Println("verified", head.Seq, "record(s):", err == nil)
	n, _ := l.NextCRLNumber(ctx)
	fmt.Println("next CRL number:", n)
	// Output:
	// appended record 1
	// verified 1 record(s): true
	// next CRL number: 1
}
