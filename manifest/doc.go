// Package manifest records and checks the supply-chain history of devices:
// signed steps, chains of them, verification policies, lot manifests with
// per-device receipts, and custody transfer.
//
// No single partner is trusted. Each station signs what it did to a device
// as a [Step]; steps are chained by the digest of the exact bytes of their
// predecessor; the OEM (or a device's later operator) checks a device's
// whole [Chain] against a signed [Policy] that says who may do what. Most
// users need three functions: [StepSigner.Sign] at a station, [Verify] at
// the OEM, and [VerifyPolicy] to load the OEM's published policy.
//
// # Sections
//
//   - Steps: the [Step] and its CBOR encoding
//   - Signing: COSE_Sign1 with CWT claims, [StepSigner]
//   - Verification and policy: [Verify], [Report], [Policy]
//   - Bulk verification: [VerifyAll], a whole lot at once
//   - Custody: [Step.NextCustodian]
//   - Lots and receipts: [Lot], [LotManifest], [VerifyReceipt]
//   - Chain store: package chainstore, package memchain, [CheckAppend]
//   - Sizes
//
// # Steps
//
// A step is deterministic CBOR (RFC 8949 §4.2.1, core deterministic) with
// integer keys. [ParseStep] accepts only that canonical form, so a step has
// exactly one encoding. In CDDL (RFC 8610):
//
//	step = {
//	  1 => tstr,                    ; name: [a-z][a-z0-9-]*, at most 128 bytes
//	  2 => bstr .size (1..64),      ; subject: the device's UEID (RFC 9711), or a lot id
//	  3 => uint,                    ; sequence: 0 for the device's first step
//	  ? 4 => digest,                ; prev: digest of the exact bytes of the previous
//	                                ;   step's COSE_Sign1; absent if and only if sequence is 0
//	  ? 5 => { + tstr => digest },  ; artifacts: firmware image, test log, CSR, certificate…
//	  ? 6 => { + (int / tstr) => any }, ; predicate: step-specific claims (test results,
//	                                ;   the digest of an attestation result)
//	  7 => uint,                    ; time: seconds since 1970-01-01T00:00:00Z
//	  ? 8 => digest,                ; next custodian: SHA-256 of the DER SubjectPublicKeyInfo
//	                                ;   of the only key that may sign the next step
//	  ? 9 => tstr,                  ; lot
//	}
//	digest = [alg: -16 / -43 / -44, value: bstr]  ; SHA-256 / SHA-384 / SHA-512, as SUIT_Digest
//
// Well-known names are [StepDieSort], [StepKeyGeneration],
// [StepFirmwareLoad], [StepFinalTest], [StepPack], [StepShip] and
// [StepKeyDestroyed]; any valid name may be used.
//
// # Signing
//
// A signed step is a tagged COSE_Sign1 (RFC 9052 §4.2), made with
// github.com/veraison/go-cose over a protected header that this package
// encodes canonically:
//
//	signed-step = #6.18([
//	  protected:   bstr .cbor step-protected,
//	  unprotected: {},              ; always empty: not covered by the signature
//	  payload:     bstr .cbor step,
//	  signature:   bstr,
//	])
//	step-protected = {
//	  1 => int,                     ; alg: -7 ES256, -35 ES384, -8 EdDSA, -37 PS256
//	  3 => 65091,                   ; content type: StepContentType (CoAP Content-Format, experimental range)
//	  ? 4 => bstr,                  ; kid; by default the 32-byte SHA-256 of the signer's SPKI
//	  15 => {                       ; CWT claims (RFC 9597), as SCITT signed statements carry them
//	    1 => tstr,                  ; iss: the signer
//	    2 => tstr,                  ; sub: the step's subject in lowercase hex
//	    ? 6 => uint,                ; iat: the step's time
//	  },
//	  ? 33 => bstr / [2* bstr],     ; x5chain (RFC 9360), leaf first, instead of kid
//	  ? 34 => digest,               ; x5t (RFC 9360): the leaf by digest, instead of x5chain
//	}
//
//	chain = [+ bstr .cbor signed-step]
//
// A step has one encoding: the unprotected header, which the signature
// does not cover, must be empty (a step, policy or lot manifest carrying
// any label there is refused, naming the label), and the byte string heads
// of the envelope are in shortest form. Otherwise one signed step could be
// re-encoded, still verifying and attributed to the same signer, under
// another digest.
//
// A station builds a [StepSigner] once over its key (any crypto.Signer, such
// as a keystore.Key) and signs each step with it: [StepSigner.Sign] is the
// one signing primitive. [SignStep] wraps it for a single step, and
// ztm.Station.Record signs with it and also chains the step to the
// device's last one and stores it. [ParseSignedStep] keeps
// the exact bytes it was given in [SignedStep.Raw]; nothing in this
// package ever re-encodes a received message.
//
// The package's tests check what it signs with implementations that share
// none of its code: the cose-js package under Node.js verifies steps,
// policies and lot manifests (ES256, ES384, PS256), Node's crypto module
// EdDSA steps, and a Node.js RFC 9162 verifier the receipts.
//
// # Verification and policy
//
// [Verify] checks a chain against a [Policy] and returns a [Report] that
// names every check and its outcome (see the Check… constants):
//
//   - the policy has not expired;
//   - each step's signer is trusted: its kid names a [PolicyKey], or its
//     x5chain chains to one of the policy's Roots (at the step's time);
//   - the protected alg is known, allowed and the key's own ("none",
//     unknown and mismatched algorithms fail);
//   - the signature verifies over the exact received bytes;
//   - every step names the chain's device, with CWT claims that match;
//   - sequence numbers run 0, 1, 2, …; each step's prev is the digest of
//     the exact bytes of the step before it (a re-encoded step, even with
//     the same claims and a valid signature, breaks the link); no two steps
//     claim the same sequence or predecessor (fork);
//   - next custodians are honoured;
//   - the policy's layout: its step rules in order, each step signed by a
//     signer the rule names (a policy key by name, or a certificate whose
//     leaf subject OU is one of the rule's roles), k-of-n thresholds met.
//
// A role is what a certificate's subject says; a station authorization is
// what its CA granted. A leaf that carries the station authorization
// extension ztm's CA issues to stations (ca.StationAuthorization: the
// steps a station may sign) may sign only the steps it lists, whatever
// its OU — a rule's role does not stretch it, and neither does
// AllowExtraSteps — and a leaf whose extension is malformed is not
// trusted at all. Leaves without the extension (from another PKI) are
// judged by their roles alone.
//
// A threshold rule (say "release", 2 of qa, plant and security) is met by
// consecutive steps of that name signed by distinct allowed signers: each
// signer adds its own step to the chain. This keeps every signature a
// plain COSE_Sign1 with its own CWT claims and time, and the chain's
// linking makes the order of approvals part of the record.
//
// [Report.Err] is nil only if every check passed; otherwise it is a
// [*VerificationError] (one failure) or a [*ReportError] (several), all
// wrapping [ErrVerification], with a [Reason] each.
//
// The OEM writes the policy as JSON ([ParsePolicyJSON], strict), signs its
// canonical CBOR form with [SignPolicy] (a COSE_Sign1 with content type
// [PolicyContentType], 65092) and publishes it; verifiers load it
// with [VerifyPolicy] against the OEM's pinned key. In CDDL:
//
//	policy = {
//	  1 => tstr,                    ; name
//	  2 => uint,                    ; version
//	  ? 3 => tstr,                  ; issuer
//	  ? 4 => uint,                  ; issued (seconds since the epoch)
//	  ? 5 => uint,                  ; expires
//	  ? 6 => [+ bstr],              ; trust anchors, DER certificates
//	  ? 7 => [+ { 1 => tstr, 2 => bstr, ? 3 => bstr }],  ; keys: name, SPKI DER, kid
//	  8 => [+ {                     ; step rules, in order
//	    1 => tstr,                  ; step name
//	    ? 2 => [+ tstr],            ; signers (key names)
//	    ? 3 => [+ tstr],            ; roles (certificate OU)
//	    ? 4 => uint,                ; threshold (default 1)
//	    ? 5 => bool,                ; optional
//	  }],
//	  ? 9 => bool,                  ; allow extra steps
//	}
//
// # Bulk verification
//
// An OEM's incoming-goods check verifies every device of a lot — 100,000
// chains of several steps — against one policy. [VerifyAll] reads the
// chains from an iterator ([ChainInput]: a chain's encoding, as a chain
// file holds it, or a chain already decoded, as a chain store returns it)
// and verifies them on a bounded pool of workers ([BulkOptions.Workers],
// by default one per core):
//
//	sum, err := manifest.VerifyAll(ctx, chains, policy, &manifest.BulkOptions{
//		Result: func(r *manifest.ChainResult) { /* r.ID, r.Report */ },
//	})
//	// sum.Passed, sum.Refused, sum.Reasons[manifest.ReasonSignature], …
//
// Each chain is checked exactly as [Verify] checks it (one code path) and
// gets the same [Report]; a chain that does not decode is refused with the
// check [CheckDecode]. The workers share what does not depend on the
// device: the policy, compiled once; the station certificates decoded
// from x5chain headers, by their bytes; and the trust decisions about
// them — a (leaf, intermediates) chain that verified to the policy's roots
// is not built again for a step signed while every certificate of the
// path found is valid, and one signed outside that span is checked anew
// (and refused if no valid path exists then). The caches are bounded and
// live for one call. What remains per step is what no cache can save: the
// COSE signature. BenchmarkVerifyAll measures a lot of 10,000 five-step
// chains against the raw go-cose verification of its 50,000 signatures on
// the same cores.
//
// [BulkOptions.Result] receives each chain's [ChainResult] as it is
// verified, one call at a time; the [Summary] counts the refused devices by
// [Reason] (a device once under each reason it failed for). Cancelling
// ctx stops the reading of the input, and VerifyAll returns ctx's error
// once every worker has stopped. examples/verify runs it over a directory
// of chain files or a chain store, against the signed lot manifest.
//
// # Custody
//
// A step may name the next custodian: the [KeyThumbprint] of the only key
// allowed to sign the device's next step, as FDO ownership vouchers hand a
// device from one owner to the next. [Verify] fails the custodian check
// when another key (even one the policy trusts for that step) signs it.
// For a signer that sends an x5chain, the thumbprint is that of its leaf
// certificate's key, so custody can pass to a certificate as well as to a
// raw key. A thumbprint rather than a whole key or certificate keeps steps
// small; the key itself must still be trusted by the policy for its
// signature to count.
//
// # Lots and receipts
//
// A [Lot] collects the exact bytes of every device's latest step as leaves
// of an RFC 9162 Merkle tree (SHA-256, leaf hash SHA-256(0x00 ‖ bytes)),
// building the root with a compact range (github.com/transparency-dev/merkle)
// in O(log n) memory. [Lot.Sign] makes one signature over the root: a
// [LotManifest]. Each device then gets a COSE Receipt ([LotManifest.Receipt],
// RFC 9942, published from draft-ietf-cose-merkle-tree-proofs-18): the
// same protected header and signature with a detached payload, and its
// inclusion proof in the unprotected header. [VerifyReceipt] checks it on
// its own, given the device's step and the signer's key.
//
//	receipt = #6.18([
//	  protected:   bstr .cbor {
//	    1 => int,                   ; alg
//	    ? 4 => bstr,                ; kid, or ? 33 => x5chain
//	    15 => { 1 => tstr, 2 => tstr, ? 6 => uint },  ; iss, sub = lot id, iat
//	    395 => 1,                   ; vds: RFC9162_SHA256
//	    ? -65537 => uint,           ; tree size (private use; see below)
//	  },
//	  unprotected: { 396 => { -1 => [ bstr .cbor inclusion-proof ] } },  ; nothing else
//	  payload:     nil,             ; detached: the root
//	  signature:   bstr,
//	])
//	inclusion-proof = [tree-size: uint, leaf-index: uint, inclusion-path: [+ bstr]]
//
// RFC 9162 inclusion proofs do not authenticate the tree size they claim
// (the same path can lead to the same root under another size), so ztm's
// signed protected header also carries the tree size under a private-use
// label, and [VerifyReceipt] refuses a proof that claims another. Other
// RFC 9942 verifiers ignore the label. It is optional when read: a
// standard receipt (alg and vds only) verifies, and [Receipt.SizeSigned]
// says whether its size and index were signed or only claimed; a standard
// lot manifest verifies too, with CWT claims naming the lot.
//
// A lot of one device has no receipt ([ErrSingleLeafLot]). Its inclusion
// path would be empty (RFC 9162 §2.1.3.1: the root is the leaf's hash),
// and neither RFC 9942's inclusion-path ([+ bstr]) nor RFC 9162's own
// inclusion proof (inclusion_path<1..2^16-1>) can carry an empty path;
// ztm neither writes one nor accepts one. The lot manifest itself is that
// device's proof: its signed root is the step's leaf hash, which
// [LotManifest.IsSoleLeaf] checks. (Leaf and node hashes are
// domain-separated, so such a root is only ever a one-leaf tree's.)
//
// Issuing receipts needs the tree's node hashes: [LotOptions.KeepProofs]
// keeps them (about 64 bytes a device, 64 MB for a million); without it a
// Lot holds only O(log n) hashes, enough to sign the root, and receipts are
// made later by rebuilding the tree from the chain store's latest steps.
//
// # Chain store
//
// Package chainstore keeps chains in SQLite (WAL, synchronous=FULL): it
// appends a step only if it links to the stored predecessor, so a fork
// cannot be stored; it reads a device's chain back byte for byte and lists
// the latest steps of a lot, the leaves of its manifest. Package memchain
// does the same in memory, for tests, examples and demos. Both apply
// [CheckAppend], the one rule of what may follow a stored chain, and refuse
// with an [*AppendError] wrapping [ErrFork], [ErrOutOfOrder] or
// [ErrBrokenLink]; a line's own store can call it too.
//
// # Sizes
//
// Every step kind the ztm line writes is under 400 bytes signed with a kid
// (ES256, a 17-byte RAND UEID, the CA's 20-byte serials): the content type
// is a number, and a step names by digest what the documents it names
// already hold. A station with a certificate stays under 400 bytes by
// naming it by digest ([SignOptions.CertChainByDigest], x5t) where verifiers
// hold it ([VerifyOptions.Certificates]); the x5chain rows show what
// sending the chain costs. TestStepSizes measures them, fails if a kid or
// x5t row reaches 400 bytes, and checks this table, in bytes:
//
// The table below is rewritten by go test -run TestStepSizes -update.
//
//	step (ES256, 17-byte UEID)                      payload     COSE
//	die-sort (first step)                                45      213
//	firmware-load                                       127      295
//	key-generation                                      173      341
//	key-injection                                       188      356
//	key-destroyed (station's copy)                      201      369
//	enrollment                                          212      380
//	install-failed                                      218      386
//	final-test (typical)                                195      363
//	pack                                                 71      239
//	ship, handing custody on                            123      291
//	key-destroyed (device, end of life)                 124      292
//	decommissioned                                      134      302
//	final-test, certificate by digest (x5t)             195      369
//	final-test, x5chain (leaf)                          195      745
//	final-test, x5chain (leaf + intermediate)           195     1135
//
// (ECDSA signatures in DER certificates vary by a byte or two.)
package manifest
