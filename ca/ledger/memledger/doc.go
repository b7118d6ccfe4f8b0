// Package memledger is a [ca.Ledger] held in memory: the same hash chain,
// the same checks in Append and the same lookups as the durable ledgers,
// with nothing written anywhere.
//
//	auth, err := ca.New(ca.Config{Signer: key, Chain: chain, Ledger: memledger.New()})
//
// # Not durable
//
// Every record is lost when the process ends (or the Ledger is dropped):
// a certificate issued on a memledger has no lasting record, the next run
// starts an empty chain that knows nothing of its serial, its device or
// its request (so the device could be given a second IDevID), and its
// revocation cannot be published once the process is gone. That breaks the promise of
// [ca.Ledger.Append] that a record is on stable storage before Append
// returns, and it is the one promise this package does not keep.
//
// It is for tests, runnable examples and demonstrations: a vendor's jig
// test that needs an in-process CA, or a program that shows the flow
// without files. A line's CA keeps its ledger in ca/ledger/sqlite (one
// file, the embedded default) or ca/ledger/postgres (several CA
// instances).
//
// It is also what keeps the SDK light to import: the tests and examples of
// the packages a jig imports use it, so a jig's `go mod tidy` downloads no
// database driver it does not link.
//
// # Integrity
//
// Records cannot be changed behind the ledger's back as they can in a
// database file, but the ledger is held to the same checks: Verify
// recomputes the chain with [ca.ChainVerifier], and every lookup checks
// the records it answers with ([ca.VerifyLookup], and their link into the
// chain). A ledger that finds itself corrupt refuses every later append,
// lookup, Revoked and NextCRLNumber with an error wrapping
// [ca.ErrLedgerCorrupt]. It passes the whole ca/ledger/ledgertest
// conformance kit.
package memledger
