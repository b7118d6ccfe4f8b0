package ca

import "fmt"

// KeyProvenance says how the key a certificate certifies came to be, as
// the registration authority that approved the issuance established it
// (package ca/enroll decides it from the evidence and the station's
// authorization). The ledger records it with the issuance
// ([Record.KeyProvenance]), under the record's hash; ztm.Station's
// enrollment step names it by the same String ("key-origin").
type KeyProvenance uint8

// The key provenances. The values are what the ledger stores and hashes;
// they never change.
const (
	// ProvenanceUnrecorded: nothing was recorded. Records made before the
	// ledger held provenance, revocations, and issuances requested
	// without one (an Authority used directly, a ceremony) carry it; it
	// claims nothing about the key.
	ProvenanceUnrecorded KeyProvenance = 0
	// ProvenanceUnattested: nothing attests where the key was made:
	// evidence that names the device but not the key (legacy evidence,
	// accepted only on a profile configured for it), or no evidence.
	ProvenanceUnattested KeyProvenance = 1
	// ProvenanceEATConfirmed: attested by the device's EAT, whose cnf
	// claim (RFC 8747, RFC 7800) confirms the request's key: the device's
	// attesting environment holds the key and vouches for it, as a device
	// that generates its key does. (A station that injected a key the
	// device then confirms in cnf is recorded so too; the station's
	// injection step says it injected.)
	ProvenanceEATConfirmed KeyProvenance = 2
	// ProvenanceTPMCertified: generated in the device's TPM and certified
	// there by its attestation key (TPM2_Certify over the CA's nonce; the
	// key fixedTPM, fixedParent and sensitiveDataOrigin).
	ProvenanceTPMCertified KeyProvenance = 3
	// ProvenanceInjected: made by a station and sealed to the device. The
	// station that sealed it is the issuance's requester ([Record.Requester]
	// "station:" and its key's hash, [Record.RequesterSerial] its
	// certificate's serial when this CA issued it): the CA accepts an
	// injected key only from a station certificate, and ca/enroll only
	// from one whose authorization lists the key-injection step.
	ProvenanceInjected KeyProvenance = 4

	maxKeyProvenance KeyProvenance = 5
)

var provenanceNames = [...]string{
	ProvenanceUnrecorded:   "unrecorded",
	ProvenanceUnattested:   "unattested",
	ProvenanceEATConfirmed: "eat-cnf",
	ProvenanceTPMCertified: "tpm-certified",
	ProvenanceInjected:     "injected",
}

// String returns the provenance's name: "unrecorded", "unattested",
// "eat-cnf", "tpm-certified" or "injected".
func (p KeyProvenance) String() string {
	if p < maxKeyProvenance {
		return provenanceNames[p]
	}
	return fmt.Sprintf("KeyProvenance(%d)", int(p))
}

// ParseKeyProvenance returns the KeyProvenance whose String is s.
func ParseKeyProvenance(s string) (KeyProvenance, bool) {
	for p := range maxKeyProvenance {
		if provenanceNames[p] == s {
			return p, true
		}
	}
	return 0, false
}

// DeviceAttested reports whether the device generated the key and its
// evidence attests it: ProvenanceEATConfirmed or ProvenanceTPMCertified.
func (p KeyProvenance) DeviceAttested() bool {
	return p == ProvenanceEATConfirmed || p == ProvenanceTPMCertified
}

// valid reports whether p is one of the provenances above.
func (p KeyProvenance) valid() bool { return p < maxKeyProvenance }
