package sqlite

import (
	"errors"
	"fmt"
)

var (
	// ErrNotLedger is returned, wrapped in an *OpenError, by Open for a
	// file that is not a SQLite database (or is damaged) or a database
	// that is not a ztm CA ledger.
	ErrNotLedger = errors.New("sqlite ledger: not a ztm CA ledger")
	// ErrSchemaVersion is returned, wrapped in an *OpenError, by Open for a
	// ledger whose schema this package does not know.
	ErrSchemaVersion = errors.New("sqlite ledger: unsupported schema version")
)

// OpenError reports why Open failed.
type OpenError struct {
	Path   string
	Err    error
	Detail string
}

// Error describes the failure.
func (e *OpenError) Error() string {
	msg := fmt.Sprintf("sqlite ledger: cannot open %q: %v", e.Path, e.Err)
	if e.Detail != "" {
		msg += " (" + e.Detail + ")"
	}
	return msg
}

// Unwrap returns the underlying error.
func (e *OpenError) Unwrap() error { return e.Err }
