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

// result is one benchmark line: its package, name without the "Benchmark"
// prefix and the -GOMAXPROCS suffix, and its metrics by unit.
type result struct {
	pkg     string
	name    string
	metrics map[string]float64
	units   []string // in the order printed
}

var procSuffix = regexp.MustCompile(`-\d+$`)

// parse reads `go test -bench` output. When a benchmark appears more than
// once (-count > 1), its ns/op is the fastest run (on a shared, noisy machine
// the minimum is the steadiest estimate of the cost) and its other metrics
// are averaged.
func parse(r io.Reader) ([]*result, error) {
	var (
		pkg    string
		out    []*result
		byKey  = map[string]*result{}
		counts = map[string]int{}
	)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if p, ok := strings.CutPrefix(line, "pkg: "); ok {
			pkg = strings.TrimSpace(p)
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
			res = &result{pkg: relPkg(pkg), name: name, metrics: map[string]float64{}}
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
			switch {
			case n == 0:
				res.metrics[unit] = v
			case unit == "ns/op":
				res.metrics[unit] = min(res.metrics[unit], v)
			default:
				res.metrics[unit] = (res.metrics[unit]*float64(n) + v) / float64(n+1)
			}
		}
		counts[key] = n + 1
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
		o, r := ours.metrics["ns/op"], raw.metrics["ns/op"]
		if o <= 0 || r <= 0 {
			continue
		}
		paired[ours], paired[raw] = true, true
		rep.pairs++
		ratio := r / o
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
		pairLines = append(pairLines, fmt.Sprintf("BENCH %s.%s ours=%s raw=%s ratio=%.2f goal=%s %s",
			ours.pkg, ours.name, fmtNs(o), fmtNs(r), ratio, goalText, verdict))
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
