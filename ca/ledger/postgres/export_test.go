package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ztmkit/ztm/ca"
)

// MigrateTo brings the schema in pool's database to version target only,
// as an older release of this package left it.
func MigrateTo(ctx context.Context, pool *pgxpool.Pool, schema string, target int) error {
	return migrateTo(ctx, pool, schema, target)
}

// AppendDirect appends rec by calling schema version 1's append_batch
// once, as the writer then did, without a Ledger (whose Open would
// migrate).
func AppendDirect(ctx context.Context, pool *pgxpool.Pool, rec *ca.Record) error {
	prefix, suffix, err := splitEncoding(rec)
	if err != nil {
		return err
	}
	_, err = pool.Exec(ctx, `SELECT * FROM ztm_ca.append_batch($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`,
		appendArgs([]*op{{rec: rec, prefix: prefix, suffix: suffix}})[:15]...)
	return err
}

// ChainLockSQL is the statement that takes schema's chain lock, as
// append_batch does, for tests that hold it from another transaction.
func ChainLockSQL(schema string) string {
	return fmt.Sprintf("SELECT pg_advisory_xact_lock(%d, %d)", chainLockClass, chainLockKey(schema))
}

// AppendTogether appends recs as one batch — one transaction, as the
// writer forms them under load — and returns each one's outcome.
func (l *Ledger) AppendTogether(ctx context.Context, recs []*ca.Record) []error {
	batch := make([]*op, len(recs))
	for i, r := range recs {
		prefix, suffix, err := splitEncoding(r)
		if err != nil {
			panic(err)
		}
		batch[i] = &op{ctx: ctx, rec: r.Clone(), prefix: prefix, suffix: suffix, reply: make(chan error, 1)}
	}
	l.runBatch(batch)
	errs := make([]error, len(recs))
	for i, o := range batch {
		errs[i] = <-o.reply
	}
	return errs
}
