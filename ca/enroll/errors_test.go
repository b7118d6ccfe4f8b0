package enroll_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/ztmkit/ztm/attest"
	"github.com/ztmkit/ztm/ca"
	"github.com/ztmkit/ztm/ca/enroll"
	"github.com/ztmkit/ztm/identity"
)

// TestReportedRoundTrip: every reason's code, read back as a transport
// would, gives the same reason and check, and wraps the sentinel the
// in-process refusal wraps.
func TestReportedRoundTrip(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   *enroll.RefusalError
		want error
	}{
		{&enroll.RefusalError{Reason: enroll.ReasonEvidence, Check: "debug-enabled"}, attest.ErrPolicy},
		{&enroll.RefusalError{Reason: enroll.ReasonEvidence, Check: "nonce-reused"}, attest.ErrNonceReused},
		{&enroll.RefusalError{Reason: enroll.ReasonEvidence, Check: "untrusted-signer"}, attest.ErrUntrustedSigner},
		{&enroll.RefusalError{Reason: enroll.ReasonBadRequest, Check: identity.CSRWeakKey.String()}, identity.ErrInvalidCSR},
		{&enroll.RefusalError{Reason: enroll.ReasonQuota}, ca.ErrQuotaExceeded},
		{&enroll.RefusalError{Reason: enroll.ReasonRepeatRevoked}, ca.ErrRepeatRevoked},
		{&enroll.RefusalError{Reason: enroll.ReasonConflict}, ca.ErrRequestExists},
		{&enroll.RefusalError{Reason: enroll.ReasonRequesterRevoked}, ca.ErrRequesterRevoked},
		{&enroll.RefusalError{Reason: enroll.ReasonNotAuthorized}, ca.ErrNotAuthorized},
		{&enroll.RefusalError{Reason: enroll.ReasonNonceLimit}, attest.ErrNoncesFull},
		{&enroll.RefusalError{Reason: enroll.ReasonAlreadyProvisioned}, ca.ErrDeviceProvisioned},
	} {
		got, ok := enroll.Reported(tc.in.Code(), "detail")
		if !ok || got.Reason != tc.in.Reason || got.Check != tc.in.Check || got.Code() != tc.in.Code() {
			t.Errorf("%s: read back as %+v, %v", tc.in.Code(), got, ok)
			continue
		}
		if !errors.Is(got, tc.want) || !errors.Is(got, enroll.ErrRefused) {
			t.Errorf("%s: %v does not wrap %v", tc.in.Code(), got, tc.want)
		}
	}
	for r := enroll.Reason(1); r.String() != fmt.Sprintf("Reason(%d)", int(r)); r++ {
		if p, ok := enroll.ParseReason(r.String()); !ok || p != r {
			t.Errorf("ParseReason(%q) = %v, %v", r.String(), p, ok)
		}
	}
	for _, bad := range []string{"", "nosuch", "/x", "Reason(3)"} {
		if _, ok := enroll.Reported(bad, ""); ok {
			t.Errorf("Reported(%q) accepted", bad)
		}
	}
}

func TestRetryable(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{&enroll.RefusalError{Reason: enroll.ReasonQuota}, true},
		{&enroll.RefusalError{Reason: enroll.ReasonNonceLimit}, true},
		{&enroll.RefusalError{Reason: enroll.ReasonEvidence, Check: "nonce-reused"}, false},
		{fmt.Errorf("wrapped: %w", &enroll.RefusalError{Reason: enroll.ReasonRepeatRevoked}), false},
		{errors.New("ledger: disk I/O error"), true},
		{context.DeadlineExceeded, true},
		{context.Canceled, false},
		{fmt.Errorf("x: %w", enroll.ErrInvalidConfig), false},
	} {
		if got := enroll.Retryable(tc.err); got != tc.want {
			t.Errorf("Retryable(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
