// Package chainstore keeps devices' manifest chains in a SQLite database
// (modernc.org/sqlite, no cgo), so that a station or the OEM can append
// steps as they are signed, read a device's chain back byte for byte, and
// list the devices of a lot.
//
// # Durability
//
// The database runs in WAL mode with synchronous=FULL: once [Store.Append]
// returns, the step is on disk and survives a crash of the process or the
// machine. A step is written in one transaction, whole or not at all.
//
// # Links
//
// Append checks a step's place in its device's chain before writing it:
// sequence 0 for a device's first step, otherwise the next sequence number
// and a previous-step digest equal to the digest of the exact bytes of the
// stored predecessor. So a fork (a second step for a sequence number) or a
// broken link cannot be stored. The check is [manifest.CheckAppend], the
// rule every step store applies (package memchain's too), and a refusal is
// a [*manifest.AppendError]. Append does not check signatures or
// policy: that is [manifest.Verify]'s job, on the chain read back.
//
// # Concurrency
//
// A [Store] is safe for concurrent use. Concurrent appends share one
// transaction and one sync to disk (group commit): a single writer takes
// every append waiting, checks and writes each in turn — so two steps of one
// device in the same batch still link — and commits once, before any of them
// returns. Under concurrent load the writer waits up to [Linger] for more
// appends before committing, so that one sync serves more stations; a lone
// caller never waits. [Store.AppendAll] stores several steps of one device
// in one commit, all or none. A refused step is answered on its own and
// changes nothing. Several processes may open the same database file: SQLite's locking
// serializes their transactions (each batch takes the write lock first).
package chainstore
