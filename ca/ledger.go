package ca

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/ztmkit/ztm/internal/detcbor"
)

// Ledger is the durable, hash-chained record of everything an [Authority]
// does: one [Record] per issuance and per revocation. Implementations are
// github.com/ztmkit/ztm/ca/ledger/sqlite (embedded) and, for several CA
// instances, a shared-database backend; third-party backends run the
// conformance kit github.com/ztmkit/ztm/ca/ledger/ledgertest.
//
// Implementations must be safe for concurrent use, and must keep the chain
// linear: every appended record's PrevHash is the Hash of the record with
// the sequence number just below it, whatever the number of writers.
type Ledger interface {
	// Append records rec durably. It assigns rec.Seq, rec.PrevHash and
	// rec.Hash (see [Record.ChainHash]) and returns only once the record is
	// committed to stable storage. A record that fails
	// [Record.CheckAppendable] is refused first. All checks and the insert
	// happen in one transaction:
	//   - an issuance whose serial is already issued → ErrSerialExists;
	//   - a revocation of a serial never issued → ErrUnknownSerial, of one
	//     already revoked → ErrAlreadyRevoked;
	//   - an issuance whose RequesterSerial was never issued →
	//     ErrRequesterUnknown, is revoked → ErrRequesterRevoked (checked
	//     first: a revoked station gets nothing, not even a repeat);
	//   - an issuance whose IdempotencyKey is already recorded →
	//     ErrRequestExists (checked before the quota: a repeat is not a
	//     new issuance);
	//   - an issuance with a Device whose live issuance is not exactly
	//     rec.Supersedes (none, for nil) → ErrDeviceProvisioned; with
	//     Supersedes, the revocation rec.SupersedingRevocation() is
	//     recorded just before rec, in the same transaction (checked after
	//     the idempotency key: a repeat is not a second issuance);
	//   - when quota is not nil and rec is an issuance, if the ledger holds
	//     quota.Limit or more issuances for rec.Requester with Time at or
	//     after quota.Since → ErrQuotaExceeded.
	// On any error nothing is recorded and rec is not modified. If ctx ends
	// before the answer, Append returns ctx.Err(); the record may then
	// still be committed.
	Append(ctx context.Context, rec *Record, quota *Quota) error
	// Lookup returns the issuance record for serial and its revocation, if
	// any. It returns ErrUnknownSerial when serial was never issued. The
	// records it read must pass [VerifyLookup] (what was asked for, each
	// matching its hash) and be linked into the chain; when they are not
	// (a damaged index, an edited row) it returns an error wrapping
	// ErrLedgerCorrupt, never another record.
	Lookup(ctx context.Context, serial *big.Int) (*Status, error)
	// LookupDevice returns the live (unrevoked) issuance of a device
	// (Record.Device) and no revocation. It returns ErrUnknownDevice when
	// the device has none.
	LookupDevice(ctx context.Context, device []byte) (*Status, error)
	// LookupRequest is Lookup by the issuance's IdempotencyKey. It returns
	// ErrUnknownRequest when no issuance carries key.
	LookupRequest(ctx context.Context, key []byte) (*Status, error)
	// Revoked returns every revocation, in ledger order.
	Revoked(ctx context.Context) ([]Revocation, error)
	// NextCRLNumber durably allocates and returns the next CRL number:
	// 1, 2, 3… strictly increasing across every user of the ledger.
	NextCRLNumber(ctx context.Context) (*big.Int, error)
	// Head returns the sequence number and hash of the last record (zero
	// for an empty ledger).
	Head(ctx context.Context) (Head, error)
	// Verify recomputes the whole hash chain from the first record (see
	// [ChainVerifier]) and returns the head it reaches. A broken chain or a
	// record that does not match its hash gives a *ChainError wrapping
	// ErrLedgerCorrupt. Backends also run their database's own integrity
	// check (*StorageError) and, when given the CA's checkpoints, check
	// the ledger against the newest (*CheckpointError). A ledger that
	// found itself corrupt, here or in a lookup, refuses every later
	// Append, lookup, Revoked and NextCRLNumber with an error wrapping
	// ErrLedgerCorrupt.
	Verify(ctx context.Context) (Head, error)
	// Close releases the ledger. Later calls return ErrLedgerClosed.
	Close() error
}

// RecordKind says what a ledger record records.
type RecordKind uint8

const (
	// KindIssuance records a certificate issued.
	KindIssuance RecordKind = 1
	// KindRevocation records a certificate revoked.
	KindRevocation RecordKind = 2
)

// String returns "issuance" or "revocation".
func (k RecordKind) String() string {
	switch k {
	case KindIssuance:
		return "issuance"
	case KindRevocation:
		return "revocation"
	}
	return fmt.Sprintf("RecordKind(%d)", int(k))
}

// Record is one ledger entry. The Authority fills every field but Seq,
// PrevHash and Hash, which [Ledger.Append] assigns.
type Record struct {
	// Seq is the record's position in the ledger, from 1.
	Seq  uint64
	Kind RecordKind
	// Serial is the certificate's serial number (positive).
	Serial *big.Int
	// Subject is the certificate subject in RFC 4514 form (issuance only).
	Subject string
	// PublicKeyHash is SHA-256 over the certificate's DER
	// SubjectPublicKeyInfo (issuance only).
	PublicKeyHash []byte
	// Profile names the profile the certificate was issued under (issuance
	// only).
	Profile string
	// Requester identifies who asked: the station for an issuance, the
	// revoking party for a revocation.
	Requester string
	// EvidenceDigest and StepDigest are the approvals the caller attached
	// (an attestation result digest and a manifest step digest); optional.
	EvidenceDigest []byte
	StepDigest     []byte
	// IdempotencyKey is the issuance request's [Request.IdempotencyKey]
	// (at most MaxIdempotencyKey bytes); optional, unique in the ledger.
	IdempotencyKey []byte
	// RequesterSerial is the serial number of the requester's certificate
	// when this ledger's CA issued it (a station's certificate); optional,
	// issuance only. The ledger refuses the issuance, in the transaction
	// that would record it, if it holds no issuance of that serial or
	// holds its revocation: once a station's revocation is recorded, no
	// issuance it requested follows it in the ledger.
	RequesterSerial *big.Int
	// Device names the device an issuance under an IDevID profile is for:
	// [DeviceID] of its certificate (the DER of its hardwareModuleName,
	// RFC 4108). A ledger holds at most one live (unrevoked) issuance per
	// Device: Append refuses a second with ErrDeviceProvisioned unless it
	// supersedes the first (see Supersedes). Optional, issuance only, at
	// most MaxDeviceID bytes.
	Device []byte
	// KeyProvenance says how the certified key came to be (issuance
	// only): attested by the device (EAT cnf, TPM-certified), injected
	// by the requesting station, or unattested. ProvenanceUnrecorded, the
	// zero value, is left out of the canonical encoding, so records made
	// before the ledger held provenance keep their hashes.
	KeyProvenance KeyProvenance
	// Supersedes, on an issuance with a Device, is the serial number of
	// the device's live issuance it replaces (re-provisioning). Append
	// then records the revocation of Supersedes, reason superseded, with
	// the issuance's Requester and Time, just before the issuance and in
	// the same transaction; and refuses the issuance with
	// ErrDeviceProvisioned when the device's live issuance is not exactly
	// Supersedes (none, for a nil Supersedes). It is an instruction to
	// Append, not part of the record: the revocation record is what the
	// ledger keeps.
	Supersedes *big.Int
	// Time is when the record was made: the issuance time (the
	// certificate's notBefore is this time truncated to the second) or the
	// revocation time. Kept to the nanosecond, in UTC.
	Time time.Time
	// Certificate is the DER certificate (issuance only).
	Certificate []byte
	// Reason is the revocation reason (revocation only).
	Reason RevocationReason
	// PrevHash is the Hash of the record before (32 zero bytes for the
	// first record); Hash is this record's [Record.ChainHash].
	PrevHash []byte
	Hash     []byte
}

// canonicalRecord is the documented canonical encoding of a record: a CBOR
// map with integer keys, core deterministic (RFC 8949 §4.2.1), empty
// optional fields omitted.
type canonicalRecord struct {
	Seq            uint64 `cbor:"1,keyasint"`
	Kind           uint8  `cbor:"2,keyasint"`
	Serial         []byte `cbor:"3,keyasint"`
	Subject        string `cbor:"4,keyasint,omitempty"`
	PublicKeyHash  []byte `cbor:"5,keyasint,omitempty"`
	Profile        string `cbor:"6,keyasint,omitempty"`
	Requester      string `cbor:"7,keyasint,omitempty"`
	EvidenceDigest []byte `cbor:"8,keyasint,omitempty"`
	StepDigest     []byte `cbor:"9,keyasint,omitempty"`
	Time           int64  `cbor:"10,keyasint"`
	Certificate    []byte `cbor:"11,keyasint,omitempty"`
	Reason         uint8  `cbor:"12,keyasint,omitempty"`
	IdempotencyKey []byte `cbor:"13,keyasint,omitempty"`
	// RequesterSerial, like Serial: unsigned big-endian, minimal.
	RequesterSerial []byte `cbor:"14,keyasint,omitempty"`
	Device          []byte `cbor:"15,keyasint,omitempty"`
	KeyProvenance   uint8  `cbor:"16,keyasint,omitempty"`
}

// MaxDeviceID is the longest [Record.Device], in bytes.
const MaxDeviceID = 160

// MaxIdempotencyKey is the longest [Request.IdempotencyKey], in bytes.
const MaxIdempotencyKey = 64

// CheckAppendable reports, before any I/O, a record no ledger may append:
// one without a positive serial or of an unknown kind, an idempotency key
// over MaxIdempotencyKey bytes or on a revocation, a requester serial not
// positive, over 64 bytes or on a revocation, a key provenance unknown or
// on a revocation. Ledgers call it first in Append.
func (r *Record) CheckAppendable() error {
	switch {
	case r == nil || r.Serial == nil || r.Serial.Sign() <= 0:
		return errors.New("record needs a positive serial")
	case r.Kind != KindIssuance && r.Kind != KindRevocation:
		return fmt.Errorf("invalid record kind %d", r.Kind)
	case len(r.IdempotencyKey) > MaxIdempotencyKey || (r.Kind == KindRevocation && len(r.IdempotencyKey) > 0):
		return errors.New("idempotency key too long, or on a revocation")
	case r.RequesterSerial != nil && (r.RequesterSerial.Sign() <= 0 || len(r.RequesterSerial.Bytes()) > 64 || r.Kind != KindIssuance):
		return errors.New("requester serial not positive, too long, or on a revocation")
	case len(r.Device) > MaxDeviceID || (r.Kind == KindRevocation && len(r.Device) > 0):
		return errors.New("device identifier too long, or on a revocation")
	case r.Supersedes != nil && (len(r.Device) == 0 || r.Supersedes.Sign() <= 0 || len(r.Supersedes.Bytes()) > 64 || r.Supersedes.Cmp(r.Serial) == 0):
		return errors.New("supersedes needs a device, and a positive serial of another certificate")
	case !r.KeyProvenance.valid() || (r.Kind == KindRevocation && r.KeyProvenance != ProvenanceUnrecorded):
		return errors.New("unknown key provenance, or on a revocation")
	}
	return nil
}

// SupersedingRevocation returns the revocation record Append writes just
// before an issuance r that supersedes another ([Record.Supersedes]): the
// revocation of r.Supersedes, reason superseded, by r's requester at r's
// time. It returns nil when r supersedes nothing.
func (r *Record) SupersedingRevocation() *Record {
	if r.Supersedes == nil {
		return nil
	}
	return &Record{
		Kind:      KindRevocation,
		Serial:    new(big.Int).Set(r.Supersedes),
		Requester: r.Requester,
		Time:      r.Time,
		Reason:    ReasonSuperseded,
	}
}

// CanonicalEncoding returns the record's canonical encoding, which its hash
// covers: a CBOR map, core deterministic (RFC 8949 §4.2.1), with integer
// keys
//
//	1 seq (uint)              8 evidence digest (bstr)
//	2 kind (uint: 1 issuance,  9 manifest step digest (bstr)
//	  2 revocation)           10 time (int, Unix nanoseconds)
//	3 serial (bstr, unsigned  11 certificate (bstr, DER)
//	  big-endian, minimal)    12 revocation reason (uint)
//	4 subject (tstr)          13 idempotency key (bstr)
//	5 public key hash (bstr)  14 requester certificate serial (bstr,
//	6 profile (tstr)             as serial)
//	7 requester (tstr)        15 device (bstr, Record.Device)
//	                          16 key provenance (uint,
//	                             Record.KeyProvenance)
//
// where keys 4–9 and 11–16 are left out when empty or zero. PrevHash and
// Hash are not part of the encoding.
func (r *Record) CanonicalEncoding() ([]byte, error) {
	if r.Serial == nil || r.Serial.Sign() <= 0 {
		return nil, fmt.Errorf("ca: record %d: serial must be positive", r.Seq)
	}
	if r.Kind != KindIssuance && r.Kind != KindRevocation {
		return nil, fmt.Errorf("ca: record %d: invalid kind %d", r.Seq, r.Kind)
	}
	var requesterSerial []byte
	if r.RequesterSerial != nil {
		if r.RequesterSerial.Sign() <= 0 || r.Kind != KindIssuance {
			return nil, fmt.Errorf("ca: record %d: requester serial must be positive, and on an issuance", r.Seq)
		}
		requesterSerial = r.RequesterSerial.Bytes()
	}
	if !r.KeyProvenance.valid() || (r.Kind != KindIssuance && r.KeyProvenance != ProvenanceUnrecorded) {
		return nil, fmt.Errorf("ca: record %d: key provenance %v unknown, or not on an issuance", r.Seq, r.KeyProvenance)
	}
	return detcbor.Marshal(canonicalRecord{
		Seq:             r.Seq,
		Kind:            uint8(r.Kind),
		Serial:          r.Serial.Bytes(),
		Subject:         r.Subject,
		PublicKeyHash:   r.PublicKeyHash,
		Profile:         r.Profile,
		Requester:       r.Requester,
		EvidenceDigest:  r.EvidenceDigest,
		StepDigest:      r.StepDigest,
		Time:            r.Time.UnixNano(),
		Certificate:     r.Certificate,
		Reason:          uint8(r.Reason),
		IdempotencyKey:  r.IdempotencyKey,
		RequesterSerial: requesterSerial,
		Device:          r.Device,
		KeyProvenance:   uint8(r.KeyProvenance),
	})
}

// ChainHash returns SHA-256(prev || r.CanonicalEncoding()), the hash that
// links r to the record before it. prev must be 32 bytes.
func (r *Record) ChainHash(prev []byte) ([]byte, error) {
	if len(prev) != sha256.Size {
		return nil, fmt.Errorf("ca: record %d: previous hash is %d bytes, want %d", r.Seq, len(prev), sha256.Size)
	}
	enc, err := r.CanonicalEncoding()
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	h.Write(prev)
	h.Write(enc)
	return h.Sum(nil), nil
}

// Clone returns a deep copy of r.
func (r *Record) Clone() *Record {
	c := *r
	if r.Serial != nil {
		c.Serial = new(big.Int).Set(r.Serial)
	}
	if r.RequesterSerial != nil {
		c.RequesterSerial = new(big.Int).Set(r.RequesterSerial)
	}
	c.PublicKeyHash = bytes.Clone(r.PublicKeyHash)
	c.EvidenceDigest = bytes.Clone(r.EvidenceDigest)
	c.StepDigest = bytes.Clone(r.StepDigest)
	c.IdempotencyKey = bytes.Clone(r.IdempotencyKey)
	c.Device = bytes.Clone(r.Device)
	if r.Supersedes != nil {
		c.Supersedes = new(big.Int).Set(r.Supersedes)
	}
	c.Certificate = bytes.Clone(r.Certificate)
	c.PrevHash = bytes.Clone(r.PrevHash)
	c.Hash = bytes.Clone(r.Hash)
	return &c
}

// Quota is the per-requester limit [Ledger.Append] enforces in its
// transaction: at most Limit issuances for the record's requester with Time
// at or after Since.
type Quota struct {
	Limit int
	Since time.Time
}

// Status is what [Ledger.Lookup] knows about one serial number.
type Status struct {
	// Issuance is the issuance record.
	Issuance *Record
	// Revocation is nil while the certificate is not revoked.
	Revocation *Revocation
}

// Revocation is one revoked certificate, as a CRL lists it.
type Revocation struct {
	// Seq is the sequence number of the revocation record.
	Seq    uint64
	Serial *big.Int
	Time   time.Time
	Reason RevocationReason
}

// Head names the last record of a ledger.
type Head struct {
	// Seq is the number of records (the last record's sequence number).
	Seq uint64
	// Hash is the last record's hash, or 32 zero bytes for an empty ledger.
	Hash []byte
}

// ChainVerifier recomputes a ledger's hash chain one record at a time, in
// sequence order. Ledger backends feed it from Verify. The zero value
// expects the first record. It is not safe for concurrent use.
type ChainVerifier struct {
	seq    uint64
	prev   []byte
	issued map[string]bool     // serial → revoked
	keys   map[string]struct{} // idempotency keys recorded
	// live is each device's unrevoked issuance (serial), devices of
	// each serial issued with one.
	live    map[string]string
	devices map[string]string
}

// Add checks the next record: its sequence number follows the previous
// one, its PrevHash is the previous record's hash, its Hash is its
// [Record.ChainHash], and an issuance record's certificate carries the
// record's serial number and public key hash. It also checks that no
// serial and no idempotency key is issued twice, that each revocation
// names a serial issued earlier and not yet revoked, and that an issuance
// with a requester serial names a certificate issued earlier and not
// revoked before it. Failures are *ChainError.
func (v *ChainVerifier) Add(r *Record) error {
	if v.prev == nil {
		v.prev = make([]byte, sha256.Size)
	}
	want := v.seq + 1
	if r.Seq != want {
		return &ChainError{Seq: want, Reason: fmt.Sprintf("found record %d where %d was expected", r.Seq, want)}
	}
	if !bytes.Equal(r.PrevHash, v.prev) {
		return &ChainError{Seq: r.Seq, Reason: "previous-hash link does not match the record before"}
	}
	h, err := r.ChainHash(v.prev)
	if err != nil {
		return &ChainError{Seq: r.Seq, Reason: err.Error()}
	}
	if !bytes.Equal(h, r.Hash) {
		return &ChainError{Seq: r.Seq, Reason: "record does not match its hash"}
	}
	if r.Kind == KindRevocation && len(r.IdempotencyKey) > 0 {
		return &ChainError{Seq: r.Seq, Reason: "revocation with an idempotency key"}
	}
	if len(r.IdempotencyKey) > MaxIdempotencyKey {
		return &ChainError{Seq: r.Seq, Reason: "idempotency key too long"}
	}
	if r.Kind == KindIssuance {
		cert, err := x509.ParseCertificate(r.Certificate)
		if err != nil {
			return &ChainError{Seq: r.Seq, Reason: "certificate does not parse: " + err.Error()}
		}
		if cert.SerialNumber.Cmp(r.Serial) != 0 {
			return &ChainError{Seq: r.Seq, Reason: "certificate serial differs from the record's"}
		}
		pkh := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
		if !bytes.Equal(pkh[:], r.PublicKeyHash) {
			return &ChainError{Seq: r.Seq, Reason: "certificate public key differs from the record's"}
		}
		if len(r.Device) > 0 {
			if d, err := DeviceID(cert); err != nil || !bytes.Equal(d, r.Device) {
				return &ChainError{Seq: r.Seq, Reason: "device differs from the certificate's hardwareModuleName"}
			}
		}
	} else if len(r.Device) > 0 {
		return &ChainError{Seq: r.Seq, Reason: "revocation with a device"}
	}
	if v.issued == nil {
		v.issued = make(map[string]bool)
	}
	key := string(r.Serial.Bytes())
	revoked, issued := v.issued[key]
	switch r.Kind {
	case KindIssuance:
		if issued {
			return &ChainError{Seq: r.Seq, Reason: "serial issued twice"}
		}
		if r.RequesterSerial != nil {
			switch revoked, issued := v.issued[string(r.RequesterSerial.Bytes())]; {
			case !issued:
				return &ChainError{Seq: r.Seq, Reason: "requester certificate not issued before"}
			case revoked:
				return &ChainError{Seq: r.Seq, Reason: "requester certificate revoked before"}
			}
		}
		if len(r.IdempotencyKey) > 0 {
			if v.keys == nil {
				v.keys = make(map[string]struct{})
			}
			if _, dup := v.keys[string(r.IdempotencyKey)]; dup {
				return &ChainError{Seq: r.Seq, Reason: "idempotency key issued twice"}
			}
			v.keys[string(r.IdempotencyKey)] = struct{}{}
		}
		if len(r.Device) > 0 {
			if v.live == nil {
				v.live, v.devices = make(map[string]string), make(map[string]string)
			}
			if _, dup := v.live[string(r.Device)]; dup {
				return &ChainError{Seq: r.Seq, Reason: "a second live issuance for one device"}
			}
			v.live[string(r.Device)] = key
			v.devices[key] = string(r.Device)
		}
		v.issued[key] = false
	case KindRevocation:
		if !issued {
			return &ChainError{Seq: r.Seq, Reason: "revocation of a serial not issued before"}
		}
		if revoked {
			return &ChainError{Seq: r.Seq, Reason: "serial revoked twice"}
		}
		if d, ok := v.devices[key]; ok {
			delete(v.live, d)
		}
		v.issued[key] = true
	}
	v.seq = r.Seq
	v.prev = r.Hash
	return nil
}

// Head returns the last record checked.
func (v *ChainVerifier) Head() Head {
	if v.prev == nil {
		return Head{Hash: make([]byte, sha256.Size)}
	}
	return Head{Seq: v.seq, Hash: bytes.Clone(v.prev)}
}

// RevocationReason is a CRL reason code. Reference: RFC 5280 §5.3.1.
type RevocationReason uint8

// The reason codes of RFC 5280 §5.3.1 (value 7 is unused).
const (
	ReasonUnspecified          RevocationReason = 0
	ReasonKeyCompromise        RevocationReason = 1
	ReasonCACompromise         RevocationReason = 2
	ReasonAffiliationChanged   RevocationReason = 3
	ReasonSuperseded           RevocationReason = 4
	ReasonCessationOfOperation RevocationReason = 5
	ReasonCertificateHold      RevocationReason = 6
	ReasonRemoveFromCRL        RevocationReason = 8
	ReasonPrivilegeWithdrawn   RevocationReason = 9
	ReasonAACompromise         RevocationReason = 10
)

var reasonNames = map[RevocationReason]string{
	ReasonUnspecified:          "unspecified",
	ReasonKeyCompromise:        "keyCompromise",
	ReasonCACompromise:         "cACompromise",
	ReasonAffiliationChanged:   "affiliationChanged",
	ReasonSuperseded:           "superseded",
	ReasonCessationOfOperation: "cessationOfOperation",
	ReasonCertificateHold:      "certificateHold",
	ReasonRemoveFromCRL:        "removeFromCRL",
	ReasonPrivilegeWithdrawn:   "privilegeWithdrawn",
	ReasonAACompromise:         "aACompromise",
}

// String returns the RFC 5280 name of the reason.
func (r RevocationReason) String() string {
	if n, ok := reasonNames[r]; ok {
		return n
	}
	return fmt.Sprintf("RevocationReason(%d)", int(r))
}

// validForRevoke reports whether a certificate may be revoked with r:
// removeFromCRL (delta CRLs only), aACompromise (attribute certificates
// only), certificateHold (ztm never unrevokes) and the unused value 7 are
// refused.
func (r RevocationReason) validForRevoke() bool {
	switch r {
	case ReasonUnspecified, ReasonKeyCompromise, ReasonCACompromise, ReasonAffiliationChanged,
		ReasonSuperseded, ReasonCessationOfOperation, ReasonPrivilegeWithdrawn:
		return true
	}
	return false
}
