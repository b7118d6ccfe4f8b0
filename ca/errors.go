package ca

import (
	"errors"
	"fmt"
	"math/big"
)

// Sentinel errors. [Authority.Issue] and [Authority.Revoke] return errors
// wrapping one of these for every refusal a caller may handle; match them
// with errors.Is. A refused request leaves no certificate and no ledger
// record behind.
var (
	// ErrUnknownProfile is returned by Issue for a profile name the
	// Authority does not have.
	ErrUnknownProfile = errors.New("ca: unknown profile")
	// ErrInvalidRequest is returned for a [Request] whose caller-supplied
	// fields are malformed (no requester, oversize digests, a Station
	// authorization on a non-Station profile…).
	ErrInvalidRequest = errors.New("ca: invalid request")
	// ErrNotAuthorized is returned, wrapped in an [*AuthorizationError],
	// when the requester may not use the profile: its station certificate
	// does not chain to this CA, is revoked (decided in the ledger's
	// transaction, see [Record.RequesterSerial]), or its authorization
	// extension does not list the profile.
	ErrNotAuthorized = errors.New("ca: requester not authorized")
	// ErrPolicy is returned, wrapped in a [*PolicyError], when the
	// configured [PolicyFunc] refuses a request.
	ErrPolicy = errors.New("ca: refused by policy")
	// ErrQuotaExceeded is returned by Issue (and by [Ledger.Append]) when
	// the requester already holds its quota of certificates for the period.
	ErrQuotaExceeded = errors.New("ca: requester quota exceeded")
	// ErrSerialExists is returned by [Ledger.Append] for an issuance whose
	// serial number is already recorded. Issue retries with a fresh serial.
	ErrSerialExists = errors.New("ca: serial number already recorded")
	// ErrRequestExists is returned by [Ledger.Append] for an issuance whose
	// idempotency key is already recorded, and, wrapped, by Issue when that
	// record is another requester's (the same requester gets the recorded
	// certificate back).
	ErrRequestExists = errors.New("ca: idempotency key already recorded")
	// ErrMalformedName is returned by [EqualNames] for a name that is not
	// a DER X.501 Name or holds a string value that is not valid for its
	// type.
	ErrMalformedName = errors.New("ca: malformed distinguished name")
	// ErrUnknownRequest is returned by [Ledger.LookupRequest] for an
	// idempotency key the ledger has no issuance for.
	ErrUnknownRequest = errors.New("ca: unknown idempotency key")
	// ErrUnknownDevice is returned by [Ledger.LookupDevice] for a device
	// with no live issuance.
	ErrUnknownDevice = errors.New("ca: no live certificate for this device")
	// ErrDeviceProvisioned is returned by [Ledger.Append] for an issuance
	// whose device (Record.Device) holds a live issuance it does not
	// supersede, and, in a *ProvisionedError, by [Authority.Issue] for a
	// second IDevID of a device whose request does not ask to
	// re-provision it.
	ErrDeviceProvisioned = errors.New("ca: device already provisioned")
	// ErrRepeatRevoked is returned by [Authority.Issue] and
	// [Authority.Repeat] for a repeated request whose certificate has been
	// revoked since it was issued: the revoked certificate is never
	// delivered again.
	ErrRepeatRevoked = errors.New("ca: the certificate issued for this request is revoked")
	// ErrUnknownSerial is returned by Revoke and [Ledger.Lookup] for a
	// serial number the ledger has no issuance for.
	ErrUnknownSerial = errors.New("ca: unknown serial number")
	// ErrAlreadyRevoked is returned by Revoke for a certificate that is
	// already revoked.
	ErrAlreadyRevoked = errors.New("ca: certificate already revoked")
	// ErrRequesterRevoked is returned by [Ledger.Append] for an issuance
	// whose [Record.RequesterSerial] the ledger records as revoked, and
	// ErrRequesterUnknown for one whose requester serial it has no
	// issuance for. Issue returns them wrapped in an [*AuthorizationError].
	ErrRequesterRevoked = errors.New("ca: requester certificate revoked")
	ErrRequesterUnknown = errors.New("ca: requester certificate not in the ledger")
	// ErrLedgerCorrupt is returned when a ledger is found altered or
	// damaged: wrapped in a [*ChainError] by [Ledger.Verify] when a record
	// does not match its hash or the chain is broken (and by lookups that
	// read such a record), in a [*StorageError] when the database's own
	// integrity check fails, and in a [*CheckpointError] when the ledger
	// does not extend its newest signed checkpoint. A ledger that found
	// itself corrupt refuses every later issuance, revocation and CRL with
	// an error wrapping ErrLedgerCorrupt, until it is repaired and opened
	// again.
	ErrLedgerCorrupt = errors.New("ca: ledger corrupt")
	// ErrCheckpointMismatch is returned, wrapped in a [*CheckpointError],
	// for a ledger shorter than, or different from, a checkpoint the CA
	// signed: records were removed or rewritten.
	ErrCheckpointMismatch = errors.New("ca: ledger does not extend its checkpoint")
	// ErrBadCheckpoint is returned, wrapped in a [*CheckpointFormatError],
	// by [ParseCheckpoint] for a malformed checkpoint or one whose
	// signature does not verify.
	ErrBadCheckpoint = errors.New("ca: bad ledger checkpoint")
	// ErrNoCheckpoint is returned by [CheckpointSource.LatestCheckpoint]
	// when no checkpoint was saved yet.
	ErrNoCheckpoint = errors.New("ca: no checkpoint saved")
	// ErrUnknownRecord is returned by [RecordReader.Record] for a sequence
	// number the ledger holds no record at.
	ErrUnknownRecord = errors.New("ca: no ledger record with that sequence number")
	// ErrLedgerClosed is returned by every Ledger method after Close.
	ErrLedgerClosed = errors.New("ca: ledger is closed")
	// ErrInvalidConfig is returned by [New], [NewRoot] and
	// [NewIntermediate] for a configuration they cannot use.
	ErrInvalidConfig = errors.New("ca: invalid configuration")
	// ErrNoStationAuthorization is returned by [ParseStationAuthorization]
	// for a certificate without the station authorization extension.
	ErrNoStationAuthorization = errors.New("ca: no station authorization extension")
	// ErrBadExtension is returned, wrapped in an [*ExtensionError], by the
	// extension parsers for malformed DER.
	ErrBadExtension = errors.New("ca: malformed extension")
)

// AuthorizationError reports why a requester may not use a profile. It
// wraps [ErrNotAuthorized].
type AuthorizationError struct {
	Requester string
	Profile   string
	// Reason says which check failed.
	Reason string
	Err    error
}

// Error describes the failure.
func (e *AuthorizationError) Error() string {
	msg := fmt.Sprintf("ca: requester %q not authorized for profile %q: %s", e.Requester, e.Profile, e.Reason)
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap returns ErrNotAuthorized and the underlying error.
func (e *AuthorizationError) Unwrap() []error {
	if e.Err != nil {
		return []error{ErrNotAuthorized, e.Err}
	}
	return []error{ErrNotAuthorized}
}

// PolicyError carries the error a [PolicyFunc] refused a request with. It
// wraps [ErrPolicy] and that error.
type PolicyError struct {
	Profile string
	Err     error
}

// Error describes the failure.
func (e *PolicyError) Error() string {
	return fmt.Sprintf("ca: refused by policy (profile %q): %v", e.Profile, e.Err)
}

// Unwrap returns ErrPolicy and the policy's own error.
func (e *PolicyError) Unwrap() []error { return []error{ErrPolicy, e.Err} }

// ChainError reports the first ledger record that breaks the hash chain.
// It wraps [ErrLedgerCorrupt].
type ChainError struct {
	// Seq is the sequence number of the offending record (or the one
	// expected where a record is missing).
	Seq    uint64
	Reason string
}

// Error describes the failure.
func (e *ChainError) Error() string {
	return fmt.Sprintf("ca: ledger hash chain broken at record %d: %s", e.Seq, e.Reason)
}

// Unwrap returns ErrLedgerCorrupt.
func (e *ChainError) Unwrap() error { return ErrLedgerCorrupt }

// ExtensionError reports a malformed extension value. It wraps
// [ErrBadExtension].
type ExtensionError struct {
	// Extension names the extension ("station authorization",
	// "subjectAltName").
	Extension string
	Detail    string
}

// Error describes the failure.
func (e *ExtensionError) Error() string {
	return fmt.Sprintf("ca: malformed %s extension: %s", e.Extension, e.Detail)
}

// Unwrap returns ErrBadExtension.
func (e *ExtensionError) Unwrap() error { return ErrBadExtension }

// StorageError reports that a ledger's database failed its own integrity
// check (SQLite's PRAGMA integrity_check, PostgreSQL's amcheck) or
// returned a corruption error: an index or page is damaged, and lookups
// through it may answer wrongly. It wraps [ErrLedgerCorrupt].
type StorageError struct {
	// Check names the check that failed.
	Check string
	// Detail is the database's report (its first lines).
	Detail string
}

// Error describes the failure.
func (e *StorageError) Error() string {
	return fmt.Sprintf("ca: ledger storage damaged (%s): %s", e.Check, e.Detail)
}

// Unwrap returns ErrLedgerCorrupt.
func (e *StorageError) Unwrap() error { return ErrLedgerCorrupt }

// CheckpointError reports a ledger that does not extend a checkpoint the
// CA signed: it is shorter (its tail was cut), or the record at the
// checkpoint's sequence number is not the one signed. It wraps
// [ErrCheckpointMismatch] and [ErrLedgerCorrupt].
type CheckpointError struct {
	// Checkpoint is the signed head, Ledger the ledger's head.
	Checkpoint Head
	Ledger     Head
	Reason     string
}

// Error describes the failure, naming both heads.
func (e *CheckpointError) Error() string {
	return fmt.Sprintf("ca: ledger (head %d, %x) does not extend the signed checkpoint (head %d, %x): %s",
		e.Ledger.Seq, e.Ledger.Hash, e.Checkpoint.Seq, e.Checkpoint.Hash, e.Reason)
}

// Unwrap returns ErrCheckpointMismatch and ErrLedgerCorrupt.
func (e *CheckpointError) Unwrap() []error { return []error{ErrCheckpointMismatch, ErrLedgerCorrupt} }

// CheckpointFormatError reports why [ParseCheckpoint] refused a
// checkpoint. It wraps [ErrBadCheckpoint].
type CheckpointFormatError struct {
	Detail string
	// Signature is true when the checkpoint is well formed but its
	// signature does not verify with the key given.
	Signature bool
}

// Error describes the failure.
func (e *CheckpointFormatError) Error() string { return "ca: bad ledger checkpoint: " + e.Detail }

// Unwrap returns ErrBadCheckpoint.
func (e *CheckpointFormatError) Unwrap() error { return ErrBadCheckpoint }

// ProvisionedError reports a device that already holds a live IDevID. It
// wraps [ErrDeviceProvisioned].
type ProvisionedError struct {
	// Device is the device's identifier ([DeviceID]).
	Device []byte
	// Serial is the serial number of its live certificate, or nil if the
	// ledger could not say.
	Serial *big.Int
}

// Error describes the refusal.
func (e *ProvisionedError) Error() string {
	if e.Serial == nil {
		return "ca: device already provisioned: it holds a live IDevID (ask to re-provision to supersede it)"
	}
	return fmt.Sprintf("ca: device already provisioned: it holds live IDevID %x (ask to re-provision to supersede it)", e.Serial)
}

// Unwrap returns ErrDeviceProvisioned.
func (e *ProvisionedError) Unwrap() error { return ErrDeviceProvisioned }
