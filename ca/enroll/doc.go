// Package enroll is the registration authority of ztm: the one place that
// decides whether a device gets a certificate, for which key, under which
// profile, and what a repeated request gets back. It sits between a
// transport (package transport/est, or a call in process) and the
// certificate authority (package ca), and depends on ca and attest only.
//
// Most users need three calls. On the CA side, [New] over a ca.Authority,
// an attest.Verifier and the attest.Nonces it consumes. In process, a
// station enrolls through [Service.Local] (or [NewLocal]); over EST,
// transport/est serves the same [Service]. Both implement [Enroller].
//
// # The decision
//
// [Service.Enroll] checks, in order, and stops at the first refusal:
//
//  1. the requester: a station certificate of this CA, valid for
//     clientAuth and not revoked, whose station authorization lists the
//     profile (or an HTTP Basic name with its profiles);
//  2. the certificate request, parsed and verified once by
//     ca.Authority.Check: key, signature, contents against the profile;
//  3. the channel binding (RFC 9266 tls-exporter in the challengePassword)
//     and, for a re-enrollment, the certificate being renewed: of a
//     profile that allows renewal (LDevID, Station; an IDevID never),
//     issued by this CA, not revoked, with the same names;
//  4. the device's evidence: verified by the attest.Verifier (which spends
//     its nonce), appraised affirming, bound to the request's device
//     ([BindUEIDToHardwareModule]: the hardwareModuleName's serial is the
//     evidence's UEID; with Config.HardwareModels, its type is the one of
//     the model the evidence names) and to the request's key: its cnf
//     claim must confirm the key the request asks a certificate for
//     ([ReasonKeyBinding]), so that a station holding a genuine device
//     cannot have its own key certified as the device's;
//
// and then ca.Authority.IssueChecked signs and records, the ledger
// deciding in its transaction the station's revocation, repeats and the
// quota.
//
// # Key provenance
//
// A key is device-attested when the evidence confirms it (EAT cnf, see
// attest.Confirmation; or, for TPM evidence, the attestation key's
// TPM2_Certify of it), the default every profile requires. Two
// exceptions are configured by profile: Config.InjectedKeyProfiles accept
// evidence without cnf from a station whose authorization lists
// [InjectionStep] (the station made the key and sealed it to the device,
// which could not attest a key it did not yet hold), and
// Config.UnconfirmedKeyProfiles accept legacy evidence without cnf from
// anyone. Evidence whose cnf names another key is refused on every
// profile ([ReasonKeyBinding]; no certificate, no ledger record).
//
// The decision is recorded: the Service sets the issuance's
// ca.KeyProvenance ("eat-cnf", "tpm-certified", "injected" or
// "unattested"; see [KeyProvenanceOf]) and the ledger keeps it under the
// record's hash, the requester naming the station that injected a key.
// ztm.Station's enrollment step names the same value ("key-origin").
//
// # Repeats and retries
//
// A request repeats an earlier one when its CSR, profile and requester
// are the same. It is answered with the certificate recorded for it,
// unless that certificate was revoked since ([ReasonRepeatRevoked]); the
// same CSR from another requester or under another profile is a
// [ReasonConflict]. Evidence that passed is remembered, for the nonce's
// lifetime, by the exact request it came with: a request refused after
// its nonce was spent (a quota, a busy ledger) is retried as it is,
// without new evidence.
//
// # Nonces
//
// [Service.Nonce] hands out nonces only to a requester that would pass
// step 1, at most attest.NonceConfig.MaxPerOwner outstanding each, so a
// flooding or revoked station cannot starve the others. A consumed nonce
// leaves the pool at once; the capacity needed is the number of devices
// being attested at the same moment, not the rate of enrollments.
//
// # Refusals
//
// Every refusal is a [*RefusalError] wrapping [ErrRefused], with a
// [Reason] (and, for evidence and requests, the attest or ca check in
// Check) and the underlying typed error, so errors.Is(err,
// attest.ErrPolicy) or errors.Is(err, ca.ErrQuotaExceeded) hold as well.
// transport/est carries the reason in the ZTM-Refusal header, so the
// station reads the same reason over EST as in process. [Retryable]
// says whether a retry of the same request may succeed. Config.Logger
// receives each refusal with its requester and reason.
package enroll
