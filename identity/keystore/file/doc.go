// Package file is the encrypted file key store: each key is a file in one
// directory, encrypted at rest under a passphrase or a key-encryption key,
// in a format openssl reads. It is the embedded default for a station that
// has no HSM or TPM, and it works across processes sharing the directory.
//
// Most users open it by URI, after importing the package for its side
// effect of registering the "file" scheme with [keystore.Open]:
//
//	import _ "github.com/ztmkit/ztm/identity/keystore/file"
//
//	store, err := keystore.Open(ctx, "file:/var/lib/station/keys?passphrase-source=file:/etc/station/pass")
//
// [Open] does the same from a directory and a [Config], without the
// registry.
//
// # Key files
//
// A key labelled L is the file L.pem (labels pass [keystore.ValidateLabel],
// so they are safe file names). It holds the key as an encrypted PKCS#8
// structure in PEM, "-----BEGIN ENCRYPTED PRIVATE KEY-----" (RFC 5958 §3,
// RFC 7468 §11), encrypted with PBES2 (RFC 8018 §6.2): PBKDF2 with
// HMAC-SHA-256, a 16-byte random salt and [DefaultIterations] iterations
// (configurable, at least [MinIterations]), and AES-256-CBC with a random
// IV. The key's algorithm is derived from the key itself. The PKCS#8
// structure carries the PKCS #9 localKeyID attribute, the SHA-256 of the
// key's SubjectPublicKeyInfo, which the store checks after decryption (a
// file with PKCS#8 attributes but no localKeyID is refused as damaged;
// openssl writes no attributes).
//
// openssl reads the files directly:
//
//	openssl pkey -in keys/station.pem -passin file:/etc/station/pass -pubout
//
// and the store reads keys openssl wrote with PBES2 and AES-CBC, such as
// those of `openssl genpkey … -aes-256-cbc` or `openssl pkcs8 -topk8 -v2
// aes-256-cbc`, dropped into the directory as L.pem. Keys of algorithms
// ztm does not use (RSA below 3072 bits, P-521…) are refused on Get with
// keystore.ErrUnsupportedAlgorithm.
//
// PBES2 was chosen over a custom format for interoperability; it has no
// MAC, so the store separates a wrong credential from a damaged file by the
// structure of the first decrypted block: a wrong passphrase gives an error
// wrapping [keystore.ErrAuth], a damaged or malformed file a [*FormatError]
// wrapping [ErrCorrupt] (damage to the first 16 ciphertext bytes or the IV
// cannot be told from a wrong passphrase, and reads as ErrAuth). A damaged
// key never decrypts silently into another key: the localKeyID (and, for
// ECDSA, the public point) is checked.
//
// # Credentials
//
// [Config.Passphrase] is a passphrase; [Config.KEK] is a 32-byte
// key-encryption key. With a KEK the files are still PBES2, with the KEK's
// 64 lowercase hexadecimal digits as the PBKDF2 password and, by default,
// [MinIterations] iterations: a full-entropy key gains nothing from key
// stretching, and openssl can still read the files (`-passin file:` on a
// file holding the hex KEK). There is no default credential: a Config with
// neither is refused with [ErrNoCredential].
//
// # Directory and durability
//
// [Open] creates the directory with mode 0700, refuses an existing one that
// another user owns or that group or others may write to ([ErrInsecureDir]),
// and tightens any other mode to 0700. Key files are created 0600. A key is
// written to a temporary file (O_EXCL, 0600) in the same directory, synced,
// then linked to its name with link(2), which fails if the name exists, and
// the directory is synced: a crash leaves either the whole key or none, and
// of two Creates of one label, in any processes, exactly one wins
// ([keystore.ErrExists] for the other). The directory must be on a local
// file system with hard links and flock(2) (ext4, XFS, Btrfs, tmpfs, APFS…);
// the package builds on Unix systems only.
//
// # URI
//
//	file:<dir>?<attribute>=<value>&…
//	file:///abs/dir?…        (empty or "localhost" authority)
//	file:./rel/dir?…         (relative to the working directory)
//
// The directory is an absolute path or, although RFC 8089 file URIs are
// absolute, a relative one starting with "./" or "../"; a bare "file:keys"
// is refused as ambiguous. Values are percent-decoded ('+' stays a plus);
// a ';' in the query must be written %3B, and attribute names are matched
// without regard to case, as for every ztm key store URI.
// Exactly one credential attribute is required:
//
//   - passphrase-source=file:<path> (absolute, or relative starting with
//     "./" or "../") reads the passphrase from the first line
//     of a file (as openssl's -passin file: does); passphrase-source=env:<NAME>
//     from an environment variable.
//   - kek-source=file:<path> or env:<NAME> reads a KEK: 32 raw bytes or 64
//     hexadecimal digits.
//   - passphrase=<passphrase> gives the passphrase in the URI itself.
//     WARNING: URIs end up in command lines, logs and process listings;
//     prefer passphrase-source. The store redacts it from every error
//     ([keystore.RedactURI]).
//
// iterations=<n> sets [Config.Iterations]. Any other attribute, a missing or
// doubled credential, or a malformed path is refused with a
// [*keystore.URIError] naming the part at fault.
//
// # Memory
//
// A key is decrypted in process memory on its first Get (or at Create) and
// stays cached, decrypted, until it is deleted or the [Store] is closed; it
// never reaches the disk unencrypted. Delete and Close overwrite the cached
// private key and Close the credential, on a best-effort basis: Go keeps
// copies it does not expose (precomputed values, the FIPS module's key
// form, strings passed to PBKDF2), and the garbage collector may have moved
// values.
//
// # Concurrency
//
// A [Store] and its keys are safe for concurrent use, and several Stores,
// in one process or several, may share a directory. Writers (Create,
// Delete) hold an exclusive flock(2) on the directory's ".lock" file and
// readers (Get, List) a shared one; each waits for it until its context is
// done. A fetched [Key] checks before each signature, with one lstat(2),
// that its file is still the one it decrypted, so a key deleted by any
// process stops signing (keystore.ErrNotFound). The store writes random
// nanoseconds into each file's modification time, so that a new file cannot
// pass for a deleted one even when the file system reuses its inode.
package file
