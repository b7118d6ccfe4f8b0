package postgres

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ztmkit/ztm/ca"
	"github.com/ztmkit/ztm/internal/groupcommit"
)

// op is one append waiting for the writer.
type op struct {
	ctx   context.Context
	rec   *ca.Record // a private clone; the writer fills Seq, PrevHash, Hash
	quota *ca.Quota
	// prefix and suffix are rec's canonical encoding before and after its
	// sequence number (see splitEncoding).
	prefix, suffix []byte
	reply          chan error
	// paired marks the revocation an issuance that supersedes another
	// brings (ca.Record.SupersedingRevocation): it is sent just before
	// that issuance, decided with it, and never answered itself.
	paired bool
}

// expand returns batch with, before each issuance that supersedes another,
// the revocation it brings.
func expand(batch []*op) ([]*op, error) {
	n := 0
	for _, o := range batch {
		if o.rec.Supersedes != nil {
			n++
		}
	}
	if n == 0 {
		return batch, nil
	}
	out := make([]*op, 0, len(batch)+n)
	for _, o := range batch {
		if rv := o.rec.SupersedingRevocation(); rv != nil {
			prefix, suffix, err := splitEncoding(rv)
			if err != nil {
				return nil, err
			}
			out = append(out, &op{ctx: o.ctx, rec: rv, prefix: prefix, suffix: suffix, paired: true})
		}
		out = append(out, o)
	}
	return out, nil
}

// Append implements [ca.Ledger]. Concurrent calls on one Ledger share one
// transaction and one commit (group commit); each is answered after that
// commit. Calls on Ledgers in other processes wait for the chain lock
// (see the package documentation). A database failure gives an [*Error]
// wrapping [ErrUnavailable]; one during the COMMIT also wraps
// [ErrCommitUnknown] — the record may then be in the ledger although
// Append failed.
func (l *Ledger) Append(ctx context.Context, rec *ca.Record, quota *ca.Quota) error {
	if err := rec.CheckAppendable(); err != nil {
		return fmt.Errorf("postgres ledger: %w", err)
	}
	if len(rec.Serial.Bytes()) > 64 {
		return errors.New("postgres ledger: serial longer than 64 bytes")
	}
	if err := l.checkOpen(); err != nil {
		return err
	}
	if err := l.refusal(); err != nil {
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
	prefix, suffix, err := splitEncoding(r)
	if err != nil {
		return fmt.Errorf("postgres ledger: %w", err)
	}
	o := &op{ctx: ctx, rec: r, quota: q, prefix: prefix, suffix: suffix, reply: make(chan error, 1)}
	select {
	case l.queue <- o:
	case <-l.closing:
		return ca.ErrLedgerClosed
	case <-ctx.Done():
		return ctx.Err()
	}
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
// It does not linger: while one instance's transaction holds the chain
// lock, the next batch collects by itself.
func (l *Ledger) run() {
	defer close(l.done)
	for _, o := range groupcommit.Run(l.queue, l.closing, groupcommit.Options{MaxBatch: l.cfg.MaxBatch}, l.runBatch) {
		o.reply <- ca.ErrLedgerClosed
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
		// A batch of issuances goes the fast way: the database relies on
		// its unique indexes instead of looking the serials and keys up
		// first. One that hits an index (a repeated request, in practice)
		// fails whole and is run again the careful way, which refuses
		// just the duplicates.
		sent, err := expand(batch)
		if err != nil {
			for _, o := range batch {
				o.reply <- fmt.Errorf("postgres ledger: %w", err)
			}
			return
		}
		fast := true
		for _, o := range sent {
			fast = fast && o.rec.Kind == ca.KindIssuance
		}
		errs, retry, err := l.commitBatch(sent, fast)
		if err != nil && fast && uniqueViolation(err) {
			errs, retry, err = l.commitBatch(sent, false)
		}
		if err == nil {
			for i, o := range sent {
				if !o.paired {
					o.reply <- errs[i]
				}
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

// splitEncoding returns r's canonical encoding (see
// [ca.Record.CanonicalEncoding]) cut around the sequence number: a CBOR
// map whose first key is 1, the sequence number, so that the encoding
// for sequence number n is prefix || CBOR(n) || suffix. The database
// fills n in when it links the record.
func splitEncoding(r *ca.Record) (prefix, suffix []byte, err error) {
	c := *r
	c.Seq = 0
	enc, err := c.CanonicalEncoding()
	if err != nil {
		return nil, nil, err
	}
	// A map header of one byte (at most 23 entries), key 1, then 0 as
	// the sequence number.
	if len(enc) < 3 || enc[0] < 0xa1 || enc[0] > 0xb7 || enc[1] != 0x01 || enc[2] != 0x00 {
		return nil, nil, errors.New("canonical encoding does not start with the sequence number")
	}
	return enc[:2], enc[3:], nil
}

// commitBatch runs one transaction for batch, in one round trip: BEGIN,
// append_batch (which takes the chain lock, checks, links and inserts
// each record), COMMIT, pipelined. It returns the per-append outcomes
// (nil or a refusal) when the transaction committed, or err for the whole
// batch; retry says nothing reached the server, so running the batch again
// is safe.
func (l *Ledger) commitBatch(batch []*op, fast bool) (errs []error, retry bool, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), l.cfg.BatchTimeout)
	defer cancel()
	conn, err := l.pool.Acquire(ctx)
	if err != nil {
		l.lost(err)
		return nil, true, dbError("append", err)
	}
	if l.suspect.Load() {
		// After a lost connection, make sure this one is alive before
		// sending a COMMIT whose outcome could otherwise be unknown.
		if err := conn.Ping(ctx); err != nil {
			conn.Conn().PgConn().Close(ctx)
			conn.Release()
			l.lost(err)
			return nil, true, dbError("append", err)
		}
	}
	inTx := true
	defer func() { release(conn, inTx) }()

	// The server gives up a little before the client does, so that a
	// batch that runs out of time is, as a rule, rolled back rather than
	// left to commit after Append has failed.
	dl, _ := ctx.Deadline()
	stmtTimeout := max(time.Until(dl)*9/10, time.Millisecond)
	b := &pgx.Batch{}
	b.Queue("BEGIN ISOLATION LEVEL READ COMMITTED")
	b.Queue("SELECT set_config('synchronous_commit', 'on', true), set_config('statement_timeout', $1, true)",
		strconv.FormatInt(stmtTimeout.Milliseconds(), 10))
	b.Queue(l.q.appendBatch, append(appendArgs(batch), fast)...)
	b.Queue("COMMIT")
	var res []appendResult
	committed := false
	br := conn.SendBatch(ctx, b)
	err = func() error {
		for range 2 {
			if _, err := br.Exec(); err != nil {
				return err
			}
		}
		rows, err := br.Query()
		if err != nil {
			return err
		}
		var r appendResult
		if _, err := pgx.ForEachRow(rows, []any{&r.refusal, &r.seq, &r.prev, &r.sum}, func() error {
			res = append(res, r)
			r = appendResult{}
			return nil
		}); err != nil {
			return err
		}
		tag, err := br.Exec()
		if err != nil {
			return err
		}
		if tag.String() != "COMMIT" {
			return &Error{Op: "append", Reason: ReasonDatabase, Err: fmt.Errorf("transaction rolled back (%s)", tag)}
		}
		committed = true
		return nil
	}()
	// Once the COMMIT is acknowledged, a failure to read what follows
	// (the pipeline's end) changes nothing; the pool drops a broken
	// connection.
	if cerr := br.Close(); err == nil && !committed {
		err = cerr
	}
	l.lost(err)
	switch {
	case err == nil:
		l.suspect.Store(false)
	case pgconn.SafeToRetry(err):
		// Nothing was written to the connection.
		return nil, true, dbError("append", err)
	case serverRefused(err):
		// The server refused a statement: the COMMIT was skipped.
		return nil, false, dbError("append", err)
	default:
		// The connection was lost (or the answer could not be read) after
		// the COMMIT was sent: it may have been applied.
		return nil, false, &Error{Op: "append", Reason: ReasonCommitUnknown, Err: err}
	}
	inTx = false
	if len(res) != len(batch) {
		return nil, false, &Error{Op: "append", Reason: ReasonDatabase, Err: fmt.Errorf("append_batch returned %d rows for %d records", len(res), len(batch))}
	}
	errs, accepted := outcomes(batch, res)
	l.checkWritten(batch, errs)
	l.commits.Add(1)
	l.records.Add(uint64(accepted))
	return errs, false, nil
}

// appendResult is one row of append_batch: a refusal code (0: accepted)
// and, when accepted, where the record was linked.
type appendResult struct {
	refusal   int16
	seq       *int64
	prev, sum []byte
}

// outcomes returns each append's answer from append_batch's rows, filling
// the accepted records' Seq, PrevHash and Hash after checking the hash the
// database computed against the record's own; and how many were accepted.
func outcomes(batch []*op, res []appendResult) (errs []error, accepted int) {
	errs = make([]error, len(batch))
	for i, o := range batch {
		if res[i].refusal != 0 {
			errs[i] = refusal(res[i].refusal)
			continue
		}
		r := o.rec
		if res[i].seq == nil {
			errs[i] = &Error{Op: "append", Reason: ReasonDatabase, Err: errors.New("append_batch accepted a record without a sequence number")}
			continue
		}
		r.Seq, r.PrevHash, r.Hash = uint64(*res[i].seq), res[i].prev, res[i].sum
		// The database computed the hash; check it against ours (the
		// record's ChainHash, from the encoding already split).
		if h := chainHash(r.PrevHash, o.prefix, r.Seq, o.suffix); !bytes.Equal(h, r.Hash) {
			errs[i] = &ca.ChainError{Seq: r.Seq, Reason: "hash computed by the database differs from the record's ChainHash"}
			continue
		}
		accepted++
	}
	return errs, accepted
}

// refusals are the errors of append_batch's refusal codes.
var refusals = map[int16]error{
	1: ca.ErrSerialExists,
	2: ca.ErrQuotaExceeded,
	3: ca.ErrUnknownSerial,
	4: ca.ErrAlreadyRevoked,
	5: ca.ErrRequestExists,
	6: ca.ErrRequesterUnknown,
	7: ca.ErrRequesterRevoked,
	8: ca.ErrDeviceProvisioned,
	9: errPairRefused,
}

// refusal returns the error of an append_batch refusal code.
func refusal(code int16) error {
	if err, ok := refusals[code]; ok {
		return err
	}
	return &Error{Op: "append", Reason: ReasonDatabase, Err: fmt.Errorf("unknown refusal code %d", code)}
}

// errPairRefused answers a superseding revocation whose issuance was
// refused; it reaches no caller.
var errPairRefused = errors.New("postgres ledger: superseding revocation taken back with its issuance")

// checkWritten compares where the database linked the batch's records
// with the last record this Ledger appended before: a chain that ends
// below it, or holds another record in its place, was cut behind the
// Ledger's back. The batch is then committed but none of its appends is
// answered with success (no certificate leaves the CA), and the Ledger is
// marked corrupt. A batch linked further on (another instance appended
// in between) is not checked here; Verify and the checkpoints cover it.
func (l *Ledger) checkWritten(batch []*op, errs []error) {
	var first, last *ca.Record
	for i, o := range batch {
		if errs[i] != nil {
			continue
		}
		if first == nil || o.rec.Seq < first.Seq {
			first = o.rec
		}
		if last == nil || o.rec.Seq > last.Seq {
			last = o.rec
		}
	}
	if first == nil {
		return
	}
	w := l.written
	l.written = ca.Head{Seq: last.Seq, Hash: last.Hash}
	var reason string
	switch {
	case w.Seq == 0:
	case first.Seq-1 < w.Seq:
		reason = fmt.Sprintf("ledger ended at record %d, below record %d this Ledger appended: its tail was cut", first.Seq-1, w.Seq)
	case first.Seq-1 == w.Seq && !bytes.Equal(first.PrevHash, w.Hash):
		reason = "the last record this Ledger appended was replaced"
	}
	if reason == "" {
		return
	}
	err := l.setFault(&ca.ChainError{Seq: w.Seq, Reason: reason})
	for i := range errs {
		if errs[i] == nil {
			errs[i] = err
		}
	}
}

// chainHash is [ca.Record.ChainHash] for the record whose canonical
// encoding with sequence number seq is prefix || CBOR(seq) || suffix.
func chainHash(prev, prefix []byte, seq uint64, suffix []byte) []byte {
	h := sha256.New()
	h.Write(prev)
	h.Write(prefix)
	h.Write(cborUint(seq))
	h.Write(suffix)
	return h.Sum(nil)
}

// cborUint is the CBOR encoding of v (RFC 8949 §3.1, major type 0,
// shortest form), as the schema's cbor_uint computes it.
func cborUint(v uint64) []byte {
	switch {
	case v < 24:
		return []byte{byte(v)}
	case v < 1<<8:
		return []byte{0x18, byte(v)}
	case v < 1<<16:
		return binary.BigEndian.AppendUint16([]byte{0x19}, uint16(v))
	case v < 1<<32:
		return binary.BigEndian.AppendUint32([]byte{0x1a}, uint32(v))
	}
	return binary.BigEndian.AppendUint64([]byte{0x1b}, v)
}

func appendArgs(batch []*op) []any {
	n := len(batch)
	var (
		tns, qlim, qsince         = make([]int64, n), make([]*int64, n), make([]int64, n)
		kind, reason              = make([]int16, n), make([]int16, n)
		serial, pkh, ev, step     = make([][]byte, n), make([][]byte, n), make([][]byte, n), make([][]byte, n)
		cert, prefix, suffix      = make([][]byte, n), make([][]byte, n), make([][]byte, n)
		subject, profile, request = make([]string, n), make([]string, n), make([]string, n)
		idem, rserial, device     = make([][]byte, n), make([][]byte, n), make([][]byte, n)
		pair                      = make([]bool, n)
		provenance                = make([]int16, n)
	)
	for i, o := range batch {
		r := o.rec
		kind[i], serial[i], subject[i], pkh[i], profile[i] = int16(r.Kind), r.Serial.Bytes(), r.Subject, nullBytes(r.PublicKeyHash), r.Profile
		request[i], ev[i], step[i], tns[i], cert[i] = r.Requester, nullBytes(r.EvidenceDigest), nullBytes(r.StepDigest), r.Time.UnixNano(), nullBytes(r.Certificate)
		reason[i], prefix[i], suffix[i], idem[i] = int16(r.Reason), o.prefix, o.suffix, nullBytes(r.IdempotencyKey)
		if r.RequesterSerial != nil {
			rserial[i] = r.RequesterSerial.Bytes()
		}
		device[i], pair[i] = nullBytes(r.Device), o.paired
		provenance[i] = int16(r.KeyProvenance)
		if o.quota != nil {
			lim := int64(o.quota.Limit)
			qlim[i], qsince[i] = &lim, unixNano(o.quota.Since)
		}
	}
	return []any{kind, serial, subject, pkh, profile, request, ev, step, tns, cert, reason, prefix, suffix, qlim, qsince, idem, rserial, device, pair, provenance}
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
