// Package tpm verifies TPM 2.0 quotes as attestation evidence.
//
// A TPM proves its platform state with TPM2_Quote: an attestation key (AK)
// that never leaves the TPM signs a TPMS_ATTEST structure holding the
// verifier's nonce (extraData) and a digest of selected PCRs. This package
// checks such a quote and turns it into an [attest.Result], like
// [attest.EATVerifier] does for EAT evidence; its [Verifier] implements
// [attest.Verifier].
//
// # Sections
//
//   - Evidence: [Evidence] is the quote, its signature, the quoted PCR values
//     and the AK's certificate chain (or key ID), carried as one CBOR map
//     ([Evidence.Marshal], [ParseEvidence]).
//   - Parsing: [ParseAttest] reads a TPMS_ATTEST strictly (TPM 2.0 Library
//     Part 2 §10.12.12) and [ParseSignature] a TPMT_SIGNATURE (§11.3.4);
//     neither panics or reads past its input, and both refuse trailing data.
//   - Verification: [NewVerifier] with a [Config]: the AK chain must lead to
//     the configured trust anchors (or the AK be registered by key ID); the
//     signature algorithm must match the AK; the nonce must be one the
//     [attest.Nonces] issued, and is consumed; the supplied PCR values must
//     hash to the quoted digest; and they must match one of the reference
//     PCR sets.
//   - Banks: a quote may select other PCR banks beside SHA-256 (SHA-1, as
//     many platforms quote, SHA-384, SHA-512); their values
//     ([Evidence.OtherBanks]) only recompute the signed digest and are
//     never appraised. Reference values are SHA-256 values.
//   - Reboots: [Verifier.Decode] and [Verifier.VerifyQuote] return the
//     authenticated [Quote], whose [Attest.ClockInfo] holds the TPM's
//     resetCount, restartCount and clock safety. [VerifyOptions.Since]
//     refuses a quote taken after a reboot, restart or clock rollback since
//     an earlier quote of the same AK ([attest.ReasonReboot]);
//     [Config.RequireSafeClock] refuses a clock the TPM marks unsafe
//     ([attest.ReasonClockUnsafe]).
//   - Key certification: [VerifyCertify] checks a TPM2_Certify of the key a
//     certificate request is for (TCG "TPM 2.0 Keys for Device Identity and
//     Attestation"): the AK's signature, the nonce in extraData, the
//     certified name equal to the name of the key's public area
//     ([ParsePublic], [Public.Name]) whose key is the request's, and the
//     attributes fixedTPM, fixedParent and sensitiveDataOrigin. The tpm key
//     store makes such certifications
//     ([github.com/ztmkit/ztm/identity/keystore/tpm.Store.Certify]), and
//     quote [Evidence] may carry one over the quote's nonce: the
//     [Verifier] then checks it with the quote's AK ([CertifiedKey]) and
//     its Result's Evidence (attest.FormatTPM) confirms the key (cnf), so
//     that ca/enroll's key binding holds for TPM devices as for EAT ones.
//     The Result's Evidence names the device's ueid when the AK
//     certificate carries a hardwareModuleName. Certifications made by
//     implementations ztm did not write verify too: tpm2-tools'
//     tpm2_certify and tpm2-pytss (the tpm2-tss ESAPI) over the nonce, on
//     swtpm, in this package's tests.
//
// Errors are those of package attest: every refusal wraps
// [attest.ErrVerification] through an [*attest.VerificationError] whose
// Reason says which check failed, and comes with a contraindicated Result.
//
// The prover side, creating an AK and quoting, is
// [github.com/ztmkit/ztm/identity/keystore/tpm].
package tpm
