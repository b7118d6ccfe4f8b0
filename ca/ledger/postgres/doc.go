// Package postgres is the [ca.Ledger] for several CA instances: the
// hash-chained records of one issuing CA in a PostgreSQL database (through
// github.com/jackc/pgx/v5 and its pool), shared by every instance, so that
// instances behind a load balancer act as one CA — no serial issued twice,
// no quota granted twice, one linear chain, one CRL.
//
//	l, err := postgres.Open(ctx, "postgres://ca@db.example/ztm", postgres.Config{})
//	if err != nil { … }
//	defer l.Close()
//	auth, err := ca.New(ca.Config{Signer: key, Chain: chain, Ledger: l})
//
// [Open] connects with its own pool; [New] takes a *pgxpool.Pool the
// application already has. Both create or migrate the schema.
//
// # When to choose PostgreSQL
//
// Choose github.com/ztmkit/ztm/ca/ledger/sqlite for one CA process on one
// machine: no server to run, and the fastest ledger (one local fsync per
// group commit). Choose this package when more than one process issues
// for the same CA — several instances behind a load balancer, or a standby
// that must take over with the ledger intact — or when the ledger must
// live on a database server that is backed up and replicated with the
// rest of the site's data. Every instance then sees every issuance,
// revocation and quota decision of every other at once. Each instance
// pays a network round trip per group commit, and all instances take
// turns on one lock to extend the chain (see below), so one instance is
// not faster than SQLite; what scales is the number of callers the CA
// instances serve, since signing — the expensive part of Issue — runs on
// every instance in parallel.
//
// # Schema
//
// The ledger lives in its own PostgreSQL schema, "ztm_ca" unless
// [Config].Schema says otherwise (several issuing CAs can share a
// database under different schemas):
//
//   - records (seq, kind, serial, subject, pubkey_hash, profile,
//     requester, evidence, step, time_ns, cert, reason, prev_hash, hash,
//     idem_key, requester_serial, device, key_provenance): one row per
//     [ca.Record], seq the primary key, unique indexes on the serial of
//     issuances and of revocations and on the idempotency key, an index
//     for quota counts and one for each device's issuances;
//   - crl_number: one row, the last CRL number;
//   - cbor_uint and append_batch: the functions that link records (below);
//   - schema_version: one row per migration applied.
//
// [Open] and [New] apply the migrations this package knows (up to
// [SchemaVersion]) in order, in one transaction that holds a
// transaction-level advisory lock: instances starting at once do not
// race — the first migrates, the others wait, then find the schema
// current. A schema made by a newer version of the package gives
// [ErrSchemaVersion]; tables named like the ledger's without a version,
// [ErrNotLedger]. Upgrade every instance together: once a newer instance
// has migrated the schema, an older one still running fails its appends
// (schemas 3, 4, 5 and 6 each replaced append_batch) — it never writes a wrong
// record — and refuses to open again.
//
// # Appending: the chain lock and group commit
//
// Each Ledger has one writer goroutine. It takes every append waiting (up
// to [Config].MaxBatch) and sends, in one pipelined round trip, BEGIN, a
// call to the append_batch function with the batch as arrays, and COMMIT.
// append_batch takes the chain lock — a transaction-level advisory lock
// (pg_advisory_xact_lock), the same for every appending transaction of
// every instance on the schema, held until it ends — reads the chain's
// tail, and then, for each record in order: checks it (requester
// certificate unknown or revoked, serial already issued, idempotency key
// already recorded, quota, revocation of an unknown or revoked serial)
// against the ledger and the records of the batch accepted before it;
// numbers it; and computes its hash, SHA-256 over the previous hash and
// the record's canonical encoding, which the client sends cut around the
// sequence number so that the database only inserts CBOR(seq). Accepted
// records are inserted with one statement. The writer checks every hash
// the database returns against [ca.Record.ChainHash].
//
// A batch of issuances is first sent the fast way: append_batch does not
// look up whether its serials and idempotency keys are already recorded
// (three index lookups and three planned statements per batch) and lets
// the unique indexes refuse a duplicate; the transaction then fails whole
// and the writer sends the batch again the careful way, which refuses just
// the duplicates. Duplicates are repeated requests, rare; the fast way
// cut the server's CPU per issue by about a third on one instance (43 →
// 30 µs in BenchmarkIssueParallel) and by an eighth on three (90 → 78).
// Batches with revocations always go the careful way. Requester
// certificates ([ca.Record.RequesterSerial]) are looked up either way
// (two statements, only for a batch that names one): their refusal is an
// answer, not a constraint.
//
// Statements after the lock see every record committed by the lock's
// previous holder (READ COMMITTED takes a new snapshot per statement), so
// the chain stays linear, a serial is issued once (the unique index is
// the backstop), and a quota is decided on the real count: two instances
// cannot both grant the last certificate of a quota. A refusal fails one
// append and not the batch; the others commit.
//
// Design choice and measurements. A first version linked records in the
// client: one round trip to lock and read the tail and the checks' facts,
// a second to insert and commit, so the chain lock was held across a
// client round trip. Linking inside the database holds the lock only for
// the function and the commit's fsync. Measured on two shared cores with
// PostgreSQL 15 on the same machine (fsync on), appends of ready records
// from 64 goroutines, µs per record, ranges over three interleaved runs
// (BenchmarkAppendParallel and BenchmarkAppendParallel3, whose rtt=1ms
// variant goes through a proxy adding 0.5 ms each way):
//
//	                         client-side linking   in-database linking
//	1 instance, loopback          44–96                 58–62
//	3 instances, loopback         99–129                89–155
//	1 instance, 1 ms RTT         194–243               135–175
//	3 instances, 1 ms RTT        328–405               133–247
//
// On loopback the two are alike (the PL/pgSQL loop costs a little more
// per record than a bulk insert); once the database is across a network,
// and the more instances contend, holding the lock for a round trip costs
// more, so the package links in the database. Issue itself
// (BenchmarkIssueParallel, signing included, PostgreSQL sharing the two
// cores) takes about 220 µs per certificate on one instance and 240 µs
// spread over three, against 110 µs for the raw CSR check and signature.
// The chain lock was first a row lock on a one-row head table. Locking a
// row writes the lock into the row, and a WAL record, on every batch;
// the advisory lock serializes the same way without either, and cut the
// server's CPU per appended record by a fifth with three instances
// (BenchmarkAppendParallel3: 87–97 → 71–72 µs per record). Its keys are
// fixed per schema when the schema is created, so ledgers in two schemas
// of one database do not wait for each other; pg_locks lists it as an
// advisory lock.
// Two writers per instance, each on its own connection, measured slower
// on loopback (batches halve, and the instance contends with itself for
// the lock), so there is one.
//
// The function's statements, and the package's reads, are planned at
// each execution: a plan cached while the table was small (before
// autovacuum's first ANALYZE) scanned the wrong index once the table had
// grown — appends were five times slower at 20,000 records.
//
// # Revocations and CRL numbers
//
// Nothing is cached in the Ledger: [Ledger.Lookup] and [Ledger.Revoked]
// read the database, so a revocation committed through one instance is in
// the next answer — and the next CRL — of every instance.
// [Ledger.NextCRLNumber] increments the crl_number row under its row lock
// in a transaction of its own and returns the number only once committed:
// numbers strictly increase across all instances.
//
// # Integrity
//
// With [Config].Checkpoints, [Open] and [New] check the ledger's length,
// the record at the newest checkpoint the CA signed and the CRL counter
// against it, and refuse a cut or rewritten ledger with a
// *ca.CheckpointError naming both heads; [Ledger.Verify] walks the whole
// chain and checks it against the checkpoint in one snapshot. When the
// amcheck extension is installed in the database (CREATE EXTENSION
// amcheck, as a superuser), Verify also runs bt_index_check with
// heapallindexed on every index of the ledger's schema, which finds index
// pages out of order and rows an index lacks; without it, only lookups'
// own checks (ca.VerifyLookup, and that the records read are linked into
// the chain) stand between a damaged index and a wrong answer. Once
// damage is found, the Ledger refuses appends, lookups, revocation lists
// and CRL numbers with an error wrapping ca.ErrLedgerCorrupt until it is
// repaired (REINDEX SCHEMA, or a restore from backup, then Verify) and
// opened again. While it runs, a Ledger also compares where the database
// linked each batch with the last record it appended itself: a tail cut
// behind its back is seen at the next append, which is then not answered
// with success (its records are committed, but no certificate is
// returned), and the Ledger refuses from then on.
//
// # Failures
//
// Append answers only after its COMMIT is acknowledged, with
// synchronous_commit on. If the database is unreachable or the connection
// is lost before the COMMIT is sent, the append fails with an [*Error]
// wrapping [ErrUnavailable] (the writer first retries such a batch a few
// times within about 0.75 s) and nothing is recorded. If the connection is
// lost while the COMMIT is in flight, the transaction may or may not have
// committed: the Ledger does not report success it cannot prove, and
// fails with [ErrCommitUnknown] (which also matches ErrUnavailable). An
// issuance that fails so may therefore be in the ledger although
// [ca.Authority.Issue] returned an error and no certificate: recorded,
// never returned — harmless, and visible to an audit as an issuance no
// device holds. The reverse, a certificate returned but not recorded,
// cannot happen. A batch that exceeds [Config].BatchTimeout (waiting for
// the chain lock, say) is cancelled by the server a little before the
// client gives up, so it normally fails with ErrUnavailable and is rolled
// back. After a lost connection the Ledger empties a pool of its own and
// pings the writer's connection before its next batch, so connections
// that died with a server restart fail before a COMMIT is sent; when the
// database is back the pool opens new connections and the next calls
// succeed — nothing needs reopening.
//
// # Connections and privileges
//
// PostgreSQL 12 or later is required. The role needs CREATE on the database the first time (to create the
// schema, its tables and functions) and then SELECT, INSERT and UPDATE on
// the tables and EXECUTE on the functions. Each Ledger uses one
// connection for its writer and others for reads and CRL numbers; [Open]
// sizes its pool to at least 8 unless the connection string sets
// pool_max_conns.
package postgres
