// Package devicesim is a simulated device that produces real attestation
// evidence: EAT claims about its identity, boot state and firmware
// measurements, signed as a CWT or JWT with its own attestation key. The
// key is any [crypto.Signer], typically a key in an in-memory
// [github.com/ztmkit/ztm/identity/keystore] store, so the evidence is
// exactly what a device with that key would send.
//
// Tests and the simulated factory line use it as the device side of
// attestation; its [Tamper] knobs produce the evidence of a compromised or
// misconfigured device (debug port open, wrong firmware, secure boot off,
// replayed nonce).
//
// # Sections
//
//   - [New] and [Config]: a device with its claims and key.
//   - [Device.EvidenceCWT], [Device.EvidenceJWT]: answer a nonce.
//   - [Device.BindKey]: the identity key the device generated, which its
//     evidence then confirms (EAT cnf), as a CA requires for key
//     attestation.
//   - [Device.ReferenceValues]: what a verifier should expect of it.
//   - [Measure]: the SHA-256 measurement of a firmware image.
package devicesim
