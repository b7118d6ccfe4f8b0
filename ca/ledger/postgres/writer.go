package postgres

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ztmkit/ztm/ca"
)

// op is one append waiting for the writer.
type op struct {
	ctx   context.Context
	rec   *ca.Record // a private clone; the writer fills Seq, PrevHash, Hash
	quota *ca.Quota
	reply chan error
}

// Append implements [ca.Ledger]. Concurrent calls on one Ledger share one
// transaction and one commit (group commit); each is answered after that
// commit. Calls on Ledgers in other processes wait for the chain lock
// (see the package documentation). A database failure gives an [*Error]
// wrapping [ErrUnavailable]; one during the COMMIT also wraps
// [ErrCommitUnknown] — the record may then be in the ledger although
// Append failed.
func (l *Ledger) Append(ctx context.Context, rec *ca.Record, quota *ca.Quota) error {
	if rec == nil || rec.Serial == nil || rec.Serial.Sign() <= 0 {
		return errors.New("postgres ledger: record needs a positive serial")
	}
	if rec.Kind != ca.KindIssuance && rec.Kind != ca.KindRevocation {
		return fmt.Errorf("postgres ledger: invalid record kind %d", rec.Kind)
	}
	if len(rec.Serial.Bytes()) > 64 {
		return errors.New("postgres ledger: serial longer than 64 bytes")
	}
	if err := l.checkOpen(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	r := rec.Clone()
	r.Time = r.Time.UTC()
	r.Seq, r.PrevHash, r.Hash = 0, nil, nil
	var q *ca.Quota
	if quota != nil && r.Kind == ca.KindIssuance {
		qq := *quota
		q = &qq
	}
	o := &op{ctx: ctx, rec: r, quota: q, reply: make(chan error, 1)}
	select {
	case l.queue <- o:
	case <-l.closing:
		return ca.ErrLedgerClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	var err error
	select {
	case err = <-o.reply:
	case <-l.done:
		// The writer stopped; it answered o if it took it.
		select {
		case err = <-o.reply:
		default:
			return ca.ErrLedgerClosed
		}
	case <-ctx.Done():
		return ctx.Err()
	}
	if err != nil {
		return err
	}
	rec.Seq, rec.PrevHash, rec.Hash = r.Seq, r.PrevHash, r.Hash
	return nil
}

// run is the writer: it takes the first waiting append, then every append
// already queued (up to MaxBatch), and commits them in one transaction.
func (l *Ledger) run() {
	defer close(l.done)
	batch := make([]*op, 0, l.cfg.MaxBatch)
	for {
		batch = batch[:0]
		select {
		case o := <-l.queue:
			batch = append(batch, o)
		case <-l.closing:
			for {
				select {
				case o := <-l.queue:
					o.reply <- ca.ErrLedgerClosed
				default:
					return
				}
			}
		}
	drain:
		for len(batch) < l.cfg.MaxBatch {
			select {
			case o := <-l.queue:
				batch = append(batch, o)
			default:
				break drain
			}
		}
		l.runBatch(batch)
	}
}

// retryDelays are the waits before running a batch again when the
// database was unreachable before its COMMIT was sent.
var retryDelays = [...]time.Duration{50 * time.Millisecond, 200 * time.Millisecond, 500 * time.Millisecond}

func (l *Ledger) runBatch(batch []*op) {
	for attempt := 0; ; attempt++ {
		// An append whose caller gave up before it reached a transaction
		// is not recorded.
		live := batch[:0]
		for _, o := range batch {
			if err := o.ctx.Err(); err != nil {
				o.reply <- err
				continue
			}
			live = append(live, o)
		}
		batch = live
		if len(batch) == 0 {
			return
		}
		errs, retry, err := l.commitBatch(batch)
		if err == nil {
			for i, o := range batch {
				o.reply <- errs[i]
			}
			return
		}
		if !retry || attempt >= len(retryDelays) || l.closed() {
			for _, o := range batch {
				o.reply <- err
			}
			return
		}
		l.retries.Add(1)
		t := time.NewTimer(retryDelays[attempt])
		select {
		case <-t.C:
		case <-l.closing:
			t.Stop()
		}
	}
}

// batchState is the chain and the facts the checks need, as they stand
// after the appends of the batch accepted so far.
type batchState struct {
	seq     uint64
	hash    []byte
	issued  map[string]bool // serial → issued (in the ledger or this batch)
	revoked map[string]bool
	// quotaBase[i] is the ledger's count for batch[i]'s quota check.
	quotaBase map[int]int64
	accepted  []*ca.Record
}

// commitBatch runs one transaction for batch. It returns the per-append
// outcomes (nil or a refusal) when the transaction committed, or err for
// the whole batch; retry says the failure happened before any COMMIT was
// sent and was a lost connection, so running the batch again is safe.
func (l *Ledger) commitBatch(batch []*op) (errs []error, retry bool, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), l.cfg.BatchTimeout)
	defer cancel()
	conn, err := l.pool.Acquire(ctx)
	if err != nil {
		return nil, true, dbError("append", err)
	}
	inTx := false
	defer func() { release(conn, inTx) }()

	// Round trip 1: begin, take the chain lock, then read the tail and
	// everything the checks need. Statements after the lock run on
	// snapshots taken after it was granted, so they see every record
	// committed by the lock's previous holder, in any process.
	var serials, revSerials [][]byte
	var qi []int32
	var qreq []string
	var qsince, qlim []int64
	for i, o := range batch {
		s := o.rec.Serial.Bytes()
		serials = append(serials, s)
		if o.rec.Kind == ca.KindRevocation {
			revSerials = append(revSerials, s)
		}
		if o.quota != nil {
			qi = append(qi, int32(i))
			qreq = append(qreq, o.rec.Requester)
			qsince = append(qsince, unixNano(o.quota.Since))
			qlim = append(qlim, int64(max(o.quota.Limit, 0)))
		}
	}
	b := &pgx.Batch{}
	b.Queue("BEGIN ISOLATION LEVEL READ COMMITTED")
	b.Queue("SET LOCAL synchronous_commit TO on")
	b.Queue(l.q.lock)
	b.Queue(l.q.tail)
	b.Queue(l.q.issued, serials)
	if len(revSerials) > 0 {
		b.Queue(l.q.revokedIn, revSerials)
	}
	if len(qi) > 0 {
		b.Queue(l.q.quota, qi, qreq, qsince, qlim)
	}
	inTx = true
	st := &batchState{issued: map[string]bool{}, revoked: map[string]bool{}, quotaBase: map[int]int64{}}
	if err := l.readState(conn.SendBatch(ctx, b), st, len(revSerials) > 0, len(qi) > 0); err != nil {
		return nil, connectionLost(err), dbError("append", err)
	}

	// Decide each append in order, linking the accepted ones.
	errs = make([]error, len(batch))
	for i, o := range batch {
		errs[i] = st.apply(i, o)
	}

	// Round trip 2: insert the accepted records and commit, pipelined.
	b = &pgx.Batch{}
	if len(st.accepted) > 0 {
		b.Queue(l.q.insert, insertArgs(st.accepted)...)
	}
	b.Queue("COMMIT")
	br := conn.SendBatch(ctx, b)
	var tag pgconn.CommandTag
	if len(st.accepted) > 0 {
		if _, err = br.Exec(); err == nil {
			tag, err = br.Exec()
		}
	} else {
		tag, err = br.Exec()
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		if connectionLost(err) {
			// The COMMIT may have reached the server and been applied.
			return nil, false, &Error{Op: "append", Reason: ReasonCommitUnknown, Err: err}
		}
		return nil, false, dbError("append", err)
	}
	if tag.String() != "COMMIT" {
		// The server rolled the transaction back.
		return nil, false, &Error{Op: "append", Reason: ReasonDatabase, Err: fmt.Errorf("transaction rolled back (%s)", tag)}
	}
	inTx = false
	l.commits.Add(1)
	l.records.Add(uint64(len(st.accepted)))
	return errs, false, nil
}

// readState reads the results of round trip 1 into st.
func (l *Ledger) readState(br pgx.BatchResults, st *batchState, haveRev, haveQuota bool) (err error) {
	defer func() {
		if cerr := br.Close(); err == nil {
			err = cerr
		}
	}()
	for range 3 { // BEGIN, SET LOCAL, lock
		if _, err := br.Exec(); err != nil {
			return err
		}
	}
	var seq int64
	var hash []byte
	switch err := br.QueryRow().Scan(&seq, &hash); {
	case errors.Is(err, pgx.ErrNoRows):
		st.seq, st.hash = 0, make([]byte, sha256.Size)
	case err != nil:
		return err
	default:
		st.seq, st.hash = uint64(seq), hash
	}
	readSet := func(m map[string]bool) error {
		rows, err := br.Query()
		if err != nil {
			return err
		}
		ss, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
		if err != nil {
			return err
		}
		for _, s := range ss {
			m[string(s)] = true
		}
		return nil
	}
	if err := readSet(st.issued); err != nil {
		return err
	}
	if haveRev {
		if err := readSet(st.revoked); err != nil {
			return err
		}
	}
	if haveQuota {
		rows, err := br.Query()
		if err != nil {
			return err
		}
		var i int32
		var n int64
		_, err = pgx.ForEachRow(rows, []any{&i, &n}, func() error {
			st.quotaBase[int(i)] = n
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// apply decides the i-th append of the batch against the state and, if
// it is accepted, links it to the chain.
func (st *batchState) apply(i int, o *op) error {
	r := o.rec
	key := string(r.Serial.Bytes())
	switch r.Kind {
	case ca.KindIssuance:
		if st.issued[key] {
			return ca.ErrSerialExists
		}
		if o.quota != nil {
			n := st.quotaBase[i]
			since := unixNano(o.quota.Since)
			for _, a := range st.accepted {
				if a.Kind == ca.KindIssuance && a.Requester == r.Requester && a.Time.UnixNano() >= since {
					n++
				}
			}
			if n >= int64(o.quota.Limit) {
				return ca.ErrQuotaExceeded
			}
		}
	case ca.KindRevocation:
		if !st.issued[key] {
			return ca.ErrUnknownSerial
		}
		if st.revoked[key] {
			return ca.ErrAlreadyRevoked
		}
	}
	r.Seq = st.seq + 1
	r.PrevHash = st.hash
	h, err := r.ChainHash(r.PrevHash)
	if err != nil {
		r.Seq, r.PrevHash = 0, nil
		return fmt.Errorf("postgres ledger: %w", err)
	}
	r.Hash = h
	st.seq, st.hash = r.Seq, r.Hash
	if r.Kind == ca.KindIssuance {
		st.issued[key] = true
	} else {
		st.revoked[key] = true
	}
	st.accepted = append(st.accepted, r)
	return nil
}

func insertArgs(recs []*ca.Record) []any {
	n := len(recs)
	var (
		seq, tns                  = make([]int64, n), make([]int64, n)
		kind, reason              = make([]int16, n), make([]int16, n)
		serial, pkh, ev, step     = make([][]byte, n), make([][]byte, n), make([][]byte, n), make([][]byte, n)
		cert, prev, hash          = make([][]byte, n), make([][]byte, n), make([][]byte, n)
		subject, profile, request = make([]string, n), make([]string, n), make([]string, n)
	)
	for i, r := range recs {
		seq[i], kind[i], serial[i] = int64(r.Seq), int16(r.Kind), r.Serial.Bytes()
		subject[i], pkh[i], profile[i], request[i] = r.Subject, nullBytes(r.PublicKeyHash), r.Profile, r.Requester
		ev[i], step[i], tns[i], cert[i] = nullBytes(r.EvidenceDigest), nullBytes(r.StepDigest), r.Time.UnixNano(), nullBytes(r.Certificate)
		reason[i], prev[i], hash[i] = int16(r.Reason), r.PrevHash, r.Hash
	}
	return []any{seq, kind, serial, subject, pkh, profile, request, ev, step, tns, cert, reason, prev, hash}
}

func nullBytes(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

// unixNano is t.UnixNano, clamped to int64 for times outside 1678–2262
// (the zero Time included, which means "since the beginning").
func unixNano(t time.Time) int64 {
	switch {
	case t.Before(time.Unix(0, math.MinInt64)):
		return math.MinInt64
	case t.After(time.Unix(0, math.MaxInt64)):
		return math.MaxInt64
	}
	return t.UnixNano()
}

// release returns conn to the pool. A connection left inside a
// transaction is rolled back first; one that cannot be is closed, so the
// pool drops it.
func release(conn *pgxpool.Conn, inTx bool) {
	pc := conn.Conn().PgConn()
	if inTx && !pc.IsClosed() && pc.TxStatus() != 'I' {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if _, err := pc.Exec(ctx, "ROLLBACK").ReadAll(); err != nil {
			pc.Close(ctx)
		}
		cancel()
	}
	conn.Release()
}
