package tpm

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"

	"github.com/google/go-tpm/tpm2"

	"github.com/ztmkit/ztm/identity/keystore"
)

// Attester is what remote attestation needs from a TPM: the endorsement
// key that identifies it, attestation keys, and quotes over PCRs. It is an
// optional capability of a [keystore.Store], found by type assertion:
//
//	att, ok := store.(tpm.Attester)
//
// [*Store] implements it. The verifier side (checking a quote against an
// AK and reference values) is in the attestation packages, not here.
type Attester interface {
	// EndorsementKey returns the TPM's endorsement key of type typ,
	// derived from the endorsement seed with the TCG default template.
	EndorsementKey(ctx context.Context, typ EKType) (*EndorsementKey, error)
	// EndorsementCertificate returns the DER certificate the TPM vendor
	// stored in NV for the EK of type typ, or an error wrapping
	// [ErrNoEKCertificate] when there is none.
	EndorsementCertificate(ctx context.Context, typ EKType) ([]byte, error)
	// CreateAttestationKey creates a restricted signing key (ECDSA P-256,
	// SHA-256) under label, in the same index as the store's other keys.
	// It can sign quotes, never a caller's digest.
	CreateAttestationKey(ctx context.Context, label string) (keystore.Key, error)
	// Quote has the attestation key akLabel sign the SHA-256 bank values
	// of pcrs together with nonce (TPM2_Quote), and returns the signed
	// bytes, the signature and the PCR values that were quoted.
	Quote(ctx context.Context, akLabel string, nonce []byte, pcrs []int) (*Quote, error)
}

// EKType selects an endorsement key template.
type EKType int

const (
	// EKECC is the TCG default ECC NIST P-256 endorsement key (template
	// L-2); its certificate, if any, is at NV index 0x01c0000a.
	EKECC EKType = iota
	// EKRSA is the TCG default RSA-2048 endorsement key (template L-1);
	// its certificate, if any, is at NV index 0x01c00002.
	EKRSA

	maxEKType
)

// String returns "ECC" or "RSA".
func (t EKType) String() string {
	switch t {
	case EKECC:
		return "ECC"
	case EKRSA:
		return "RSA"
	}
	return fmt.Sprintf("EKType(%d)", int(t))
}

func (t EKType) valid() bool { return t >= 0 && t < maxEKType }

// certIndex returns the NV index of the EK certificate of type t
// (TCG EK Credential Profile 2.0 §2.2.1.4).
func (t EKType) certIndex() tpm2.TPMHandle {
	if t == EKRSA {
		return 0x01c00002
	}
	return 0x01c0000a
}

func (t EKType) template() tpm2.TPMTPublic {
	if t == EKRSA {
		return tpm2.RSAEKTemplate
	}
	return tpm2.ECCEKTemplate
}

// EndorsementKey is the public part of a TPM's endorsement key.
type EndorsementKey struct {
	// Type is the template the key was derived with.
	Type EKType
	// Public is the key: an *ecdsa.PublicKey or an *rsa.PublicKey.
	Public crypto.PublicKey
	// PublicArea is the key's TPMT_PUBLIC, as the TPM returned it.
	PublicArea []byte
	// Name is the key's TPM name (name algorithm ID and digest of
	// PublicArea).
	Name []byte
}

// Quote is a TPM2_Quote result: what the TPM signed, its signature and the
// PCR values that were quoted. A verifier checks Signature over Attest with
// the attestation key, then parses Attest (a TPMS_ATTEST) and checks its
// magic, type, extraData (the nonce) and PCR digest, which is the SHA-256
// of the concatenated PCRs values.
type Quote struct {
	// Attest is the TPMS_ATTEST structure exactly as the TPM signed it
	// (the contents of the TPM2B_ATTEST).
	Attest []byte
	// Signature is the TPMT_SIGNATURE the TPM returned, marshaled.
	Signature []byte
	// SignatureDER is the same ECDSA signature in ASN.1 DER, as
	// [crypto/ecdsa.VerifyASN1] takes it, over the SHA-256 of Attest.
	SignatureDER []byte
	// PCRs are the quoted PCRs of the SHA-256 bank, by increasing index.
	PCRs []PCR
}

// PCR is one platform configuration register's value.
type PCR struct {
	Index int    // the register, 0 to 23
	Value []byte // its value in the SHA-256 bank
}

// MaxNonceSize is the longest nonce [Store.Quote] accepts: the size of a
// SHA-256 digest, which every TPM's TPM2B_DATA holds. Callers with a longer
// nonce pass its SHA-256.
const MaxNonceSize = sha256.Size

// numPCRs is the number of PCRs of a PC Client TPM.
const numPCRs = 24

// EndorsementKey creates the endorsement key of type typ from the
// endorsement hierarchy's seed (TPM2_CreatePrimary with the TCG default
// template, which always gives the same key), reads its public part and
// flushes it.
func (s *Store) EndorsementKey(ctx context.Context, typ EKType) (*EndorsementKey, error) {
	if !typ.valid() {
		return nil, errorf("tpm: unknown endorsement key type %v", typ)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, keystore.ErrClosed
	}
	var rsp *tpm2.CreatePrimaryResponse
	s.makeRoomLocked(nil)
	err := s.staleRetryLocked(func() error {
		return s.withRoomLocked(nil, func() (err error) {
			rsp, err = execute(ctx, s, tpm2.CreatePrimary{
				PrimaryHandle: tpm2.AuthHandle{Handle: tpm2.TPMRHEndorsement, Auth: tpm2.PasswordAuth(s.endorseAu)},
				InPublic:      tpm2.New2B(typ.template()),
			})
			return err
		})
	})
	if err != nil {
		return nil, errorf("tpm: failed to create the %v endorsement key: %w", typ, err)
	}
	tpm2.FlushContext{FlushHandle: rsp.ObjectHandle}.Execute(s.tpm)
	pubArea, err := rsp.OutPublic.Contents()
	if err != nil {
		return nil, errorf("tpm: bad endorsement key public area: %w", err)
	}
	pub, err := tpm2.Pub(*pubArea)
	if err != nil {
		return nil, errorf("tpm: bad endorsement key public area: %w", err)
	}
	return &EndorsementKey{Type: typ, Public: pub, PublicArea: rsp.OutPublic.Bytes(), Name: bytes.Clone(rsp.Name.Buffer)}, nil
}

// nvChunk is the most [Store.EndorsementCertificate] reads from NV in one
// command; every TPM's TPM2_NV_Read accepts it.
const nvChunk = 512

// EndorsementCertificate reads the EK certificate of type typ from its NV
// index. It returns an error wrapping [ErrNoEKCertificate] if the index is
// not defined (as on simulators and some firmware TPMs, whose certificates
// are fetched from the vendor instead).
func (s *Store) EndorsementCertificate(ctx context.Context, typ EKType) ([]byte, error) {
	if !typ.valid() {
		return nil, errorf("tpm: unknown endorsement key type %v", typ)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, keystore.ErrClosed
	}
	idx := typ.certIndex()
	var pubRsp *tpm2.NVReadPublicResponse
	err := s.staleRetryLocked(func() (err error) {
		pubRsp, err = execute(ctx, s, tpm2.NVReadPublic{NVIndex: idx})
		return err
	})
	if errors.Is(err, tpm2.TPMRCHandle) {
		return nil, fmt.Errorf("%w: index %#x (%v) is not defined", ErrNoEKCertificate, uint32(idx), typ)
	}
	if err != nil {
		return nil, errorf("tpm: failed to read EK certificate index: %w", err)
	}
	nvPub, err := pubRsp.NVPublic.Contents()
	if err != nil {
		return nil, errorf("tpm: bad EK certificate index public area: %w", err)
	}
	if !nvPub.Attributes.Written {
		return nil, fmt.Errorf("%w: index %#x (%v) was never written", ErrNoEKCertificate, uint32(idx), typ)
	}
	// Read with the index's own (empty) authorization when it allows,
	// else with the owner's.
	var auth tpm2.AuthHandle
	switch {
	case nvPub.Attributes.AuthRead:
		auth = tpm2.AuthHandle{Handle: idx, Name: pubRsp.NVName, Auth: tpm2.PasswordAuth(nil)}
	case nvPub.Attributes.OwnerRead:
		auth = tpm2.AuthHandle{Handle: tpm2.TPMRHOwner, Auth: tpm2.PasswordAuth(s.ownerAuth)}
	default:
		return nil, errorf("tpm: EK certificate index %#x is readable by neither its own nor the owner's authorization", uint32(idx))
	}
	cert := make([]byte, 0, nvPub.DataSize)
	for off := 0; off < int(nvPub.DataSize); {
		n := min(nvChunk, int(nvPub.DataSize)-off)
		var rsp *tpm2.NVReadResponse
		err := s.staleRetryLocked(func() (err error) {
			rsp, err = execute(ctx, s, tpm2.NVRead{
				AuthHandle: auth,
				NVIndex:    tpm2.NamedHandle{Handle: idx, Name: pubRsp.NVName},
				Size:       uint16(n),
				Offset:     uint16(off),
			})
			return err
		})
		if err != nil {
			return nil, errorf("tpm: failed to read EK certificate: %w", err)
		}
		if len(rsp.Data.Buffer) == 0 {
			return nil, errors.New("tpm: failed to read EK certificate: empty NV read")
		}
		cert = append(cert, rsp.Data.Buffer...)
		off += len(rsp.Data.Buffer)
	}
	// Vendors pad the index; the DER certificate is its prefix.
	if n, ok := derLength(cert); ok {
		cert = cert[:n]
	}
	return cert, nil
}

// derLength returns the length of the DER element (tag, length, contents)
// at the start of b.
func derLength(b []byte) (int, bool) {
	if len(b) < 2 {
		return 0, false
	}
	l := int(b[1])
	hdr := 2
	if l >= 0x80 {
		n := l & 0x7f
		if n == 0 || n > 3 || len(b) < 2+n {
			return 0, false
		}
		l = 0
		for _, c := range b[2 : 2+n] {
			l = l<<8 | int(c)
		}
		hdr += n
	}
	if hdr+l > len(b) {
		return 0, false
	}
	return hdr + l, true
}

// CreateAttestationKey creates a restricted ECDSA P-256 signing key (the
// TCG AK shape: restricted, sign, fixedTPM, fixedParent,
// sensitiveDataOrigin, userWithAuth) under label in the key index. The key
// appears in List and Get like any other, and Delete destroys it; its Sign
// refuses with [ErrRestricted]. Use it with [Store.Quote].
func (s *Store) CreateAttestationKey(ctx context.Context, label string) (keystore.Key, error) {
	return s.create(ctx, label, keystore.ES256, false, true)
}

// Quote has the attestation key akLabel quote the SHA-256 bank of pcrs
// (indices 0 to 23, each at most once, in any order) with nonce as the
// qualifying data, and returns the quote with the PCR values read.
//
// The values are read before and after TPM2_Quote; the quote is retried if
// a PCR changed in between, so the returned values are the quoted ones.
//
// Quote returns a [*NonceError] (wrapping [ErrInvalidNonce]) for an empty
// nonce or one longer than [MaxNonceSize], an error wrapping
// [ErrInvalidPCR] for a bad PCR list, [keystore.ErrNotFound] for a missing
// key and [ErrNotAttestationKey] for a label naming an ordinary key.
func (s *Store) Quote(ctx context.Context, akLabel string, nonce []byte, pcrs []int) (*Quote, error) {
	if err := keystore.ValidateLabel(akLabel); err != nil {
		return nil, err
	}
	if len(nonce) == 0 || len(nonce) > MaxNonceSize {
		return nil, &NonceError{Size: len(nonce), Max: MaxNonceSize}
	}
	idx, err := checkPCRs(pcrs)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, keystore.ErrClosed
	}
	k, err := s.getLocked(akLabel)
	if err != nil {
		return nil, err
	}
	if !k.kf.restricted {
		return nil, errorf("tpm: %w: %q", ErrNotAttestationKey, akLabel)
	}
	sel := pcrSelection(idx)
	for attempt := 0; attempt < 3; attempt++ {
		before, err := s.readPCRsLocked(ctx, idx)
		if err != nil {
			return nil, err
		}
		var rsp *tpm2.QuoteResponse
		err = s.staleRetryLocked(func() error {
			o, err := s.loadLocked(ctx, k)
			if err != nil {
				return err
			}
			rsp, err = execute(ctx, s, tpm2.Quote{
				SignHandle:     s.authHandle(o),
				QualifyingData: tpm2.TPM2BData{Buffer: nonce},
				InScheme:       tpm2.TPMTSigScheme{Scheme: tpm2.TPMAlgNull},
				PCRSelect:      sel,
			})
			return err
		})
		if err != nil {
			return nil, errorf("tpm: quote with %q: %w", akLabel, err)
		}
		after, err := s.readPCRsLocked(ctx, idx)
		if err != nil {
			return nil, err
		}
		if !slices.EqualFunc(before, after, func(a, b PCR) bool { return bytes.Equal(a.Value, b.Value) }) {
			continue // a PCR was extended meanwhile
		}
		attest := rsp.Quoted.Bytes()
		if !quoteDigestMatches(attest, after) {
			continue
		}
		der, err := signatureBytes(&rsp.Signature)
		if err != nil {
			return nil, errorf("tpm: quote signature: %w", err)
		}
		return &Quote{
			Attest:       bytes.Clone(attest),
			Signature:    tpm2.Marshal(&rsp.Signature),
			SignatureDER: der,
			PCRs:         after,
		}, nil
	}
	return nil, errors.New("tpm: PCRs kept changing while quoting")
}

// checkPCRs validates and sorts a PCR list.
func checkPCRs(pcrs []int) ([]int, error) {
	if len(pcrs) == 0 {
		return nil, fmt.Errorf("%w: no PCRs", ErrInvalidPCR)
	}
	idx := slices.Clone(pcrs)
	slices.Sort(idx)
	for i, p := range idx {
		if p < 0 || p >= numPCRs {
			return nil, fmt.Errorf("%w: PCR %d is outside 0..%d", ErrInvalidPCR, p, numPCRs-1)
		}
		if i > 0 && idx[i-1] == p {
			return nil, fmt.Errorf("%w: PCR %d is listed twice", ErrInvalidPCR, p)
		}
	}
	return idx, nil
}

func pcrSelection(idx []int) tpm2.TPMLPCRSelection {
	u := make([]uint, len(idx))
	for i, p := range idx {
		u[i] = uint(p)
	}
	return tpm2.TPMLPCRSelection{PCRSelections: []tpm2.TPMSPCRSelection{{
		Hash:      tpm2.TPMAlgSHA256,
		PCRSelect: tpm2.PCClientCompatible.PCRs(u...),
	}}}
}

// readPCRsLocked reads the SHA-256 bank values of the sorted PCRs idx,
// in as many TPM2_PCR_Read commands as the TPM needs (it returns at most 8
// digests at a time).
func (s *Store) readPCRsLocked(ctx context.Context, idx []int) ([]PCR, error) {
	vals := make(map[int][]byte, len(idx))
	remaining := idx
	for len(remaining) > 0 {
		var rsp *tpm2.PCRReadResponse
		err := s.staleRetryLocked(func() (err error) {
			rsp, err = execute(ctx, s, tpm2.PCRRead{PCRSelectionIn: pcrSelection(remaining)})
			return err
		})
		if err != nil {
			return nil, errorf("tpm: failed to read PCRs: %w", err)
		}
		var got []int
		for _, sel := range rsp.PCRSelectionOut.PCRSelections {
			if sel.Hash != tpm2.TPMAlgSHA256 {
				continue
			}
			for i, b := range sel.PCRSelect {
				for bit := range 8 {
					if b&(1<<bit) != 0 {
						got = append(got, 8*i+bit)
					}
				}
			}
		}
		if len(got) == 0 || len(got) != len(rsp.PCRValues.Digests) {
			return nil, errors.New("tpm: failed to read PCRs: the TPM returned no SHA-256 values (is the bank allocated?)")
		}
		for i, p := range got {
			if !slices.Contains(remaining, p) {
				return nil, errorf("tpm: failed to read PCRs: TPM returned unrequested PCR %d", p)
			}
			vals[p] = bytes.Clone(rsp.PCRValues.Digests[i].Buffer)
		}
		remaining = slices.DeleteFunc(slices.Clone(remaining), func(p int) bool { _, ok := vals[p]; return ok })
	}
	out := make([]PCR, len(idx))
	for i, p := range idx {
		out[i] = PCR{Index: p, Value: vals[p]}
	}
	return out, nil
}

// quoteDigestMatches reports whether attest is a quote whose PCR digest is
// the SHA-256 of the concatenated values.
func quoteDigestMatches(attest []byte, pcrs []PCR) bool {
	a, err := tpm2.Unmarshal[tpm2.TPMSAttest](attest)
	if err != nil {
		return false
	}
	q, err := a.Attested.Quote()
	if err != nil {
		return false
	}
	h := sha256.New()
	for _, p := range pcrs {
		h.Write(p.Value)
	}
	return bytes.Equal(q.PCRDigest.Buffer, h.Sum(nil))
}
