// Package zerotest runs the zero-value walk of the house style (rule 28:
// a zero value or a wrong config is an error, never a panic) for the
// packages whose types the root package's walk (TestZeroValues) does not
// import: the durable stores (ca/ledger/sqlite, ca/ledger/postgres,
// manifest/chainstore), whose drivers a jig's tests must not need. Each
// case gets the root walk's checks: it returns an error, does not panic,
// and its message names no package twice. It is internal: only this
// module's tests use it.
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

// Run runs each case in a subtest. A case fails if it panics, returns no
// error, or returns one whose message names one of prefixes (package
// prefixes such as "sqlite" or "ca", without the colon) twice, or repeats
// a part.
func Run(t *testing.T, prefixes []string, cases []Case) {
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
			if p := Doubled(err.Error(), prefixes); p != "" {
				t.Errorf("%s: %q twice in %q", c.Name, p, err.Error())
			}
		})
	}
}

// Doubled returns the part of msg (parts are separated by ": ") that is
// one of prefixes and appears twice, or that directly repeats the part
// before it; "" if there is none.
func Doubled(msg string, prefixes []string) string {
	seen := map[string]bool{}
	prev := ""
	for _, part := range strings.Split(msg, ": ") {
		part = strings.TrimSpace(part)
		if part != "" && part == prev {
			return part
		}
		prev = part
		known := false
		for _, p := range prefixes {
			known = known || p == part
		}
		if !known {
			continue
		}
		if seen[part] {
			return part
		}
		seen[part] = true
	}
	return ""
}
