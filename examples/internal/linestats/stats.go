// Package linestats collects a line's provisioning statistics from the
// stations' ztm.Observer hook: per-stage latency and counts, and refusals
// by stage and reason. examples/factoryline prints them; examples/metrics
// serves them as Prometheus text.
package linestats

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/ztmkit/ztm"
	"github.com/ztmkit/ztm/attest"
	"github.com/ztmkit/ztm/ca/enroll"
)

// Stats is a ztm.Observer that keeps every stage duration. It is safe for
// concurrent use; the zero value is ready.
type Stats struct {
	mu       sync.Mutex
	stages   map[ztm.Stage]*stage
	refusals map[Refusal]int
}

var _ ztm.Observer = (*Stats)(nil)

type stage struct {
	running  int
	failures int
	samples  []time.Duration
	sum      time.Duration
}

// Refusal names why devices were refused: the stage and the reason (the
// CA's enroll.Reason, the station's attest.Reason, else "refused").
type Refusal struct {
	Stage  ztm.Stage
	Reason string
}

// StageStart implements ztm.Observer.
func (s *Stats) StageStart(ctx context.Context, st ztm.Stage) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.get(st).running++
}

// StageEnd implements ztm.Observer.
func (s *Stats) StageEnd(ctx context.Context, st ztm.Stage, d time.Duration, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.get(st)
	g.running--
	g.samples = append(g.samples, d)
	g.sum += d
	if err == nil {
		return
	}
	g.failures++
	if errors.Is(err, ztm.ErrRefused) {
		if s.refusals == nil {
			s.refusals = make(map[Refusal]int)
		}
		s.refusals[Refusal{st, ReasonOf(err)}]++
	}
}

func (s *Stats) get(st ztm.Stage) *stage {
	if s.stages == nil {
		s.stages = make(map[ztm.Stage]*stage)
	}
	g := s.stages[st]
	if g == nil {
		g = &stage{}
		s.stages[st] = g
	}
	return g
}

// ReasonOf names the reason of a refusal: the CA's (enroll.RefusalError),
// else the station's appraisal (attest.VerificationError), else "refused".
func ReasonOf(err error) string {
	var re *enroll.RefusalError
	if errors.As(err, &re) {
		return re.Reason.String()
	}
	var ve *attest.VerificationError
	if errors.As(err, &ve) {
		return ve.Reason.String()
	}
	return "refused"
}

// StageSummary is one stage's statistics.
type StageSummary struct {
	Stage ztm.Stage
	// Count stages ended, Failures of them with an error, Running started
	// and not ended.
	Count, Failures, Running int
	// Sum of the durations; P50 and P99 their quantiles (nearest rank).
	Sum, P50, P99 time.Duration
}

// Stages returns every stage seen, in Provision's order of the Stage
// constants.
func (s *Stats) Stages() []StageSummary {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []StageSummary
	for st, g := range s.stages {
		sorted := slices.Clone(g.samples)
		slices.Sort(sorted)
		out = append(out, StageSummary{Stage: st, Count: len(sorted), Failures: g.failures, Running: g.running,
			Sum: g.sum, P50: Quantile(sorted, 0.50), P99: Quantile(sorted, 0.99)})
	}
	slices.SortFunc(out, func(a, b StageSummary) int { return int(a.Stage) - int(b.Stage) })
	return out
}

// Refusals returns the refusals counted, sorted by stage then reason.
func (s *Stats) Refusals() ([]Refusal, []int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	keys := make([]Refusal, 0, len(s.refusals))
	for k := range s.refusals {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b Refusal) int {
		if a.Stage != b.Stage {
			return int(a.Stage) - int(b.Stage)
		}
		switch {
		case a.Reason < b.Reason:
			return -1
		case a.Reason > b.Reason:
			return 1
		}
		return 0
	})
	counts := make([]int, len(keys))
	for i, k := range keys {
		counts[i] = s.refusals[k]
	}
	return keys, counts
}

// Quantile returns the q-quantile of sorted durations by the nearest-rank
// method, or 0 for none.
func Quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(q*float64(len(sorted))+0.999999999) - 1 // ceil(q·n) - 1
	return sorted[min(max(rank, 0), len(sorted)-1)]
}
