package ca

import (
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net/http"
	"strconv"
	"time"
)

// Revoke records the revocation of the certificate with the given serial
// number, for reason, by requester. It returns once the revocation is
// durable; the next CRL lists it. Errors: ErrUnknownSerial,
// ErrAlreadyRevoked, and ErrInvalidRequest for a reason a certificate
// cannot be revoked with (certificateHold, removeFromCRL, aACompromise,
// 7, > 10). With [Config].Checkpoints, Revoke also saves a checkpoint
// that covers the revocation before it returns, so that the revocation
// cannot be cut from the ledger unseen even before the next CRL; if that
// fails, Revoke returns the error although the revocation is recorded (a
// retry gets ErrAlreadyRevoked).
func (a *Authority) Revoke(ctx context.Context, serial *big.Int, reason RevocationReason, requester string) error {
	err := a.revoke(ctx, serial, reason, requester)
	a.logRevocation(ctx, serial, reason, requester, err)
	return err
}

func (a *Authority) revoke(ctx context.Context, serial *big.Int, reason RevocationReason, requester string) error {
	if serial == nil || serial.Sign() <= 0 {
		return fmt.Errorf("%w: serial must be positive", ErrInvalidRequest)
	}
	if !reason.validForRevoke() {
		return fmt.Errorf("%w: revocation reason %v not allowed", ErrInvalidRequest, reason)
	}
	if requester == "" || len(requester) > 256 {
		return fmt.Errorf("%w: requester must be 1 to 256 bytes", ErrInvalidRequest)
	}
	if err := a.usable(ctx); err != nil {
		return err
	}
	rec := &Record{
		Kind:      KindRevocation,
		Serial:    new(big.Int).Set(serial),
		Requester: requester,
		Time:      a.now().UTC(),
		Reason:    reason,
	}
	if err := a.ledger.Append(ctx, rec, nil); err != nil {
		return fmt.Errorf("ca: failed to revoke %x: %w", serial, err)
	}
	if a.checkpoints.store != nil {
		if _, err := a.Checkpoint(ctx); err != nil {
			return fmt.Errorf("ca: revocation of %x recorded, but its checkpoint failed: %w", serial, err)
		}
	}
	return nil
}

// cachedCRL is the current CRL and what it was made from.
type cachedCRL struct {
	der        []byte
	count      int
	lastSeq    uint64
	thisUpdate time.Time
	nextUpdate time.Time
}

// CRL returns the current CRL (DER). A new one, with the next CRL number
// from the ledger and a fresh checkpoint of the ledger (see
// [Authority.Checkpoint]) whose head it carries (see [CRLCheckpoint]), is
// signed when the ledger's revocations changed since
// the last one or half of its validity has passed; otherwise the last one
// is returned. Revocations another Authority on the same ledger recorded
// are included, as the check reads the ledger.
func (a *Authority) CRL(ctx context.Context) ([]byte, error) {
	der, _, err := a.currentCRL(ctx)
	return der, err
}

func (a *Authority) currentCRL(ctx context.Context) ([]byte, time.Time, error) {
	if err := a.usable(ctx); err != nil {
		return nil, time.Time{}, err
	}
	revs, err := a.ledger.Revoked(ctx)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("ca: failed to read revocations: %w", err)
	}
	var lastSeq uint64
	if len(revs) > 0 {
		lastSeq = revs[len(revs)-1].Seq
	}
	now := a.now()
	a.crlMu.Lock()
	defer a.crlMu.Unlock()
	if c := a.crl; c != nil && c.count == len(revs) && c.lastSeq == lastSeq &&
		now.Before(c.thisUpdate.Add(a.crlValid/2)) {
		return c.der, c.nextUpdate, nil
	}
	number, err := a.ledger.NextCRLNumber(ctx)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("ca: failed to allocate CRL number: %w", err)
	}
	ext, err := a.crlCheckpoint(ctx, number)
	if err != nil {
		return nil, time.Time{}, err
	}
	thisUpdate := now.UTC().Truncate(time.Second)
	tmpl := &x509.RevocationList{
		Number:             number,
		ThisUpdate:         thisUpdate,
		NextUpdate:         thisUpdate.Add(a.crlValid),
		SignatureAlgorithm: a.sigAlg,
		ExtraExtensions:    []pkix.Extension{ext},
	}
	for _, r := range revs {
		tmpl.RevokedCertificateEntries = append(tmpl.RevokedCertificateEntries, x509.RevocationListEntry{
			SerialNumber:   r.Serial,
			RevocationTime: r.Time.UTC().Truncate(time.Second),
			ReasonCode:     int(r.Reason),
		})
	}
	der, err := x509.CreateRevocationList(a.rand, tmpl, a.chain[0], a.signer)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("ca: failed to sign CRL: %w", err)
	}
	a.crl = &cachedCRL{der: der, count: len(revs), lastSeq: lastSeq, thisUpdate: thisUpdate, nextUpdate: tmpl.NextUpdate}
	return der, tmpl.NextUpdate, nil
}

// CRLHandler returns an http.Handler that serves the current CRL (see
// [Authority.CRL]) to GET and HEAD requests as application/pkix-crl
// (RFC 5280 §4.2.1.13, RFC 2585 §4.2), cacheable until shortly before its
// nextUpdate.
func (a *Authority) CRLHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		der, next, err := a.currentCRL(r.Context())
		if err != nil {
			http.Error(w, "CRL unavailable", http.StatusServiceUnavailable)
			return
		}
		maxAge := int(next.Sub(a.now()).Seconds()) / 2
		if maxAge < 0 {
			maxAge = 0
		}
		w.Header().Set("Content-Type", "application/pkix-crl")
		w.Header().Set("Content-Length", strconv.Itoa(len(der)))
		w.Header().Set("Cache-Control", "max-age="+strconv.Itoa(maxAge))
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodGet {
			w.Write(der)
		}
	})
}

// IssuedCertificate returns the certificate the ledger records under
// serial, revoked or not, or ErrUnknownSerial. A record that is not that
// serial's issuance, or does not match its hash, gives a *ChainError.
func (a *Authority) IssuedCertificate(ctx context.Context, serial *big.Int) (*x509.Certificate, error) {
	if err := a.made(); err != nil {
		return nil, err
	}
	st, err := a.ledger.Lookup(ctx, serial)
	if err != nil {
		return nil, err
	}
	// Checked here too, for ledgers that do not check their lookups.
	if err := VerifyLookup(st.Issuance, nil, serial, nil); err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(st.Issuance.Certificate)
	if err != nil {
		return nil, fmt.Errorf("ca: recorded certificate does not parse: %w", err)
	}
	return cert, nil
}

// crlCheckpoint signs the checkpoint made with CRL number and returns the
// CRL extension carrying its head.
func (a *Authority) crlCheckpoint(ctx context.Context, number *big.Int) (pkix.Extension, error) {
	a.checkpoints.mu.Lock()
	cp, err := a.checkpointLocked(ctx, number)
	a.checkpoints.mu.Unlock()
	if err != nil {
		return pkix.Extension{}, err
	}
	v, err := marshalCRLCheckpoint(cp.Head())
	if err != nil {
		return pkix.Extension{}, err
	}
	return pkix.Extension{Id: oidCRLCheckpoint, Value: v}, nil
}
