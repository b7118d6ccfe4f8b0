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
BenchmarkProvision-2   	 100	 3000 ns/op
BenchmarkProvisionRaw-2	 100	 990 ns/op
BenchmarkProvisionRaw-2	 100	 1010 ns/op
`

// rounds is three rounds of `make bench`: the third round's runs were
// slowed together, the second one's ours alone.
const rounds = `round: 1
pkg: github.com/ztmkit/ztm/ca
BenchmarkIssue-2      	 100	 1000 ns/op	 18.00 issues/commit
BenchmarkIssueRaw-2   	 100	  800 ns/op
BenchmarkLonely-2     	 100	   10 ns/op
round: 2
pkg: github.com/ztmkit/ztm/ca
BenchmarkIssue-2      	 100	 2000 ns/op	 14.00 issues/commit
BenchmarkIssueRaw-2   	 100	  820 ns/op
round: 3
pkg: github.com/ztmkit/ztm/ca
BenchmarkIssue-2      	 100	 1500 ns/op	 16.00 issues/commit
BenchmarkIssueRaw-2   	 100	 1230 ns/op
BenchmarkLonely-2     	 100	   20 ns/op
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
		"BENCH identity/keystore/mem.Sign/ES256 ours=20000 raw=19000 ratio=0.95 goal=0.90 ok ops/s=50000 B/op=2000",
		"BENCH identity/keystore/mem.Sign/ES384 ours=100000 raw=50000 ratio=0.50 goal=0.60 LOW ops/s=10000",
		// -count=2: runs paired in order (990/1000, 1010/3000), medians.
		"BENCH ztm.Provision ours=2000 raw=1000 ratio=0.66 (2 pairs 0.34..0.99) goal=0.40 ok ops/s=500000",
		"INFO  identity/keystore/mem.Lonely 1234 ns/op 7.5 ns/device",
	}
	if got := strings.Join(rep.lines, "\n"); got != strings.Join(want, "\n") {
		t.Errorf("report:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
	if rep.pairs != 3 || rep.low != 1 || rep.noGoal != 0 {
		t.Errorf("pairs=%d low=%d noGoal=%d", rep.pairs, rep.low, rep.noGoal)
	}
}

func TestRounds(t *testing.T) {
	results, err := parse(strings.NewReader(rounds))
	if err != nil {
		t.Fatal(err)
	}
	rep := report(results, map[string]float64{"ca.Issue": 0.80})
	want := []string{
		// Pairs 0.80, 0.41, 0.82: the median drops the round whose ours
		// alone was slow; ratio of medians would say 820/1500 = 0.55.
		"BENCH ca.Issue ours=1500 raw=820 ratio=0.80 (3 pairs 0.41..0.82) goal=0.80 ok ops/s=666667",
		"INFO  ca.Lonely 15 ns/op",
	}
	if got := strings.Join(rep.lines, "\n"); got != strings.Join(want, "\n") {
		t.Errorf("report:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
}

// TestCPURatio: when both sides report cpu-ns/op, the line also gives
// the median of the paired CPU-time ratios, held to its own goal: a pair
// whose wall-clock ratio meets its goal is LOW when its CPU ratio does not.
func TestCPURatio(t *testing.T) {
	const in = `round: 1
pkg: github.com/ztmkit/ztm/ca
BenchmarkIssueParallel-2      	 100	 1000 ns/op	 2000 cpu-ns/op
BenchmarkIssueParallelRaw-2   	 100	  800 ns/op	 1500 cpu-ns/op
round: 2
pkg: github.com/ztmkit/ztm/ca
BenchmarkIssueParallel-2      	 100	 1000 ns/op	 2000 cpu-ns/op
BenchmarkIssueParallelRaw-2   	 100	  780 ns/op	 1800 cpu-ns/op
`
	results, err := parse(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		cpuGoal float64
		want    string
		low     int
	}{
		{0.85, "BENCH ca.IssueParallel ours=1000 raw=790 ratio=0.79 (2 pairs 0.78..0.80) goal=0.75 ok cpu=0.82 (2 pairs 0.75..0.90) cpu-goal=0.85 ops/s=1000000", 1},
		{0.80, "BENCH ca.IssueParallel ours=1000 raw=790 ratio=0.79 (2 pairs 0.78..0.80) goal=0.75 ok cpu=0.82 (2 pairs 0.75..0.90) cpu-goal=0.80 ops/s=1000000", 0},
	} {
		saved := cpuGoals
		cpuGoals = map[string]float64{"ca.IssueParallel": tc.cpuGoal}
		rep := report(results, map[string]float64{"ca.IssueParallel": 0.75})
		cpuGoals = saved
		want := strings.Replace(tc.want, " ok ", map[bool]string{true: " LOW ", false: " ok "}[tc.low > 0], 1)
		if len(rep.lines) != 1 || rep.lines[0] != want || rep.low != tc.low {
			t.Errorf("cpu goal %.2f: %q (low %d), want %q (low %d)", tc.cpuGoal, rep.lines, rep.low, want, tc.low)
		}
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
