// Package keystore defines where ztm keeps private keys: the [Store] and
// [Key] interfaces every backend implements, the URI registry that opens a
// backend by name, and the request and error types they share.
//
// Most code needs three things from it: [Open] to get a store from a URI,
// [Store.Create] to make a key, and the [Key] itself, which is a
// [crypto.Signer] that anything in ztm (CSRs, certificates, COSE
// signatures) signs with. A key's private part never leaves its store.
//
// # Backends
//
// Each backend lives in its own package and registers a URI scheme when
// imported, as database/sql drivers do:
//
//	mem     github.com/ztmkit/ztm/identity/keystore/mem      keys in process memory
//	file    github.com/ztmkit/ztm/identity/keystore/file     encrypted PKCS#8 files
//	pkcs11  github.com/ztmkit/ztm/identity/keystore/pkcs11   HSMs and tokens (cgo)
//	tpm     github.com/ztmkit/ztm/identity/keystore/tpm      TPM 2.0
//
// Swapping SoftHSM on a development machine for a real HSM on the line is a
// change of URI, not of code. Every backend also has a constructor that
// bypasses the registry.
//
// # Algorithms
//
// [ES256] (ECDSA P-256) is the default; [ES384], [EdDSA] (Ed25519) and
// [PS256] (RSASSA-PSS, RSA-3072) are available where the backend can make
// them. A key signs only with its own algorithm: [Algorithm.SignerOpts]
// gives the options for Sign, and [Algorithm.CheckSign] is the check every
// backend applies to them.
//
// # Labels
//
// Keys are named by labels that are safe as file names and token object
// labels alike; see [ValidateLabel].
//
// # Errors
//
// Refusals a caller may handle wrap a sentinel: [ErrNotFound], [ErrExists],
// [ErrUnsupportedAlgorithm], [ErrInvalidLabel], [ErrClosed], [ErrAuth],
// [ErrInvalidURI]. Match them with [errors.Is].
//
// # Writing a backend
//
// Implement [Store] and [Key], register a scheme in init, and run the
// conformance kit in
// [github.com/ztmkit/ztm/identity/keystore/keystoretest] from the
// backend's tests. Extra capabilities (attestation, export) belong in
// separate interfaces that callers discover by type assertion, never in
// [Store] itself.
package keystore
