package ledgertest_test

import (
	"path/filepath"
	"testing"

	"github.com/ztmkit/ztm/ca"
	"github.com/ztmkit/ztm/ca/ledger/ledgertest"
	"github.com/ztmkit/ztm/ca/ledger/sqlite"
)

// A ledger backend's test runs the kit with a constructor for an empty
// ledger. This is the shape of the SQLite ledger's own conformance test.
func ExampleRun() {
	conformance := func(t *testing.T) {
		ledgertest.Run(t, func(t *testing.T) ca.Ledger {
			l, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "ledger.db"), sqlite.Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { l.Close() })
			return l
		}, ledgertest.Config{})
	}
	_ = conformance // in a _test.go file: func TestConformance(t *testing.T) { … }
}
