package ztm

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"

	"github.com/ztmkit/ztm/ca"
	"github.com/ztmkit/ztm/identity"
	"github.com/ztmkit/ztm/manifest"
)

// Decommission ends a device's life: it finds the certificate of the
// device's last enrollment step in the chain store, checks through
// StationConfig.Revoker that the CA issued that certificate to this device
// (its digest is the step's, its subject serialNumber and hardwareModuleName
// the device's: the chain store checks no signature, and a step appended
// by anyone must not make it revoke another device), revokes it with
// reason, has the device destroy its key when it
// implements KeyDestroyer (recording a StepKeyDestroyed step), and records
// a StepDecommissioned step. A certificate already revoked is not an
// error, so that an interrupted Decommission can be run again.
//
// dev is asked only for its Info (and to destroy its key): a device that is
// no longer reachable can be decommissioned with a Device whose Info
// returns its identity and that does not implement KeyDestroyer.
//
// Failures are a *ProvisionError with StageInfo, StageRevoke,
// StageDestroy or StageRecord; ErrNotProvisioned (at StageRevoke) for a
// device with no enrollment step, or one naming a certificate that is not
// the device's.
func (s *Station) Decommission(ctx context.Context, dev Device, reason ca.RevocationReason) ([]*manifest.SignedStep, error) {
	if err := s.usable(dev); err != nil {
		return nil, err
	}
	info, err := dev.Info(ctx)
	if err != nil {
		return nil, &ProvisionError{Stage: StageInfo, Err: err}
	}
	serial := info.SerialNumber
	fail := func(stage Stage, err error) ([]*manifest.SignedStep, error) {
		return nil, &ProvisionError{Stage: stage, Serial: serial, Err: err}
	}
	if info.UEID.IsZero() {
		return fail(StageInfo, errors.New("ztm: device has no UEID"))
	}
	if s.cfg.Revoker == nil {
		return fail(StageRevoke, fmt.Errorf("%w: no Revoker", ErrInvalidConfig))
	}
	subject := info.UEID.Bytes()
	certSerial, certDigest, err := s.lastEnrollment(ctx, subject)
	if err != nil {
		return fail(StageRevoke, errors.Join(ErrNotProvisioned, err))
	}
	if certSerial == nil {
		return fail(StageRevoke, ErrNotProvisioned)
	}
	// The chain store checks no signature: the certificate it names must
	// be the one the step recorded, and the device's, before it is revoked.
	cert, err := s.cfg.Revoker.IssuedCertificate(ctx, certSerial)
	if err != nil {
		return fail(StageRevoke, err)
	}
	if !certDigest.Matches(cert.Raw) || cert.Subject.SerialNumber != info.SerialNumber ||
		(!info.HardwareModule.IsZero() && !certHardwareModule(cert, info.HardwareModule)) {
		return fail(StageRevoke, fmt.Errorf("%w: the enrollment step names certificate %x, which is not this device's", ErrNotProvisioned, certSerial))
	}
	err = s.cfg.Revoker.Revoke(ctx, certSerial, reason, "station:"+s.cfg.Name)
	if err != nil && !errors.Is(err, ca.ErrAlreadyRevoked) {
		return fail(StageRevoke, err)
	}
	var steps []*manifest.Step
	destroyed := false
	if d, ok := dev.(KeyDestroyer); ok {
		if err := d.DestroyKey(ctx); err != nil {
			return fail(StageDestroy, err)
		}
		destroyed = true
		steps = append(steps, &manifest.Step{
			Name:      StepKeyDestroyed,
			Predicate: manifest.Claims{"holder": "device", "serial": certSerial.Bytes()},
		})
	}
	steps = append(steps, &manifest.Step{
		Name: StepDecommissioned,
		Predicate: manifest.Claims{
			"serial": certSerial.Bytes(), "reason": uint64(reason), "key-destroyed": destroyed,
		},
	})
	recorded, err := s.record(ctx, subject, steps...)
	if err != nil {
		return fail(StageRecord, err)
	}
	return recorded, nil
}

// certHardwareModule reports whether cert names hw in its subject
// alternative name.
func certHardwareModule(cert *x509.Certificate, hw identity.HardwareModuleName) bool {
	names, err := ca.HardwareModuleNames(cert)
	if err != nil {
		return false
	}
	for _, n := range names {
		if n.Equal(hw) {
			return true
		}
	}
	return false
}

// lastEnrollment returns the certificate serial number and digest the
// device's last enrollment step in the chain store names, or a nil serial
// when it has none.
func (s *Station) lastEnrollment(ctx context.Context, subject []byte) (*big.Int, manifest.Digest, error) {
	chain, err := s.cfg.StepStore.Chain(ctx, subject)
	if err != nil {
		return nil, manifest.Digest{}, err
	}
	for i := len(chain) - 1; i >= 0; i-- {
		if st := chain[i].Step; st.Name == StepEnrollment {
			if b, ok := st.Predicate["serial"].([]byte); ok && len(b) > 0 {
				return new(big.Int).SetBytes(b), st.Artifacts["certificate"], nil
			}
		}
	}
	return nil, manifest.Digest{}, nil
}
