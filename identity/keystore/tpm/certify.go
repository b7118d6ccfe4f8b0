package tpm

import (
	"bytes"
	"context"
	"fmt"
	"slices"

	"github.com/google/go-tpm/tpm2"

	"github.com/ztmkit/ztm/identity/keystore"
)

// Certifier is the optional capability of a TPM store to prove that a key
// was made in the TPM and cannot leave it: an attestation key certifies
// the key (TPM2_Certify) over a verifier's nonce. A CA then issues a
// device identity only for a key so certified (TCG "TPM 2.0 Keys for
// Device Identity and Attestation"). [*Store] implements it; package
// github.com/ztmkit/ztm/attest/tpm verifies the result (VerifyCertify).
type Certifier interface {
	// Certify has the attestation key akLabel certify the key label over
	// nonce (at most MaxNonceSize bytes), and returns the signed
	// TPMS_ATTEST, its signature and the key's public area.
	Certify(ctx context.Context, label, akLabel string, nonce []byte) (*Certification, error)
}

var _ Certifier = (*Store)(nil)

// Certification is a TPM2_Certify result.
type Certification struct {
	// Attest is the TPMS_ATTEST (type TPM_ST_ATTEST_CERTIFY) exactly as
	// the TPM signed it: the certified key's name, the nonce in extraData.
	Attest []byte
	// Signature is the TPMT_SIGNATURE the TPM returned, marshaled.
	Signature []byte
	// PublicArea is the certified key's TPMT_PUBLIC: its name is the name
	// Attest certifies, and it holds the key and its attributes
	// (fixedTPM, fixedParent, sensitiveDataOrigin).
	PublicArea []byte
}

// Certify implements [Certifier]. It returns an error wrapping
// [ErrNotAttestationKey] when akLabel is not an attestation key, a
// [*NonceError] for an empty or oversize nonce, and keystore.ErrNotFound
// for an unknown label. Both keys are loaded at once, so the store's
// max-loaded must be at least 3 (the storage root key and the two keys).
func (s *Store) Certify(ctx context.Context, label, akLabel string, nonce []byte) (*Certification, error) {
	for _, l := range []string{label, akLabel} {
		if err := keystore.ValidateLabel(l); err != nil {
			return nil, err
		}
	}
	if len(nonce) == 0 || len(nonce) > MaxNonceSize {
		return nil, &NonceError{Size: len(nonce), Max: MaxNonceSize}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, keystore.ErrClosed
	}
	k, err := s.getLocked(label)
	if err != nil {
		return nil, err
	}
	ak, err := s.getLocked(akLabel)
	if err != nil {
		return nil, err
	}
	if !ak.kf.restricted {
		return nil, fmt.Errorf("%w: %q", ErrNotAttestationKey, akLabel)
	}
	var rsp *tpm2.CertifyResponse
	err = s.staleRetryLocked(func() error {
		ko, err := s.loadLocked(ctx, k)
		if err != nil {
			return err
		}
		ao, err := s.loadLocked(ctx, ak)
		if err != nil {
			return err
		}
		if !slices.Contains(s.loaded, ko) {
			return fmt.Errorf("tpm: certify needs both keys loaded: raise max-loaded to 3 or more")
		}
		rsp, err = execute(ctx, s, tpm2.Certify{
			ObjectHandle:   s.authHandle(ko),
			SignHandle:     s.authHandle(ao),
			QualifyingData: tpm2.TPM2BData{Buffer: nonce},
			InScheme:       tpm2.TPMTSigScheme{Scheme: tpm2.TPMAlgNull},
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("tpm: certify %q with %q: %w", label, akLabel, err)
	}
	return &Certification{
		Attest:     bytes.Clone(rsp.CertifyInfo.Bytes()),
		Signature:  tpm2.Marshal(&rsp.Signature),
		PublicArea: bytes.Clone(k.kf.public),
	}, nil
}
