// Package linebench holds the benchmarks of the whole line over its
// durable stores: ztm.Station.Provision on a line whose CA ledger and step
// stores are SQLite files (BenchmarkProvision), and EST enrollment against
// a CA on a SQLite ledger (BenchmarkEnroll), each beside the raw
// primitives it is compared with by `make bench`.
//
// They live here rather than beside the code they measure because a
// vendor's `go mod tidy` loads the tests of every package its jig
// imports, and these benchmarks need the SQLite driver that a jig does
// not link. Nothing imports this package; it has no API.
package linebench
