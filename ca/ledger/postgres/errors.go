package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
)

// Sentinel errors. Match them with errors.Is.
var (
	// ErrUnavailable is returned, wrapped in an [*Error], when the database
	// cannot be reached or the connection is lost: the server is down,
	// restarting, refusing connections, or the network failed. For
	// [Ledger.Append] it means nothing was recorded, unless the error also
	// wraps [ErrCommitUnknown]. The Ledger recovers by itself when the
	// database is back: later calls open new connections.
	ErrUnavailable = errors.New("postgres ledger: database unavailable")
	// ErrCommitUnknown is returned by [Ledger.Append] (and
	// [Ledger.NextCRLNumber]), wrapped in an [*Error] that also wraps
	// [ErrUnavailable], when the connection was lost while the COMMIT was
	// in flight: the transaction may or may not have been committed. The
	// ledger never reports success it cannot prove, so an issuance that
	// fails this way may still be in the ledger — recorded, but its
	// certificate never returned — and [ca.Authority.Issue] returns an
	// error. The reverse, a certificate returned but not recorded, cannot
	// happen.
	ErrCommitUnknown = errors.New("postgres ledger: commit outcome unknown")
	// ErrSchemaVersion is returned by [Open] and [New] for a ledger whose
	// schema was made by a newer version of this package.
	ErrSchemaVersion = errors.New("postgres ledger: unsupported schema version")
	// ErrNotLedger is returned by [Open] and [New] when the configured
	// PostgreSQL schema holds tables named like the ledger's but no ledger
	// schema version.
	ErrNotLedger = errors.New("postgres ledger: not a ztm CA ledger")
	// ErrInvalidConfig is returned by [Open] and [New] for a [Config] or
	// connection string they cannot use.
	ErrInvalidConfig = errors.New("postgres ledger: invalid configuration")
)

// Reason says why a database operation failed.
type Reason int

const (
	// ReasonDatabase: the server refused a statement (the underlying error
	// is a *pgconn.PgError) or a value could not be encoded or decoded.
	// Nothing was recorded.
	ReasonDatabase Reason = iota + 1
	// ReasonUnavailable: the database could not be reached, the
	// connection was lost before any COMMIT was sent, or the server gave
	// up on the statement (timeout, lock not available, too many
	// connections). Nothing was recorded.
	ReasonUnavailable
	// ReasonCommitUnknown: the connection was lost (or the answer could
	// not be read) while the COMMIT was in flight; the transaction may
	// have been committed.
	ReasonCommitUnknown

	maxReason
)

var reasonNames = [...]string{
	ReasonDatabase:      "database error",
	ReasonUnavailable:   "database unavailable",
	ReasonCommitUnknown: "commit outcome unknown",
}

// String returns a short description of the reason.
func (r Reason) String() string {
	if r > 0 && r < maxReason {
		return reasonNames[r]
	}
	return fmt.Sprintf("Reason(%d)", int(r))
}

// Error reports a failed database operation. It wraps [ErrUnavailable] for
// [ReasonUnavailable], [ErrUnavailable] and [ErrCommitUnknown] for
// [ReasonCommitUnknown], and always the underlying pgx, network or
// server error.
type Error struct {
	// Op names the ledger operation: "open", "append", "lookup",
	// "revoked", "head", "verify" or "crl number".
	Op     string
	Reason Reason
	Err    error
}

// Error returns "postgres ledger: <op>: <reason>: <underlying error>".
func (e *Error) Error() string {
	return fmt.Sprintf("postgres ledger: %s: %s: %v", e.Op, e.Reason, e.Err)
}

// Unwrap returns the sentinels the Reason stands for and the underlying
// error.
func (e *Error) Unwrap() []error {
	switch e.Reason {
	case ReasonUnavailable:
		return []error{ErrUnavailable, e.Err}
	case ReasonCommitUnknown:
		return []error{ErrUnavailable, ErrCommitUnknown, e.Err}
	}
	return []error{e.Err}
}

// connectionLost reports whether err means the connection or the server
// failed (network errors, EOF, a closed connection, a timeout, the server
// shutting down), as opposed to the server refusing a statement on a
// working connection or a client-side encoding error.
func connectionLost(err error) bool {
	if err == nil {
		return false
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Reason != ReasonDatabase
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		if pe.Severity == "FATAL" || pe.Severity == "PANIC" {
			return true
		}
		switch {
		case strings.HasPrefix(pe.Code, "08"): // connection exception
			return true
		case pe.Code == "57P01", pe.Code == "57P02", pe.Code == "57P03": // admin/crash shutdown, cannot connect now
			return true
		}
		return false
	}
	var ne net.Error
	var ce *pgconn.ConnectError
	return errors.As(err, &ne) || errors.As(err, &ce) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, net.ErrClosed) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, context.DeadlineExceeded) || pgconn.Timeout(err) ||
		strings.Contains(err.Error(), "conn closed") || strings.Contains(err.Error(), "conn busy")
}

// unavailableCode reports whether a server error means the database could
// not serve the request in time or at all: a statement timeout or
// cancellation (57014), a lock not available (55P03), too many
// connections (53300).
func unavailableCode(code string) bool {
	return code == "57014" || code == "55P03" || code == "53300"
}

// serverRefused reports whether err is the server's refusal of a statement
// on a working connection: in a pipeline, the statements after it up to
// the COMMIT were skipped, so nothing was committed.
// uniqueViolation reports whether the server refused a statement for a
// duplicate key in a unique index.
func uniqueViolation(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}

func serverRefused(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && !connectionLost(err)
}

// dbError wraps err for op, classifying it.
func dbError(op string, err error) error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	var pe *pgconn.PgError
	if connectionLost(err) || errors.As(err, &pe) && unavailableCode(pe.Code) {
		return &Error{Op: op, Reason: ReasonUnavailable, Err: err}
	}
	return &Error{Op: op, Reason: ReasonDatabase, Err: err}
}

// isContextErr reports whether err is only the caller's context ending.
func isContextErr(ctx context.Context, err error) bool {
	return ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded))
}
