package ca

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"math/big"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/veraison/go-cose"
	"github.com/ztmkit/ztm/identity/keystore"
	"github.com/ztmkit/ztm/internal/detcbor"
	"github.com/ztmkit/ztm/internal/sign1"
)

// CheckpointContentType is the COSE content type (protected header 3) of
// a ledger checkpoint.
const CheckpointContentType = "application/vnd.ztm.ledger-checkpoint+cbor"

// maxCheckpointSize bounds an encoded checkpoint; a real one is under 700
// bytes (an RSA-3072 signature is 384).
const maxCheckpointSize = 4 << 10

// Checkpoint is a CA's signed statement of its ledger's head: "my ledger
// held Seq records, the last hashing to Hash, at Time". Anyone holding a
// checkpoint can tell a ledger that was cut or rewritten behind it: such a
// ledger is shorter, or its record Seq no longer hashes to Hash (see
// [Checkpoint.Check]).
//
// On the wire a checkpoint is a tagged COSE_Sign1 (RFC 9052 §4.2) made
// with the CA's own key, whatever its algorithm (ES256, ES384, EdDSA or
// PS256; a key in an HSM works), with protected headers alg (1), content
// type (3, [CheckpointContentType]) and kid (4, the CA certificate's
// subjectKeyIdentifier), no unprotected headers, and as payload the
// core-deterministic CBOR map
//
//	1 seq (uint)          3 time (int, Unix nanoseconds)
//	2 head hash (bstr)    4 last CRL number (bstr, unsigned big-endian;
//	                        absent before the first CRL)
//
// Reference: RFC 9052 §4.2 and §4.4 (COSE_Sign1, Sig_structure), RFC 8949
// §4.2.1 (core deterministic encoding).
type Checkpoint struct {
	// Seq is the number of records the ledger held, Hash the hash of the
	// last one (32 zero bytes when Seq is 0).
	Seq  uint64
	Hash []byte
	// Time is when the checkpoint was signed, in UTC.
	Time time.Time
	// CRLNumber is the CRL number of the newest CRL the CA had made when
	// it signed, or nil. A ledger's CRL counter never goes below it.
	CRLNumber *big.Int
	// KeyID is the signer's subjectKeyIdentifier.
	KeyID []byte
	// Raw is the signed COSE_Sign1 (set by ParseCheckpoint and by the
	// Authority).
	Raw []byte
}

// Head returns the ledger head the checkpoint signs.
func (c *Checkpoint) Head() Head { return Head{Seq: c.Seq, Hash: bytes.Clone(c.Hash)} }

type checkpointPayload struct {
	Seq       uint64 `cbor:"1,keyasint"`
	Hash      []byte `cbor:"2,keyasint"`
	Time      int64  `cbor:"3,keyasint"`
	CRLNumber []byte `cbor:"4,keyasint,omitempty"`
}

type checkpointProtected struct {
	Alg         int64  `cbor:"1,keyasint"`
	ContentType string `cbor:"3,keyasint"`
	KeyID       []byte `cbor:"4,keyasint"`
}

// signCheckpoint signs c with signer (whose subjectKeyIdentifier is c.KeyID)
// and sets c.Raw.
func signCheckpoint(rand io.Reader, signer crypto.Signer, c *Checkpoint) error {
	alg, err := keystore.AlgorithmOf(signer.Public())
	if err != nil {
		return err
	}
	if len(c.Hash) != sha256.Size {
		return fmt.Errorf("ca: checkpoint head hash is %d bytes", len(c.Hash))
	}
	prot, err := detcbor.Marshal(checkpointProtected{Alg: alg.COSE(), ContentType: CheckpointContentType, KeyID: c.KeyID})
	if err != nil {
		return err
	}
	pl := checkpointPayload{Seq: c.Seq, Hash: c.Hash, Time: c.Time.UnixNano()}
	if c.CRLNumber != nil {
		pl.CRLNumber = c.CRLNumber.Bytes()
	}
	payload, err := detcbor.Marshal(pl)
	if err != nil {
		return err
	}
	cs, err := sign1.NewSigner(signer, alg)
	if err != nil {
		return fmt.Errorf("ca: checkpoint key: %w", err)
	}
	raw, _, err := sign1.Sign(rand, cs, prot, payload)
	if err != nil {
		return fmt.Errorf("ca: failed to sign checkpoint: %w", err)
	}
	c.Raw = raw
	return nil
}

// ParseCheckpoint parses a checkpoint and verifies its signature with pub,
// the CA's public key. It accepts only what [Authority] produces: a tagged
// COSE_Sign1 of at most 4 KiB, headers and payload in core deterministic
// encoding, with the algorithm of pub and [CheckpointContentType]. Any
// other input gives a *CheckpointFormatError wrapping ErrBadCheckpoint.
func ParseCheckpoint(raw []byte, pub crypto.PublicKey) (*Checkpoint, error) {
	bad := func(detail string) error { return &CheckpointFormatError{Detail: detail} }
	if len(raw) > maxCheckpointSize {
		return nil, bad("too large")
	}
	env, err := sign1.Decode(raw, sign1.DecodeOptions{Shortest: true, MaxSize: maxCheckpointSize})
	if err != nil {
		return nil, bad("malformed COSE_Sign1: " + err.Error())
	}
	msg := env.Message
	if !bytes.Equal(env.Unprotected, []byte{0xa0}) {
		return nil, bad("unprotected headers present")
	}
	var prot checkpointProtected
	if err := canonicalUnmarshal(msg.Protected, &prot); err != nil {
		return nil, bad("protected header: " + err.Error())
	}
	var pl checkpointPayload
	if err := canonicalUnmarshal(msg.Payload, &pl); err != nil {
		return nil, bad("payload: " + err.Error())
	}
	if prot.ContentType != CheckpointContentType {
		return nil, bad("content type is not a ledger checkpoint")
	}
	alg, err := keystore.AlgorithmOf(pub)
	if err != nil {
		return nil, bad(err.Error())
	}
	if prot.Alg != alg.COSE() {
		return nil, bad(fmt.Sprintf("algorithm %d, the key signs with %d", prot.Alg, alg.COSE()))
	}
	if len(pl.Hash) != sha256.Size || (pl.CRLNumber != nil && (len(pl.CRLNumber) == 0 || pl.CRLNumber[0] == 0)) {
		return nil, bad("malformed head hash or CRL number")
	}
	if !verifyCOSESignature(pub, alg, msg.Protected, msg.Payload, msg.Signature) {
		return nil, &CheckpointFormatError{Detail: "signature does not verify", Signature: true}
	}
	c := &Checkpoint{Seq: pl.Seq, Hash: pl.Hash, Time: time.Unix(0, pl.Time).UTC(), KeyID: prot.KeyID, Raw: bytes.Clone(raw)}
	if pl.CRLNumber != nil {
		c.CRLNumber = new(big.Int).SetBytes(pl.CRLNumber)
	}
	return c, nil
}

// canonicalUnmarshal decodes data strictly into v and requires that data
// is v's deterministic encoding, so that one checkpoint has one encoding.
func canonicalUnmarshal(data []byte, v any) error {
	if err := detcbor.Unmarshal(data, v, maxCheckpointSize); err != nil {
		return err
	}
	again, err := detcbor.Marshal(v)
	if err != nil {
		return err
	}
	if !bytes.Equal(again, data) {
		return errors.New("not in core deterministic encoding")
	}
	return nil
}

// verifyCOSESignature reports whether sig is alg's signature by pub over
// the Sig_structure of prot and payload.
func verifyCOSESignature(pub crypto.PublicKey, alg keystore.Algorithm, prot, payload, sig []byte) bool {
	v, err := cose.NewVerifier(cose.Algorithm(alg.COSE()), pub)
	return err == nil && sign1.Verify(v, prot, payload, sig) == nil
}

// Check reports whether a ledger extends the checkpoint: head is the
// ledger's head, and rec its record with sequence number c.Seq (nil if it
// has none, or if c.Seq is 0). It checks that the ledger is not shorter,
// that rec is record c.Seq, hashes to its own Hash from its PrevHash and
// that Hash is the checkpoint's. With [Ledger.Verify], which links every
// record to the one before, this proves the ledger holds every record the
// checkpoint covers, unchanged. A failure is a *CheckpointError naming
// both heads; it wraps ErrCheckpointMismatch and ErrLedgerCorrupt.
func (c *Checkpoint) Check(head Head, rec *Record) error {
	fail := func(reason string) error {
		return &CheckpointError{Checkpoint: c.Head(), Ledger: Head{Seq: head.Seq, Hash: bytes.Clone(head.Hash)}, Reason: reason}
	}
	switch {
	case head.Seq < c.Seq:
		return fail(fmt.Sprintf("ledger is shorter than the checkpoint: %d records missing", c.Seq-head.Seq))
	case c.Seq == 0:
		return nil
	case head.Seq == c.Seq && !bytes.Equal(head.Hash, c.Hash):
		return fail("ledger head differs from the checkpoint's")
	case rec == nil || rec.Seq != c.Seq:
		return fail("ledger has no record at the checkpoint's sequence number")
	}
	h, err := rec.ChainHash(rec.PrevHash)
	if err != nil || !bytes.Equal(h, rec.Hash) {
		return fail("ledger record at the checkpoint does not match its hash")
	}
	if !bytes.Equal(rec.Hash, c.Hash) {
		return fail("ledger record at the checkpoint differs from the checkpoint's")
	}
	return nil
}

// CheckCRLNumber reports whether a ledger's CRL counter, last (the last
// CRL number it allocated), is at least the checkpoint's: a counter moved
// back would make the CA reuse CRL numbers. A failure is a
// *CheckpointError.
func (c *Checkpoint) CheckCRLNumber(head Head, last *big.Int) error {
	if c.CRLNumber == nil || (last != nil && last.Cmp(c.CRLNumber) >= 0) {
		return nil
	}
	return &CheckpointError{Checkpoint: c.Head(), Ledger: Head{Seq: head.Seq, Hash: bytes.Clone(head.Hash)},
		Reason: fmt.Sprintf("ledger's CRL number %v is below the checkpoint's %v", last, c.CRLNumber)}
}

// CheckpointSource is where a ledger backend finds the newest checkpoint
// to check its storage against.
type CheckpointSource interface {
	// LatestCheckpoint returns the newest checkpoint saved (a COSE_Sign1
	// as [ParseCheckpoint] reads it), or ErrNoCheckpoint when there is
	// none yet.
	LatestCheckpoint(ctx context.Context) ([]byte, error)
}

// CheckpointStore keeps checkpoints outside the ledger, where an insider
// who can write the ledger's storage cannot also roll them back: another
// disk, another host, a write-once bucket. [CheckpointFile] keeps them in
// a file. Implementations must be safe for concurrent use.
type CheckpointStore interface {
	CheckpointSource
	// SaveCheckpoint durably stores raw as the newest checkpoint. An
	// [Authority] saves checkpoints in increasing sequence order.
	SaveCheckpoint(ctx context.Context, raw []byte) error
}

// RecordReader is implemented by ledgers that read one record by its
// sequence number; both ztm ledgers do. An [Authority] uses it to check,
// before it signs a checkpoint, that the ledger still holds the record
// the previous checkpoint signed.
type RecordReader interface {
	// Record returns the record with sequence number seq, or
	// ErrUnknownRecord.
	Record(ctx context.Context, seq uint64) (*Record, error)
}

// LatestCheckpoint reads src's newest checkpoint and verifies it with
// pub. It returns nil and no error when src holds none.
func LatestCheckpoint(ctx context.Context, src CheckpointSource, pub crypto.PublicKey) (*Checkpoint, error) {
	raw, err := src.LatestCheckpoint(ctx)
	if errors.Is(err, ErrNoCheckpoint) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("ca: failed to read the latest checkpoint: %w", err)
	}
	return ParseCheckpoint(raw, pub)
}

// VerifyLookup checks what a ledger backend read for [Ledger.Lookup]
// (serial set) or [Ledger.LookupRequest] (key set): that issuance is an
// issuance of that serial or carrying that key, that revocation, if any,
// revokes the same serial after it, and that each record hashes to its
// own Hash from its PrevHash. A backend calls it on every lookup, so that
// a damaged index or an edited row makes the lookup fail rather than
// answer with another certificate; a failure is a *ChainError.
func VerifyLookup(issuance, revocation *Record, serial *big.Int, key []byte) error {
	bad := func(r *Record, reason string) error {
		return &ChainError{Seq: r.Seq, Reason: "lookup: " + reason}
	}
	if issuance == nil {
		return errors.New("ca: VerifyLookup needs an issuance")
	}
	if issuance.Kind != KindIssuance || issuance.Serial == nil {
		return bad(issuance, "record is not an issuance")
	}
	if serial != nil && issuance.Serial.Cmp(serial) != 0 {
		return bad(issuance, "record is not the serial looked up")
	}
	if key != nil && !bytes.Equal(issuance.IdempotencyKey, key) {
		return bad(issuance, "record does not carry the idempotency key looked up")
	}
	for _, r := range []*Record{issuance, revocation} {
		if r == nil {
			continue
		}
		h, err := r.ChainHash(r.PrevHash)
		if err != nil || !bytes.Equal(h, r.Hash) {
			return bad(r, "record does not match its hash")
		}
	}
	if revocation != nil && (revocation.Kind != KindRevocation || revocation.Serial == nil ||
		revocation.Serial.Cmp(issuance.Serial) != 0 || revocation.Seq <= issuance.Seq) {
		return bad(revocation, "revocation does not follow the issuance of its serial")
	}
	return nil
}

// oidCRLCheckpoint is the CRL extension that carries the ledger head of the
// checkpoint made with the CRL: 2.25.1868605989.2.1 (see OIDStationAuthorization
// for the arc).
var oidCRLCheckpoint = asn1.ObjectIdentifier{2, 25, 1868605989, 2, 1}

// OIDCRLCheckpoint returns the OID of the non-critical CRL extension
// carrying the ledger head of the checkpoint signed with the CRL,
// 2.25.1868605989.2.1:
//
//	LedgerCheckpoint ::= SEQUENCE {
//	    seq       INTEGER (0..MAX),
//	    headHash  OCTET STRING (SIZE (32)) }
//
// See [CRLCheckpoint].
func OIDCRLCheckpoint() asn1.ObjectIdentifier {
	return append(asn1.ObjectIdentifier(nil), oidCRLCheckpoint...)
}

func marshalCRLCheckpoint(h Head) ([]byte, error) {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1Uint64(h.Seq)
		b.AddASN1OctetString(h.Hash)
	})
	return b.Bytes()
}

// CRLCheckpoint returns the ledger head a ztm CRL carries: the head of the
// checkpoint the CA signed with it, which the CRL's signature covers too.
// Anyone holding the CRL can so tell a ledger cut or rewritten before it
// (see [Checkpoint.Check]). ok is false for a CRL without the extension;
// a malformed one gives an *ExtensionError. The caller checks the CRL's
// signature.
func CRLCheckpoint(crl *x509.RevocationList) (h Head, ok bool, err error) {
	for _, e := range crl.Extensions {
		if !e.Id.Equal(oidCRLCheckpoint) {
			continue
		}
		if ok {
			return Head{}, false, &ExtensionError{Extension: "ledger checkpoint", Detail: "present twice"}
		}
		in := cryptobyte.String(e.Value)
		var seq cryptobyte.String
		var hash []byte
		if !in.ReadASN1(&seq, cbasn1.SEQUENCE) || !in.Empty() || !seq.ReadASN1Integer(&h.Seq) ||
			!seq.ReadASN1Bytes(&hash, cbasn1.OCTET_STRING) || !seq.Empty() || len(hash) != sha256.Size || e.Critical {
			return Head{}, false, &ExtensionError{Extension: "ledger checkpoint", Detail: "malformed"}
		}
		h.Hash, ok = bytes.Clone(hash), true
	}
	return h, ok, nil
}
