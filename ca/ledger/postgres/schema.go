package postgres

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// migrations are the schema versions in order: migrations[i] takes the
// schema from version i to i+1. {s} stands for the quoted schema name.
// Released migrations are never edited; a change is a new entry.
var migrations = [...]string{
	// 1: the ledger.
	`CREATE TABLE {s}.records (
		seq         bigint   PRIMARY KEY CHECK (seq > 0),
		kind        smallint NOT NULL CHECK (kind IN (1, 2)),
		serial      bytea    NOT NULL CHECK (length(serial) BETWEEN 1 AND 64),
		subject     text     NOT NULL,
		pubkey_hash bytea,
		profile     text     NOT NULL,
		requester   text     NOT NULL,
		evidence    bytea,
		step        bytea,
		time_ns     bigint   NOT NULL,
		cert        bytea,
		reason      smallint NOT NULL CHECK (reason BETWEEN 0 AND 255),
		prev_hash   bytea    NOT NULL,
		hash        bytea    NOT NULL
	);
	CREATE UNIQUE INDEX records_issued_serial  ON {s}.records (serial) WHERE kind = 1;
	CREATE UNIQUE INDEX records_revoked_serial ON {s}.records (serial) WHERE kind = 2;
	CREATE INDEX records_quota       ON {s}.records (requester, time_ns) WHERE kind = 1;
	CREATE INDEX records_revocations ON {s}.records (seq) WHERE kind = 2;
	CREATE TABLE {s}.head (
		id integer PRIMARY KEY CHECK (id = 1)
	);
	INSERT INTO {s}.head (id) VALUES (1);
	CREATE TABLE {s}.crl_number (
		id integer PRIMARY KEY CHECK (id = 1),
		n  bigint  NOT NULL CHECK (n >= 0)
	);
	INSERT INTO {s}.crl_number (id, n) VALUES (1, 0);`,
}

// SchemaVersion is the schema version this package creates and reads.
const SchemaVersion = len(migrations)

// lockClass is the first key of the advisory lock that serializes
// migrations ("ZTML"); the second is hashtext(schema name).
const lockClass = 0x5A544D4C

var schemaName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// migrate brings the schema to SchemaVersion, creating it when absent. It
// runs in one transaction holding a transaction-level advisory lock, so
// instances starting at once apply each migration exactly once: the
// second waits for the first to commit and then finds the schema current.
func migrate(ctx context.Context, pool *pgxpool.Pool, schema string) error {
	q := func(s string) string { return strings.ReplaceAll(s, "{s}", pgx.Identifier{schema}.Sanitize()) }
	tx, err := pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		return dbError("open", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1, hashtext($2))", int32(lockClass), schema); err != nil {
		return dbError("open", err)
	}
	// After the lock every statement sees what an earlier holder committed.
	var hasSchema, hasVersion, hasRecords bool
	err = tx.QueryRow(ctx, `SELECT
			EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1),
			to_regclass($2) IS NOT NULL,
			to_regclass($3) IS NOT NULL`,
		schema, q("{s}.schema_version"), q("{s}.records")).Scan(&hasSchema, &hasVersion, &hasRecords)
	if err != nil {
		return dbError("open", err)
	}
	version := 0
	switch {
	case hasVersion:
		if err := tx.QueryRow(ctx, q("SELECT coalesce(max(version), 0) FROM {s}.schema_version")).Scan(&version); err != nil {
			return dbError("open", err)
		}
	case hasRecords:
		return fmt.Errorf("postgres ledger: schema %q has a records table but no schema_version: %w", schema, ErrNotLedger)
	default:
		if !hasSchema {
			if _, err := tx.Exec(ctx, q("CREATE SCHEMA {s}")); err != nil {
				return dbError("open", err)
			}
		}
		if _, err := tx.Exec(ctx, q(`CREATE TABLE {s}.schema_version (
				version    integer     PRIMARY KEY CHECK (version > 0),
				applied_at timestamptz NOT NULL DEFAULT now()
			)`)); err != nil {
			return dbError("open", err)
		}
	}
	if version > SchemaVersion {
		return fmt.Errorf("postgres ledger: schema %q is at version %d, this package knows up to %d: %w", schema, version, SchemaVersion, ErrSchemaVersion)
	}
	if version == SchemaVersion {
		return nil // nothing to commit; the deferred rollback releases the lock
	}
	for v := version + 1; v <= SchemaVersion; v++ {
		if _, err := tx.Exec(ctx, q(migrations[v-1])); err != nil {
			return fmt.Errorf("postgres ledger: migration to schema version %d: %w", v, dbError("open", err))
		}
		if _, err := tx.Exec(ctx, q("INSERT INTO {s}.schema_version (version) VALUES ($1)"), v); err != nil {
			return dbError("open", err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return dbError("open", err)
	}
	return nil
}
