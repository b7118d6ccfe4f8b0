package depcheck

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/ztmkit/ztm"

// rule limits what a package may import, directly or not. Allowed entries
// are import paths, with "ztm:" standing for the module path; an entry
// ending in "/..." allows that package and every package below it, any
// other entry exactly that package.
type rule struct {
	pkg     string   // module-relative package; "identity/keystore" matches only itself unless tree is set
	tree    bool     // also matches every package below pkg
	allowed []string // allowed non-standard dependency prefixes
}

var (
	cbor       = []string{"github.com/fxamacker/cbor/v2/...", "github.com/x448/float16/..."}
	cryptobyte = []string{"golang.org/x/crypto/cryptobyte/..."}
)

// caDeps is what ca may import.
var caDeps = join(cryptobyte, cbor, []string{
	"github.com/veraison/go-cose/...",
	"ztm:identity", "ztm:identity/keystore", "ztm:internal/detcbor", "ztm:internal/sign1",
	"ztm:internal/stationauth", "ztm:internal/testhook", "ztm:internal/verifiedchains",
})

func join(lists ...[]string) []string {
	var out []string
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}

// rules, most specific first. Packages no rule matches (backends, examples,
// internal test helpers, the root package) may import anything. DO NOT
// widen a rule just to make the test pass: each says what DESIGN.md gives
// the package (and an internal package is what two of them share, as
// internal/stationauth, the station authorization extension that ca
// issues and manifest honours).
var rules = []rule{
	{pkg: "identity/keystore", allowed: nil},
	// The device side of key injection builds without the rest of ztm.
	{pkg: "identity/keyseal", allowed: []string{"ztm:identity/keystore"}},
	{pkg: "identity", allowed: join(cryptobyte, cbor, []string{"ztm:identity/keystore", "ztm:internal/detcbor"})},
	{pkg: "attest", allowed: join(cryptobyte, cbor, []string{
		"github.com/veraison/go-cose/...", "github.com/go-jose/go-jose/v4/...",
		"ztm:identity", "ztm:identity/keystore", "ztm:internal/detcbor", "ztm:internal/sign1",
		"ztm:internal/errfmt",         // stdlib only: one package prefix per message
		"ztm:internal/verifiedchains", // stdlib only: the cache of verified chains ca shares
	})},
	// manifest never imports ca, attest or transport.
	{pkg: "manifest", allowed: join(cryptobyte, cbor, []string{
		"github.com/veraison/go-cose/...", "github.com/transparency-dev/merkle/...",
		"ztm:identity/keystore", "ztm:internal/detcbor", "ztm:internal/sign1", "ztm:internal/stationauth",
	})},
	// The in-memory step store is what tests and examples use instead of
	// manifest/chainstore, so that importing ztm pulls no database: it
	// imports package manifest and what manifest may, nothing more.
	{pkg: "manifest/memchain", allowed: join(cryptobyte, cbor, []string{
		"github.com/veraison/go-cose/...", "github.com/transparency-dev/merkle/...", "ztm:manifest",
		"ztm:identity/keystore", "ztm:internal/detcbor", "ztm:internal/sign1", "ztm:internal/stationauth",
	})},
	// ca never imports attest, manifest, transport or a database driver
	// (internal/testhook: counters the SDK's tests read). It signs its
	// ledger checkpoints through internal/sign1, the one COSE_Sign1 layer
	// attest and manifest use, and so links go-cose (whose only dependency
	// is the CBOR library ca already has) rather than keep a second
	// COSE_Sign1 of its own.
	{pkg: "ca", allowed: caDeps},
	// The ledger in memory is what a jig's tests and ztm's own examples
	// use instead of a database: it must never pull one.
	{pkg: "ca/ledger/memledger", allowed: join(caDeps, []string{"ztm:ca", "ztm:ca/ledger/internal/sqlrecord"})},
	// ca/enroll, the registration authority, decides over ca and attest;
	// it never imports transport, manifest or a database driver.
	{pkg: "ca/enroll", allowed: join(cryptobyte, cbor, []string{
		"github.com/veraison/go-cose/...", "github.com/go-jose/go-jose/v4/...",
		"ztm:ca", "ztm:attest", "ztm:identity", "ztm:identity/keystore",
		"ztm:internal/detcbor", "ztm:internal/sign1", "ztm:internal/stationauth", "ztm:internal/testhook",
		"ztm:internal/errfmt", "ztm:internal/verifiedchains",
	})},
}

func ruleFor(pkg string) *rule {
	rel := strings.TrimPrefix(strings.TrimPrefix(pkg, module), "/")
	for i, r := range rules {
		if rel == r.pkg || (r.tree && strings.HasPrefix(rel, r.pkg+"/")) {
			return &rules[i]
		}
	}
	return nil
}

// violations returns the dependencies of pkg that its rule does not allow.
func violations(r *rule, deps []string) []string {
	var bad []string
	for _, d := range deps {
		if d == "" {
			continue
		}
		ok := false
		for _, a := range r.allowed {
			path := a
			if rel, isOwn := strings.CutPrefix(a, "ztm:"); isOwn {
				path = module + "/" + rel
			}
			tree, isTree := strings.CutSuffix(path, "/...")
			if d == path || (isTree && (d == tree || strings.HasPrefix(d, tree+"/"))) {
				ok = true
				break
			}
		}
		if !ok {
			bad = append(bad, d)
		}
	}
	return bad
}

func goList(t *testing.T, args ...string) []string {
	t.Helper()
	out, err := exec.Command("go", append([]string{"list"}, args...)...).Output()
	if err != nil {
		msg := ""
		if ee, ok := err.(*exec.ExitError); ok {
			msg = string(ee.Stderr)
		}
		t.Fatalf("go list %v: %v\n%s", args, err, msg)
	}
	return strings.Fields(string(out))
}

func TestCoreDependencies(t *testing.T) {
	checked := 0
	for _, pkg := range goList(t, module+"/...") {
		r := ruleFor(pkg)
		if r == nil {
			continue
		}
		deps := goList(t, "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", pkg)
		var external []string
		for _, d := range deps {
			if d != pkg {
				external = append(external, d)
			}
		}
		if bad := violations(r, external); len(bad) > 0 {
			t.Errorf("%s depends on %v, which its rule does not allow (allowed: %v)", pkg, bad, r.allowed)
		}
		checked++
	}
	if checked == 0 {
		t.Fatal("no core package found to check")
	}
}

func TestViolations(t *testing.T) {
	r := ruleFor(module + "/manifest")
	if r == nil || r.pkg != "manifest" {
		t.Fatalf("ruleFor(manifest) = %+v", r)
	}
	got := violations(r, []string{
		"github.com/veraison/go-cose",
		module + "/internal/detcbor",
		module + "/ca",                       // manifest never imports ca
		module + "/identity/keystore/pkcs11", // nor a cgo backend
		"github.com/veraison/go-cose2",       // a prefix, not the module
		"modernc.org/sqlite",
	})
	want := []string{module + "/ca", module + "/identity/keystore/pkcs11", "github.com/veraison/go-cose2", "modernc.org/sqlite"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("violations = %v, want %v", got, want)
	}
	if ruleFor(module+"/identity/keystore/pkcs11") != nil {
		t.Error("backends are not core packages")
	}
}

// TestRootLinksNoDatabase: importing the SDK's root package (a station's
// pipeline) links no database driver; the step store and the ledger are
// chosen by the program (manifest/chainstore, ca/ledger/...).
func TestRootLinksNoDatabase(t *testing.T) {
	for _, d := range goList(t, "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", module) {
		for _, banned := range []string{"modernc.org/sqlite", "github.com/jackc/pgx", module + "/manifest/chainstore", module + "/transport/"} {
			if d == banned || strings.HasPrefix(d, banned+"/") || (strings.HasSuffix(banned, "/") && strings.HasPrefix(d, banned)) {
				t.Errorf("package ztm depends on %s", d)
			}
		}
	}
}
