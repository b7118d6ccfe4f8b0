// Package attest produces and appraises attestation evidence: signed claims
// a device makes about itself (which silicon, which firmware, debug locked,
// fresh), and the verifier's decision about them.
//
// Most users need three calls: [NewNonces] and [Nonces.Issue] to challenge a
// device, [NewVerifier] and [EATVerifier.Verify] to check its answer, and
// [Result.SignJWT] (or [Result.SignCWT]) to pass the decision on, to a CA for
// instance, which reads it back with [ParseResult].
//
// # Evidence
//
// Evidence is an Entity Attestation Token (RFC 9711): a [Claims] set with the
// registered claims by their CWT keys and JWT names — eat_nonce (10), ueid
// (256), oemid (258), hwmodel (259), hwversion (260), oemboot (262, secure boot), dbgstat
// (263), eat_profile (265), submods (266), swname (270), swversion (271),
// measurements (273), iat (6), exp (4) and nbf (5) — plus extension claims
// kept as received. Enumerated claims take the form of each encoding: dbgstat
// is an integer in CBOR and its RFC 9711 name ("disabled-since-boot", …) in
// JSON; the integer form in a JWT is refused. (dbgstat is the only
// enumerated claim ztm defines; others, such as intuse, are extensions.)
// Measurements are named digests ([Measurement]) in the content format
// [MeasurementContentFormat].
//
// # Key attestation
//
// The cnf claim (8; RFC 8747 in a CWT, RFC 7800 in a JWT) names the key
// the device generated and holds, its identity key: a COSE_Key in a CWT, a
// jwk or its RFC 7638 thumbprint (jkt) in a JWT ([Confirmation]).
// [Evidence.ConfirmKey] checks that it is the key of the certificate
// request the evidence comes with: a station cannot then take a genuine
// device's evidence to certify a key of its own.
//
// Two forms are read and written: a CWT, a tagged COSE_Sign1 (RFC 9052)
// over deterministic CBOR ([SignCWT]), and a JWT in JWS compact
// serialization ([SignJWT]). Both sign with any [crypto.Signer], such as a
// [github.com/ztmkit/ztm/identity/keystore.Key]; the algorithm (ES256,
// ES384, EdDSA, PS256) follows from the key. Package
// [github.com/ztmkit/ztm/attest/devicesim] is a device that produces such
// evidence.
//
// # Trust
//
// The signer is named in the protected header, by an x5chain (COSE label
// 33, JOSE x5c) that must lead to one of [Config.Roots] — the chip
// vendors' attestation CAs — be valid at [Config.Time] and let its leaf sign
// (digitalSignature), or by a key ID registered in [Config.Keys] or found
// by [Config.KeyLookup] (a [KeySet], to which keys can be added while the
// verifier runs). One verifier, configured once with its [Nonces], serves
// a CA and a station: [EATVerifier.WithoutNonces] is the view that checks
// evidence without consuming its nonce. A leaf
// that names its device — a hardwareModuleName in its subject alternative
// name, as ztm's CA issues under the "ak" profile — signs only evidence
// whose ueid is that name's serial number: one key extracted from one
// device cannot speak for others. (A leaf without one, like a key ID,
// binds no ueid; the CA's request binding then rests on the issuer of the
// key.) The
// algorithm is always the protected header's and must be the key's: a
// missing, "none", HMAC, unknown or mismatched alg, or an alg in the
// unprotected header, is refused. The unprotected header, which the
// signature does not cover, may hold a kid and nothing else; any other
// label is refused and named. Decoding is strict: duplicate map keys
// or JSON members, indefinite lengths, trailing data and tokens over
// [Config.MaxSize] (64 KiB by default, checked before parsing) are refused.
// That holds for a JWT's JOSE header as for its claims, and a JOSE header
// with crit, or with b64 other than true (RFC 7797), is refused as not
// understood. An x5chain is one certificate as a byte string or 2 to 8 as
// an array (RFC 9360 §2); an x5c holds 1 to 8.
//
// # Validity
//
// Evidence and results past their exp, or before their nbf (RFC 7519
// §4.1.4–5, RFC 8392 §3.1.4–5), are refused with [ErrExpired] or
// [ErrNotYetValid]. Clocks differ, so both checks allow a skew,
// [Config.ClockSkew] or [ResultOptions.ClockSkew]: [DefaultClockSkew] (one
// minute) unless set, none if negative. exp and nbf are optional; freshness
// of evidence rests on the nonce.
//
// # Nonces
//
// [Nonces] issues 32-byte single-use nonces with a TTL. Verification
// consumes the evidence's nonce, after the signature is checked; a second use
// is [ErrNonceReused], a late one [ErrNonceExpired], a foreign one
// [ErrNonceUnknown]. Memory is bounded and expired nonces are reclaimed.
//
// # Appraisal
//
// Authentic, fresh evidence is appraised against the [ReferenceValues] of
// its (oemid, hwmodel): the expected measurements, software name and
// minimum version, debug disabled (dbgstat at least disabled) and secure
// boot on. Any failure contraindicates the device; a component with no
// reference value only gives a warning.
//
// # Results
//
// The outcome is a [Result] shaped as an EAT Attestation Result (EAR,
// draft-ietf-rats-ear, profile [EARProfile]): per submodule an
// [Appraisal] with ear.status (affirming, warning, contraindicated or
// none, the AR4SI tiers), the AR4SI trustworthiness vector, the appraisal
// policy ID, and ztm's extensions: the evidence digest, the ueid, and the
// reasons for any refusal. In CBOR the verifier is ear.verifier-id (1004)
// {0: developer, 1: build}, as the draft gives it. The appraisal policy ID
// (1003) is written as text, as Veraison's profile has it, and read as text
// or as the one-element array of later draft revisions. A Result is signed as an EAR JWT or CWT, read back
// with [ParseResult], and named by [Result.Digest] for ledgers.
//
// Every refusal returns an error wrapping [ErrVerification] and a
// [*VerificationError] whose [Reason] names the failed check, together with
// a contraindicated Result that says the same.
//
// # TPM
//
// TPM 2.0 quotes are the other kind of evidence: package
// [github.com/ztmkit/ztm/attest/tpm] verifies them into the same Result,
// and its verifier is a [Verifier] too.
package attest
