package sqlite

// The ledger's queries, each with the index it goes through (see
// TestQueryPlans, which holds every query to its plan and every index to
// a query that uses it). The others are lookupQuery, lookupKeyQuery,
// liveDeviceQuery and linkQuery, beside the functions that run them.
const (
	// quotaQuery counts a requester's issuances since a time, through
	// records_quota (covering).
	quotaQuery = "SELECT count(*) FROM records WHERE kind = 1 AND requester = ? AND time_ns >= ?"
	// revStateQuery counts a serial's issuances and revocations, through
	// records_issued_serial and records_revoked_serial (both covering).
	revStateQuery = "SELECT (SELECT count(*) FROM records WHERE kind = 1 AND serial = ?1), (SELECT count(*) FROM records WHERE kind = 2 AND serial = ?1)"
	// keyTakenQuery counts the records of an idempotency key, through
	// records_idem_key (covering). Run only when an issuance is refused
	// otherwise: the INSERT's unique index finds a repeat on its own.
	keyTakenQuery = "SELECT count(*) FROM records WHERE idem_key = ?"
	// headQuery is the last record, by the table's own b-tree, backwards.
	headQuery = "SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1"
	// hashAtQuery, recordAtQuery and lastQuery read one record by seq.
	hashAtQuery   = "SELECT hash FROM records WHERE seq = ?"
	recordAtQuery = "SELECT " + recordColumns + " FROM records WHERE seq = ?"
	lastQuery     = "SELECT seq, hash FROM records WHERE seq = (SELECT max(seq) FROM records)"
	// revokedQuery lists the revocations in ledger order, for the CRL,
	// through records_revocations.
	revokedQuery = "SELECT seq, serial, time_ns, reason FROM records WHERE kind = 2 ORDER BY seq"
	// verifyQuery reads the whole chain in order.
	verifyQuery = "SELECT " + recordColumns + " FROM records ORDER BY seq"
)
