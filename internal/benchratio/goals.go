package main

// goals maps "<package path relative to the module>.<benchmark name without
// the Benchmark prefix>" to the lowest acceptable ratio raw/ours. A
// sub-benchmark matches its own key first ("identity.Create/ES256"), then
// its top-level name ("identity.Create"). One line per pair; keep sorted.
var goals = map[string]float64{
	"attest.VerifyCWT":                  0.90,
	"attest.VerifyCWTKey":               0.90,
	"attest.VerifyJWT":                  0.90,
	"attest.VerifyJWTKey":               0.90,
	"ca/ledger/postgres.IssueParallel":  0.50,
	"ca/ledger/postgres.IssueParallel3": 0.50,
	"ca/ledger/sqlite.AppendParallel":   2.00,
	"ca/ledger/sqlite.Issue":            0.20, // was ca.Issue (moved so that ca's tests need no database)
	"ca/ledger/sqlite.IssueParallel":    0.75, // was ca.IssueParallel
	"identity.CheckCSR":                 0.90,
	"identity.Create":                   0.90,
	"identity/keystore/file.Sign":       0.90,
	"identity/keystore/mem.Sign":        0.90,
	"identity/keystore/pkcs11.Sign":     0.90,
	"identity/keystore/tpm.Sign":        0.90,
	"internal/linebench.Enroll":         0.60, // was transport/est.Enroll (moved with its SQLite ledger)
	"internal/linebench.Provision":      0.50, // was ztm.Provision (moved with its SQLite stores)
	"manifest.SignStep":                 0.90,
	"manifest.VerifyAll":                0.85,
	"manifest.VerifyChain":              0.90,
}

// cpuGoals maps a pair, as goals does, to the lowest acceptable ratio of
// raw/ours by CPU time (cpu-ns/op, reported by internal/benchcpu): where
// waiting (an fsync, a lock) is part of the cost by design, wall clock
// and CPU time each have a goal.
var cpuGoals = map[string]float64{
	"ca/ledger/sqlite.IssueParallel": 0.85, // was ca.IssueParallel
}
