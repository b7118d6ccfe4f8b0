package postgres

import (
	"context"
	"fmt"
	"hash/fnv"
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
	INSERT INTO {s}.crl_number (id, n) VALUES (1, 0);

	-- cbor_uint(v) is the CBOR encoding of the unsigned integer v (RFC 8949
	-- §3.1, major type 0, shortest form).
	CREATE FUNCTION {s}.cbor_uint(v bigint) RETURNS bytea
	LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $fn$
		SELECT CASE
			WHEN v < 24 THEN substring(int8send(v) FROM 8 FOR 1)
			WHEN v < 256 THEN decode('18', 'hex') || substring(int8send(v) FROM 8 FOR 1)
			WHEN v < 65536 THEN decode('19', 'hex') || substring(int8send(v) FROM 7 FOR 2)
			WHEN v < 4294967296 THEN decode('1a', 'hex') || substring(int8send(v) FROM 5 FOR 4)
			ELSE decode('1b', 'hex') || int8send(v)
		END
	$fn$;

	-- append_batch appends a batch of records under the chain lock, in
	-- order. Each record is checked (o_refusal 1: serial already issued,
	-- 2: quota exceeded, 3: revocation of a serial never issued, 4:
	-- already revoked) against the ledger and the records of the batch
	-- accepted before it and, if accepted, numbered and linked:
	-- hash = SHA-256(previous hash || canonical encoding), the canonical
	-- encoding being p_prefix || cbor_uint(seq) || p_suffix (the client
	-- splits the record's encoding around its sequence number, key 1).
	-- The accepted records are inserted with one statement at the end.
	CREATE FUNCTION {s}.append_batch(
		p_kind smallint[], p_serial bytea[], p_subject text[], p_pkh bytea[], p_profile text[],
		p_requester text[], p_evidence bytea[], p_step bytea[], p_time bigint[], p_cert bytea[],
		p_reason smallint[], p_prefix bytea[], p_suffix bytea[], p_qlimit bigint[], p_qsince bigint[])
	RETURNS TABLE (o_refusal smallint, o_seq bigint, o_prev bytea, o_hash bytea)
	LANGUAGE plpgsql
	-- Plan each statement for the table as it is: a plan cached while the
	-- table was small (before autovacuum's first ANALYZE) would scan the
	-- wrong index once it has grown.
	SET plan_cache_mode = force_custom_plan
	AS $fn$
	DECLARE
		v_seq     bigint;
		v_hash    bytea;
		v_n       bigint;
		k         integer;
		d_issued  bytea[];  -- serials of the batch the ledger has issued
		d_revoked bytea[];  -- and revoked
		b_issued  bytea[]  := '{}';  -- accepted in this batch so far
		b_revoked bytea[]  := '{}';
		b_req     text[]   := '{}';  -- requester and time of each accepted issuance
		b_time    bigint[] := '{}';
		a_k       integer[] := '{}'; -- accepted: index, seq, previous hash, hash
		a_seq     bigint[]  := '{}';
		a_prev    bytea[]   := '{}';
		a_hash    bytea[]   := '{}';
	BEGIN
		-- The chain lock: held by every appending transaction, of every
		-- instance, until it ends. Statements after it see every record
		-- committed by its previous holders.
		PERFORM 1 FROM {s}.head h WHERE h.id = 1 FOR UPDATE;
		SELECT r.seq, r.hash INTO v_seq, v_hash FROM {s}.records r ORDER BY r.seq DESC LIMIT 1;
		IF NOT FOUND THEN
			v_seq := 0;
			v_hash := decode(repeat('00', 32), 'hex');
		END IF;
		SELECT coalesce(array_agg(r.serial), '{}') INTO d_issued FROM {s}.records r
			WHERE r.kind = 1 AND r.serial = ANY (p_serial);
		SELECT coalesce(array_agg(r.serial), '{}') INTO d_revoked FROM {s}.records r
			WHERE r.kind = 2 AND r.serial = ANY (p_serial);
		FOR k IN 1 .. coalesce(array_length(p_kind, 1), 0) LOOP
			o_refusal := 0; o_seq := NULL; o_prev := NULL; o_hash := NULL;
			IF p_kind[k] = 1 THEN
				IF p_serial[k] = ANY (d_issued) OR p_serial[k] = ANY (b_issued) THEN
					o_refusal := 1;
				ELSIF p_qlimit[k] IS NOT NULL THEN
					SELECT count(*) INTO v_n FROM (
						SELECT 1 FROM {s}.records r
						WHERE r.kind = 1 AND r.requester = p_requester[k] AND r.time_ns >= p_qsince[k]
						LIMIT greatest(p_qlimit[k], 0)) c;
					v_n := v_n + (SELECT count(*) FROM unnest(b_req, b_time) AS b(rq, t)
						WHERE b.rq = p_requester[k] AND b.t >= p_qsince[k]);
					IF v_n >= p_qlimit[k] THEN
						o_refusal := 2;
					END IF;
				END IF;
			ELSIF NOT (p_serial[k] = ANY (d_issued) OR p_serial[k] = ANY (b_issued)) THEN
				o_refusal := 3;
			ELSIF p_serial[k] = ANY (d_revoked) OR p_serial[k] = ANY (b_revoked) THEN
				o_refusal := 4;
			END IF;
			IF o_refusal = 0 THEN
				o_seq := v_seq + 1;
				o_prev := v_hash;
				o_hash := sha256(v_hash || p_prefix[k] || {s}.cbor_uint(o_seq) || p_suffix[k]);
				a_k := a_k || k;
				a_seq := a_seq || o_seq;
				a_prev := a_prev || o_prev;
				a_hash := a_hash || o_hash;
				IF p_kind[k] = 1 THEN
					b_issued := b_issued || p_serial[k];
					b_req := b_req || p_requester[k];
					b_time := b_time || p_time[k];
				ELSE
					b_revoked := b_revoked || p_serial[k];
				END IF;
				v_seq := o_seq;
				v_hash := o_hash;
			END IF;
			RETURN NEXT;
		END LOOP;
		INSERT INTO {s}.records (seq, kind, serial, subject, pubkey_hash, profile, requester,
			evidence, step, time_ns, cert, reason, prev_hash, hash)
		SELECT a.seq, t.kind, t.serial, t.subject, t.pkh, t.profile, t.requester,
			t.evidence, t.step, t.time_ns, t.cert, t.reason, a.prev, a.hash
		FROM unnest(a_k, a_seq, a_prev, a_hash) AS a(k, seq, prev, hash)
		JOIN unnest(p_kind, p_serial, p_subject, p_pkh, p_profile, p_requester, p_evidence, p_step,
			p_time, p_cert, p_reason) WITH ORDINALITY
			AS t(kind, serial, subject, pkh, profile, requester, evidence, step, time_ns, cert, reason, k)
			ON t.k = a.k
		ORDER BY a.seq;
	END
	$fn$;`,

	// 2: cbor_uint without STRICT. The planner inlines a SQL function into
	// the expression that calls it only if doing so keeps its result for
	// NULL input, and a CASE is not strict: as a STRICT function
	// append_batch called it through the SQL-function executor once per
	// record, a third of the database's CPU per batch. Its value is the
	// same for every input, NULL included.
	`CREATE OR REPLACE FUNCTION {s}.cbor_uint(v bigint) RETURNS bytea
	LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $fn$
		SELECT CASE
			WHEN v < 24 THEN substring(int8send(v) FROM 8 FOR 1)
			WHEN v < 256 THEN decode('18', 'hex') || substring(int8send(v) FROM 8 FOR 1)
			WHEN v < 65536 THEN decode('19', 'hex') || substring(int8send(v) FROM 7 FOR 2)
			WHEN v < 4294967296 THEN decode('1a', 'hex') || substring(int8send(v) FROM 5 FOR 4)
			ELSE decode('1b', 'hex') || int8send(v)
		END
	$fn$;`,

	// 3: idempotency keys (ca.Record.IdempotencyKey), unique, and
	// append_batch taking them (refusal 5). The version-1 function, with
	// one parameter fewer, is dropped. The chain lock becomes a
	// transaction-level advisory lock, and the head row it was goes:
	// locking a row writes the lock into the row and the WAL on every
	// batch (a fifth of the server's CPU per appended record, measured
	// with three instances).
	`ALTER TABLE {s}.records ADD COLUMN idem_key bytea CHECK (length(idem_key) BETWEEN 1 AND 64);
	CREATE UNIQUE INDEX records_idem_key ON {s}.records (idem_key) WHERE idem_key IS NOT NULL;
	DROP FUNCTION {s}.append_batch(smallint[], bytea[], text[], bytea[], text[], text[], bytea[], bytea[],
		bigint[], bytea[], smallint[], bytea[], bytea[], bigint[], bigint[]);
	DROP TABLE {s}.head;
	-- append_batch appends a batch of records under the chain lock, in
	-- order. Each record is checked (o_refusal 1: serial already issued,
	-- 2: quota exceeded, 3: revocation of a serial never issued, 4:
	-- already revoked, 5: idempotency key already recorded) against the
	-- ledger and the records of the batch accepted before it and, if
	-- accepted, numbered and linked:
	-- hash = SHA-256(previous hash || canonical encoding), the canonical
	-- encoding being p_prefix || cbor_uint(seq) || p_suffix (the client
	-- splits the record's encoding around its sequence number, key 1).
	-- The accepted records are inserted with one statement at the end.
	CREATE FUNCTION {s}.append_batch(
		p_kind smallint[], p_serial bytea[], p_subject text[], p_pkh bytea[], p_profile text[],
		p_requester text[], p_evidence bytea[], p_step bytea[], p_time bigint[], p_cert bytea[],
		p_reason smallint[], p_prefix bytea[], p_suffix bytea[], p_qlimit bigint[], p_qsince bigint[],
		p_idem bytea[], p_fast boolean)
	RETURNS TABLE (o_refusal smallint, o_seq bigint, o_prev bytea, o_hash bytea)
	LANGUAGE plpgsql
	-- Plan each statement for the table as it is: a plan cached while the
	-- table was small (before autovacuum's first ANALYZE) would scan the
	-- wrong index once it has grown.
	SET plan_cache_mode = force_custom_plan
	AS $fn$
	DECLARE
		v_seq     bigint;
		v_hash    bytea;
		v_n       bigint;
		k         integer;
		d_issued  bytea[];  -- serials of the batch the ledger has issued
		d_revoked bytea[];  -- and revoked
		d_keys    bytea[];  -- idempotency keys of the batch the ledger holds
		b_issued  bytea[]  := '{}';  -- accepted in this batch so far
		b_keys    bytea[]  := '{}';
		b_revoked bytea[]  := '{}';
		b_req     text[]   := '{}';  -- requester and time of each accepted issuance
		b_time    bigint[] := '{}';
		a_k       integer[] := '{}'; -- accepted: index, seq, previous hash, hash
		a_seq     bigint[]  := '{}';
		a_prev    bytea[]   := '{}';
		a_hash    bytea[]   := '{}';
	BEGIN
		-- The chain lock: held by every appending transaction, of every
		-- instance, until it ends (released after the commit is visible).
		-- Statements after it see every record committed by its previous
		-- holders.
		PERFORM pg_advisory_xact_lock({chainlock});
		SELECT r.seq, r.hash INTO v_seq, v_hash FROM {s}.records r ORDER BY r.seq DESC LIMIT 1;
		IF NOT FOUND THEN
			v_seq := 0;
			v_hash := decode(repeat('00', 32), 'hex');
		END IF;
		IF p_fast THEN
			-- Issuances only: a serial or key the ledger already holds
			-- fails the INSERT on its unique index, and the client runs
			-- the batch again with p_fast false.
			d_issued := '{}'; d_revoked := '{}'; d_keys := '{}';
		ELSE
			SELECT coalesce(array_agg(r.serial), '{}') INTO d_issued FROM {s}.records r
				WHERE r.kind = 1 AND r.serial = ANY (p_serial);
			SELECT coalesce(array_agg(r.serial), '{}') INTO d_revoked FROM {s}.records r
				WHERE r.kind = 2 AND r.serial = ANY (p_serial);
			SELECT coalesce(array_agg(r.idem_key), '{}') INTO d_keys FROM {s}.records r
				WHERE r.idem_key = ANY (p_idem);
		END IF;
		FOR k IN 1 .. coalesce(array_length(p_kind, 1), 0) LOOP
			o_refusal := 0; o_seq := NULL; o_prev := NULL; o_hash := NULL;
			IF p_kind[k] = 1 THEN
				IF p_serial[k] = ANY (d_issued) OR p_serial[k] = ANY (b_issued) THEN
					o_refusal := 1;
				ELSIF p_idem[k] = ANY (d_keys) OR p_idem[k] = ANY (b_keys) THEN
					o_refusal := 5;
				ELSIF p_qlimit[k] IS NOT NULL THEN
					SELECT count(*) INTO v_n FROM (
						SELECT 1 FROM {s}.records r
						WHERE r.kind = 1 AND r.requester = p_requester[k] AND r.time_ns >= p_qsince[k]
						LIMIT greatest(p_qlimit[k], 0)) c;
					v_n := v_n + (SELECT count(*) FROM unnest(b_req, b_time) AS b(rq, t)
						WHERE b.rq = p_requester[k] AND b.t >= p_qsince[k]);
					IF v_n >= p_qlimit[k] THEN
						o_refusal := 2;
						-- The fast way skipped the lookups: a refusal must
						-- still name a serial or key already recorded first.
						IF p_fast THEN
							IF EXISTS (SELECT 1 FROM {s}.records r WHERE r.kind = 1 AND r.serial = p_serial[k]) THEN
								o_refusal := 1;
							ELSIF EXISTS (SELECT 1 FROM {s}.records r WHERE r.idem_key = p_idem[k]) THEN
								o_refusal := 5;
							END IF;
						END IF;
					END IF;
				END IF;
			ELSIF NOT (p_serial[k] = ANY (d_issued) OR p_serial[k] = ANY (b_issued)) THEN
				o_refusal := 3;
			ELSIF p_serial[k] = ANY (d_revoked) OR p_serial[k] = ANY (b_revoked) THEN
				o_refusal := 4;
			END IF;
			IF o_refusal = 0 THEN
				o_seq := v_seq + 1;
				o_prev := v_hash;
				o_hash := sha256(v_hash || p_prefix[k] || {s}.cbor_uint(o_seq) || p_suffix[k]);
				a_k := a_k || k;
				a_seq := a_seq || o_seq;
				a_prev := a_prev || o_prev;
				a_hash := a_hash || o_hash;
				IF p_kind[k] = 1 THEN
					b_issued := b_issued || p_serial[k];
					b_req := b_req || p_requester[k];
					b_time := b_time || p_time[k];
					IF p_idem[k] IS NOT NULL THEN
						b_keys := b_keys || p_idem[k];
					END IF;
				ELSE
					b_revoked := b_revoked || p_serial[k];
				END IF;
				v_seq := o_seq;
				v_hash := o_hash;
			END IF;
			RETURN NEXT;
		END LOOP;
		-- One scan of the accepted records, each row's fields taken from
		-- the parameters by index: a plan that is quick to make, as it is
		-- made on every call (see plan_cache_mode above).
		INSERT INTO {s}.records (seq, kind, serial, subject, pubkey_hash, profile, requester,
			evidence, step, time_ns, cert, reason, prev_hash, hash, idem_key)
		SELECT a.seq, p_kind[a.k], p_serial[a.k], p_subject[a.k], p_pkh[a.k], p_profile[a.k], p_requester[a.k],
			p_evidence[a.k], p_step[a.k], p_time[a.k], p_cert[a.k], p_reason[a.k], a.prev, a.hash, p_idem[a.k]
		FROM unnest(a_k, a_seq, a_prev, a_hash) AS a(k, seq, prev, hash);
	END
	$fn$;`,

	// 4: the requester certificate's serial (ca.Record.RequesterSerial),
	// and append_batch refusing an issuance whose requester certificate the
	// ledger has not issued (refusal 6) or has revoked (7), under the chain
	// lock, so that no request of a station follows its revocation. The
	// version-3 function, with one parameter fewer, is dropped.
	`ALTER TABLE {s}.records ADD COLUMN requester_serial bytea CHECK (length(requester_serial) BETWEEN 1 AND 64);
	DROP FUNCTION {s}.append_batch(smallint[], bytea[], text[], bytea[], text[], text[], bytea[], bytea[],
		bigint[], bytea[], smallint[], bytea[], bytea[], bigint[], bigint[], bytea[], boolean);
	-- append_batch appends a batch of records under the chain lock, in
	-- order, as version 3's did, and refuses an issuance whose requester
	-- serial (p_rserial, NULL for none) names no issuance (6) or a revoked
	-- one (7) of the ledger or of the batch before it.
	CREATE FUNCTION {s}.append_batch(
		p_kind smallint[], p_serial bytea[], p_subject text[], p_pkh bytea[], p_profile text[],
		p_requester text[], p_evidence bytea[], p_step bytea[], p_time bigint[], p_cert bytea[],
		p_reason smallint[], p_prefix bytea[], p_suffix bytea[], p_qlimit bigint[], p_qsince bigint[],
		p_idem bytea[], p_rserial bytea[], p_fast boolean)
	RETURNS TABLE (o_refusal smallint, o_seq bigint, o_prev bytea, o_hash bytea)
	LANGUAGE plpgsql
	-- Plan each statement for the table as it is: a plan cached while the
	-- table was small (before autovacuum's first ANALYZE) would scan the
	-- wrong index once it has grown.
	SET plan_cache_mode = force_custom_plan
	AS $fn$
	DECLARE
		v_seq     bigint;
		v_hash    bytea;
		v_n       bigint;
		k         integer;
		d_issued  bytea[];  -- serials of the batch the ledger has issued
		d_revoked bytea[];  -- and revoked
		d_keys    bytea[];  -- idempotency keys of the batch the ledger holds
		d_rissued  bytea[] := '{}';  -- requester serials the ledger has issued
		d_rrevoked bytea[] := '{}';  -- and revoked
		b_issued  bytea[]  := '{}';  -- accepted in this batch so far
		b_keys    bytea[]  := '{}';
		b_revoked bytea[]  := '{}';
		b_req     text[]   := '{}';  -- requester and time of each accepted issuance
		b_time    bigint[] := '{}';
		a_k       integer[] := '{}'; -- accepted: index, seq, previous hash, hash
		a_seq     bigint[]  := '{}';
		a_prev    bytea[]   := '{}';
		a_hash    bytea[]   := '{}';
	BEGIN
		-- The chain lock: held by every appending transaction, of every
		-- instance, until it ends (released after the commit is visible).
		-- Statements after it see every record committed by its previous
		-- holders.
		PERFORM pg_advisory_xact_lock({chainlock});
		SELECT r.seq, r.hash INTO v_seq, v_hash FROM {s}.records r ORDER BY r.seq DESC LIMIT 1;
		IF NOT FOUND THEN
			v_seq := 0;
			v_hash := decode(repeat('00', 32), 'hex');
		END IF;
		IF p_fast THEN
			-- Issuances only: a serial or key the ledger already holds
			-- fails the INSERT on its unique index, and the client runs
			-- the batch again with p_fast false.
			d_issued := '{}'; d_revoked := '{}'; d_keys := '{}';
		ELSE
			SELECT coalesce(array_agg(r.serial), '{}') INTO d_issued FROM {s}.records r
				WHERE r.kind = 1 AND r.serial = ANY (p_serial);
			SELECT coalesce(array_agg(r.serial), '{}') INTO d_revoked FROM {s}.records r
				WHERE r.kind = 2 AND r.serial = ANY (p_serial);
			SELECT coalesce(array_agg(r.idem_key), '{}') INTO d_keys FROM {s}.records r
				WHERE r.idem_key = ANY (p_idem);
		END IF;
		-- Requester certificates, looked up the fast way too: a refusal
		-- here is the ledger's answer, not a constraint to fall back on.
		IF cardinality(array_remove(p_rserial, NULL)) > 0 THEN
			SELECT coalesce(array_agg(r.serial), '{}') INTO d_rissued FROM {s}.records r
				WHERE r.kind = 1 AND r.serial = ANY (p_rserial);
			SELECT coalesce(array_agg(r.serial), '{}') INTO d_rrevoked FROM {s}.records r
				WHERE r.kind = 2 AND r.serial = ANY (p_rserial);
		END IF;
		FOR k IN 1 .. coalesce(array_length(p_kind, 1), 0) LOOP
			o_refusal := 0; o_seq := NULL; o_prev := NULL; o_hash := NULL;
			IF p_kind[k] = 1 THEN
				IF p_rserial[k] IS NOT NULL AND NOT (p_rserial[k] = ANY (d_rissued) OR p_rserial[k] = ANY (b_issued)) THEN
					o_refusal := 6;
				ELSIF p_rserial[k] = ANY (d_rrevoked) OR p_rserial[k] = ANY (b_revoked) THEN
					o_refusal := 7;
				ELSIF p_serial[k] = ANY (d_issued) OR p_serial[k] = ANY (b_issued) THEN
					o_refusal := 1;
				ELSIF p_idem[k] = ANY (d_keys) OR p_idem[k] = ANY (b_keys) THEN
					o_refusal := 5;
				ELSIF p_qlimit[k] IS NOT NULL THEN
					SELECT count(*) INTO v_n FROM (
						SELECT 1 FROM {s}.records r
						WHERE r.kind = 1 AND r.requester = p_requester[k] AND r.time_ns >= p_qsince[k]
						LIMIT greatest(p_qlimit[k], 0)) c;
					v_n := v_n + (SELECT count(*) FROM unnest(b_req, b_time) AS b(rq, t)
						WHERE b.rq = p_requester[k] AND b.t >= p_qsince[k]);
					IF v_n >= p_qlimit[k] THEN
						o_refusal := 2;
						-- The fast way skipped the lookups: a refusal must
						-- still name a serial or key already recorded first.
						IF p_fast THEN
							IF EXISTS (SELECT 1 FROM {s}.records r WHERE r.kind = 1 AND r.serial = p_serial[k]) THEN
								o_refusal := 1;
							ELSIF EXISTS (SELECT 1 FROM {s}.records r WHERE r.idem_key = p_idem[k]) THEN
								o_refusal := 5;
							END IF;
						END IF;
					END IF;
				END IF;
			ELSIF NOT (p_serial[k] = ANY (d_issued) OR p_serial[k] = ANY (b_issued)) THEN
				o_refusal := 3;
			ELSIF p_serial[k] = ANY (d_revoked) OR p_serial[k] = ANY (b_revoked) THEN
				o_refusal := 4;
			END IF;
			IF o_refusal = 0 THEN
				o_seq := v_seq + 1;
				o_prev := v_hash;
				o_hash := sha256(v_hash || p_prefix[k] || {s}.cbor_uint(o_seq) || p_suffix[k]);
				a_k := a_k || k;
				a_seq := a_seq || o_seq;
				a_prev := a_prev || o_prev;
				a_hash := a_hash || o_hash;
				IF p_kind[k] = 1 THEN
					b_issued := b_issued || p_serial[k];
					b_req := b_req || p_requester[k];
					b_time := b_time || p_time[k];
					IF p_idem[k] IS NOT NULL THEN
						b_keys := b_keys || p_idem[k];
					END IF;
				ELSE
					b_revoked := b_revoked || p_serial[k];
				END IF;
				v_seq := o_seq;
				v_hash := o_hash;
			END IF;
			RETURN NEXT;
		END LOOP;
		-- One scan of the accepted records, each row's fields taken from
		-- the parameters by index: a plan that is quick to make, as it is
		-- made on every call (see plan_cache_mode above).
		INSERT INTO {s}.records (seq, kind, serial, subject, pubkey_hash, profile, requester,
			evidence, step, time_ns, cert, reason, prev_hash, hash, idem_key, requester_serial)
		SELECT a.seq, p_kind[a.k], p_serial[a.k], p_subject[a.k], p_pkh[a.k], p_profile[a.k], p_requester[a.k],
			p_evidence[a.k], p_step[a.k], p_time[a.k], p_cert[a.k], p_reason[a.k], a.prev, a.hash, p_idem[a.k],
			p_rserial[a.k]
		FROM unnest(a_k, a_seq, a_prev, a_hash) AS a(k, seq, prev, hash);
	END
	$fn$;`,
	// 5: the device an IDevID names (ca.Record.Device), one live each:
	// append_batch refuses an issuance whose device holds a live issuance
	// (8) of the ledger or of the batch before it, and appends a
	// superseding revocation (p_pair) only together with the issuance
	// after it (9: taken back with it). The version-4 function, with two
	// parameters fewer, is dropped.
	`ALTER TABLE {s}.records ADD COLUMN device bytea CHECK (length(device) BETWEEN 1 AND 160);
	CREATE INDEX records_device ON {s}.records (device) WHERE kind = 1 AND device IS NOT NULL;
	DROP FUNCTION {s}.append_batch(smallint[], bytea[], text[], bytea[], text[], text[], bytea[], bytea[],
		bigint[], bytea[], smallint[], bytea[], bytea[], bigint[], bigint[], bytea[], bytea[], boolean);
	-- append_batch appends a batch of records under the chain lock, in
	-- order, as version 4's did, and keeps one live issuance per device
	-- (p_device, NULL for none): an issuance of a device with a live one
	-- is refused (8) unless a revocation of that one, marked p_pair, comes
	-- just before it in the batch; such a pair is accepted or refused
	-- together (the revocation answers 9 when its issuance is refused).
	CREATE FUNCTION {s}.append_batch(
		p_kind smallint[], p_serial bytea[], p_subject text[], p_pkh bytea[], p_profile text[],
		p_requester text[], p_evidence bytea[], p_step bytea[], p_time bigint[], p_cert bytea[],
		p_reason smallint[], p_prefix bytea[], p_suffix bytea[], p_qlimit bigint[], p_qsince bigint[],
		p_idem bytea[], p_rserial bytea[], p_device bytea[], p_pair boolean[], p_fast boolean)
	RETURNS TABLE (o_refusal smallint, o_seq bigint, o_prev bytea, o_hash bytea)
	LANGUAGE plpgsql
	-- Plan each statement for the table as it is: a plan cached while the
	-- table was small (before autovacuum's first ANALYZE) would scan the
	-- wrong index once it has grown.
	SET plan_cache_mode = force_custom_plan
	AS $fn$
	DECLARE
		v_seq     bigint;
		v_hash    bytea;
		v_n       bigint;
		k         integer;
		d_issued  bytea[];  -- serials of the batch the ledger has issued
		d_revoked bytea[];  -- and revoked
		d_keys    bytea[];  -- idempotency keys of the batch the ledger holds
		d_rissued  bytea[] := '{}';  -- requester serials the ledger has issued
		d_rrevoked bytea[] := '{}';  -- and revoked
		b_issued  bytea[]  := '{}';  -- accepted in this batch so far
		b_keys    bytea[]  := '{}';
		b_revoked bytea[]  := '{}';
		b_req     text[]   := '{}';  -- requester and time of each accepted issuance
		b_time    bigint[] := '{}';
		a_k       integer[] := '{}'; -- accepted: index, seq, previous hash, hash
		a_seq     bigint[]  := '{}';
		a_prev    bytea[]   := '{}';
		a_hash    bytea[]   := '{}';
		b_dev     bytea[]   := '{}'; -- devices of the batch's accepted issuances
		b_devser  bytea[]   := '{}'; -- and their serials
		pr_ok     boolean   := false; -- the pending superseding revocation
		pr_refusal smallint;
		pr_seq    bigint;
		pr_prev   bytea;
		pr_hash   bytea;
		pr_vseq   bigint;            -- the chain tail before it
		pr_vhash  bytea;
		v_hold_seq  bigint;
		v_hold_prev bytea;
		v_hold_hash bytea;
	BEGIN
		-- The chain lock: held by every appending transaction, of every
		-- instance, until it ends (released after the commit is visible).
		-- Statements after it see every record committed by its previous
		-- holders.
		PERFORM pg_advisory_xact_lock({chainlock});
		SELECT r.seq, r.hash INTO v_seq, v_hash FROM {s}.records r ORDER BY r.seq DESC LIMIT 1;
		IF NOT FOUND THEN
			v_seq := 0;
			v_hash := decode(repeat('00', 32), 'hex');
		END IF;
		IF p_fast THEN
			-- Issuances only: a serial or key the ledger already holds
			-- fails the INSERT on its unique index, and the client runs
			-- the batch again with p_fast false.
			d_issued := '{}'; d_revoked := '{}'; d_keys := '{}';
		ELSE
			SELECT coalesce(array_agg(r.serial), '{}') INTO d_issued FROM {s}.records r
				WHERE r.kind = 1 AND r.serial = ANY (p_serial);
			SELECT coalesce(array_agg(r.serial), '{}') INTO d_revoked FROM {s}.records r
				WHERE r.kind = 2 AND r.serial = ANY (p_serial);
			SELECT coalesce(array_agg(r.idem_key), '{}') INTO d_keys FROM {s}.records r
				WHERE r.idem_key = ANY (p_idem);
		END IF;
		-- Requester certificates, looked up the fast way too: a refusal
		-- here is the ledger's answer, not a constraint to fall back on.
		IF cardinality(array_remove(p_rserial, NULL)) > 0 THEN
			SELECT coalesce(array_agg(r.serial), '{}') INTO d_rissued FROM {s}.records r
				WHERE r.kind = 1 AND r.serial = ANY (p_rserial);
			SELECT coalesce(array_agg(r.serial), '{}') INTO d_rrevoked FROM {s}.records r
				WHERE r.kind = 2 AND r.serial = ANY (p_rserial);
		END IF;
		FOR k IN 1 .. coalesce(array_length(p_kind, 1), 0) LOOP
			o_refusal := 0; o_seq := NULL; o_prev := NULL; o_hash := NULL;
			IF p_kind[k] = 1 THEN
				IF p_rserial[k] IS NOT NULL AND NOT (p_rserial[k] = ANY (d_rissued) OR p_rserial[k] = ANY (b_issued)) THEN
					o_refusal := 6;
				ELSIF p_rserial[k] = ANY (d_rrevoked) OR p_rserial[k] = ANY (b_revoked) THEN
					o_refusal := 7;
				ELSIF p_serial[k] = ANY (d_issued) OR p_serial[k] = ANY (b_issued) THEN
					o_refusal := 1;
				ELSIF p_idem[k] = ANY (d_keys) OR p_idem[k] = ANY (b_keys) THEN
					o_refusal := 5;
				ELSIF (k > 1 AND p_pair[k - 1] AND NOT pr_ok) OR (p_device[k] IS NOT NULL AND (
						EXISTS (SELECT 1 FROM {s}.records r WHERE r.kind = 1 AND r.device = p_device[k]
							AND NOT EXISTS (SELECT 1 FROM {s}.records v WHERE v.kind = 2 AND v.serial = r.serial)
							AND NOT (r.serial = ANY (b_revoked)))
						OR EXISTS (SELECT 1 FROM unnest(b_dev, b_devser) AS x(d, s)
							WHERE x.d = p_device[k] AND NOT (x.s = ANY (b_revoked))))) THEN
					o_refusal := 8;
					-- The fast way skipped the lookups: a repeat is named
					-- as such first.
					IF p_fast THEN
						IF EXISTS (SELECT 1 FROM {s}.records r WHERE r.kind = 1 AND r.serial = p_serial[k]) THEN
							o_refusal := 1;
						ELSIF EXISTS (SELECT 1 FROM {s}.records r WHERE r.idem_key = p_idem[k]) THEN
							o_refusal := 5;
						END IF;
					END IF;
				ELSIF p_qlimit[k] IS NOT NULL THEN
					SELECT count(*) INTO v_n FROM (
						SELECT 1 FROM {s}.records r
						WHERE r.kind = 1 AND r.requester = p_requester[k] AND r.time_ns >= p_qsince[k]
						LIMIT greatest(p_qlimit[k], 0)) c;
					v_n := v_n + (SELECT count(*) FROM unnest(b_req, b_time) AS b(rq, t)
						WHERE b.rq = p_requester[k] AND b.t >= p_qsince[k]);
					IF v_n >= p_qlimit[k] THEN
						o_refusal := 2;
						-- The fast way skipped the lookups: a refusal must
						-- still name a serial or key already recorded first.
						IF p_fast THEN
							IF EXISTS (SELECT 1 FROM {s}.records r WHERE r.kind = 1 AND r.serial = p_serial[k]) THEN
								o_refusal := 1;
							ELSIF EXISTS (SELECT 1 FROM {s}.records r WHERE r.idem_key = p_idem[k]) THEN
								o_refusal := 5;
							END IF;
						END IF;
					END IF;
				END IF;
			ELSIF NOT (p_serial[k] = ANY (d_issued) OR p_serial[k] = ANY (b_issued)) THEN
				o_refusal := 3;
			ELSIF p_serial[k] = ANY (d_revoked) OR p_serial[k] = ANY (b_revoked) THEN
				o_refusal := 4;
			END IF;
			IF k > 1 AND p_pair[k - 1] AND pr_ok AND o_refusal <> 0 THEN
				-- The issuance a superseding revocation came for is
				-- refused: so is the revocation, taken back.
				a_k := a_k[1:cardinality(a_k) - 1];
				a_seq := a_seq[1:cardinality(a_seq) - 1];
				a_prev := a_prev[1:cardinality(a_prev) - 1];
				a_hash := a_hash[1:cardinality(a_hash) - 1];
				b_revoked := b_revoked[1:cardinality(b_revoked) - 1];
				v_seq := pr_vseq;
				v_hash := pr_vhash;
				pr_refusal := 9; pr_seq := NULL; pr_prev := NULL; pr_hash := NULL;
			END IF;
			IF p_pair[k] THEN
				pr_vseq := v_seq;
				pr_vhash := v_hash;
			END IF;
			IF o_refusal = 0 THEN
				o_seq := v_seq + 1;
				o_prev := v_hash;
				o_hash := sha256(v_hash || p_prefix[k] || {s}.cbor_uint(o_seq) || p_suffix[k]);
				a_k := a_k || k;
				a_seq := a_seq || o_seq;
				a_prev := a_prev || o_prev;
				a_hash := a_hash || o_hash;
				IF p_kind[k] = 1 THEN
					b_issued := b_issued || p_serial[k];
					b_req := b_req || p_requester[k];
					b_time := b_time || p_time[k];
					IF p_idem[k] IS NOT NULL THEN
						b_keys := b_keys || p_idem[k];
					END IF;
					IF p_device[k] IS NOT NULL THEN
						b_dev := b_dev || p_device[k];
						b_devser := b_devser || p_serial[k];
					END IF;
				ELSE
					b_revoked := b_revoked || p_serial[k];
				END IF;
				v_seq := o_seq;
				v_hash := o_hash;
			END IF;
			IF p_pair[k] THEN
				-- A superseding revocation is answered with the issuance
				-- after it, which decides both.
				pr_ok := o_refusal = 0;
				pr_refusal := o_refusal; pr_seq := o_seq; pr_prev := o_prev; pr_hash := o_hash;
				CONTINUE;
			END IF;
			IF k > 1 AND p_pair[k - 1] THEN
				v_n := o_refusal; o_refusal := pr_refusal;
				v_hold_seq := o_seq; v_hold_prev := o_prev; v_hold_hash := o_hash;
				o_seq := pr_seq; o_prev := pr_prev; o_hash := pr_hash;
				RETURN NEXT;
				o_refusal := v_n; o_seq := v_hold_seq; o_prev := v_hold_prev; o_hash := v_hold_hash;
				pr_ok := false;
			END IF;
			RETURN NEXT;
		END LOOP;
		-- One scan of the accepted records, each row's fields taken from
		-- the parameters by index: a plan that is quick to make, as it is
		-- made on every call (see plan_cache_mode above).
		INSERT INTO {s}.records (seq, kind, serial, subject, pubkey_hash, profile, requester,
			evidence, step, time_ns, cert, reason, prev_hash, hash, idem_key, requester_serial, device)
		SELECT a.seq, p_kind[a.k], p_serial[a.k], p_subject[a.k], p_pkh[a.k], p_profile[a.k], p_requester[a.k],
			p_evidence[a.k], p_step[a.k], p_time[a.k], p_cert[a.k], p_reason[a.k], a.prev, a.hash, p_idem[a.k],
			p_rserial[a.k], p_device[a.k]
		FROM unnest(a_k, a_seq, a_prev, a_hash) AS a(k, seq, prev, hash);
	END
	$fn$;`,
	// 6: how the certified key came to be (ca.Record.KeyProvenance), 0
	// (unrecorded) for the records before; append_batch takes it as one
	// more parameter and is otherwise version 5's. The version-5 function
	// is dropped.
	`ALTER TABLE {s}.records ADD COLUMN key_provenance smallint NOT NULL DEFAULT 0,
		ADD CONSTRAINT records_key_provenance CHECK (key_provenance = 0 OR (kind = 1 AND key_provenance BETWEEN 1 AND 4));
	DROP FUNCTION {s}.append_batch(smallint[], bytea[], text[], bytea[], text[], text[], bytea[], bytea[],
		bigint[], bytea[], smallint[], bytea[], bytea[], bigint[], bigint[], bytea[], bytea[], bytea[], boolean[], boolean);
	-- append_batch is version 5's, and records p_provenance (the key
	-- provenance of each record, 0 for none) with each accepted record. It
	-- reads the live issuances of the batch's devices with one query
	-- before its loop, where version 5 ran a query for each issuance: with
	-- plan_cache_mode = force_custom_plan each was planned anew, which
	-- cost the server some 150 µs of CPU per issuance.
	CREATE FUNCTION {s}.append_batch(
		p_kind smallint[], p_serial bytea[], p_subject text[], p_pkh bytea[], p_profile text[],
		p_requester text[], p_evidence bytea[], p_step bytea[], p_time bigint[], p_cert bytea[],
		p_reason smallint[], p_prefix bytea[], p_suffix bytea[], p_qlimit bigint[], p_qsince bigint[],
		p_idem bytea[], p_rserial bytea[], p_device bytea[], p_pair boolean[], p_provenance smallint[],
		p_fast boolean)
	RETURNS TABLE (o_refusal smallint, o_seq bigint, o_prev bytea, o_hash bytea)
	LANGUAGE plpgsql
	-- Plan each statement for the table as it is: a plan cached while the
	-- table was small (before autovacuum's first ANALYZE) would scan the
	-- wrong index once it has grown.
	SET plan_cache_mode = force_custom_plan
	AS $fn$
	DECLARE
		v_seq     bigint;
		v_hash    bytea;
		v_n       bigint;
		k         integer;
		d_issued  bytea[];  -- serials of the batch the ledger has issued
		d_revoked bytea[];  -- and revoked
		d_keys    bytea[];  -- idempotency keys of the batch the ledger holds
		d_rissued  bytea[] := '{}';  -- requester serials the ledger has issued
		d_rrevoked bytea[] := '{}';  -- and revoked
		b_issued  bytea[]  := '{}';  -- accepted in this batch so far
		b_keys    bytea[]  := '{}';
		b_revoked bytea[]  := '{}';
		b_req     text[]   := '{}';  -- requester and time of each accepted issuance
		b_time    bigint[] := '{}';
		a_k       integer[] := '{}'; -- accepted: index, seq, previous hash, hash
		a_seq     bigint[]  := '{}';
		a_prev    bytea[]   := '{}';
		a_hash    bytea[]   := '{}';
		b_dev     bytea[]   := '{}'; -- devices with a live issuance, in the ledger
		b_devser  bytea[]   := '{}'; -- or accepted in this batch, and its serial
		v_live    boolean;
		i         integer;
		pr_ok     boolean   := false; -- the pending superseding revocation
		pr_refusal smallint;
		pr_seq    bigint;
		pr_prev   bytea;
		pr_hash   bytea;
		pr_vseq   bigint;            -- the chain tail before it
		pr_vhash  bytea;
		v_hold_seq  bigint;
		v_hold_prev bytea;
		v_hold_hash bytea;
	BEGIN
		-- The chain lock: held by every appending transaction, of every
		-- instance, until it ends (released after the commit is visible).
		-- Statements after it see every record committed by its previous
		-- holders.
		PERFORM pg_advisory_xact_lock({chainlock});
		SELECT r.seq, r.hash INTO v_seq, v_hash FROM {s}.records r ORDER BY r.seq DESC LIMIT 1;
		IF NOT FOUND THEN
			v_seq := 0;
			v_hash := decode(repeat('00', 32), 'hex');
		END IF;
		IF p_fast THEN
			-- Issuances only: a serial or key the ledger already holds
			-- fails the INSERT on its unique index, and the client runs
			-- the batch again with p_fast false.
			d_issued := '{}'; d_revoked := '{}'; d_keys := '{}';
		ELSE
			SELECT coalesce(array_agg(r.serial), '{}') INTO d_issued FROM {s}.records r
				WHERE r.kind = 1 AND r.serial = ANY (p_serial);
			SELECT coalesce(array_agg(r.serial), '{}') INTO d_revoked FROM {s}.records r
				WHERE r.kind = 2 AND r.serial = ANY (p_serial);
			SELECT coalesce(array_agg(r.idem_key), '{}') INTO d_keys FROM {s}.records r
				WHERE r.idem_key = ANY (p_idem);
		END IF;
		-- Requester certificates, looked up the fast way too: a refusal
		-- here is the ledger's answer, not a constraint to fall back on.
		IF cardinality(array_remove(p_rserial, NULL)) > 0 THEN
			SELECT coalesce(array_agg(r.serial), '{}') INTO d_rissued FROM {s}.records r
				WHERE r.kind = 1 AND r.serial = ANY (p_rserial);
			SELECT coalesce(array_agg(r.serial), '{}') INTO d_rrevoked FROM {s}.records r
				WHERE r.kind = 2 AND r.serial = ANY (p_rserial);
		END IF;
		IF cardinality(array_remove(p_device, NULL)) > 0 THEN
			SELECT coalesce(array_agg(r.device), '{}'), coalesce(array_agg(r.serial), '{}')
				INTO b_dev, b_devser FROM {s}.records r
				WHERE r.kind = 1 AND r.device = ANY (p_device)
				AND NOT EXISTS (SELECT 1 FROM {s}.records v WHERE v.kind = 2 AND v.serial = r.serial);
		END IF;
		FOR k IN 1 .. coalesce(array_length(p_kind, 1), 0) LOOP
			o_refusal := 0; o_seq := NULL; o_prev := NULL; o_hash := NULL;
			-- Whether p_device[k] holds a live issuance: one not revoked
			-- in this batch so far (simple expressions, run without a plan).
			v_live := false;
			IF p_device[k] IS NOT NULL AND p_device[k] = ANY (b_dev) THEN
				FOR i IN 1 .. cardinality(b_dev) LOOP
					IF b_dev[i] = p_device[k] AND NOT (b_devser[i] = ANY (b_revoked)) THEN
						v_live := true;
						EXIT;
					END IF;
				END LOOP;
			END IF;
			IF p_kind[k] = 1 THEN
				IF p_rserial[k] IS NOT NULL AND NOT (p_rserial[k] = ANY (d_rissued) OR p_rserial[k] = ANY (b_issued)) THEN
					o_refusal := 6;
				ELSIF p_rserial[k] = ANY (d_rrevoked) OR p_rserial[k] = ANY (b_revoked) THEN
					o_refusal := 7;
				ELSIF p_serial[k] = ANY (d_issued) OR p_serial[k] = ANY (b_issued) THEN
					o_refusal := 1;
				ELSIF p_idem[k] = ANY (d_keys) OR p_idem[k] = ANY (b_keys) THEN
					o_refusal := 5;
				ELSIF (k > 1 AND p_pair[k - 1] AND NOT pr_ok) OR v_live THEN
					o_refusal := 8;
					-- The fast way skipped the lookups: a repeat is named
					-- as such first.
					IF p_fast THEN
						IF EXISTS (SELECT 1 FROM {s}.records r WHERE r.kind = 1 AND r.serial = p_serial[k]) THEN
							o_refusal := 1;
						ELSIF EXISTS (SELECT 1 FROM {s}.records r WHERE r.idem_key = p_idem[k]) THEN
							o_refusal := 5;
						END IF;
					END IF;
				ELSIF p_qlimit[k] IS NOT NULL THEN
					SELECT count(*) INTO v_n FROM (
						SELECT 1 FROM {s}.records r
						WHERE r.kind = 1 AND r.requester = p_requester[k] AND r.time_ns >= p_qsince[k]
						LIMIT greatest(p_qlimit[k], 0)) c;
					v_n := v_n + (SELECT count(*) FROM unnest(b_req, b_time) AS b(rq, t)
						WHERE b.rq = p_requester[k] AND b.t >= p_qsince[k]);
					IF v_n >= p_qlimit[k] THEN
						o_refusal := 2;
						-- The fast way skipped the lookups: a refusal must
						-- still name a serial or key already recorded first.
						IF p_fast THEN
							IF EXISTS (SELECT 1 FROM {s}.records r WHERE r.kind = 1 AND r.serial = p_serial[k]) THEN
								o_refusal := 1;
							ELSIF EXISTS (SELECT 1 FROM {s}.records r WHERE r.idem_key = p_idem[k]) THEN
								o_refusal := 5;
							END IF;
						END IF;
					END IF;
				END IF;
			ELSIF NOT (p_serial[k] = ANY (d_issued) OR p_serial[k] = ANY (b_issued)) THEN
				o_refusal := 3;
			ELSIF p_serial[k] = ANY (d_revoked) OR p_serial[k] = ANY (b_revoked) THEN
				o_refusal := 4;
			END IF;
			IF k > 1 AND p_pair[k - 1] AND pr_ok AND o_refusal <> 0 THEN
				-- The issuance a superseding revocation came for is
				-- refused: so is the revocation, taken back.
				a_k := a_k[1:cardinality(a_k) - 1];
				a_seq := a_seq[1:cardinality(a_seq) - 1];
				a_prev := a_prev[1:cardinality(a_prev) - 1];
				a_hash := a_hash[1:cardinality(a_hash) - 1];
				b_revoked := b_revoked[1:cardinality(b_revoked) - 1];
				v_seq := pr_vseq;
				v_hash := pr_vhash;
				pr_refusal := 9; pr_seq := NULL; pr_prev := NULL; pr_hash := NULL;
			END IF;
			IF p_pair[k] THEN
				pr_vseq := v_seq;
				pr_vhash := v_hash;
			END IF;
			IF o_refusal = 0 THEN
				o_seq := v_seq + 1;
				o_prev := v_hash;
				o_hash := sha256(v_hash || p_prefix[k] || {s}.cbor_uint(o_seq) || p_suffix[k]);
				a_k := a_k || k;
				a_seq := a_seq || o_seq;
				a_prev := a_prev || o_prev;
				a_hash := a_hash || o_hash;
				IF p_kind[k] = 1 THEN
					b_issued := b_issued || p_serial[k];
					b_req := b_req || p_requester[k];
					b_time := b_time || p_time[k];
					IF p_idem[k] IS NOT NULL THEN
						b_keys := b_keys || p_idem[k];
					END IF;
					IF p_device[k] IS NOT NULL THEN
						b_dev := b_dev || p_device[k];
						b_devser := b_devser || p_serial[k];
					END IF;
				ELSE
					b_revoked := b_revoked || p_serial[k];
				END IF;
				v_seq := o_seq;
				v_hash := o_hash;
			END IF;
			IF p_pair[k] THEN
				-- A superseding revocation is answered with the issuance
				-- after it, which decides both.
				pr_ok := o_refusal = 0;
				pr_refusal := o_refusal; pr_seq := o_seq; pr_prev := o_prev; pr_hash := o_hash;
				CONTINUE;
			END IF;
			IF k > 1 AND p_pair[k - 1] THEN
				v_n := o_refusal; o_refusal := pr_refusal;
				v_hold_seq := o_seq; v_hold_prev := o_prev; v_hold_hash := o_hash;
				o_seq := pr_seq; o_prev := pr_prev; o_hash := pr_hash;
				RETURN NEXT;
				o_refusal := v_n; o_seq := v_hold_seq; o_prev := v_hold_prev; o_hash := v_hold_hash;
				pr_ok := false;
			END IF;
			RETURN NEXT;
		END LOOP;
		-- One scan of the accepted records, each row's fields taken from
		-- the parameters by index: a plan that is quick to make, as it is
		-- made on every call (see plan_cache_mode above).
		INSERT INTO {s}.records (seq, kind, serial, subject, pubkey_hash, profile, requester,
			evidence, step, time_ns, cert, reason, prev_hash, hash, idem_key, requester_serial, device,
			key_provenance)
		SELECT a.seq, p_kind[a.k], p_serial[a.k], p_subject[a.k], p_pkh[a.k], p_profile[a.k], p_requester[a.k],
			p_evidence[a.k], p_step[a.k], p_time[a.k], p_cert[a.k], p_reason[a.k], a.prev, a.hash, p_idem[a.k],
			p_rserial[a.k], p_device[a.k], coalesce(p_provenance[a.k], 0)
		FROM unnest(a_k, a_seq, a_prev, a_hash) AS a(k, seq, prev, hash);
	END
	$fn$;`,
}

// SchemaVersion is the schema version this package creates and reads.
const SchemaVersion = len(migrations)

// minServerVersion is the oldest PostgreSQL this package runs on (12, for
// sha256 in SQL and plan_cache_mode), as server_version_num.
const minServerVersion = 120000

// lockClass is the first key of the advisory lock that serializes
// migrations ("ZTML"); the second is hashtext(schema name).
const lockClass = 0x5A544D4C

// chainLockClass is the first key of the chain lock, the advisory lock
// every append holds until it commits ("ZTMC"); the second is
// chainLockKey(schema name).
const chainLockClass = 0x5A544D43

// chainLockKey is the second key of a schema's chain lock: FNV-1a of its
// name, fixed in the schema's append_batch when it is created.
func chainLockKey(schema string) int32 {
	h := fnv.New32a()
	h.Write([]byte(schema))
	return int32(h.Sum32())
}

var schemaName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// migrate brings the schema to SchemaVersion, creating it when absent. It
// runs in one transaction holding a transaction-level advisory lock, so
// instances starting at once apply each migration exactly once: the
// second waits for the first to commit and then finds the schema current.
func migrate(ctx context.Context, pool *pgxpool.Pool, schema string) error {
	return migrateTo(ctx, pool, schema, SchemaVersion)
}

// migrateTo is migrate up to version target (tests start from older
// versions with it).
func migrateTo(ctx context.Context, pool *pgxpool.Pool, schema string, target int) error {
	q := strings.NewReplacer("{s}", pgx.Identifier{schema}.Sanitize(),
		"{chainlock}", fmt.Sprintf("%d, %d", chainLockClass, chainLockKey(schema))).Replace
	tx, err := pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		return dbError("open", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1, hashtext($2))", int32(lockClass), schema); err != nil {
		return dbError("open", err)
	}
	var serverVersion int
	if err := tx.QueryRow(ctx, "SELECT current_setting('server_version_num')::int").Scan(&serverVersion); err != nil {
		return dbError("open", err)
	}
	if serverVersion < minServerVersion {
		return fmt.Errorf("%w: server version %d, need PostgreSQL 12 or later", ErrInvalidConfig, serverVersion)
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
		return fmt.Errorf("%w: schema %q has a records table but no schema_version", ErrNotLedger, schema)
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
		return fmt.Errorf("%w: schema %q is at version %d, this package knows up to %d", ErrSchemaVersion, schema, version, SchemaVersion)
	}
	if version >= target {
		return nil // nothing to commit; the deferred rollback releases the lock
	}
	for v := version + 1; v <= target; v++ {
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
