package linestats

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/ztmkit/ztm"
	"github.com/ztmkit/ztm/ca/enroll"
)

func TestQuantile(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(i))
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 50}, {0.99, 99}, {1, 100}, {0, 1}} {
		if got := Quantile(d, c.q); got != c.want {
			t.Errorf("Quantile(1..100, %v) = %v, want %v", c.q, got, c.want)
		}
	}
	if got := Quantile(d[:1], 0.99); got != 1 {
		t.Errorf("one sample: %v", got)
	}
	if got := Quantile(nil, 0.5); got != 0 {
		t.Errorf("none: %v", got)
	}
}

func TestStats(t *testing.T) {
	var s Stats
	ctx := context.Background()
	for i := range 10 {
		s.StageStart(ctx, ztm.StageEnroll)
		var err error
		if i < 3 {
			err = &ztm.ProvisionError{Stage: ztm.StageEnroll, Refused: true,
				Err: &enroll.RefusalError{Reason: enroll.ReasonNotAuthorized}}
		}
		if i == 3 {
			err = &ztm.ProvisionError{Stage: ztm.StageEnroll, Err: errors.New("network")}
		}
		s.StageEnd(ctx, ztm.StageEnroll, time.Duration(i+1)*time.Millisecond, err)
	}
	s.StageStart(ctx, ztm.StageInfo)
	st := s.Stages()
	if got := fmt.Sprint(st); got != fmt.Sprint([]StageSummary{
		{Stage: ztm.StageInfo, Running: 1},
		{Stage: ztm.StageEnroll, Count: 10, Failures: 4, Sum: 55 * time.Millisecond, P50: 5 * time.Millisecond, P99: 10 * time.Millisecond},
	}) {
		t.Errorf("Stages() = %v", got)
	}
	keys, counts := s.Refusals()
	if len(keys) != 1 || keys[0] != (Refusal{ztm.StageEnroll, "not-authorized"}) || counts[0] != 3 {
		t.Errorf("Refusals() = %v %v", keys, counts)
	}
}
