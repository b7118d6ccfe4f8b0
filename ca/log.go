package ca

import (
	"context"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"log/slog"
	"math/big"
	"strings"

	"github.com/ztmkit/ztm/identity"
)

// The Authority's log records ([Config].Logger). Each names what happened
// and carries attributes, never a key, a request's bytes or an
// idempotency key:
//   - "ca: certificate issued" (Info): serial, profile, requester, subject;
//   - "ca: request refused" (Warn): profile, requester, reason (the
//     refusal's sentinel: "bad certificate request", "requester not
//     authorized"…), check (a CSR's [identity.CSRErrorReason], an
//     authorization's reason) and error;
//   - "ca: certificate revoked" (Info): serial, revocation_reason,
//     requester; a
//     refused revocation (Warn) or a failed one (Error) as for issuance;
//   - "ca: checkpoint signed" (Info): seq, hash, crl_number;
//   - "ca: periodic checkpoint failed" (Warn), retried at the next tick;
//   - "ca: ledger fault, refusing to work" (Error), once, when the
//     Authority finds its ledger corrupt or cut and stops;
//   - "ca: request failed" (Error): a failure that is not a refusal (the
//     ledger, the signer), with its error.

// refusals are the sentinels of a refused request, as opposed to a
// failure; each is logged with its message as the reason.
var refusals = []error{
	identity.ErrInvalidCSR, ErrInvalidRequest, ErrUnknownProfile, ErrNotAuthorized,
	ErrPolicy, ErrQuotaExceeded, ErrRequestExists, ErrRepeatRevoked, ErrDeviceProvisioned,
	ErrUnknownSerial, ErrAlreadyRevoked,
}

// refusalReason returns the reason of a refusal, the message of the
// sentinel it wraps without its package prefix, or false for a failure.
func refusalReason(err error) (string, bool) {
	if errors.Is(err, ErrLedgerCorrupt) {
		return "", false
	}
	for _, s := range refusals {
		if errors.Is(err, s) {
			msg := s.Error()
			if _, after, ok := strings.Cut(msg, ": "); ok {
				msg = after
			}
			return msg, true
		}
	}
	return "", false
}

// refusalCheck refines a refusal's reason: a CSR error's reason, an
// authorization error's.
func refusalCheck(err error) string {
	var ce *identity.CSRError
	if errors.As(err, &ce) {
		return ce.Reason.String()
	}
	var ae *AuthorizationError
	if errors.As(err, &ae) {
		return ae.Reason
	}
	return ""
}

// logEnabled reports whether the Authority logs at level.
func (a *Authority) logEnabled(ctx context.Context, level slog.Level) bool {
	return a != nil && a.log != nil && a.log.Enabled(ctx, level)
}

// logRequest logs the outcome of a request: cert issued, or err.
func (a *Authority) logRequest(ctx context.Context, req *Request, cert *x509.Certificate, err error) {
	if err == nil {
		if a.logEnabled(ctx, slog.LevelInfo) {
			a.log.LogAttrs(ctx, slog.LevelInfo, "ca: certificate issued",
				slog.String("serial", cert.SerialNumber.Text(16)), slog.String("profile", req.Profile),
				slog.String("requester", requesterName(req)), slog.String("subject", cert.Subject.String()))
		}
		return
	}
	var profile, requester string
	if req != nil {
		profile, requester = req.Profile, requesterName(req)
	}
	a.logError(ctx, "ca: request refused", "ca: request failed", err,
		slog.String("profile", profile), slog.String("requester", requester))
}

// logError logs err: at Warn as refused with its reason and check, or at
// Error as failed.
func (a *Authority) logError(ctx context.Context, refused, failed string, err error, attrs ...slog.Attr) {
	reason, isRefusal := refusalReason(err)
	level, msg := slog.LevelError, failed
	if isRefusal {
		level, msg = slog.LevelWarn, refused
	}
	if !a.logEnabled(ctx, level) {
		return
	}
	if isRefusal {
		attrs = append(attrs, slog.String("reason", reason))
		if check := refusalCheck(err); check != "" {
			attrs = append(attrs, slog.String("check", check))
		}
	}
	attrs = append(attrs, slog.String("error", err.Error()))
	a.log.LogAttrs(ctx, level, msg, attrs...)
}

// requesterName names the requester of req for a log: Requester, or the
// subject of RequesterCertificate.
func requesterName(req *Request) string {
	if req.Requester == "" && req.RequesterCertificate != nil {
		return req.RequesterCertificate.Subject.String()
	}
	return req.Requester
}

// logRevocation logs the outcome of a revocation of serial.
func (a *Authority) logRevocation(ctx context.Context, serial *big.Int, reason RevocationReason, requester string, err error) {
	s := ""
	if serial != nil {
		s = serial.Text(16)
	}
	attrs := []slog.Attr{slog.String("serial", s), slog.String("revocation_reason", reason.String()), slog.String("requester", requester)}
	if err != nil {
		a.logError(ctx, "ca: revocation refused", "ca: revocation failed", err, attrs...)
		return
	}
	if a.logEnabled(ctx, slog.LevelInfo) {
		a.log.LogAttrs(ctx, slog.LevelInfo, "ca: certificate revoked", attrs...)
	}
}

// logCheckpoint logs a signed checkpoint.
func (a *Authority) logCheckpoint(ctx context.Context, cp *Checkpoint) {
	if !a.logEnabled(ctx, slog.LevelInfo) {
		return
	}
	crl := ""
	if cp.CRLNumber != nil {
		crl = cp.CRLNumber.String()
	}
	a.log.LogAttrs(ctx, slog.LevelInfo, "ca: checkpoint signed", slog.Uint64("seq", cp.Seq),
		slog.String("hash", hex.EncodeToString(cp.Hash)), slog.String("crl_number", crl))
}
