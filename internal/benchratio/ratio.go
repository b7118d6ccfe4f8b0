package main

import (
	"bufio"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

const modulePath = "github.com/ztmkit/ztm"

// result is one benchmark: its package, name without the "Benchmark"
// prefix and the -GOMAXPROCS suffix, its metrics by unit (averaged over
// its runs) and the ns/op of each run.
type result struct {
	pkg     string
	name    string
	metrics map[string]float64
	units   []string // in the order printed
	runs    map[runID]float64
	cpuRuns map[runID]float64 // cpu-ns/op of each run, when reported
}

// runID places a run: its round (see roundPrefix) and its position among
// the benchmark's runs in that round (-count > 1).
type runID struct{ round, n int }

// roundPrefix starts the line `make bench` prints before each round: one
// `go test` over every package, so that a benchmark and its raw twin run
// close together in time, once per round.
const roundPrefix = "round: "

var procSuffix = regexp.MustCompile(`-\d+$`)

// parse reads `go test -bench` output, possibly several rounds of it
// (lines "round: N" between them). Every run's ns/op is kept for pairing
// (see pairRatios); the other metrics are averaged over the runs.
func parse(r io.Reader) ([]*result, error) {
	var (
		pkg    string
		round  int
		out    []*result
		byKey  = map[string]*result{}
		counts = map[string]int{} // runs so far, all rounds
		inRnd  = map[string]int{} // runs so far in this round
	)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if p, ok := strings.CutPrefix(line, "pkg: "); ok {
			pkg = strings.TrimSpace(p)
			continue
		}
		if _, ok := strings.CutPrefix(line, roundPrefix); ok {
			round++
			clear(inRnd)
			continue
		}
		if !strings.HasPrefix(line, "Benchmark") {
			continue
		}
		f := strings.Fields(line)
		// Name, iterations, then value/unit pairs.
		if len(f) < 4 || len(f)%2 != 0 {
			continue
		}
		if _, err := strconv.ParseInt(f[1], 10, 64); err != nil {
			continue
		}
		name := procSuffix.ReplaceAllString(strings.TrimPrefix(f[0], "Benchmark"), "")
		key := pkg + "\x00" + name
		res := byKey[key]
		if res == nil {
			res = &result{pkg: relPkg(pkg), name: name, metrics: map[string]float64{}, runs: map[runID]float64{}, cpuRuns: map[runID]float64{}}
			byKey[key] = res
			out = append(out, res)
		}
		n := counts[key]
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				return nil, fmt.Errorf("bad value %q in %q", f[i], line)
			}
			unit := f[i+1]
			if _, seen := res.metrics[unit]; !seen {
				res.units = append(res.units, unit)
			}
			switch unit {
			case "ns/op":
				res.runs[runID{round, inRnd[key]}] = v
			case cpuUnit:
				res.cpuRuns[runID{round, inRnd[key]}] = v
			}
			if n == 0 {
				res.metrics[unit] = v
			} else {
				res.metrics[unit] = (res.metrics[unit]*float64(n) + v) / float64(n+1)
			}
		}
		counts[key] = n + 1
		inRnd[key]++
	}
	return out, sc.Err()
}

func relPkg(pkg string) string {
	if pkg == modulePath {
		return "ztm"
	}
	return strings.TrimPrefix(pkg, modulePath+"/")
}

// rawName returns the name of the wrapper a raw benchmark is the twin of:
// "SignRaw/ES256" → "Sign/ES256".
func rawName(name string) (string, bool) {
	top, sub, hasSub := strings.Cut(name, "/")
	base, ok := strings.CutSuffix(top, "Raw")
	if !ok || base == "" {
		return "", false
	}
	if hasSub {
		return base + "/" + sub, true
	}
	return base, true
}

// goalFor finds the goal of a pair: the full name first, then the top-level
// name.
func goalFor(goals map[string]float64, pkg, name string) (float64, bool) {
	if g, ok := goals[pkg+"."+name]; ok {
		return g, true
	}
	top, _, _ := strings.Cut(name, "/")
	g, ok := goals[pkg+"."+top]
	return g, ok
}

type reportOut struct {
	lines              []string
	pairs, low, noGoal int
}

func report(results []*result, goals map[string]float64) reportOut {
	var rep reportOut
	byName := map[string]*result{}
	for _, r := range results {
		byName[r.pkg+"."+r.name] = r
	}
	paired := map[*result]bool{}
	var pairLines, soloLines []string
	for _, raw := range results {
		base, ok := rawName(raw.name)
		if !ok {
			continue
		}
		ours := byName[raw.pkg+"."+base]
		if ours == nil {
			continue
		}
		ratios, ourNs, rawNs := pairRatios(ours.runs, raw.runs)
		if len(ratios) == 0 {
			continue
		}
		o, r, ratio := median(ourNs), median(rawNs), median(ratios)
		paired[ours], paired[raw] = true, true
		rep.pairs++
		goalText, verdict := "none", "NOGOAL"
		if g, ok := goalFor(goals, ours.pkg, ours.name); ok {
			goalText = strconv.FormatFloat(g, 'f', 2, 64)
			verdict = "ok"
			// Compare the printed, rounded ratio, so that a line never reads
			// "ratio=0.90 goal=0.90 LOW".
			if rounded, _ := strconv.ParseFloat(strconv.FormatFloat(ratio, 'f', 2, 64), 64); rounded < g {
				verdict = "LOW"
				rep.low++
			}
		} else {
			rep.noGoal++
		}
		spread := ""
		if len(ratios) > 1 {
			spread = fmt.Sprintf(" (%d pairs %.2f..%.2f)", len(ratios), slices.Min(ratios), slices.Max(ratios))
		}
		extra, cpuLow := cpuText(ours, raw, goals)
		if cpuLow && verdict == "ok" {
			verdict = "LOW"
			rep.low++
		}
		extra += fmt.Sprintf(" ops/s=%.0f", 1e9/o)
		if b, ok := ours.metrics["B/op"]; ok {
			// Bytes allocated per operation of ours (the last run).
			extra += " B/op=" + fmtMetric(b)
		}
		pairLines = append(pairLines, fmt.Sprintf("BENCH %s.%s ours=%s raw=%s ratio=%.2f%s goal=%s %s%s",
			ours.pkg, ours.name, fmtNs(o), fmtNs(r), ratio, spread, goalText, verdict, extra))
	}
	for _, r := range results {
		if paired[r] {
			continue
		}
		if _, isRaw := rawName(r.name); isRaw {
			continue
		}
		var parts []string
		for _, u := range r.units {
			parts = append(parts, fmtMetric(r.metrics[u])+" "+u)
		}
		soloLines = append(soloLines, fmt.Sprintf("INFO  %s.%s %s", r.pkg, r.name, strings.Join(parts, " ")))
	}
	slices.Sort(pairLines)
	slices.Sort(soloLines)
	rep.lines = append(pairLines, soloLines...)
	return rep
}

// cpuUnit is the metric internal/benchcpu reports: CPU time of the
// process per operation, all threads.
const cpuUnit = "cpu-ns/op"

// cpuText returns, when both benchmarks of a pair report cpu-ns/op, the
// median of the paired raw/ours CPU-time ratios as " cpu=<ratio> (<n>
// pairs <min>..<max>)", with the CPU goal (cpuGoals) and whether the
// ratio is below it.
func cpuText(ours, raw *result, goals map[string]float64) (string, bool) {
	ratios, _, _ := pairRatios(ours.cpuRuns, raw.cpuRuns)
	if len(ratios) == 0 {
		return "", false
	}
	ratio := median(ratios)
	text := fmt.Sprintf(" cpu=%.2f", ratio)
	if len(ratios) > 1 {
		text += fmt.Sprintf(" (%d pairs %.2f..%.2f)", len(ratios), slices.Min(ratios), slices.Max(ratios))
	}
	g, ok := goalFor(cpuGoals, ours.pkg, ours.name)
	if !ok {
		return text, false
	}
	rounded, _ := strconv.ParseFloat(strconv.FormatFloat(ratio, 'f', 2, 64), 64)
	text += " cpu-goal=" + strconv.FormatFloat(g, 'f', 2, 64)
	return text, rounded < g
}

// pairRatios pairs the runs of a benchmark and its raw twin that ran in
// the same round, in the same position, and returns raw/ours for each pair
// with the two runs' ns/op. A pair ran close together in time, so a slow
// spell of a shared machine weighs on both of its runs; the median over
// the rounds then drops the spells that fell between the two.
func pairRatios(ours, raw map[runID]float64) (ratios, oursNs, rawNs []float64) {
	ids := make([]runID, 0, len(ours))
	for id := range ours {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b runID) int {
		if a.round != b.round {
			return a.round - b.round
		}
		return a.n - b.n
	})
	for _, id := range ids {
		o, r := ours[id], raw[id]
		if o <= 0 || r <= 0 {
			continue
		}
		ratios = append(ratios, r/o)
		oursNs = append(oursNs, o)
		rawNs = append(rawNs, r)
	}
	return ratios, oursNs, rawNs
}

// median returns the middle of vs (the mean of the two middle values for
// an even count); vs is not empty.
func median(vs []float64) float64 {
	s := slices.Clone(vs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func fmtNs(v float64) string {
	if v >= 100 {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}

func fmtMetric(v float64) string {
	if v == float64(int64(v)) {
		return strconv.FormatInt(int64(v), 10)
	}
	return strconv.FormatFloat(v, 'g', 4, 64)
}
