// Package pkcs11 is a [keystore.Store] over a token of any PKCS#11 module:
// a network or PCIe HSM, a smart card, a USB token, or SoftHSM2 for tests.
// Keys are generated inside the token, sign inside it, and do not leave
// it.
//
// Importing the package registers the "pkcs11" scheme with
// [keystore.Open], as database/sql drivers do:
//
//	import _ "github.com/ztmkit/ztm/identity/keystore/pkcs11"
//
//	store, err := keystore.Open(ctx, "pkcs11:token=line1;object=station"+
//		"?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/etc/ztm/line1.pin")
//
// [Open] does the same from a [Config] without the registry, and
// [ParseURI] turns a URI into a Config.
//
// # Sections
//
//   - URIs: the RFC 7512 attributes this package reads
//   - Keys: what Create puts on the token
//   - Key injection
//   - Errors
//   - Concurrency and the process-wide module
//   - Security notes
//   - Builds without cgo
//   - Why github.com/miekg/pkcs11
//
// # URIs
//
// A store URI names a token (RFC 7512, "PKCS #11 URI"):
//
//	pkcs11:<path attributes, ';'-separated>?<query attributes, '&'-separated>
//
//	| attribute     | where | meaning                                                   |
//	|---------------|-------|-----------------------------------------------------------|
//	| token         | path  | token label (CK_TOKEN_INFO.label)                         |
//	| serial        | path  | token serial number                                       |
//	| manufacturer  | path  | token manufacturer id                                     |
//	| model         | path  | token model                                               |
//	| slot-id       | path  | slot number, decimal (SoftHSM renumbers: prefer token=)   |
//	| object        | path  | a key's CKA_LABEL, any UTF-8 ([Config.Object]); optional  |
//	| id            | path  | a key's CKA_ID, percent-encoded bytes ([Config.ID])       |
//	| type          | path  | "private" only; optional                                  |
//	| x-…           | both  | vendor attributes: ignored (RFC 7512 §2.3)                |
//	| module-path   | query | the module's file name; required                          |
//	| pin-source    | query | "file:/path", "/path" or "env:NAME": where the PIN is     |
//	| pin-value     | query | the user PIN itself (see Security notes)                  |
//	| max-sessions  | query | ztm extension: session pool size (default 16)             |
//
// At least one of token, serial, manufacturer, model and slot-id is
// required, and exactly one initialized token must match all of them.
// Values are percent-decoded ('+' is a plus); each attribute may appear
// once, and a ';' in the query must be written %3B. The syntax and the
// secret sources are those of every ztm key store URI (file:, env:). The
// library-* and slot-manufacturer/-description attributes and module-name
// are refused with a reason, as are unknown attributes. Every refusal is a
// [*keystore.URIError] whose Part names the attribute at fault.
//
// # Keys
//
// [Store.Create] generates a key pair in the token with C_GenerateKeyPair:
// both objects get CKA_LABEL = the label and one random 16-byte CKA_ID.
// Each key gets the least rights a signing key needs, whatever the token's
// defaults: the private key is CKA_TOKEN, CKA_PRIVATE, CKA_SENSITIVE and
// CKA_SIGN true, and CKA_DECRYPT, CKA_UNWRAP, CKA_DERIVE and
// CKA_SIGN_RECOVER false; the public key is CKA_VERIFY true and
// CKA_ENCRYPT, CKA_WRAP, CKA_DERIVE and CKA_VERIFY_RECOVER false
// (pkcs11-tool --list-objects shows "Usage: sign" and "Usage: verify").
// The private key is CKA_EXTRACTABLE false, and with
// [keystore.CreateRequest.Exportable] CKA_EXTRACTABLE true and still
// CKA_SENSITIVE; either way it is CKA_WRAP_WITH_TRUSTED, so it can leave
// the token only wrapped under a key the security officer marked
// CKA_TRUSTED, never under a key someone with the user PIN made (and whose
// value they could read). That is what sealed key injection uses.
//
//	| algorithm | key generation                    | signature                                      |
//	|-----------|-----------------------------------|------------------------------------------------|
//	| ES256     | CKM_EC_KEY_PAIR_GEN, P-256        | CKM_ECDSA on the digest, r||s turned into DER  |
//	| ES384     | CKM_EC_KEY_PAIR_GEN, P-384        | CKM_ECDSA on the digest, r||s turned into DER  |
//	| EdDSA     | CKM_EC_EDWARDS_KEY_PAIR_GEN       | CKM_EDDSA (pure Ed25519) on the message        |
//	| PS256     | CKM_RSA_PKCS_KEY_PAIR_GEN, 3072   | CKM_RSA_PKCS_PSS, SHA-256, MGF1-SHA-256, salt 32 |
//
// An algorithm is offered only when the token lists its mechanisms
// (C_GetMechanismList; [Store.Algorithms]); Create refuses the others
// with [keystore.ErrUnsupportedAlgorithm]. SoftHSM 2.6 offers all four.
//
// [Store.Get] also uses keys that other tools made, such as
// pkcs11-tool --keypairgen: the private key is found by label, or by an
// RFC 7512 URI with object (any label: "pkcs11:object=station%20key"),
// id ("pkcs11:id=%01%02") or both, and its public key by CKA_ID. The URI
// may be the store's own with the key's attributes, so that one URI names
// a station's token and key. [Store.List] names each key so that Get
// reopens it: by its label when that is a valid ztm label used by no
// other key, and otherwise by a URI with its label and id. [Store.Delete] destroys the private key and then
// its public key objects. If a step of Create fails after generation, the
// objects made are destroyed: no half keys.
//
// Labels are unique per token within one process: Create searches for the
// label and generates the key under a lock that every store of the process
// on the token shares. PKCS#11 has no way to lock a token across
// processes, so two processes that create the same label at the same
// moment may both succeed; Get then reports the label as ambiguous. Give
// each process its own labels.
//
// # Key injection
//
// A key made with [keystore.CreateRequest.Exportable] is exported only for
// sealed key injection (ztm.StationConfig.Exporter), by an [Exporter]: the
// token wraps it (C_WrapKey, CKM_AES_KEY_WRAP_PAD) under a wrapping key
// that the security officer installed once with [InstallWrappingKey]
// (CKA_TRUSTED, wrap only, not modifiable or copyable), and the exporter
// unwraps it with that key's value, which the injection service keeps; the
// station then seals it to the device with HPKE and destroys the token's
// copy. The user PIN alone exports nothing: keys are CKA_WRAP_WITH_TRUSTED,
// and the trusted key cannot unwrap or decrypt. SoftHSM 2.6 wraps EC and
// RSA private keys but no Ed25519 ones: their export fails with
// [ErrNotExportable].
//
// # Errors
//
// A module that is missing or cannot be loaded gives a [*ModuleError] with
// its path; no matching token, an error wrapping [ErrTokenNotFound]; a
// refused PIN (CKR_PIN_INCORRECT and the other PIN codes), an error
// wrapping [keystore.ErrAuth]. Failed PKCS#11 calls are [*Error] values
// carrying the CK_RV, which also wrap github.com/miekg/pkcs11's Error.
// A refused PIN is never tried again on the store's own initiative: when
// the module drops the login (a token pulled and put back, a token reset)
// the store logs in again once with its PIN, and if the token refuses it
// (the PIN was changed, or a spare token has the same label), every
// operation fails with that refusal, without another C_Login, until
// [Store.Login] or a newly opened store supplies a PIN. A real HSM locks
// the user PIN after a few wrong tries, and only the SO PIN unlocks it. A
// refused login is [keystore.ErrAuth], never [keystore.ErrNotFound]: the
// keys a logged-out process cannot see are not taken for deleted.
//
// A key deleted (by this process, or by another when the module reports
// its handle invalid) signs with an error wrapping [keystore.ErrNotFound];
// a key of a closed store, with [keystore.ErrClosed].
//
// # Concurrency and the process-wide module
//
// Stores and keys are safe for concurrent use. Each store has a pool of up
// to [Config.MaxSessions] read-write sessions; operations take a session,
// so that many goroutines sign at once. An operation whose session or
// login the module drops (CKR_SESSION_HANDLE_INVALID, CKR_SESSION_CLOSED,
// CKR_USER_NOT_LOGGED_IN; another library in the process calling C_Logout
// or C_CloseAllSessions does that) is retried once on a new session, after
// logging in again: every operation here is safe to retry. Modules may
// renumber private objects across a logout (SoftHSM does), so a key whose
// handle went stale is found again by its label and CKA_ID; it counts as
// deleted only when no private key with both is left.
//
// A PKCS#11 module is initialized once per process, and a login holds for
// the whole process. So the package keeps one process-wide, reference
// counted entry per module and per token: many stores may be open on one
// module and one token. The first store initializes the module
// (C_Initialize) and logs in; the last Close logs out and finalizes it. A
// second store on a token the process is logged in to must give the same
// PIN, or it is refused with [keystore.ErrAuth] (the module itself would
// accept any PIN then). If another library in the process initialized the
// module first (CKR_CRYPTOKI_ALREADY_INITIALIZED), the stores share its
// initialization and never finalize it; but when that library finalizes
// the module, the stores fail (CKR_CRYPTOKI_NOT_INITIALIZED) until they
// are all closed and opened again. github.com/ThalesGroup/crypto11 v1.6.2
// is such a library, and it also refuses to start on a module this package
// initialized: in one process, use one of them per module.
//
// Some modules, SoftHSM2 among them, read their configuration and list
// their tokens at C_Initialize: a token created by another process after
// that is not seen until every store on the module has closed.
//
// # Security notes
//
//   - No error, and no formatting of a [Config] (String, GoString), carries
//     the PIN; pin-value is written as REDACTED.
//   - Prefer pin-source to pin-value: a PIN in a URI ends up in shell
//     histories and process lists. A file readable only by the station's
//     user is the safest source; an environment variable (env:NAME) is
//     readable by the same user and root through /proc/PID/environ and is
//     inherited by child processes, but never shows in a process list. The PIN stays in memory while a store
//     of the process uses the token, to log in again if the module drops
//     the login.
//   - Close logs out of the token once no store of the process uses it.
//   - The rand argument of Sign is ignored: the token uses its own RNG.
//     [Config.Rand] is used only for the CKA_ID.
//
// # Builds without cgo
//
// A PKCS#11 module is a C shared library, loaded with cgo. A program built
// with CGO_ENABLED=0 (a jig cross-compiled for another architecture, say)
// still compiles with this package imported: [Open], and keystore.Open for
// "pkcs11:" URIs, then check their configuration and fail with
// [ErrCgoRequired].
//
// # Why github.com/miekg/pkcs11
//
// The store is written directly on github.com/miekg/pkcs11, not on
// github.com/ThalesGroup/crypto11 (which is itself built on it). crypto11
// v1.6.2 has no Ed25519 (CKM_EDDSA) keys, hides its module handle (so its
// gaps cannot be filled with direct calls on the same initialization), and
// its per-path module sharing cannot check the PIN of a second context on
// a logged-in token. Key generation, the CKA_EXTRACTABLE choice, deletion
// of both halves, error codes and the session pool are each a few direct
// PKCS#11 calls, which this package makes and tests against SoftHSM2 and
// OpenSC's pkcs11-tool.
package pkcs11
