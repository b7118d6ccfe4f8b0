// Command benchratio reads the output of `go test -bench` and prints, for
// every benchmark BenchmarkX that has a twin BenchmarkXRaw in the same
// package, one line comparing the two:
//
//	BENCH <package>.<X> ours=<ns/op> raw=<ns/op> ratio=<raw/ours> (<n> pairs <min>..<max>) goal=<g> <ok|LOW> [cpu=<raw/ours> (<n> pairs <min>..<max>) [cpu-goal=<g>]] ops/s=<1e9/ours> [B/op=<bytes>]
//
// (cpu when both report cpu-ns/op, internal/benchcpu's CPU time per
// operation: the median of the paired CPU-time ratios, LOW when below its
// goal in the cpuGoals table; ops/s is operations per second of ours, such
// as certificates per second; B/op when X reports allocations: the bytes
// it allocates per operation.)
//
// A ratio of 1.00 means the wrapper costs nothing over the raw primitive it
// wraps; the goal for each pair comes from the goals table. The input may
// hold several rounds (`make bench` prints "round: N" before each `go
// test` over every package): a run of X and the run of XRaw in the same
// round make a pair, and the ratio printed is the median of the pairs'
// ratios (ours and raw are the medians of their runs). Benchmarks with
// no twin are listed after the pairs with the metrics they reported. `make
// bench` runs it; it exits 1 when the input has no benchmark at all or a
// pair lacks a goal, and 0 otherwise (a LOW ratio is a finding to read, not
// a build failure, on a shared and noisy machine).
package main

import (
	"fmt"
	"io"
	"os"
)

func main() {
	os.Exit(run(os.Stdin, os.Stdout, os.Stderr))
}

func run(in io.Reader, out, errw io.Writer) int {
	results, err := parse(in)
	if err != nil {
		fmt.Fprintln(errw, "benchratio:", err)
		return 1
	}
	if len(results) == 0 {
		fmt.Fprintln(errw, "benchratio: no benchmark results in the input")
		return 1
	}
	rep := report(results, goals)
	for _, l := range rep.lines {
		fmt.Fprintln(out, l)
	}
	fmt.Fprintf(out, "benchratio: %d pairs, %d below goal, %d without a goal\n", rep.pairs, rep.low, rep.noGoal)
	if rep.noGoal > 0 {
		return 1
	}
	return 0
}
