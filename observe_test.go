package ztm_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ztmkit/ztm"
	"github.com/ztmkit/ztm/attest"
	"github.com/ztmkit/ztm/examples/linesim"
)

// stageLog is an Observer that records what it is told.
type stageLog struct {
	mu     sync.Mutex
	events []string
	errs   []error
}

func (o *stageLog) StageStart(ctx context.Context, stage ztm.Stage) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.events = append(o.events, "+"+stage.String())
}

func (o *stageLog) StageEnd(ctx context.Context, stage ztm.Stage, d time.Duration, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	ev := "-" + stage.String()
	if err != nil {
		ev += "!"
		o.errs = append(o.errs, err)
	}
	if d < 0 {
		ev += fmt.Sprintf("(negative %v)", d)
	}
	o.events = append(o.events, ev)
}

func (o *stageLog) take() ([]string, []error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	ev, errs := o.events, o.errs
	o.events, o.errs = nil, nil
	return ev, errs
}

func TestObserverAndLogger(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	obs := &stageLog{}
	var logBuf syncBuffer
	l, err := linesim.NewLine(ctx, linesim.Config{Observer: obs,
		Logger: slog.New(slog.NewJSONHandler(&logBuf, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	cm := l.Partners[linesim.ContractManufacturer].Station

	check := func(name string, want string, wantErrStage ztm.Stage) {
		t.Helper()
		events, errs := obs.take()
		if got := strings.Join(events, " "); got != want {
			t.Errorf("%s: stages\n got %s\nwant %s", name, got, want)
		}
		if wantErrStage == 0 {
			if len(errs) != 0 {
				t.Errorf("%s: errors %v", name, errs)
			}
			return
		}
		var pe *ztm.ProvisionError
		if len(errs) != 1 || !errors.As(errs[0], &pe) || pe.Stage != wantErrStage {
			t.Errorf("%s: errors %v, want one *ProvisionError at %v", name, errs, wantErrStage)
		}
	}

	honest, err := l.NewDevice(1, linesim.DeviceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cm.Provision(ctx, honest); err != nil {
		t.Fatal(err)
	}
	check("honest", "+info -info +key -key +csr -csr +nonce -nonce +evidence -evidence +appraisal -appraisal +enroll -enroll +install -install +record -record", 0)

	tampered, err := l.NewDevice(2, linesim.DeviceOptions{Tamper: linesim.DebugEnabled})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cm.Provision(ctx, tampered); err == nil {
		t.Fatal("tampered device provisioned")
	}
	check("tampered", "+info -info +key -key +csr -csr +nonce -nonce +evidence -evidence +appraisal -appraisal!", ztm.StageAppraisal)

	rogueDev, err := l.NewDevice(3, linesim.DeviceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Partners[linesim.Rogue].Station.Provision(ctx, rogueDev); err == nil {
		t.Fatal("rogue station provisioned a device")
	}
	check("rogue", "+info -info +key -key +csr -csr +nonce -nonce +evidence -evidence +appraisal -appraisal +enroll -enroll!", ztm.StageEnroll)

	// The chip vendor's station may not record an enrollment: refused
	// before anything is asked of the CA, at the record stage.
	if _, err := l.Partners[linesim.ChipVendor].Station.Provision(ctx, rogueDev); err == nil {
		t.Fatal("chip vendor's station provisioned a device")
	}
	check("unauthorized", "+info -info +record -record!", ztm.StageRecord)

	var recs []map[string]any
	for _, line := range bytes.Split(bytes.TrimSpace(logBuf.Bytes()), []byte("\n")) {
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		recs = append(recs, m)
	}
	if len(recs) != 4 {
		t.Fatalf("%d log records, want 4: %s", len(recs), logBuf.Bytes())
	}
	for i, want := range []map[string]any{
		{"level": "INFO", "msg": "ztm: device provisioned", "serial": honest.Serial()},
		{"level": "WARN", "msg": "ztm: device refused", "serial": tampered.Serial(), "stage": "appraisal"},
		{"level": "WARN", "msg": "ztm: device refused", "stage": "enroll", "reason": "not-authorized"},
		{"level": "ERROR", "msg": "ztm: device provisioning failed", "stage": "record"},
	} {
		for k, v := range want {
			if recs[i][k] != v {
				t.Errorf("log record %d: %s = %v, want %v (%v)", i, k, recs[i][k], v, recs[i])
			}
		}
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]byte(nil), b.b.Bytes()...)
}

// TestReplayedEvidenceReason: evidence that answers another nonce than the
// one the station asked is refused at appraisal with a typed reason, which
// an Observer or a log can count by.
func TestReplayedEvidenceReason(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l := newLine(t)
	d, err := l.NewDevice(1, linesim.DeviceOptions{Tamper: linesim.ReplayedNonce})
	if err != nil {
		t.Fatal(err)
	}
	_, err = l.Partners[linesim.ContractManufacturer].Station.Provision(ctx, d)
	var pe *ztm.ProvisionError
	var ve *attest.VerificationError
	if !errors.As(err, &pe) || pe.Stage != ztm.StageAppraisal || !errors.As(err, &ve) ||
		ve.Reason != attest.ReasonNonceUnknown || !errors.Is(err, attest.ErrVerification) {
		t.Fatalf("err = %v, want a nonce-unknown VerificationError at appraisal", err)
	}
}
