package ca

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"time"
)

// verifyStation verifies a station certificate's chain to the CA's chain
// for clientAuth at now, once per certificate while its chain is valid
// (see verifiedCache). It returns the certificate's serial number when
// this CA issued it, so that the ledger can be asked about it.
func (a *Authority) verifyStation(cert *x509.Certificate, now time.Time) (*big.Int, error) {
	key := sha256.Sum256(cert.Raw)
	if !a.verified.verified(key, now) {
		chains, err := cert.Verify(x509.VerifyOptions{
			Roots:         a.stations.roots,
			Intermediates: a.stations.intermediates,
			CurrentTime:   now,
			KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		})
		if err != nil {
			return nil, err
		}
		a.verified.add(key, chains[0])
	}
	if bytes.Equal(cert.RawIssuer, a.chain[0].RawSubject) && bytes.Equal(cert.AuthorityKeyId, a.chain[0].SubjectKeyId) {
		return cert.SerialNumber, nil
	}
	return nil, nil
}

// VerifyStation checks that cert chains to this CA's chain for clientAuth
// now, as [Authority.Issue] checks a RequesterCertificate first (the
// result is remembered while the chain is valid). It does not ask the
// ledger; [Authority.CheckStation] does. A refusal is an
// *AuthorizationError wrapping ErrNotAuthorized.
func (a *Authority) VerifyStation(cert *x509.Certificate) error {
	if err := a.made(); err != nil {
		return err
	}
	if cert == nil {
		return fmt.Errorf("%w: no station certificate", ErrInvalidRequest)
	}
	if _, err := a.verifyStation(cert, a.now()); err != nil {
		sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
		return &AuthorizationError{Requester: "station:" + hex.EncodeToString(sum[:]), Reason: "station certificate does not verify", Err: err}
	}
	return nil
}

// CheckStation checks a requester's certificate as [Authority.Issue]
// would before anything is spent on its request (a nonce, say): it
// chains to this CA's chain for clientAuth now, and, when this CA issued
// it, the ledger holds its issuance and no revocation. Refusals are an
// *AuthorizationError wrapping ErrNotAuthorized, and ErrRequesterRevoked
// or ErrRequesterUnknown where the ledger decided. Issue still decides
// revocation again in the transaction that records an issuance.
func (a *Authority) CheckStation(ctx context.Context, cert *x509.Certificate) error {
	if err := a.made(); err != nil {
		return err
	}
	if cert == nil {
		return fmt.Errorf("%w: no station certificate", ErrInvalidRequest)
	}
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	requester := "station:" + hex.EncodeToString(sum[:])
	deny := func(reason string, err error) error {
		return &AuthorizationError{Requester: requester, Reason: reason, Err: err}
	}
	serial, err := a.verifyStation(cert, a.now())
	if err != nil {
		return deny("station certificate does not verify", err)
	}
	if serial == nil {
		return nil
	}
	st, err := a.ledger.Lookup(ctx, serial)
	switch {
	case errors.Is(err, ErrUnknownSerial):
		return deny("station certificate not in this CA's ledger", ErrRequesterUnknown)
	case err != nil:
		return err
	case !bytes.Equal(st.Issuance.Certificate, cert.Raw):
		return deny("station certificate not the one this CA issued with its serial", ErrRequesterUnknown)
	case st.Revocation != nil:
		return deny("station certificate revoked", ErrRequesterRevoked)
	}
	return nil
}

// Renewable reports whether certificates of the profile may be renewed
// by their holder (EST simplereenroll): LDevID and Station certificates
// may; an IDevID never, whatever its extended key usage (IEEE 802.1AR: the
// initial identity is for the life of the device), nor an attestation
// key's.
func (p Profile) Renewable() bool { return p.Kind == LDevID || p.Kind == Station }

// CheckRenewal checks that cur, the certificate a holder presents to
// renew under profile, may be renewed: this CA issued exactly cur, under
// profile, it is not revoked, and the profile is [Profile.Renewable].
// Refusals wrap ErrNotAuthorized (in an *AuthorizationError) or
// ErrUnknownProfile; a ledger failure is returned as is.
func (a *Authority) CheckRenewal(ctx context.Context, cur *x509.Certificate, profile string) error {
	if err := a.made(); err != nil {
		return err
	}
	p, ok := a.profiles[profile]
	if !ok {
		return fmt.Errorf("%w: %q", ErrUnknownProfile, profile)
	}
	if cur == nil {
		return fmt.Errorf("%w: no certificate to renew", ErrInvalidRequest)
	}
	sum := sha256.Sum256(cur.RawSubjectPublicKeyInfo)
	deny := func(reason string) error {
		return &AuthorizationError{Requester: "renew:" + hex.EncodeToString(sum[:]), Profile: profile, Reason: reason}
	}
	if !p.Renewable() {
		return deny(fmt.Sprintf("profile %q (%v) does not allow renewal", profile, p.Kind))
	}
	st, err := a.ledger.Lookup(ctx, cur.SerialNumber)
	switch {
	case errors.Is(err, ErrUnknownSerial):
		return deny("current certificate not issued by this CA")
	case err != nil:
		return err
	case !bytes.Equal(st.Issuance.Certificate, cur.Raw):
		return deny("current certificate not issued by this CA")
	case st.Revocation != nil:
		return deny("current certificate is revoked")
	case st.Issuance.Profile != profile:
		return deny(fmt.Sprintf("current certificate is of profile %q, not %q", st.Issuance.Profile, profile))
	}
	return nil
}
