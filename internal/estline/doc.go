// Package estline is the CA side of a manufacturing line, as the tests of
// EST enrollment build it: a test PKI and an Authority over a ledger, an
// attestation verifier that knows the attestation keys of some device
// models, an enroll.Service over both, an EST server on 127.0.0.1 over
// TLS, stations, EST clients, and simulated devices that make IDevID
// requests and evidence.
//
// It is internal: only this module's tests use it (transport/est's tests,
// the crash tests of transport/est/queue, and the enrollment benchmarks
// of internal/linebench), from external test packages.
//
// It imports no database driver: its default ledger is in memory
// (ca/ledger/memledger), because the tests of transport/est use it and a
// jig's `go mod tidy` loads those tests. A test whose subject is a durable
// ledger opens that ledger itself and passes it in [Config].
//
// Every function takes a testing.TB and fails the test on error, and
// everything it starts is stopped by the test's cleanup.
package estline
