// Package sqlite is the embedded [ca.Ledger]: one SQLite file (through the
// pure-Go modernc.org/sqlite driver) holding the hash-chained records of a
// CA.
//
//	l, err := sqlite.Open(ctx, "ledger.db", sqlite.Options{})
//	if err != nil { … }
//	defer l.Close()
//	auth, err := ca.New(ca.Config{Signer: key, Chain: chain, Ledger: l})
//
// # Durability
//
// The database runs in WAL mode with synchronous=FULL: a commit returns
// only after the log is on stable storage, and Append answers only after
// its commit. The file carries application_id "ZTML" and a schema version
// (user_version); [Open] refuses a file that is not a SQLite database, a
// database that is not a ledger ([ErrNotLedger]) or a newer schema
// ([ErrSchemaVersion]).
//
// # Group commit
//
// A single writer goroutine owns the write connection. It takes every
// append waiting (up to [Options].MaxBatch), runs them in one BEGIN
// IMMEDIATE transaction — checks, chain linking and INSERT per record —
// commits once and answers each caller. An append refused by a check
// (serial or idempotency key already recorded, quota exceeded, unknown or
// revoked serial) fails
// alone, leaving the others to commit. When the previous transaction held
// more than one write — callers are concurrent — the writer lingers up to
// [Options].Linger (default [DefaultLinger]) for more appends before it
// commits, so one fsync serves more of them; after a transaction of one
// write it never waits, so a lone caller is not delayed. [Ledger.Stats]
// reports the mean batch size. Reads use a pool of other connections and
// see committed data only.
//
// On a machine with few cores, give the process one more P than cores
// (GOMAXPROCS): a goroutine blocked in fsync holds its P until the
// runtime takes it back, which under full load often comes after the sync
// has ended, so a core sits idle while the disk syncs. Measured on two
// cores with GOMAXPROCS=3, Station.Provision (the whole-line benchmark in
// internal/linebench, CA ledger and chain store both syncing) ran 16–20%
// faster.
//
// # Integrity
//
// [Open] and [Ledger.Verify] check the whole ledger: the hash chain
// (ca.ChainVerifier), the schema text against the one this package makes,
// PRAGMA integrity_check (every page, and every index entry against its
// row: a damaged index is found before a lookup through it can answer
// wrongly or miss a repeat), and, with [Options].Checkpoints, the newest
// checkpoint the CA signed: a ledger shorter than it or different from it
// (its tail cut, or cut and rewritten) is refused with a
// *ca.CheckpointError naming both heads, as is a CRL counter set back
// below it. Every lookup also checks the records it read (ca.VerifyLookup)
// and that they are linked into the chain, and refuses rather than answer
// with another record. Once any of these finds damage, the Ledger refuses
// appends, lookups, revocation lists and CRL numbers with an error
// wrapping ca.ErrLedgerCorrupt; repair (see ca's package documentation:
// REINDEX for damaged indexes, else [Restore] of a backup) and open it
// again. [Options].QuickOpen skips the chain walk at open, for very large
// ledgers.
//
// # Backups
//
// [Ledger.Backup] writes a consistent copy while the CA runs (VACUUM
// INTO reads one snapshot; appends go on). [Restore] puts a backup in
// place only after opening it with the CA's checkpoints and verifying it
// whole: a damaged backup, or one older than the newest checkpoint (its
// later records would be lost), is refused. Take a backup after each
// checkpoint, and keep it, like the checkpoints, off the ledger's disk.
//
// # Schema
//
// Table records (seq, kind, serial, subject, pubkey_hash, profile,
// requester, evidence, step, time_ns, cert, reason, prev_hash, hash,
// idem_key, requester_serial, device, key_provenance), with unique
// indexes on the serial of issuances and of revocations and on the
// idempotency key (which also serve lookups), an index for the revocation
// list, one for quota counts and one for each device's issuances (no
// per-request query scans the table); table crl_number holds the last CRL
// number. Open migrates a ledger of an older schema version in place
// (version 1 had no idem_key, 2 no requester_serial, 3 no device, 4 no
// key_provenance; records made before version 5 read as
// ca.ProvenanceUnrecorded and keep their hashes).
package sqlite
