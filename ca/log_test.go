package ca_test

import (
	"context"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"log/slog"
	"path/filepath"

	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ztmkit/ztm/ca"
	"github.com/ztmkit/ztm/ca/ledger/memledger"
	"github.com/ztmkit/ztm/identity"
	"github.com/ztmkit/ztm/identity/keystore"
)

// captured is a slog.Handler that keeps every record, with its
// attributes flattened to strings.
type captured struct {
	mu      sync.Mutex
	records []capturedRecord
}

type capturedRecord struct {
	level slog.Level
	msg   string
	attrs map[string]string
}

func (h *captured) Enabled(context.Context, slog.Level) bool { return true }
func (h *captured) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *captured) WithGroup(string) slog.Handler            { return h }
func (h *captured) Handle(_ context.Context, r slog.Record) error {
	rec := capturedRecord{level: r.Level, msg: r.Message, attrs: map[string]string{}}
	r.Attrs(func(a slog.Attr) bool {
		rec.attrs[a.Key] = a.Value.String()
		return true
	})
	h.mu.Lock()
	defer h.mu.Unlock()
	h.records = append(h.records, rec)
	return nil
}

// take returns the records logged since the last take.
func (h *captured) take() []capturedRecord {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := h.records
	h.records = nil
	return out
}

// requireOne checks that exactly one record was logged, at level with
// msg, and returns its attributes.
func requireOne(t *testing.T, h *captured, level slog.Level, msg string) map[string]string {
	t.Helper()
	recs := h.take()
	require.Len(t, recs, 1, "%+v", recs)
	require.Equal(t, level, recs[0].level)
	require.Equal(t, msg, recs[0].msg)
	return recs[0].attrs
}

// TestAuthorityLogger checks the CA's log: an issuance and a revocation
// at Info, refusals at Warn with the reason and the typed error's check,
// a signed checkpoint at Info, and never a request's bytes or its
// idempotency key.
func TestAuthorityLogger(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h := &captured{}
	policyErr := errors.New("no evidence")
	p := newPKI(t, keystore.ES256, func(c *ca.Config) {
		c.Logger = slog.New(h)
		c.Policy = func(_ context.Context, req *ca.Request, _ *x509.CertificateRequest) error {
			if string(req.EvidenceDigest) == "bad" {
				return policyErr
			}
			return nil
		}
	})
	good := idevidCSR(t, deviceKey(t, "P-256"), "S1")
	key := []byte("idempotency-secret-0001")
	cert, err := p.auth.Issue(ctx, &ca.Request{CSR: good, Profile: "idevid", Requester: "line-1", IdempotencyKey: key})
	require.NoError(t, err)
	attrs := requireOne(t, h, slog.LevelInfo, "ca: certificate issued")
	require.Equal(t, cert.SerialNumber.Text(16), attrs["serial"])
	require.Equal(t, "idevid", attrs["profile"])
	require.Equal(t, "line-1", attrs["requester"])
	require.Contains(t, attrs["subject"], "S1")
	for _, v := range attrs {
		require.NotContains(t, v, string(key))
		require.NotContains(t, v, hex.EncodeToString(key))
		require.NotContains(t, v, hex.EncodeToString(good[:16]))
	}

	_, err = p.auth.Issue(ctx, &ca.Request{CSR: idevidCSR(t, deviceKey(t, "RSA-2048"), "S2"), Profile: "idevid", Requester: "line-1"})
	require.Error(t, err)
	attrs = requireOne(t, h, slog.LevelWarn, "ca: request refused")
	require.Equal(t, "certificate request refused", attrs["reason"])
	require.Equal(t, "weak or unsupported key", attrs["check"])
	require.Equal(t, err.Error(), attrs["error"])

	_, err = p.auth.Issue(ctx, &ca.Request{CSR: idevidCSR(t, deviceKey(t, "P-256"), "S3"), Profile: "idevid", Requester: "line-1", EvidenceDigest: []byte("bad")})
	require.ErrorIs(t, err, ca.ErrPolicy)
	attrs = requireOne(t, h, slog.LevelWarn, "ca: request refused")
	require.Equal(t, "refused by policy", attrs["reason"])

	require.NoError(t, p.auth.Revoke(ctx, cert.SerialNumber, ca.ReasonKeyCompromise, "oem"))
	recs := h.take()
	require.NotEmpty(t, recs)
	require.Equal(t, "ca: certificate revoked", recs[0].msg)
	require.Equal(t, slog.LevelInfo, recs[0].level)
	require.Equal(t, cert.SerialNumber.Text(16), recs[0].attrs["serial"])
	require.Equal(t, ca.ReasonKeyCompromise.String(), recs[0].attrs["revocation_reason"])

	err = p.auth.Revoke(ctx, cert.SerialNumber, ca.ReasonKeyCompromise, "oem")
	require.ErrorIs(t, err, ca.ErrAlreadyRevoked)
	attrs = requireOne(t, h, slog.LevelWarn, "ca: revocation refused")
	require.Equal(t, "certificate already revoked", attrs["reason"])

	cp, err := p.auth.Checkpoint(ctx)
	require.NoError(t, err)
	attrs = requireOne(t, h, slog.LevelInfo, "ca: checkpoint signed")
	require.Equal(t, cp.Seq, mustUint(t, attrs["seq"]))
	require.Equal(t, hex.EncodeToString(cp.Hash), attrs["hash"])
}

// TestAuthorityLoggerLedgerFault: an Authority whose ledger does not
// extend its stored checkpoint logs the fault once, at Error, and refuses
// to work.
func TestAuthorityLoggerLedgerFault(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := ca.NewCheckpointFile(filepath.Join(t.TempDir(), "checkpoint"))
	p := newPKI(t, keystore.ES256, func(c *ca.Config) { c.Checkpoints = store })
	_, err := p.auth.Issue(ctx, &ca.Request{CSR: idevidCSR(t, deviceKey(t, "P-256"), "S1"), Profile: "idevid", Requester: "line-1"})
	require.NoError(t, err)
	_, err = p.auth.Checkpoint(ctx)
	require.NoError(t, err)

	// The same CA over an empty ledger: the checkpoint says it was cut.
	empty := memledger.New()
	t.Cleanup(func() { empty.Close() })
	h := &captured{}
	cut, err := ca.New(ca.Config{Signer: p.interKey, Chain: p.auth.Chain(), Ledger: empty, Checkpoints: store, Logger: slog.New(h)})
	require.NoError(t, err)
	for range 2 {
		_, err = cut.Issue(ctx, &ca.Request{CSR: idevidCSR(t, deviceKey(t, "P-256"), "S2"), Profile: "idevid", Requester: "line-1"})
		require.ErrorIs(t, err, ca.ErrLedgerCorrupt)
	}
	recs := h.take()
	var faults, failed int
	for _, r := range recs {
		switch r.msg {
		case "ca: ledger fault, refusing to work":
			faults++
			require.Equal(t, slog.LevelError, r.level)
		case "ca: request failed":
			failed++
			require.Equal(t, slog.LevelError, r.level)
		}
	}
	require.Equal(t, 1, faults, "%+v", recs)
	require.Equal(t, 2, failed, "%+v", recs)
}

// TestAuthorityNoLogger: without a Logger, and on an Authority not made
// by New, nothing is logged and nothing panics.
func TestAuthorityNoLogger(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	req := &ca.Request{CSR: []byte{0x30, 0}, Profile: "idevid", Requester: "r"}
	for _, a := range []*ca.Authority{nil, {}} {
		_, err := a.Check(ctx, req)
		require.ErrorIs(t, err, ca.ErrInvalidConfig)
		_, err = a.IssueChecked(ctx, nil)
		require.Error(t, err)
		require.ErrorIs(t, a.Revoke(ctx, nil, ca.ReasonKeyCompromise, "r"), ca.ErrInvalidRequest)
	}
	p := newPKI(t, keystore.ES256, nil)
	_, err := p.auth.Issue(ctx, req)
	require.ErrorIs(t, err, identity.ErrInvalidCSR)
}

func mustUint(t *testing.T, s string) uint64 {
	t.Helper()
	var n uint64
	for _, c := range s {
		require.True(t, c >= '0' && c <= '9', s)
		n = n*10 + uint64(c-'0')
	}
	return n
}
