// Package tpm is a [keystore.Store] whose keys live in a TPM 2.0: they are
// generated inside the TPM, never leave it in the clear, and sign with
// TPM2_Sign. It also gives attestation what it needs from a TPM (the
// endorsement key, attestation keys and quotes) through [Attester].
//
// Most users open a store by URI with [keystore.Open] after importing the
// package for its side effect, as with database/sql drivers:
//
//	import _ "github.com/ztmkit/ztm/identity/keystore/tpm"
//
//	store, err := keystore.Open(ctx, "tpm:/dev/tpmrm0?dir=/var/lib/ztm/tpmkeys")
//
// [New] makes a store over any go-tpm [transport.TPM] without the registry;
// tests use it with a simulator.
//
// # URI
//
//	tpm:<device>?dir=<index>[&max-loaded=<n>]
//	tpm:swtpm?dir=<index>[&host=<loopback>][&port=<p>][&max-loaded=<n>]
//
// The path is the TPM character device, an absolute, clean path; empty
// means [DefaultDevice] (/dev/tpmrm0, the kernel's resource-managed
// device, which lets several processes share the TPM; /dev/tpm0 admits one
// process at a time). The path "swtpm" instead connects over TCP to a TPM
// simulator speaking the Microsoft simulator protocol, such as swtpm
// ("swtpm socket --tpm2 --server type=tcp,port=2321 --ctrl type=tcp,port=2322
// --flags not-need-init,startup-clear"): host defaults to 127.0.0.1 and
// must be a loopback address, since TPM traffic over TCP is neither
// encrypted nor authenticated; port (the command port) defaults to 2321.
// The TPM must be started already (swtpm's startup-clear flag): only the
// command channel is used. Attributes:
//
//   - dir (required): the key index directory, an absolute, clean path.
//   - max-loaded: [Config.MaxLoaded], 1 to 64 (at most 3 through
//     /dev/tpmrm0).
//
// Values are percent-decoded ('+' stays a plus: a '+' in a dir is a plus,
// not a space); a ';' in the query must be written %3B. Unknown, repeated
// or empty attributes are errors. Every URI error is a
// [*keystore.URIError] whose Part names what is wrong: "path", "dir",
// "max-loaded", "host", "port", "query", "fragment", or an
// unknown attribute's name. A device that cannot be opened gives Part
// "path" with the system error wrapped.
//
// # Key hierarchy
//
// All keys are children of one storage root key (SRK) in the owner
// hierarchy: the TCG reference ECC P-256 SRK template, recreated with
// TPM2_CreatePrimary when needed. Because a primary key is derived from the
// hierarchy's seed, the same template gives the same SRK every time, so no
// persistent handle (NV slot) is used or needed. Clearing the TPM
// (TPM2_Clear) changes the seed: the SRK, and every key under it, is then
// gone, and the store reports [ErrWrongTPM].
//
// Keys are created with TPM2_Create under the SRK, as fixedTPM, fixedParent,
// sensitiveDataOrigin signing keys with an empty authorization value and
// noDA: ES256 (ECDSA P-256, SHA-256), ES384 (ECDSA P-384, SHA-384) and
// PS256 (RSASSA-PSS, SHA-256, RSA-3072) when the TPM has them, as
// TPM2_TestParms says at [New] ([Store.Supports]). Many TPMs lack
// RSA-3072, and the reference simulator does too; ztm does not accept
// smaller RSA keys. EdDSA is never supported: the TPM 2.0 profiles in use
// have no Ed25519. Exportable keys are refused with [ErrNotExportable].
//
// # Key index
//
// Each key is one file, <dir>/<label>.tpmkey, mode 0600 in a 0700
// directory (an existing directory is given mode 0700 too), holding the SRK's name, the key's TPMT_PUBLIC and the
// TPM2B_PRIVATE blob TPM2_Create returned. Files are written to a temporary
// file, synced, hard-linked to their name (which fails if the name is
// taken, even by another process) and the directory synced, so a crash or a
// failed Create leaves no partial key. This scheme was chosen over
// persistent handles, which are few (often 7 or fewer NV slots) and carry
// no label. Delete removes the file; since the TPM keeps no copy of a key
// it does not hold loaded, that destroys the key, except for copies of the
// file (backups) which remain usable on this TPM.
//
// # What is protected
//
// The private blob is encrypted and integrity-protected by the TPM under
// the SRK: it is useless off this TPM, and an altered blob is refused at
// load ([ErrCorruptKeyFile]). The keys have an empty authorization value,
// so anyone who can read the index and talk to the TPM (on Linux: members
// of the tss group, through /dev/tpmrm0) can sign with them: the file
// modes, and the device's, are the access control. Commands travel to the
// TPM unencrypted (no parameter-encryption sessions are used), which
// matters only against an attacker on the bus.
//
// # Attestation
//
// [Store] implements [Attester]: [Store.EndorsementKey] derives the TCG
// default ECC or RSA endorsement key, [Store.EndorsementCertificate] reads
// the vendor's EK certificate from NV (if any), [Store.CreateAttestationKey]
// makes a restricted ECDSA P-256 signing key kept in the index like any
// other key, and [Store.Quote] returns a TPM2_Quote over chosen PCRs of the
// SHA-256 bank with a caller's nonce: the raw TPMS_ATTEST bytes, the
// signature and the PCR values. Verifying quotes is the attestation
// packages' job.
//
// # Concurrency and TPM resources
//
// A Store is safe for concurrent use; its calls are serialized, since a TPM
// runs one command at a time. To make signing a single TPM command, the
// store keeps up to [Config.MaxLoaded] objects (the SRK included) loaded,
// flushing the least recently used, and flushes and retries when the TPM
// reports its object memory full. Commands answered with TPM_RC_RETRY,
// TPM_RC_YIELDED or TPM_RC_TESTING (a freshly started TPM does this) are
// sent again after a short backoff. If the TPM is reset under a running
// store, the lost handles are detected and the keys reloaded.
//
// A store opened by URI owns its connection: when it breaks (the
// simulator restarted: EOF, broken pipe, connection reset), the operation
// that met the break opens a new connection once and runs again, which is
// safe for every operation that does so (Sign, Quote, and Create, whose
// key exists only once its file is written). A store made with [New] on a
// caller's transport cannot reopen it and returns the error.
package tpm
