// Package depcheck holds the test that keeps ztm's dependency graph as
// DESIGN.md draws it: the core packages depend only on the standard library,
// golang.org/x/crypto and the few libraries their wire formats need, and
// dependencies point down the package table (manifest never imports ca, ca
// never imports transport). It has no code of its own.
package depcheck
