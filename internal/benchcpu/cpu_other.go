//go:build !unix

package benchcpu

// cpuNanos cannot tell here.
func cpuNanos() (int64, bool) { return 0, false }
