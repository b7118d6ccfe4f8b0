package manifest

import (
	"crypto"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"hash"
	"io"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/veraison/go-cose"

	"github.com/ztmkit/ztm/internal/detcbor"
	"github.com/ztmkit/ztm/internal/sign1"
)

// COSE Receipts (RFC 9942, published from draft-ietf-cose-merkle-tree-proofs-18).
const (
	// The labels themselves stand in the wire structs' tags below: 395 is
	// the verifiable data structure (vds) header parameter, 396 the
	// verifiable data structure proofs (vdp), and -65537 a private-use
	// protected header parameter (RFC 9052 §16.4: labels below -65536)
	// carrying the signed tree size. RFC 9162 inclusion proofs do not bind
	// the tree size they claim: the same path can lead to the same root
	// under another size. Signing the size lets a verifier refuse a receipt
	// whose proof claims another one. ztm writes it; it is optional when
	// read, so that standard receipts and lots (alg and vds only) verify.

	// vdsRFC9162SHA256 is the RFC9162_SHA256 verifiable data structure.
	vdsRFC9162SHA256 = 1
	// proofInclusion is the inclusion-proof key in a vdp map.
	proofInclusion = -1
	// vdpLabel is the verifiable data structure proofs header parameter.
	vdpLabel = 396
)

// MaxReceiptSize bounds an encoded receipt or signed lot manifest.
const MaxReceiptSize = 32 << 10

// maxProofLen bounds an inclusion path: trees have at most 2^63 leaves.
const maxProofLen = 63

func hasher() *rfc6962.Hasher { return rfc6962.DefaultHasher }

// LotOptions tunes a [Lot].
type LotOptions struct {
	// KeepProofs keeps the hash of every complete subtree (about 64 bytes
	// a device) so that [LotManifest.Receipt] can issue inclusion proofs.
	// Without it a Lot holds only O(log n) hashes: enough for the root and
	// its signature, not for receipts, which then need the leaves again
	// (build a second Lot with KeepProofs from the chain store).
	KeepProofs bool
}

// Lot builds the Merkle tree (RFC 9162 §2.1, SHA-256) of a lot's devices.
// Each leaf is the exact bytes of one device's latest signed step, hashed
// as an RFC 9162 leaf (SHA-256 of 0x00 ‖ bytes); the root is computed with
// a compact range, in O(log n) memory. A Lot is not safe for concurrent
// use.
type Lot struct {
	id     string
	rng    *compact.Range
	keep   bool
	levels [][]byte // levels[l]: hashes of complete level-l subtrees, concatenated
	h      hash.Hash
}

// NewLot returns an empty lot named id (1 to MaxNameLen bytes).
func NewLot(id string, opts LotOptions) (*Lot, error) {
	if id == "" || len(id) > MaxNameLen {
		return nil, fmt.Errorf("manifest: lot id of %d bytes", len(id))
	}
	f := &compact.RangeFactory{Hash: hashChildren}
	return &Lot{id: id, rng: f.NewEmptyRange(0), keep: opts.KeepProofs, h: sha256.New()}, nil
}

// hashChildren is the RFC 9162 interior node hash, SHA-256(0x01 ‖ l ‖ r),
// with one allocation (the result, which the compact range keeps).
func hashChildren(l, r []byte) []byte {
	var buf [1 + 2*sha256.Size]byte
	buf[0] = 1
	copy(buf[1:], l)
	copy(buf[1+sha256.Size:], r)
	sum := sha256.Sum256(buf[:])
	return sum[:]
}

// errNotNewLot is returned by the methods of a Lot not made by NewLot.
var errNotNewLot = errors.New("manifest: Lot not made by NewLot")

// ID returns the lot's identifier.
func (l *Lot) ID() string { return l.id }

// Len returns the number of leaves added.
func (l *Lot) Len() uint64 {
	if l.rng == nil {
		return 0
	}
	return l.rng.End()
}

// Add appends a device's latest signed step (its exact COSE_Sign1 bytes)
// and returns its leaf index.
func (l *Lot) Add(step []byte) (uint64, error) {
	if l.rng == nil || l.h == nil {
		return 0, errNotNewLot
	}
	// RFC 9162 leaf hash, SHA-256(0x00 ‖ step), with a reused hash state.
	l.h.Reset()
	l.h.Write([]byte{0})
	l.h.Write(step)
	return l.AddLeafHash(l.h.Sum(make([]byte, 0, sha256.Size)))
}

// LeafHash returns the RFC 9162 leaf hash of a step's exact COSE_Sign1
// bytes: SHA-256(0x00 ‖ step). It is what [Lot.AddLeafHash] takes.
func LeafHash(step []byte) []byte { return hasher().HashLeaf(step) }

// AddLeafHash appends a leaf by its RFC 9162 leaf hash ([LeafHash]), for
// callers that stored it. It returns the leaf index.
func (l *Lot) AddLeafHash(h []byte) (uint64, error) {
	if l.rng == nil {
		return 0, errNotNewLot
	}
	if len(h) != 32 {
		return 0, fmt.Errorf("manifest: leaf hash of %d bytes, want 32", len(h))
	}
	idx := l.rng.End()
	var visit compact.VisitFn
	if l.keep {
		visit = l.visit
	}
	if err := l.rng.Append(h, visit); err != nil {
		return 0, fmt.Errorf("manifest: failed to add leaf: %w", err)
	}
	return idx, nil
}

func (l *Lot) visit(id compact.NodeID, hash []byte) {
	for uint(len(l.levels)) <= id.Level {
		l.levels = append(l.levels, nil)
	}
	l.levels[id.Level] = append(l.levels[id.Level], hash...)
}

// Root returns the tree's root hash (RFC 9162 §2.1.1). The empty tree's
// root is SHA-256 of the empty string.
func (l *Lot) Root() []byte {
	if l.Len() == 0 {
		return hasher().EmptyRoot()
	}
	root, err := l.rng.GetRootHash(nil)
	if err != nil {
		// Impossible for a range starting at 0.
		panic("manifest: " + err.Error())
	}
	return root
}

// rangeHashes is the number of hashes the compact range holds: O(log n).
func (l *Lot) rangeHashes() int { return len(l.rng.Hashes()) }

// inclusion returns the inclusion path of leaf index in the tree of the
// lot's current size.
func (l *Lot) inclusion(index uint64) ([][]byte, error) {
	size := l.rng.End()
	if !l.keep {
		return nil, errors.New("manifest: lot built without KeepProofs: no receipts")
	}
	if index >= size {
		return nil, fmt.Errorf("manifest: leaf %d of a lot of %d", index, size)
	}
	nodes, err := proof.Inclusion(index, size)
	if err != nil {
		return nil, err
	}
	hashes := make([][]byte, len(nodes.IDs))
	for i, id := range nodes.IDs {
		lv := l.levels[id.Level]
		hashes[i] = lv[id.Index*32 : id.Index*32+32]
	}
	return nodes.Rehash(hashes, hashChildren)
}

// receiptProtected is the protected header of a lot signature: alg, kid or
// x5chain, CWT claims (iss, sub = lot id, iat) and vds.
type receiptProtected struct {
	Alg     int64           `cbor:"1,keyasint"`
	KID     []byte          `cbor:"4,keyasint,omitempty"`
	CWT     *cwtWire        `cbor:"15,keyasint,omitempty"`
	X5Chain cbor.RawMessage `cbor:"33,keyasint,omitempty"`
	X5T     *Digest         `cbor:"34,keyasint,omitempty"`
	VDS     *int64          `cbor:"395,keyasint"`
	Size    *uint64         `cbor:"-65537,keyasint"`
}

// check checks the parts of a lot signature's protected header that every
// lot and receipt needs, naming the one that fails.
func (h *receiptProtected) check() error {
	switch {
	case h.VDS == nil:
		return errors.New("protected header without vds (label 395)")
	case *h.VDS != vdsRFC9162SHA256:
		return fmt.Errorf("verifiable data structure (vds) %d, want RFC9162_SHA256 (1)", *h.VDS)
	case h.Size != nil && *h.Size == 0:
		return errors.New("signed tree size (label -65537) is zero")
	case h.CWT != nil && h.CWT.Iat > 1<<62:
		return errors.New("CWT iat out of range")
	}
	return nil
}

// LotManifest is a signed lot: one signature over the root of the lot's
// tree. Its Raw form is a tagged COSE_Sign1 whose payload is the root; each
// device's receipt ([LotManifest.Receipt]) carries the same protected
// header and signature with the payload detached and the device's
// inclusion proof added.
type LotManifest struct {
	// Lot is the lot's identifier (the CWT sub).
	Lot string
	// Issuer is the CWT iss of the signer.
	Issuer string
	// IssuedAt is the CWT iat.
	IssuedAt time.Time
	// Root is the signed RFC 9162 root hash.
	Root []byte
	// TreeSize is the number of leaves, signed with the root (ztm's
	// protected header -65537); zero when the manifest does not carry it.
	TreeSize uint64
	// Raw is the signed manifest.
	Raw []byte

	prot []byte // the protected header bstr, as signed
	sig  []byte
	lot  *Lot
}

// Sign signs the lot's current root with s, at time issuedAt (the CWT
// iat). rand is passed to the key; if nil, crypto/rand is used. Receipts
// are available from the result if the lot keeps proofs; adding leaves to
// the lot afterwards does not change the manifest, but its receipts must
// then be made before further Adds.
func (l *Lot) Sign(rand io.Reader, s *StepSigner, issuedAt time.Time) (*LotManifest, error) {
	if l.Len() == 0 {
		return nil, errors.New("manifest: empty lot")
	}
	if s == nil || s.signer == nil {
		return nil, errors.New("manifest: StepSigner not made by NewStepSigner")
	}
	vds, size := int64(vdsRFC9162SHA256), l.Len()
	h := receiptProtected{Alg: s.alg.COSE(), KID: s.kid, X5T: s.x5t, VDS: &vds, Size: &size,
		CWT: &cwtWire{Iss: s.issuer, Sub: l.id, Iat: unixOrZero(issuedAt)}}
	if s.x5chain != nil {
		x, err := detcbor.Marshal(s.x5chain)
		if err != nil {
			return nil, err
		}
		h.X5Chain = x
	}
	inner, err := detcbor.Marshal(&h)
	if err != nil {
		return nil, err
	}
	prot, err := detcbor.Marshal(inner)
	if err != nil {
		return nil, err
	}
	root := l.Root()
	raw, sig, err := sign1.Sign(rand, s.signer, inner, root)
	if err != nil {
		return nil, fmt.Errorf("manifest: failed to sign lot: %w", err)
	}
	return &LotManifest{Lot: l.id, Issuer: s.issuer, IssuedAt: timeOrZero(unixOrZero(issuedAt)),
		Root: root, TreeSize: l.Len(), Raw: raw, prot: prot, sig: sig, lot: l}, nil
}

// receiptWire is a COSE_Sign1 receipt: detached payload (nil).
type receiptWire struct {
	_           struct{} `cbor:",toarray"`
	Protected   cbor.RawMessage
	Unprotected receiptUnprotected
	Payload     []byte
	Signature   []byte
}

type receiptUnprotected struct {
	VDP map[int64][]cbor.RawMessage `cbor:"396,keyasint"`
}

// inclusionProof is the CBOR inclusion proof of RFC9162_SHA256:
// [tree-size, leaf-index, inclusion-path].
type inclusionProof struct {
	_        struct{} `cbor:",toarray"`
	TreeSize uint64
	Index    uint64
	Path     [][]byte
}

// Receipt returns the COSE Receipt (RFC 9942) of leaf index: a tagged
// COSE_Sign1 with the manifest's protected header (vds RFC9162_SHA256) and
// signature, a detached payload, and in its unprotected header (label 396,
// key -1) one inclusion proof [tree-size, leaf-index, inclusion-path]. With
// the device's step it verifies on its own: see [VerifyReceipt]. It needs
// a lot built with [LotOptions.KeepProofs], and no leaves added since
// Sign. A lot of one device has no receipt ([ErrSingleLeafLot]): its
// inclusion path would be empty, which the receipt format cannot carry;
// its lot manifest proves the device's inclusion instead
// ([LotManifest.IsSoleLeaf]).
func (m *LotManifest) Receipt(index uint64) ([]byte, error) {
	if m.lot == nil {
		return nil, errors.New("manifest: lot manifest without its lot: no receipts")
	}
	if m.lot.Len() != m.TreeSize {
		return nil, errors.New("manifest: leaves were added to the lot since it was signed")
	}
	if m.TreeSize == 1 && index == 0 {
		return nil, ErrSingleLeafLot
	}
	path, err := m.lot.inclusion(index)
	if err != nil {
		return nil, err
	}
	p, err := detcbor.Marshal(&inclusionProof{TreeSize: m.TreeSize, Index: index, Path: path})
	if err != nil {
		return nil, err
	}
	pb, err := detcbor.Marshal(p)
	if err != nil {
		return nil, err
	}
	return detcbor.Marshal(cbor.Tag{Number: cose.CBORTagSign1Message, Content: receiptWire{
		Protected:   m.prot,
		Unprotected: receiptUnprotected{VDP: map[int64][]cbor.RawMessage{proofInclusion: {pb}}},
		Signature:   m.sig,
	}})
}

// Receipt is a decoded COSE Receipt. [ParseReceipt] only decodes it;
// [VerifyReceipt] checks it.
type Receipt struct {
	// Alg is the protected alg.
	Alg int64
	// KeyID is the protected kid, if any.
	KeyID []byte
	// Lot, Issuer and IssuedAt are the CWT claims sub, iss and iat.
	Lot      string
	Issuer   string
	IssuedAt time.Time
	// TreeSize and Index locate the leaf, as the proof claims them.
	TreeSize, Index uint64
	// SizeSigned reports whether the protected header carries the tree
	// size (ztm's label -65537), which the proof's TreeSize then must
	// equal. Without it (a standard receipt) TreeSize and Index are the
	// proof's claims only: RFC 9162 inclusion proofs do not bind them, so
	// the receipt proves that the step is in the signed tree, not where.
	SizeSigned bool
	// Path is the inclusion path, leaf side first.
	Path [][]byte

	signedSize uint64

	msg sign1.Message // the payload is detached: nil
}

// ParseReceipt decodes a receipt strictly: a tagged COSE_Sign1 with a
// detached payload, a protected header with alg, vds = 1 (RFC9162_SHA256)
// and no unknown label (ztm's signed tree size, -65537, is optional), and
// an unprotected header holding only vdp (396) with exactly one inclusion
// proof whose index is below its tree size and whose path has one or more
// 32-byte hashes. Errors wrap [ErrMalformed] or [ErrTooLarge] and name the
// check that failed.
func ParseReceipt(receipt []byte) (*Receipt, error) {
	if len(receipt) > MaxReceiptSize {
		return nil, tooLargeErr("receipt", len(receipt), MaxReceiptSize)
	}
	env, err := sign1.Decode(receipt, sign1.DecodeOptions{Detached: true})
	if err != nil {
		return nil, decodeErr("receipt", err)
	}
	r := &Receipt{msg: env.Message}
	ph, err := decodeLotProtected(env.RawProtected, "receipt")
	if err != nil {
		return nil, err
	}
	r.Alg, r.KeyID = ph.Alg, ph.KID
	if ph.Size != nil {
		r.SizeSigned, r.signedSize = true, *ph.Size
	}
	if ph.CWT != nil {
		r.Lot, r.Issuer, r.IssuedAt = ph.CWT.Sub, ph.CWT.Iss, timeOrZero(ph.CWT.Iat)
	}
	ip, err := decodeInclusionProof(env.Unprotected)
	if err != nil {
		return nil, err
	}
	r.TreeSize, r.Index, r.Path = ip.TreeSize, ip.Index, ip.Path
	return r, nil
}

// decodeLotProtected decodes and checks the protected header of a lot
// manifest or receipt.
func decodeLotProtected(raw []byte, what string) (*receiptProtected, error) {
	var prot []byte
	if err := detcbor.Unmarshal(raw, &prot, MaxReceiptSize); err != nil {
		return nil, decodeErr(what, fmt.Errorf("protected header: %w", err))
	}
	var ph receiptProtected
	if err := detcbor.Unmarshal(prot, &ph, MaxReceiptSize); err != nil {
		return nil, decodeErr(what, protectedErr(prot, err, 1, 4, 15, 33, 34, 395, -65537))
	}
	if err := ph.check(); err != nil {
		return nil, decodeErr(what, err)
	}
	return &ph, nil
}

// decodeInclusionProof reads the one inclusion proof of a receipt's
// unprotected header, which may hold vdp (396) only.
func decodeInclusionProof(rawUnprot []byte) (*inclusionProof, error) {
	u, err := checkUnprotected(rawUnprot, "receipt", vdpLabel)
	if err != nil {
		return nil, err
	}
	vdp, ok := u[uint64(vdpLabel)]
	if !ok {
		return nil, decodeErr("receipt", errors.New("unprotected header without vdp (label 396)"))
	}
	var proofs map[int64][]cbor.RawMessage
	if err := detcbor.Unmarshal(vdp, &proofs, MaxReceiptSize); err != nil {
		return nil, decodeErr("receipt", fmt.Errorf("vdp: %w", err))
	}
	if len(proofs) != 1 || len(proofs[proofInclusion]) != 1 {
		return nil, decodeErr("receipt", errors.New("want exactly one inclusion proof (vdp -1) and no other proof"))
	}
	var pb []byte
	if err := detcbor.Unmarshal(proofs[proofInclusion][0], &pb, MaxReceiptSize); err != nil {
		return nil, decodeErr("receipt", fmt.Errorf("inclusion proof: %w", err))
	}
	var ip inclusionProof
	if err := detcbor.Unmarshal(pb, &ip, MaxReceiptSize); err != nil {
		return nil, decodeErr("receipt", fmt.Errorf("inclusion proof: %w", err))
	}
	if ip.Index >= ip.TreeSize {
		return nil, decodeErr("receipt", fmt.Errorf("leaf index %d in a tree of %d", ip.Index, ip.TreeSize))
	}
	if len(ip.Path) == 0 || len(ip.Path) > maxProofLen {
		return nil, decodeErr("receipt", fmt.Errorf("inclusion path of %d hashes for a tree of %d (want 1 to %d: inclusion-path is [+ bstr])", len(ip.Path), ip.TreeSize, maxProofLen))
	}
	for _, h := range ip.Path {
		if len(h) != 32 {
			return nil, decodeErr("receipt", fmt.Errorf("inclusion path hash of %d bytes", len(h)))
		}
	}
	return &ip, nil
}

// VerifyReceipt checks that step (the exact COSE_Sign1 bytes of a device's
// step) is in a lot signed by pub: it recomputes the root from the step's
// leaf hash and the receipt's inclusion proof (RFC 9162 §2.1.3.2), and
// verifies the receipt's signature over that root as detached payload.
// A receipt for another leaf, index or tree size, or a bad signature, gives
// a [*VerificationError] with [ReasonReceipt] (or [ReasonAlgorithm]);
// undecodable input an error wrapping [ErrMalformed] or [ErrTooLarge].
func VerifyReceipt(receipt, step []byte, pub crypto.PublicKey) (*Receipt, error) {
	r, err := ParseReceipt(receipt)
	if err != nil {
		return nil, err
	}
	fail := func(reason Reason, detail string, err error) error {
		return &VerificationError{Check: CheckReceipt, Step: -1, Reason: reason, Detail: detail, Err: err}
	}
	v, err := verifierFor(r.Alg, pub)
	if err != nil {
		return nil, fail(ReasonAlgorithm, "", err)
	}
	if r.SizeSigned && r.TreeSize != r.signedSize {
		return nil, fail(ReasonReceipt, fmt.Sprintf("proof claims a tree of %d leaves, the signature one of %d", r.TreeSize, r.signedSize), nil)
	}
	root, err := proof.RootFromInclusionProof(hasher(), r.Index, r.TreeSize, hasher().HashLeaf(step), r.Path)
	if err != nil {
		return nil, fail(ReasonReceipt, "inclusion proof", err)
	}
	if err := sign1.Verify(v, r.msg.Protected, root, r.msg.Signature); err != nil {
		return nil, fail(ReasonReceipt, "the inclusion proof does not lead to the signed root (another leaf, index or tree size, or a bad signature)", err)
	}
	return r, nil
}

// Root returns the root that r's proof gives for step, without checking
// the signature.
func (r *Receipt) Root(step []byte) ([]byte, error) {
	return proof.RootFromInclusionProof(hasher(), r.Index, r.TreeSize, hasher().HashLeaf(step), r.Path)
}

// VerifyLotManifest checks a signed lot manifest ([LotManifest.Raw])
// against pub and returns it, with its root. Its protected header needs
// alg, vds = 1 and the CWT claims that name the lot; ztm's signed tree size
// (-65537) is optional (TreeSize is then zero). Its unprotected header must
// be empty. The result issues no receipts.
func VerifyLotManifest(raw []byte, pub crypto.PublicKey) (*LotManifest, error) {
	if len(raw) > MaxReceiptSize {
		return nil, tooLargeErr("lot manifest", len(raw), MaxReceiptSize)
	}
	env, err := sign1.Decode(raw, sign1.DecodeOptions{})
	if err != nil {
		return nil, decodeErr("lot manifest", err)
	}
	msg := env.Message
	if len(msg.Payload) != 32 {
		return nil, decodeErr("lot manifest", fmt.Errorf("payload of %d bytes, want a 32-byte root", len(msg.Payload)))
	}
	if _, err := checkUnprotected(env.Unprotected, "lot manifest"); err != nil {
		return nil, err
	}
	ph, err := decodeLotProtected(env.RawProtected, "lot manifest")
	if err != nil {
		return nil, err
	}
	if ph.CWT == nil {
		return nil, decodeErr("lot manifest", errors.New("protected header without CWT claims (label 15) naming the lot"))
	}
	v, err := verifierFor(ph.Alg, pub)
	if err != nil {
		return nil, &VerificationError{Check: CheckSignature, Step: -1, Reason: ReasonAlgorithm, Err: err}
	}
	if err := msg.Verify(v); err != nil {
		return nil, &VerificationError{Check: CheckSignature, Step: -1, Reason: ReasonSignature, Err: err}
	}
	var size uint64
	if ph.Size != nil {
		size = *ph.Size
	}
	return &LotManifest{Lot: ph.CWT.Sub, Issuer: ph.CWT.Iss, IssuedAt: timeOrZero(ph.CWT.Iat),
		Root: msg.Payload, TreeSize: size, Raw: raw, prot: env.RawProtected, sig: msg.Signature}, nil
}

// IsSoleLeaf reports whether step (the exact COSE_Sign1 bytes of a
// device's step) is the only leaf of the lot: whether the signed root is
// step's RFC 9162 leaf hash. Leaf and interior hashes are domain-separated
// (0x00 and 0x01 prefixes), so a root equal to a leaf hash is the root of
// a one-leaf tree. This is the inclusion proof of a one-device lot, which
// has no receipt ([ErrSingleLeafLot]). Use it on a manifest that
// [VerifyLotManifest] returned.
func (m *LotManifest) IsSoleLeaf(step []byte) bool {
	return subtle.ConstantTimeCompare(m.Root, LeafHash(step)) == 1
}
