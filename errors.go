package ztm

import (
	"errors"
	"fmt"

	"github.com/ztmkit/ztm/internal/errfmt"
)

// Sentinel errors. Match them with errors.Is.
var (
	// ErrInvalidConfig is returned, wrapped (by NewStation in a
	// *ConfigError), for a configuration the station cannot use.
	ErrInvalidConfig = errors.New("ztm: invalid station configuration")
	// ErrKeyGenerationUnsupported is what a Device's GenerateKey returns
	// (wrapped or not) when the device cannot make keys itself. Provision
	// then injects a key if the device implements KeyImporter.
	ErrKeyGenerationUnsupported = errors.New("ztm: device cannot generate keys")
	// ErrRefused is wrapped by every *ProvisionError whose stage refused
	// the device on its merits (its evidence, its appraisal, its request),
	// as opposed to a failure of the station or its peers.
	ErrRefused = errors.New("ztm: device refused")
	// ErrNotProvisioned is returned by Decommission for a device with no
	// enrollment step in the chain store.
	ErrNotProvisioned = errors.New("ztm: device was not provisioned by this line")
	// ErrUnsupportedKey is returned when a key cannot be sealed or opened:
	// the device's attested key is not one HPKE can encapsulate to (only
	// ECDSA P-256 and P-384 and X25519 keys are), or the key to inject
	// cannot be exported.
	ErrUnsupportedKey = errors.New("ztm: unsupported key for injection")
)

// ConfigError is NewStation's refusal of a StationConfig: the field and
// what is wrong with it. It wraps ErrInvalidConfig.
type ConfigError struct {
	// Field is the StationConfig field, e.g. "CertChain".
	Field string
	// Reason says what is wrong and what the field must hold.
	Reason string
}

// Error describes the refusal.
func (e *ConfigError) Error() string {
	return "ztm: invalid station configuration: " + e.Field + ": " + e.Reason
}

// Unwrap returns ErrInvalidConfig.
func (e *ConfigError) Unwrap() error { return ErrInvalidConfig }

// Stage names a step of Station.Provision or Station.Decommission; a
// *ProvisionError says at which one a device failed.
type Stage int

// The stages. Provision runs info, key (the device makes its key and
// request), csr (the request checked against the device, before a nonce
// is spent on it), nonce, evidence, appraisal, key and csr again for a
// device that receives an injected key, enroll, install and record.
const (
	// StageInfo: asking the device who it is.
	StageInfo Stage = iota + 1
	// StageNonce: obtaining a nonce from the CA side.
	StageNonce
	// StageEvidence: the device answering the nonce with evidence.
	StageEvidence
	// StageAppraisal: the station's local check of the evidence (signer,
	// signature, nonce, reference values).
	StageAppraisal
	// StageKey: the device generating its key and request, or the station
	// injecting one.
	StageKey
	// StageCSR: checking the certificate request against the device.
	StageCSR
	// StageEnroll: the CA side verifying and issuing.
	StageEnroll
	// StageInstall: the device storing its certificate chain.
	StageInstall
	// StageRecord: signing and storing the manifest step.
	StageRecord
	// StageRevoke: revoking the device's certificate (Decommission, or a
	// failed install).
	StageRevoke
	// StageDestroy: destroying the device's key (Decommission).
	StageDestroy
	maxStage
)

var stageNames = [...]string{
	StageInfo:      "info",
	StageNonce:     "nonce",
	StageEvidence:  "evidence",
	StageAppraisal: "appraisal",
	StageKey:       "key",
	StageCSR:       "csr",
	StageEnroll:    "enroll",
	StageInstall:   "install",
	StageRecord:    "record",
	StageRevoke:    "revoke",
	StageDestroy:   "destroy",
}

// String returns the stage's short lowercase name ("appraisal", "enroll", …).
func (s Stage) String() string {
	if s.valid() {
		return stageNames[s]
	}
	return fmt.Sprintf("Stage(%d)", int(s))
}

func (s Stage) valid() bool { return s > 0 && s < maxStage }

// ProvisionError says at which stage Provision or Decommission failed for
// a device, and why. It wraps Err, and ErrRefused when Refused is set.
type ProvisionError struct {
	// Stage is where the failure happened.
	Stage Stage
	// Serial is the device's serial number, when it was known.
	Serial string
	// Refused reports a refusal of the device on its merits: evidence that
	// does not verify or appraise, a request that does not match the
	// device, or a CA that declined to issue. It is false for failures of
	// the station, the device's I/O or the network.
	Refused bool
	// Err is the underlying error.
	Err error
}

// Error describes the failure.
func (e *ProvisionError) Error() string {
	who := ""
	if e.Serial != "" {
		who = " device " + e.Serial
	}
	verb := "failed"
	if e.Refused {
		verb = "refused"
	}
	// Err may carry "ztm: " itself (a station failure): say it once.
	return errfmt.OnePrefix("ztm: ", fmt.Sprintf("ztm:%s %s at %s: %v", who, verb, e.Stage, e.Err))
}

// Unwrap returns Err, and ErrRefused for a refusal.
func (e *ProvisionError) Unwrap() []error {
	if e.Refused {
		return []error{ErrRefused, e.Err}
	}
	return []error{e.Err}
}
