package queue_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/ztmkit/ztm/ca/ledger/sqlite"
	"github.com/ztmkit/ztm/internal/estline"
)

// newCALine is the CA side of a line for the queue's crash tests
// (internal/estline: a CA, a verifier that knows one device model, and an
// EST server on 127.0.0.1 over TLS) with its ledger in a SQLite file: the
// tests count what the CA durably committed while the client was killed.
func newCALine(t testing.TB) *estline.Line {
	t.Helper()
	ledger, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "ledger.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ledger.Close() })
	return estline.New(t, estline.Config{Ledger: ledger})
}
