package main

import (
	"bytes"
	"strings"
	"testing"
)

const sample = `goos: linux
goarch: amd64
pkg: github.com/ztmkit/ztm/identity/keystore/mem
cpu: Some CPU
BenchmarkSign/ES256-2         	   50000	     20000 ns/op	    2000 B/op	      30 allocs/op
BenchmarkSignRaw/ES256-2      	   50000	     19000 ns/op	    1900 B/op	      28 allocs/op
BenchmarkSign/ES384-2         	   10000	    100000 ns/op
BenchmarkSignRaw/ES384-2      	   10000	     50000 ns/op
BenchmarkLonely-2             	     100	      1234 ns/op	       7.500 ns/device
PASS
ok  	github.com/ztmkit/ztm/identity/keystore/mem	3.1s
pkg: github.com/ztmkit/ztm
BenchmarkProvision-2   	 100	 1000 ns/op
BenchmarkProvisionRaw-2	 100	 990 ns/op
BenchmarkProvision-2   	 100	 3000 ns/op
BenchmarkProvisionRaw-2	 100	 1010 ns/op
`

func TestReport(t *testing.T) {
	results, err := parse(strings.NewReader(sample))
	if err != nil {
		t.Fatal(err)
	}
	rep := report(results, map[string]float64{
		"identity/keystore/mem.Sign":       0.90,
		"identity/keystore/mem.Sign/ES384": 0.60,
		"ztm.Provision":                    0.40,
	})
	want := []string{
		"BENCH identity/keystore/mem.Sign/ES256 ours=20000 raw=19000 ratio=0.95 goal=0.90 ok",
		"BENCH identity/keystore/mem.Sign/ES384 ours=100000 raw=50000 ratio=0.50 goal=0.60 LOW",
		// -count=2: the fastest run of each counts: ours 1000, raw 990.
		"BENCH ztm.Provision ours=1000 raw=990 ratio=0.99 goal=0.40 ok",
		"INFO  identity/keystore/mem.Lonely 1234 ns/op 7.5 ns/device",
	}
	if got := strings.Join(rep.lines, "\n"); got != strings.Join(want, "\n") {
		t.Errorf("report:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
	if rep.pairs != 3 || rep.low != 1 || rep.noGoal != 0 {
		t.Errorf("pairs=%d low=%d noGoal=%d", rep.pairs, rep.low, rep.noGoal)
	}
}

func TestRunFailures(t *testing.T) {
	var out, errw bytes.Buffer
	if code := run(strings.NewReader("PASS\n"), &out, &errw); code != 1 || !strings.Contains(errw.String(), "no benchmark") {
		t.Errorf("empty input: code %d, stderr %q", code, errw.String())
	}
	out.Reset()
	in := "pkg: github.com/ztmkit/ztm/nogoal\nBenchmarkX-2 10 100 ns/op\nBenchmarkXRaw-2 10 100 ns/op\n"
	if code := run(strings.NewReader(in), &out, &errw); code != 1 || !strings.Contains(out.String(), "goal=none NOGOAL") {
		t.Errorf("pair without goal: code %d, out %q", code, out.String())
	}
}

func TestRawName(t *testing.T) {
	for in, want := range map[string]string{
		"SignRaw":          "Sign",
		"SignRaw/ES256":    "Sign/ES256",
		"Raw":              "",
		"Sign":             "",
		"Sign/RawThing":    "",
		"IssueParallelRaw": "IssueParallel",
	} {
		got, ok := rawName(in)
		if got != want || ok != (want != "") {
			t.Errorf("rawName(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
}
