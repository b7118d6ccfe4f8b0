// Package est is ztm's EST (Enrollment over Secure Transport, RFC 7030)
// server and client: HTTP only. Every enrollment is decided by the
// registration authority of package github.com/ztmkit/ztm/ca/enroll,
// which verifies the device's evidence and the station's authorization
// itself, so a compromised station cannot mint identities; this package
// carries its requests and its refusals.
//
// Most users need three calls. On the CA side, enroll.New over a
// ca.Authority and an attest verifier, then [NewServer] for the
// http.Handler (serve it with [NewHTTPServer] and [ServerTLSConfig]). On
// the station, [NewClient], then [Client.Nonce] and [Client.Enroll] per
// device; a *Client is an enroll.Enroller, as the in-process
// enroll.Local is. Package github.com/ztmkit/ztm/transport/est/queue keeps
// requests durably while the CA cannot be reached.
//
// # Sections
//
//   - Endpoints: what the [Server] answers, with media types.
//   - Authentication: station certificates, HTTP Basic, re-enrollment.
//   - Attestation: the ztm-nonce extension and the evidence header.
//   - Channel binding: RFC 9266 tls-exporter in the challengePassword.
//   - Status codes: what each refusal answers.
//   - Idempotency and the offline queue.
//   - serverkeygen: why it answers 501.
//   - Limits: client chains, bodies, HTTP/2.
//
// # Endpoints
//
// Every path is /.well-known/est/[<label>/]<operation> (RFC 7030 §3.2.2).
// A label selects a CA profile: ServerConfig.Labels maps labels to
// profiles, or, when nil, a label is a profile name ("idevid", "ldevid");
// no label means ServerConfig.DefaultProfile ("idevid"). Bodies are base64
// (RFC 4648, line breaks allowed) of DER, with Content-Transfer-Encoding:
// base64 sent on answers and accepted (or absent) on requests.
//
//	operation       method  request body                   answer (200)
//	cacerts         GET     —                              application/pkcs7-mime; smime-type=certs-only
//	                                                       (issuing CA, its issuers, the root)
//	simpleenroll    POST    application/pkcs10             application/pkcs7-mime; smime-type=certs-only
//	                                                       (the issued certificate only, RFC 7030 §4.2.3)
//	simplereenroll  POST    application/pkcs10             as simpleenroll
//	csrattrs        GET     —                              application/csrattrs (SEQUENCE OF AttrOrOID)
//	serverkeygen    POST    —                              501 (see below)
//	ztm-nonce       GET     —                              application/octet-stream: base64 of 32 bytes
//
// The [Client] completes an enrollment answer with the issuing CA
// certificates from cacerts, fetched once per label and kept (again when
// a certificate's issuer is not among them), so [Client.Enroll] still
// returns the certificate and its chain without the root.
//
// The csrattrs answer lists challengePassword (1.2.840.113549.1.9.7, for
// the channel binding), serialNumber (2.5.4.5, the device serial number
// of an IEEE 802.1AR IDevID) and hardwareModuleName (1.3.6.1.5.5.7.8.4,
// RFC 4108, in the subjectAltName).
//
// # Authentication
//
// cacerts and csrattrs need no credential (RFC 7030 §4.1.1, §4.5). Every
// other operation needs a TLS client certificate of the Station profile
// issued by the same CA: the server verifies the chain itself (TLS only
// requests the certificate, see [ServerTLSConfig]), reads the station's
// authorization with ca.ParseStationAuthorization and refuses a profile
// it does not list; the CA checks it again, with revocation, when it
// issues. ServerConfig.BasicAuth accepts HTTP Basic credentials instead,
// each with its own list of profiles (see its WARNING).
//
// simplereenroll (RFC 7030 §4.2.2) requires the certificate being renewed
// as the TLS client certificate: it must chain to the CA for clientAuth
// (an LDevID has it; an IDevID, by default, does not and cannot renew
// over EST), be recorded in the ledger under the requested profile and
// not be revoked; the request's subject must match the certificate's by
// RFC 5280 §7.1 name matching ([ca.EqualNames]: any string type, case
// and insignificant spaces ignored, as RFC 7030 §4.2.2 intends — a plain
// client copying the subject with openssl writes UTF8String where the CA
// wrote PrintableString), and its subjectAltName must be identical. Evidence is required as for
// simpleenroll. The ledger records the requester as "renew:" and the hex
// SHA-256 of the current certificate's key.
//
// # Attestation
//
// ztm-nonce is a ztm extension (not in RFC 7030): an authenticated GET
// returns a fresh single-use nonce from the Service's attest.Nonces, as the
// base64 of its 32 bytes with media type application/octet-stream. The
// device answers it with EAT evidence (CWT or JWT, package attest), which
// the station sends with simpleenroll in the header
//
//	ZTM-Evidence: <base64 of the exact evidence bytes>
//
// A plain RFC 7030 client, which sends no ztm header, may carry the
// evidence inside its request instead, in the id-aa-evidence attribute of
// draft-ietf-lamps-csr-attestation (enroll.AddEvidenceToCSR writes it,
// enroll.EvidenceFromCSR reads it): an EvidenceBundle with one
// EvidenceStatement of type enroll.OIDEvidenceEAT whose stmt is an OCTET
// STRING of the token. The draft records id-aa 59
// (1.2.840.113549.1.9.16.2.59) as early-allocated and registers no
// statement type for EAT; ztm uses 59 and its private type
// 2.25.1868605989.3.1 until the RFC and its registry say otherwise. The
// header wins when both are present. The header keeps a request exactly as
// the device signed it without evidence (a station cannot add an attribute
// to a signed request); the attribute needs the device to sign its
// request after its evidence, and puts both under the request's signature.
//
// Before calling the CA, the enroll.Service verifies the evidence (which
// consumes its nonce, so replayed evidence is refused), requires an
// "affirming" appraisal, and checks that the evidence names the request's
// device — by default the request's hardwareModuleName hwSerialNum must be
// the evidence's UEID (enroll.BindUEIDToHardwareModule) — and its key: the
// evidence's cnf claim must confirm the request's public key. The digest of
// the attestation Result goes into the ledger record as its evidence
// digest. Once the evidence is being verified the enrollment is no longer
// cancelled by the client going away, so a spent nonce leaves a
// certificate that a retry receives; evidence that passed is remembered
// for the nonce's lifetime by its request, so a request refused after it
// (429 quota, 503) is retried as it is. ztm-nonce answers only a station
// that could enroll (chain, revocation), at most
// attest.NonceConfig.MaxPerOwner nonces outstanding each (429 beyond).
//
// # Channel binding
//
// When the request carries a challengePassword, it must be the base64 of
// the connection's RFC 9266 tls-exporter value (TLS 1.3:
// ExportKeyingMaterial("EXPORTER-Channel-Binding", nil, 32)), as RFC 7030
// §3.5 places channel bindings; otherwise the request is refused (403).
// ServerConfig.RequireChannelBinding refuses requests without it. TLS 1.2
// connections and in-process enrollment have no such value, so a request
// with a challengePassword is refused there. [Client.EnrollBound] makes
// requests bound to its connection.
//
// # Status codes
//
// Every refusal is an *enroll.RefusalError; the server answers it with
// the status of its reason, the header
//
//	ZTM-Refusal: <reason>[/<check>]      e.g. evidence/debug-enabled
//
// and a one-line text/plain body saying what failed (no secret), and logs
// it (ServerConfig.Logger) with the requester and the reason.
//
//	200  issued (or issued before, for the same request)
//	400  bad-request: body not base64, request not DER PKCS#10 or its
//	     signature bad (check: the identity.CSRErrorReason), malformed ZTM-Evidence
//	401  unauthenticated, with ServerConfig.BasicAuth set: no client
//	     certificate, one that does not chain to the CA for clientAuth or
//	     is revoked (requester-revoked answers 403), wrong Basic
//	     credentials; always with the challenge
//	     WWW-Authenticate: Basic realm="est", charset="UTF-8"
//	403  unauthenticated without BasicAuth (TLS client certificates
//	     only): RFC 9110 §15.5.2 requires every 401 to carry a challenge
//	     the client can answer, and no HTTP authentication scheme carries
//	     a TLS certificate, so a TLS-only server (RFC 7030 §3.2.3 makes
//	     HTTP authentication optional, §3.3.2) answers 403 with the
//	     reason; and not-authorized, requester-revoked, channel-binding,
//	     evidence-required, evidence (check: the attest.Reason),
//	     appraisal, evidence-binding, key-binding (the evidence's cnf does
//	     not confirm the request's key), policy, renewal (simplereenroll
//	     without a TLS client certificate, whatever the configuration)
//	404  unknown label or operation; unknown-profile
//	409  conflict (the same request from another requester or under
//	     another profile), repeat-revoked (its certificate was revoked)
//	413  body over ServerConfig.MaxBodySize (64 KiB by default)
//	415  Content-Type not application/pkcs10 (or a transfer encoding
//	     other than base64)
//	429  quota (ca.Config.Quota: RFC 6585 §4) or nonce-limit, with
//	     Retry-After
//	501  serverkeygen
//	503  the CA could not answer in time (ledger busy, deadline), with
//	     Retry-After (RFC 7030 §4.2.3)
//
// A refused request leaves no certificate and no ledger record. The
// [Client] returns them as [*StatusError], which wraps the sentinel of its
// code ([ErrBadRequest], [ErrUnauthenticated], [ErrForbidden],
// [ErrConflict], [ErrQuotaExceeded]) and the *enroll.RefusalError rebuilt
// from ZTM-Refusal (enroll.Reported), so that the station reads the same
// reason, and errors.Is finds the same attest and ca sentinels, as in
// process; on 202 or 503 with Retry-After it waits and retries (bounded
// by ClientConfig.MaxRetries, MaxRetryAfter and the context's deadline)
// and then returns a [*RetryLaterError] ([ErrRetryLater]).
//
// # Idempotency and the offline queue
//
// Enrolling the same request (same DER, same profile, same requester)
// twice returns the certificate already issued, never a second one,
// unless it was revoked since (409 repeat-revoked). The SHA-256 over the
// profile and the DER is the issuance's idempotency key
// ([ca.Request].IdempotencyKey): the ledger records it in the same
// transaction as the certificate and refuses it a second time, so the
// answer holds after a crash or a lost reply, and across CA instances
// sharing a ledger (ca/ledger/postgres). The station's queue (package
// queue) relies on this: it resends every request it is not sure about,
// and gives up on those enroll.Retryable calls final.
//
// # serverkeygen
//
// RFC 7030 §4.4 has the CA generate the device's key pair and send the
// private key back (in clear inside TLS, or encrypted to a key the client
// names). ztm refuses this by design: device keys are generated in the
// device's own key store, and the CA's evidence check is about that key;
// a key made by the CA would exist outside any device store, be known to
// the CA, and be attested by nothing. Key injection, where a station must
// provide a key, is a separate, recorded path (sealed to the device with
// HPKE), not an EST operation. serverkeygen therefore answers 501 Not
// Implemented with that reason, and the Client has no method for it.
//
// # Limits
//
// What an unauthenticated client can make the server do is bounded
// before any signature is checked: a TLS client chain of more than
// ServerConfig.MaxClientCertificates certificates (4) or
// MaxClientChainBytes DER bytes (16 KiB) is refused as unauthenticated
// with that reason, so look-alike intermediates cost a length check, not
// a signature verification each (measured: 110 of them, 7.8 ms of
// verification per request without the limit, 18 µs refused with it).
// Request bodies are bounded by MaxBodySize (64 KiB), headers by
// [NewHTTPServer] (128 KiB), with read, write and idle timeouts.
//
// [NewHTTPServer] speaks HTTP/1.1 only unless ServerConfig.HTTP.HTTP2 is
// set: EST clients send one request per device and gain nothing from
// HTTP/2 multiplexing, while one HTTP/2 connection can open and reset
// streams faster than handlers finish (rapid reset, CVE-2023-44487). With
// HTTP/2 on, a connection may have 16 streams open
// (HTTPConfig.MaxConcurrentStreams; Go's default is 250), buffer 256 KiB
// (MaxReceiveBufferPerConnection; Go's 1 MiB), 64 KiB per stream, and an
// HPACK table of 4096 bytes.
//
// # Concurrency
//
// Server and Client are safe for concurrent use.
package est
