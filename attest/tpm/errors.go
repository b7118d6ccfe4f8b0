package tpm

import "errors"

// ErrMalformed is wrapped by [ParseAttest], [ParseSignature] and
// [ParseEvidence] for input that is not the structure asked for. A
// [Verifier] reports such input as an [*attest.VerificationError] with
// reason [attest.ReasonMalformed], which wraps ErrMalformed too.
//
// Every other refusal of a [Verifier] is an [*attest.VerificationError]
// wrapping [attest.ErrVerification] and the sentinel of its reason
// ([attest.ErrNonceReused], [attest.ErrUntrustedSigner], …).
var ErrMalformed = errors.New("tpm: malformed structure")
