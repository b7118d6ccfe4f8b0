// Package zlinttest lints what ca issues (certificates of every profile and
// key type, and CRLs) with zlint, RFC 5280 and the other sources that apply
// to a private device PKI.
//
// It is its own module, for tests only: zlint and zcrypto are test
// dependencies of this module and of no package a ztm user imports, so a
// jig's `go mod tidy` never downloads them. `make test` runs it; by hand:
//
//	cd internal/zlinttest && go test ./...
package zlinttest
