// Package memchain keeps devices' manifest chains in memory: a step store
// (a ztm.StepStore) with the same checks and answers as package chainstore,
// and no database.
//
// Memory only: every step is lost when the process ends. It is for tests,
// examples and demos. A line keeps its steps in package chainstore
// (manifest/chainstore, SQLite) or in its own database, behind the
// ztm.StepStore interface.
//
// Most users need [New], then [Store.AppendAll] (or [Store.Append]) as steps
// are signed, and [Store.Chain] to read a device's chain back for
// [manifest.Verify].
//
// # Links
//
// An append is checked with [manifest.CheckAppend], the rule every step
// store applies: sequence 0 for a device's first step, otherwise the next
// sequence number and a previous-step digest equal to the digest of the
// exact bytes of the stored predecessor. A fork or a broken link is refused
// with a [*manifest.AppendError] and changes nothing. Steps are parsed with
// [manifest.ParseSignedStep], so malformed input is refused with its
// decoding error. Signatures and policy are not checked: that is
// [manifest.Verify]'s job, on the chain read back.
//
// # Copies
//
// The Store keeps its own copy of every step's bytes, and every step or
// byte slice it returns is a fresh copy: a caller changing a slice it
// passed in or got back changes nothing stored.
//
// # Concurrency
//
// A [Store] is safe for concurrent use. [Store.AppendAll] stores several
// steps of one device together, all or none; of two rival steps for one
// place in a chain, exactly one is stored.
package memchain
