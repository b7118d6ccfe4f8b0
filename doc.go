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
//  1. has the device generate its key and a CSR (or, for a device that
//     cannot, injects a key sealed to it once it has attested);
//  2. challenges the device with a single-use nonce;
//  3. receives evidence the device signed itself (an EAT as CWT or JWT, or
//     a TPM quote): which silicon, which firmware, debug locked, fresh,
//     and which key it holds (EAT cnf, or TPM2_Certify of the key);
//  4. appraises that evidence against the OEM's reference values;
//  5. enrolls the CSR with a CA that re-checks the evidence itself, and
//     that it confirms the CSR's key, in process or over EST;
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
//	attest                    evidence (EAT as CWT or JWT), nonces, appraisal, EAR results
//	attest/tpm                TPM 2.0 quote and key certification (TPM2_Certify) verification
//	attest/devicesim          a simulated device that signs real evidence
//	manifest                  signed supply-chain steps, chains, policies, lot manifests, receipts
//	manifest/chainstore       a crash-safe store of each device's chain of steps
//	manifest/memchain         the same store in memory (tests, examples, demos)
//	ca                        the embedded CA: ceremonies, profiles, revocation, CRLs
//	ca/ledger/sqlite          the embedded, hash-chained issuance ledger
//	ca/ledger/postgres        the same ledger shared by several CA instances
//	ca/ledger/memledger       the same ledger in memory, not durable (tests, examples)
//	ca/enroll                 the registration authority: every enrollment decided in one place
//	transport/est             EST (RFC 7030) over HTTP: server, client, offline queue
//
// # Provisioning
//
// [Station] is the SDK's main entry point. Give it the station's key, its
// certificate chain (required: it lists the steps the station may sign),
// an enroll.Enroller (the CA in process with enroll.Local, or over EST
// with *est.Client), an attestation verifier (any attest.Verifier; a jig
// running its CA in process passes the CA's own *attest.EATVerifier, whose
// nonces the station leaves to the CA) and a [StepStore]
// (manifest/chainstore), then call
// [Station.Provision] for each device on the jig: on-device key and CSR →
// nonce → evidence naming that key → local appraisal (or, for a device
// that cannot make keys, evidence first and then a key sealed to it with
// HPKE, see [KeyImporter]) → enrollment → install → signed steps
// "key-generation" and "enrollment". A failure is a [*ProvisionError]
// naming its [Stage]; nothing is left half done. [Station.Decommission]
// revokes, destroys and records at the end of a device's life. The OEM
// implements [Device] for its jig.
//
// The program in examples/factoryline runs a whole simulated line — a CA
// with its ledger, an EST server on loopback, three partner stations, a
// thousand devices, the OEM's verification of every chain and a lot
// manifest with receipts:
//
//	go run ./examples/factoryline
//
// examples/jig is a reference jig to copy: one station, its key from a key
// store URI, the CA in process or over EST, and the jig's own [Device].
// examples/verify checks one device's chain against the OEM's policy, and
// examples/inspect prints any step, evidence, result or receipt readably.
//
// # Operating the line
//
// StationConfig.Logger logs each device provisioned, refused or failed,
// and StationConfig.Observer (an [Observer]) receives every stage's start
// and end with its duration and outcome. examples/factoryline prints
// per-stage latency and refusals by reason from it; examples/metrics
// serves them as Prometheus text.
//
// # Conventions
//
// Keys never leave their store: everything that signs takes a
// [crypto.Signer]. Calls that can block take a [context.Context] first.
// Refusals a caller may handle are sentinel or typed errors, matched with
// [errors.Is] and [errors.As]; verification reports name each check. Every
// exported type says whether it is safe for concurrent use.
package ztm
