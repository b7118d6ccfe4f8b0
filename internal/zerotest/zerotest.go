// Package zerotest runs the zero-value walk of the house style (rule 28:
// a zero value or a wrong config is an error, never a panic), and holds
// the one check that an error message names no package twice. The root
// package's walk (TestZeroValues) and its one-prefix checks use it, and so
// do the walks of the durable stores (ca/ledger/sqlite,
// ca/ledger/postgres, manifest/chainstore), which live in those stores'
// packages because a jig's tests must not need their drivers. It is
// internal: only this module's tests use it.
package zerotest

import (
	"strings"
	"testing"
)

// Case is one use of an exported type, zero-valued or misconfigured.
type Case struct {
	Name string
	Call func() error
}

// Prefixes is the set of package prefixes Doubled looks for ("sqlite",
// "ca": package names, without the colon).
func Prefixes(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

// Run runs each case in a subtest. A case fails if it panics, returns no
// error, or returns one whose message Doubled finds a part of twice.
func Run(t *testing.T, known map[string]bool, cases []Case) {
	t.Helper()
	for _, c := range cases {
		t.Run(strings.NewReplacer(" ", "_", "/", "_").Replace(c.Name), func(t *testing.T) {
			var err error
			func() {
				defer func() {
					if p := recover(); p != nil {
						t.Fatalf("%s panicked: %v", c.Name, p)
					}
				}()
				err = c.Call()
			}()
			if err == nil {
				t.Fatalf("%s: no error", c.Name)
			}
			if p := Doubled(err.Error(), known); p != "" {
				t.Errorf("%s: %q twice in %q", c.Name, p, err.Error())
			}
		})
	}
}

// RuntimeText stands, in a message shape rebuilt from source (the root
// package's static one-prefix check), for text known only at run time.
// Doubled never reports it.
const RuntimeText = "\x00"

// Doubled returns the part of msg (parts are separated by ": ") that is a
// known prefix and appears twice (such as "ca" in "ca: x: ca: y"), or
// that directly repeats the part before it; "" if there is none.
func Doubled(msg string, known map[string]bool) string {
	seen := map[string]bool{}
	prev := ""
	for _, part := range strings.Split(msg, ": ") {
		part = strings.TrimSpace(part)
		if part != "" && part != RuntimeText && part == prev {
			return part
		}
		prev = part
		if !known[part] {
			continue
		}
		if seen[part] {
			return part
		}
		seen[part] = true
	}
	return ""
}
