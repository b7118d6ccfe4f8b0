package tpm

import (
	"fmt"

	"golang.org/x/crypto/cryptobyte"
)

// TPM constants used in quotes. Reference: TPM 2.0 Library Part 2 §6.
const (
	// GeneratedValue is TPM_GENERATED_VALUE, the magic of every
	// TPMS_ATTEST the TPM produces.
	GeneratedValue uint32 = 0xff544347
	// TagAttestQuote is TPM_ST_ATTEST_QUOTE.
	TagAttestQuote uint16 = 0x8018

	algRSASSA uint16 = 0x0014
	algRSAPSS uint16 = 0x0016
	algECDSA  uint16 = 0x0018
	algSHA1   uint16 = 0x0004
	algSHA256 uint16 = 0x000b
	algSHA384 uint16 = 0x000c
	algSHA512 uint16 = 0x000d
)

// maxPCRSelections bounds the banks a TPML_PCR_SELECTION may list
// (HASH_COUNT on any TPM is far lower).
const maxPCRSelections = 16

// ClockInfo is TPMS_CLOCK_INFO.
type ClockInfo struct {
	Clock        uint64 // milliseconds the TPM has been powered
	ResetCount   uint32 // TPM resets (reboots) since the owner was set
	RestartCount uint32 // restarts and resumes since the last reset
	Safe         bool   // whether Clock has not gone backwards
}

// PCRSelection is one TPMS_PCR_SELECTION: a hash bank and the PCRs selected
// in it, in increasing order.
type PCRSelection struct {
	Hash uint16 // the bank's hash algorithm (TPM_ALG_SHA256 = 0x000b)
	PCRs []int  // the selected PCR indices, increasing
}

// Attest is a parsed TPMS_ATTEST of type TPM_ST_ATTEST_QUOTE. Reference: TPM
// 2.0 Library Part 2 §10.12.8 (TPMS_QUOTE_INFO) and §10.12.12.
type Attest struct {
	// Magic is always [GeneratedValue] once parsed.
	Magic uint32
	// Type is always [TagAttestQuote] once parsed.
	Type uint16
	// QualifiedSigner is the qualified name of the signing key.
	QualifiedSigner []byte
	// ExtraData is the caller's qualifying data: the nonce.
	ExtraData []byte
	// ClockInfo is the TPM's clock state.
	ClockInfo ClockInfo
	// FirmwareVersion is the TPM vendor's firmware version.
	FirmwareVersion uint64
	// PCRSelection lists the quoted PCRs per bank.
	PCRSelection []PCRSelection
	// PCRDigest is the digest of the quoted PCR values, concatenated in
	// selection order, with the AK's hash algorithm.
	PCRDigest []byte
}

func readTPM2B(s *cryptobyte.String, out *[]byte) bool {
	var b cryptobyte.String
	if !s.ReadUint16LengthPrefixed(&b) {
		return false
	}
	*out = append([]byte(nil), b...)
	return true
}

// ParseAttest parses a TPMS_ATTEST (the contents of a TPM2B_ATTEST) and
// checks that it is a quote made by a TPM: magic TPM_GENERATED_VALUE, type
// TPM_ST_ATTEST_QUOTE. Errors wrap [ErrMalformed].
func ParseAttest(b []byte) (*Attest, error) {
	s := cryptobyte.String(b)
	var a Attest
	if err := readAttestHeader(&s, TagAttestQuote, "TPM_ST_ATTEST_QUOTE", &a.Magic, &a.Type, &a.QualifiedSigner, &a.ExtraData, &a.ClockInfo, &a.FirmwareVersion); err != nil {
		return nil, err
	}
	var count uint32
	if !s.ReadUint32(&count) {
		return nil, fmt.Errorf("%w: TPML_PCR_SELECTION truncated", ErrMalformed)
	}
	if count > maxPCRSelections {
		return nil, fmt.Errorf("%w: %d PCR selections", ErrMalformed, count)
	}
	for i := uint32(0); i < count; i++ {
		var sel PCRSelection
		var bitmap cryptobyte.String
		if !s.ReadUint16(&sel.Hash) || !s.ReadUint8LengthPrefixed(&bitmap) {
			return nil, fmt.Errorf("%w: TPMS_PCR_SELECTION truncated", ErrMalformed)
		}
		for byteIdx, bits := range bitmap {
			for bit := 0; bit < 8; bit++ {
				if bits&(1<<bit) != 0 {
					sel.PCRs = append(sel.PCRs, byteIdx*8+bit)
				}
			}
		}
		a.PCRSelection = append(a.PCRSelection, sel)
	}
	if !readTPM2B(&s, &a.PCRDigest) {
		return nil, fmt.Errorf("%w: pcrDigest truncated", ErrMalformed)
	}
	if !s.Empty() {
		return nil, fmt.Errorf("%w: %d bytes of trailing data after TPMS_ATTEST", ErrMalformed, len(s))
	}
	return &a, nil
}

// readAttestHeader reads the fields every TPMS_ATTEST starts with and
// checks its magic and its type. Reference: TPM 2.0 Library Part 2
// §10.12.12.
func readAttestHeader(s *cryptobyte.String, want uint16, wantName string, magic *uint32, typ *uint16, signer, extra *[]byte, clock *ClockInfo, fw *uint64) error {
	if !s.ReadUint32(magic) || !s.ReadUint16(typ) {
		return fmt.Errorf("%w: TPMS_ATTEST header truncated", ErrMalformed)
	}
	if *magic != GeneratedValue {
		return fmt.Errorf("%w: TPMS_ATTEST magic %#x, want %#x", ErrMalformed, *magic, GeneratedValue)
	}
	if *typ != want {
		return fmt.Errorf("%w: TPMS_ATTEST type %#x, want %s", ErrMalformed, *typ, wantName)
	}
	var safe uint8
	if !readTPM2B(s, signer) || !readTPM2B(s, extra) ||
		!s.ReadUint64(&clock.Clock) || !s.ReadUint32(&clock.ResetCount) ||
		!s.ReadUint32(&clock.RestartCount) || !s.ReadUint8(&safe) ||
		!s.ReadUint64(fw) {
		return fmt.Errorf("%w: TPMS_ATTEST truncated", ErrMalformed)
	}
	if safe > 1 {
		return fmt.Errorf("%w: clockInfo.safe is %d", ErrMalformed, safe)
	}
	clock.Safe = safe == 1
	return nil
}

// Signature is a parsed TPMT_SIGNATURE of an ECDSA, RSASSA or RSAPSS key.
type Signature struct {
	// Alg is the signature scheme: TPM_ALG_ECDSA, _RSASSA or _RSAPSS.
	Alg uint16
	// Hash is the digest algorithm (TPM_ALG_SHA256, …).
	Hash uint16
	// R and S are the ECDSA signature; RSA is the RSA signature.
	R, S, RSA []byte
}

// ParseSignature parses a TPMT_SIGNATURE. Reference: TPM 2.0 Library Part 2
// §11.3.4. Errors wrap [ErrMalformed].
func ParseSignature(b []byte) (*Signature, error) {
	s := cryptobyte.String(b)
	var sig Signature
	if !s.ReadUint16(&sig.Alg) || !s.ReadUint16(&sig.Hash) {
		return nil, fmt.Errorf("%w: TPMT_SIGNATURE truncated", ErrMalformed)
	}
	switch sig.Alg {
	case algECDSA:
		if !readTPM2B(&s, &sig.R) || !readTPM2B(&s, &sig.S) {
			return nil, fmt.Errorf("%w: ECDSA signature truncated", ErrMalformed)
		}
	case algRSASSA, algRSAPSS:
		if !readTPM2B(&s, &sig.RSA) {
			return nil, fmt.Errorf("%w: RSA signature truncated", ErrMalformed)
		}
	default:
		return nil, fmt.Errorf("%w: signature algorithm %#x", ErrMalformed, sig.Alg)
	}
	if !s.Empty() {
		return nil, fmt.Errorf("%w: trailing data after TPMT_SIGNATURE", ErrMalformed)
	}
	return &sig, nil
}
