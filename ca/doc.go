// Package ca is ztm's embedded certificate authority: it issues device and
// station certificates from PKCS#10 requests through fixed profiles,
// records every issuance and revocation in a durable, hash-chained
// [Ledger] before anything leaves the CA, revokes certificates and
// publishes CRLs.
//
// Most users need three calls: [NewRoot] and [NewIntermediate] once, in a
// key ceremony; [New] to make an [Authority] over the intermediate's key,
// its chain and a ledger; and [Authority.Issue] per device.
//
// # Ceremonies
//
// [NewRoot] makes a self-signed root certificate and [NewIntermediate] an
// intermediate signed by it, with a path length (0 by default: it issues
// only end-entity certificates) and optional name constraints (RFC 5280
// §4.2.1.10), which [Authority.Issue] enforces on the DNS names and URIs
// it is asked for. The keys are any crypto.Signer, typically a keystore.Key
// created in a hardware store for the purpose; ca never sees private key
// bytes. Certificates are signed with the algorithm the key's
// keystore.Algorithm names (ECDSA P-256/SHA-256, P-384/SHA-384, Ed25519,
// or RSASSA-PSS SHA-256 for RSA-3072).
//
// CA certificates have no well-defined expiration by default (notAfter
// 99991231235959Z, which IEEE 802.1AR §8.5 permits for CAs), because the
// IDevIDs they issue have none: a 10-year CA would make every device's
// path validation fail once it expired. [New] refuses a chain under which
// a profile's certificates would outlive their issuer.
//
// For an issuing CA to be revocable, make it with
// [Authority.IssueIntermediate] on an Authority over the root key (the
// offline root ceremony, with the root's own ledger): it records the
// intermediate, [Authority.Revoke] revokes it and the root's
// [Authority.CRL] lists it. [Authority.RecordIntermediate] records one
// made before.
//
// # Profiles
//
// A [Profile] fixes what a certificate holds. The four kinds are
// [IDevID] (IEEE 802.1AR initial device identity: subject serialNumber and
// a subjectAltName hardwareModuleName, RFC 4108, both required; notAfter
// 99991231235959Z by default), [LDevID] (operational identity, 90 days by
// default), [Station] (an authorized workstation: clientAuth and a
// [StationAuthorization] extension naming the manifest steps and profiles
// it may use) and [AttestationKey]. [DefaultProfiles] names them "idevid",
// "ldevid", "station" and "ak".
//
// The CA never copies a request's extensions. It checks a request with
// [identity.ParseRequest], the one check of a request in ztm, and takes
// from it the public key, after verifying the request's signature and
// checking that the key is P-256, P-384, Ed25519 or RSA of at least 3072
// bits, and only
// the subject attributes (commonName, serialNumber, organizationName,
// organizationalUnitName, countryName) and subjectAltName entries
// (hardwareModuleName; DNS names and URIs for LDevID) the profile allows,
// each validated. A basicConstraints (cA false) or keyUsage extension in
// the request is ignored, as the profile fixes both; a request asking for
// CA:true or keyCertSign, for any other extension, or for names the
// profile does not take is refused with an [*identity.CSRError] wrapping
// [identity.ErrInvalidCSR].
//
// [Config].Logger, a *slog.Logger, gets a record per issuance,
// revocation, refusal (with its reason), failure and signed checkpoint.
//
// # Ledger
//
// Every issuance and revocation is a [Record] appended to the [Ledger]
// and committed durably before [Authority.Issue] or [Authority.Revoke]
// returns. Records form a hash chain: each record's hash is SHA-256 over
// the previous record's hash and the record's canonical CBOR encoding
// ([Record.CanonicalEncoding]), so [Ledger.Verify] (through
// [ChainVerifier]) detects any record changed, removed or reordered.
// A serial number is 128 random bits under 31 bits of the issuance time
// in milliseconds (so that concurrent issuances land together in the
// ledger's serial index); the ledger refuses a serial issued twice, and
// Issue retries with a fresh one. Per-requester quotas
// ([Config].Quota) are decided inside the ledger's transaction, so two
// concurrent requests — or two CA instances sharing a database — cannot
// both take the last certificate of a quota. So is a station's revocation:
// an issuance that a station certified by this CA requests records the
// station certificate's serial ([Record].RequesterSerial), and the ledger
// refuses it if it holds that certificate's revocation — once Revoke
// returns, no request of the station is issued, not even one already
// being served, and [ChainVerifier] checks this over the whole ledger. A
// request may carry an
// idempotency key ([Request].IdempotencyKey, e.g. the SHA-256 of its CSR):
// the ledger records it with the issuance in the same transaction, so a
// retried request gets the certificate already issued for it
// ([Ledger.LookupRequest]) and never a second one.
//
// # Key provenance
//
// An issuance records how its key came to be ([Record].KeyProvenance,
// under the record's hash): generated in the device and attested by its
// evidence ([ProvenanceEATConfirmed] for an EAT whose cnf names the key,
// [ProvenanceTPMCertified] for a key its TPM certified), injected by a
// station and sealed to the device ([ProvenanceInjected], the record's
// requester naming the station), or [ProvenanceUnattested]. The
// registration authority, package ca/enroll, decides it from the evidence
// and sets it on the request ([Checked.SetKeyProvenance]); the Authority
// refuses an injected key unless the requesting station's authorization
// lists [StepKeyInjection]. Records made before ledgers held provenance,
// and issuances requested without one, carry [ProvenanceUnrecorded],
// which the canonical encoding leaves out: their hashes are unchanged.
// A third-party [Ledger] must store the field, return it from its
// lookups and refuse a record [Record.CheckAppendable] refuses; the
// conformance kit's KeyProvenance subtest checks this.
//
// # Checkpoints
//
// A hash chain shows a record changed or removed in the middle, not a
// tail cut off: the shorter chain is still a valid chain. So the CA signs
// its ledger's head — sequence number, head hash, time and last CRL
// number — as a transparency log signs its tree head: a [Checkpoint],
// made by [Authority.Checkpoint], with every new CRL, with every
// revocation when checkpoints are stored, every
// [Config].CheckpointInterval by [Authority.RunCheckpoints] (after it
// verified the whole ledger), and served by
// [Authority.CheckpointHandler] beside the CRL. Checkpoints are kept
// outside the ledger ([Config].Checkpoints, a [CheckpointStore] such as
// [CheckpointFile]). A ledger shorter than, or different from, the newest
// checkpoint ([Checkpoint.Check]) is refused with a [*CheckpointError]
// naming both heads: by the ledger backends at open and in Verify, and by
// the Authority, which then issues, revokes and signs nothing. Every CRL
// carries the head of the checkpoint signed with it in a non-critical
// extension ([OIDCRLCheckpoint], read by [CRLCheckpoint]), so an OEM
// holding any CRL can tell a ledger cut behind it. A ledger's CRL counter
// set back below the checkpoint's CRL number is refused too: CRL numbers
// never repeat.
//
// A checkpoint is a COSE_Sign1 (RFC 9052) over a core-deterministic CBOR
// payload, not a C2SP signed note (c2sp.org/tlog-checkpoint). Signed
// notes would be readable by existing transparency-log tools, but their
// signature types are Ed25519 and, for RFC 6962 tree heads only, ECDSA
// P-256 — no P-384, no RSA — while a CA key here is often ECDSA or RSA in
// an HSM, and a note would need a second key just for checkpoints. COSE_Sign1 signs with the
// CA's own key of any algorithm ztm supports, through any key store, and
// is the signature format of the rest of ztm (manifests, evidence); go-cose
// and any other COSE library verify it. The CRL extension uses ztm's
// private OID arc (see [OIDStationAuthorization]); zlint's CRL parser
// (zcrypto) reads OID arcs of at most 28 bits and cannot parse such a CRL,
// while Go, OpenSSL and other parsers do, and ignore it as non-critical.
//
// # Storage damage and repair
//
// No field outside the hashed record is trusted: a lookup checks that the
// records it read are the ones asked for, match their hashes and are
// linked into the chain ([VerifyLookup]), and refuses rather than answer
// with another record, so a damaged index cannot make the CA revoke the
// wrong certificate or issue a repeat twice. Verify also runs the
// database's own integrity check (SQLite's PRAGMA integrity_check and a
// check of the schema text; PostgreSQL's amcheck where the extension is
// installed), which finds an index that lacks an entry — what no lookup
// can see; the SQLite ledger runs all of this at open, and
// [Authority.RunCheckpoints] every interval. A damaged
// ledger ([*StorageError]) refuses issuance and revocation until an
// operator repairs it:
//
//  1. Stop the CA; keep a copy of the damaged database for the record.
//  2. If only indexes are damaged (the report names indexes), rebuild
//     them: REINDEX (sqlite3 ledger.db 'REINDEX'; on PostgreSQL,
//     REINDEX SCHEMA ztm_ca). Otherwise restore the newest backup
//     (github.com/ztmkit/ztm/ca/ledger/sqlite's Restore verifies it).
//  3. Open the ledger with its checkpoints and run Verify: it must extend
//     the newest checkpoint. A backup older than the newest checkpoint is
//     refused, as its later records are lost; the certificates issued
//     after it must be found (CRL, chain store, devices) and revoked
//     before the ledger is trusted again.
//
// github.com/ztmkit/ztm/ca/ledger/sqlite is the embedded ledger and
// github.com/ztmkit/ztm/ca/ledger/postgres the one several CA instances
// share; github.com/ztmkit/ztm/ca/ledger/memledger keeps a ledger in
// memory, which is lost with the process, for tests and examples (this
// package's examples use it); github.com/ztmkit/ztm/ca/ledger/ledgertest
// is the conformance kit every ledger runs.
//
// # Policy
//
// A [Request] carries the CSR, the profile name, the requester's identity
// (a name, and the station certificate the caller authenticated, if any)
// and the approvals the caller attaches: the digest of an attestation
// result and of a manifest step. The CA checks a station certificate
// itself — it must chain to the CA, be valid for clientAuth, not be
// revoked in the ledger, and its [StationAuthorization] must list the
// profile — and then asks the [PolicyFunc] in [Config], which is where an
// application re-verifies the device's evidence. A refusal is a typed
// error and leaves no certificate and no record.
//
// A station's chain is verified on its first request and remembered (by
// the SHA-256 of its certificate, a bounded LRU) only while every
// certificate of the chain is valid; the ledger is asked about revocation
// on every request. A caller that must refuse a forged request before it
// spends anything on it (a registration authority about to spend the
// evidence's nonce, as package github.com/ztmkit/ztm/ca/enroll does)
// issues in two phases: [Authority.Check] parses and checks the request
// and the requester once, [Authority.IssueChecked] signs and records it.
//
// # Revocation
//
// [Authority.Revoke] records a revocation with an RFC 5280 reason.
// [Authority.CRL] returns the current CRL, signed afresh with the next
// CRL number from the ledger (monotonic across every user of the ledger)
// when revocations changed or half its validity has passed;
// [Authority.CRLHandler] serves it over HTTP as application/pkix-crl.
// When [Config].CRLDistributionPoint is set, certificates name it.
//
// # Concurrency
//
// An [Authority] is safe for concurrent use. Issue calls sign in parallel;
// the SQLite ledger batches concurrent appends into one transaction and
// one fsync (group commit), so throughput grows with the number of
// concurrent requests while each certificate is still recorded before it
// is returned.
package ca
