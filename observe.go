package ztm

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/ztmkit/ztm/ca/enroll"
)

// Observer receives the stages of a Station's Provision and Reprovision as
// they run, for metrics and tracing (StationConfig.Observer). Its methods
// are called from the goroutine running Provision, for every device the
// station works on at once: they must be safe for concurrent use and
// return quickly.
type Observer interface {
	// StageStart is called when Provision starts stage for a device.
	StageStart(ctx context.Context, stage Stage)
	// StageEnd is called when stage ends, d after its StageStart. err is
	// nil if the stage succeeded, else the *ProvisionError that Provision
	// returns, whose Stage is stage (its Refused field tells a refusal of
	// the device from a failure; errors.As to *enroll.RefusalError gives
	// the CA's reason). Every StageStart is followed by one StageEnd. A
	// device that cannot make keys passes StageKey twice: its refusal to
	// generate one, then the injection after its appraisal.
	StageEnd(ctx context.Context, stage Stage, d time.Duration, err error)
}

// stages times the stages of one Provision call and reports them to an
// Observer; the zero value with a nil obs only keeps the current stage.
type stages struct {
	obs   Observer
	now   func() time.Time
	cur   Stage
	start time.Time
}

// enter ends the current stage, successfully, and starts stage.
func (t *stages) enter(ctx context.Context, stage Stage) {
	if t.obs == nil {
		return
	}
	now := t.now()
	if t.cur != 0 {
		t.obs.StageEnd(ctx, t.cur, now.Sub(t.start), nil)
	}
	t.cur, t.start = stage, now
	t.obs.StageStart(ctx, stage)
}

// finish ends the current stage with err. A *ProvisionError naming another
// stage (a check made ahead of its stage, such as the station's
// authorization to record) ends the current stage successfully and that
// stage at once, with err.
func (t *stages) finish(ctx context.Context, err error) {
	if t.obs == nil || t.cur == 0 {
		return
	}
	now := t.now()
	var pe *ProvisionError
	if errors.As(err, &pe) && pe.Stage != t.cur {
		t.obs.StageEnd(ctx, t.cur, now.Sub(t.start), nil)
		t.obs.StageStart(ctx, pe.Stage)
		t.obs.StageEnd(ctx, pe.Stage, 0, err)
	} else {
		t.obs.StageEnd(ctx, t.cur, now.Sub(t.start), err)
	}
	t.cur = 0
}

// observed runs provision with its stages observed and its outcome logged.
func (s *Station) observed(ctx context.Context, dev Device, reprovision bool) (*Result, error) {
	if err := s.usable(dev); err != nil {
		return nil, err
	}
	t := &stages{obs: s.cfg.Observer, now: s.cfg.Time}
	start := s.cfg.Time()
	r, err := s.provision(ctx, t, dev, reprovision)
	t.finish(ctx, err)
	s.logOutcome(ctx, r, err, s.cfg.Time().Sub(start))
	return r, err
}

// logOutcome logs a Provision's result: Info for a provisioned device,
// Warn for a refused one, Error for a failure.
func (s *Station) logOutcome(ctx context.Context, r *Result, err error, d time.Duration) {
	log := s.cfg.Logger
	if log == nil {
		return
	}
	if err == nil {
		log.LogAttrs(ctx, slog.LevelInfo, "ztm: device provisioned", slog.String("station", s.cfg.Name),
			slog.String("serial", r.Device.SerialNumber), slog.Duration("duration", d),
			slog.String("certificate", r.CertChain[0].SerialNumber.Text(16)))
		return
	}
	attrs := []slog.Attr{slog.String("station", s.cfg.Name), slog.Duration("duration", d)}
	level := slog.LevelError
	var pe *ProvisionError
	if errors.As(err, &pe) {
		attrs = append(attrs, slog.String("serial", pe.Serial), slog.String("stage", pe.Stage.String()))
		if pe.Refused {
			level = slog.LevelWarn
		}
	}
	var re *enroll.RefusalError
	if errors.As(err, &re) {
		attrs = append(attrs, slog.String("reason", re.Reason.String()))
	}
	attrs = append(attrs, slog.String("error", err.Error()))
	msg := "ztm: device provisioning failed"
	if level == slog.LevelWarn {
		msg = "ztm: device refused"
	}
	log.LogAttrs(ctx, level, msg, attrs...)
}
