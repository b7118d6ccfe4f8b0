// Package ztm is a Go SDK for zero-trust manufacturing: it lets each partner
// on a device's supply chain — chip vendor, contract manufacturer, test
// house, the OEM's own final assembly — build the zero-trust steps into the
// software of its test jigs and provisioning stations, so that every device
// leaves the line with an identity nobody had to trust blindly.
//
// # The line, end to end
//
// A provisioning station is an authorized workstation: its own key sits in
// an HSM or TPM, and its station certificate names the steps it may perform.
// For each device it:
//
//  1. challenges the device with a single-use nonce;
//  2. receives evidence the device signed itself (an EAT as CWT or JWT, or
//     a TPM quote): which silicon, which firmware, debug locked, fresh;
//  3. appraises that evidence against the OEM's reference values;
//  4. has the device generate its key and a CSR (or injects a key, sealed
//     to the device);
//  5. enrolls the CSR with a CA that re-checks the evidence itself, in
//     process or over EST;
//  6. installs the certificate chain on the device;
//  7. signs a record of the step, chained to the device's previous step.
//
// The OEM, or the device's eventual operator, then verifies the whole chain
// of steps against a policy that says which partner may do what, without
// trusting any single partner.
//
// # Packages
//
//	identity                  device identities: UEIDs, device info, keys and IEEE 802.1AR CSRs
//	identity/keystore         the Store and Key interfaces and the URI registry
//	identity/keystore/mem     in-memory keys (tests, simulators)
//	identity/keystore/file    encrypted PKCS#8 key files
//	identity/keystore/pkcs11  HSMs and tokens over PKCS#11
//	identity/keystore/tpm     TPM 2.0 keys, attestation keys and quotes
//	attest                    evidence, nonces, appraisal, EAR results
//	attest/tpm                TPM 2.0 quote verification
//	manifest                  signed supply-chain steps, chains, policies, lot manifests
//	ca                        the embedded CA: profiles, ledger, revocation, CRLs
//	transport/est             EST (RFC 7030) server and client
//
// Start with [github.com/ztmkit/ztm/identity/keystore.Open] to get a key
// store, and with the identity package to give a device its identity. The
// program in examples/factoryline runs a simulated line end to end:
//
//	go run ./examples/factoryline
//
// # Conventions
//
// Keys never leave their store: everything that signs takes a
// [crypto.Signer]. Calls that can block take a [context.Context] first.
// Refusals a caller may handle are sentinel or typed errors, matched with
// [errors.Is] and [errors.As]; verification reports name each check. Every
// exported type says whether it is safe for concurrent use.
package ztm
