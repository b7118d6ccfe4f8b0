package sqlite

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// queryPlans are the ledger's read queries with the plan SQLite gives
// each (EXPLAIN QUERY PLAN, its details joined by "; "). Every index of
// the schema must appear in one of them.
var queryPlans = []struct{ name, query, plan string }{
	{"quota", quotaQuery, "SEARCH records USING COVERING INDEX records_quota (requester=? AND time_ns>?)"},
	{"revState", revStateQuery, "SCAN CONSTANT ROW; SCALAR SUBQUERY 1; SEARCH records USING COVERING INDEX records_issued_serial (serial=?); " +
		"SCALAR SUBQUERY 2; SEARCH records USING COVERING INDEX records_revoked_serial (serial=?)"},
	{"keyTaken", keyTakenQuery, "SEARCH records USING COVERING INDEX records_idem_key (idem_key=?)"},
	{"liveDevice", liveDeviceQuery, "SEARCH r USING INDEX records_device (device=?); CORRELATED SCALAR SUBQUERY 1; " +
		"SEARCH v USING COVERING INDEX records_revoked_serial (serial=?)"},
	{"lookup", lookupQuery, "COMPOUND QUERY; LEFT-MOST SUBQUERY; SEARCH records USING INDEX records_issued_serial (serial=?); " +
		"UNION ALL; SEARCH records USING INDEX records_revoked_serial (serial=?)"},
	{"lookupKey", lookupKeyQuery, "COMPOUND QUERY; LEFT-MOST SUBQUERY; SEARCH records USING INDEX records_idem_key (idem_key=?); " +
		"UNION ALL; SEARCH records USING INDEX records_revoked_serial (serial=?); SCALAR SUBQUERY 2; SEARCH records USING INDEX records_idem_key (idem_key=?)"},
	{"revoked", revokedQuery, "SCAN records USING INDEX records_revocations"},
	{"link", linkQuery, "SCAN CONSTANT ROW; SCALAR SUBQUERY 1; SEARCH records USING INTEGER PRIMARY KEY (rowid=?); SCALAR SUBQUERY 2; SEARCH records"},
	{"hashAt", hashAtQuery, "SEARCH records USING INTEGER PRIMARY KEY (rowid=?)"},
	{"recordAt", recordAtQuery, "SEARCH records USING INTEGER PRIMARY KEY (rowid=?)"},
	{"last", lastQuery, "SEARCH records USING INTEGER PRIMARY KEY (rowid=?); SCALAR SUBQUERY 1; SEARCH records"},
	// The last record: the table's b-tree read backwards, stopped at one.
	{"head", headQuery, "SCAN records"},
	{"verify", verifyQuery, "SCAN records"},
}

// TestQueryPlans holds each query to its plan (no query scans the table
// where an index or the primary key should find its rows) and the schema
// to the indexes the queries use: an index no query uses costs every
// write its entry for nothing.
func TestQueryPlans(t *testing.T) {
	t.Parallel()
	path, _ := indexLedger(t)
	db := rawConn(t, path)
	defer db.Close()
	used := map[string]bool{}
	for _, q := range queryPlans {
		rows, err := db.Query("EXPLAIN QUERY PLAN "+q.query, nil, nil)
		require.NoError(t, err, q.name)
		var details []string
		for rows.Next() {
			var id, parent, notUsed int
			var detail string
			require.NoError(t, rows.Scan(&id, &parent, &notUsed, &detail))
			details = append(details, detail)
			if i := strings.Index(detail, "INDEX "); i >= 0 {
				used[strings.Fields(detail[i+len("INDEX "):])[0]] = true
			}
		}
		require.NoError(t, rows.Err())
		rows.Close()
		t.Logf("%-10s %s", q.name, strings.Join(details, "; "))
		require.Equal(t, q.plan, strings.Join(details, "; "), q.name)
	}
	rows, err := db.Query("SELECT name FROM sqlite_schema WHERE type = 'index' AND sql IS NOT NULL ORDER BY name")
	require.NoError(t, err)
	defer rows.Close()
	for rows.Next() {
		var name string
		require.NoError(t, rows.Scan(&name))
		require.True(t, used[name], "index %s is used by no query", name)
	}
	require.NoError(t, rows.Err())
}
