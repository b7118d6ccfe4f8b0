package manifest_test

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/ztmkit/ztm/manifest"
)

// mth is RFC 9162 §2.1.1's Merkle Tree Hash, written from the RFC's
// recursive definition, independent of the code under test.
func mth(leaves [][]byte) []byte {
	switch n := len(leaves); n {
	case 0:
		s := sha256.Sum256(nil)
		return s[:]
	case 1:
		s := sha256.Sum256(append([]byte{0}, leaves[0]...))
		return s[:]
	default:
		k := 1
		for k*2 < n {
			k *= 2
		}
		l, r := mth(leaves[:k]), mth(leaves[k:])
		s := sha256.Sum256(append(append([]byte{1}, l...), r...))
		return s[:]
	}
}

// lotFixture signs one step for each of n devices and a lot over them.
func lotFixture(t testing.TB, n int) (*fixture, [][]byte, *manifest.LotManifest) {
	t.Helper()
	f := newFixture(t)
	var leaves [][]byte
	lot, err := manifest.NewLot("LOT-2026-03-A", manifest.LotOptions{KeepProofs: true})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		s := f.newStep(manifest.StepShip, 0, nil)
		s.Subject = []byte(fmt.Sprintf("device-%04d", i))
		ss := f.sign(s, "cm")
		leaves = append(leaves, ss.Raw)
		idx, err := lot.Add(ss.Raw)
		if err != nil || idx != uint64(i) {
			t.Fatalf("Add: %d %v", idx, err)
		}
	}
	m, err := lot.Sign(rand.Reader, f.parties["cm"].signer, t0)
	if err != nil {
		t.Fatal(err)
	}
	return f, leaves, m
}

func TestLotReceipts(t *testing.T) {
	t.Parallel()
	for _, n := range []int{1, 2, 3, 5, 8, 13} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			f, leaves, m := lotFixture(t, n)
			pub := f.parties["cm"].key.Public()
			if !bytes.Equal(m.Root, mth(leaves)) {
				t.Fatal("root differs from RFC 9162's MTH")
			}
			got, err := manifest.VerifyLotManifest(m.Raw, pub)
			if err != nil || !bytes.Equal(got.Root, m.Root) || got.Lot != "LOT-2026-03-A" || !got.IssuedAt.Equal(t0) {
				t.Fatalf("VerifyLotManifest: %+v %v", got, err)
			}
			if n == 1 {
				// A one-device lot has no receipt (its path would be
				// empty, which inclusion-path [+ bstr] forbids): its lot
				// manifest is the proof.
				if _, err := m.Receipt(0); !errors.Is(err, manifest.ErrSingleLeafLot) {
					t.Fatalf("Receipt of a one-device lot: %v", err)
				}
				other := f.sign(f.newStep(manifest.StepShip, 0, nil), "cm").Raw
				if !got.IsSoleLeaf(leaves[0]) || got.IsSoleLeaf(other) {
					t.Fatal("IsSoleLeaf")
				}
				return
			}
			for i, leaf := range leaves {
				rc, err := m.Receipt(uint64(i))
				if err != nil {
					t.Fatal(err)
				}
				r, err := manifest.VerifyReceipt(rc, leaf, pub)
				if err != nil {
					t.Fatalf("receipt %d: %v", i, err)
				}
				if r.Index != uint64(i) || r.TreeSize != uint64(n) || !r.SizeSigned || r.Lot != "LOT-2026-03-A" || r.Issuer != "cm" {
					t.Fatalf("receipt %d: %+v", i, r)
				}
				// transparency-dev/merkle's own verifier accepts our proof.
				if err := proof.VerifyInclusion(rfc6962.DefaultHasher, r.Index, r.TreeSize,
					rfc6962.DefaultHasher.HashLeaf(leaf), r.Path, m.Root); err != nil {
					t.Fatalf("proof.VerifyInclusion %d: %v", i, err)
				}
				// Another device's step does not verify with this receipt.
				other := leaves[(i+1)%n]
				if n > 1 {
					if _, err := manifest.VerifyReceipt(rc, other, pub); !isReason(err, manifest.ReasonReceipt) {
						t.Fatalf("receipt %d for leaf %d: %v", i, (i+1)%n, err)
					}
				}
			}
		})
	}
}

func isReason(err error, r manifest.Reason) bool {
	var ve *manifest.VerificationError
	return errors.As(err, &ve) && ve.Reason == r && errors.Is(err, manifest.ErrVerification)
}

// receiptParts mirrors a receipt for forging test cases.
type receiptParts struct {
	_           struct{} `cbor:",toarray"`
	Protected   cbor.RawMessage
	Unprotected map[int64]map[int64][]cbor.RawMessage
	Payload     cbor.RawMessage
	Signature   []byte
}

type proofParts struct {
	_     struct{} `cbor:",toarray"`
	Size  uint64
	Index uint64
	Path  [][]byte
}

func forge(t *testing.T, rc []byte, edit func(r *receiptParts, p *proofParts)) []byte {
	t.Helper()
	var tag cbor.RawTag
	if err := cbor.Unmarshal(rc, &tag); err != nil {
		t.Fatal(err)
	}
	var r receiptParts
	if err := cbor.Unmarshal(tag.Content, &r); err != nil {
		t.Fatal(err)
	}
	var pb []byte
	if err := cbor.Unmarshal(r.Unprotected[396][-1][0], &pb); err != nil {
		t.Fatal(err)
	}
	var p proofParts
	if err := cbor.Unmarshal(pb, &p); err != nil {
		t.Fatal(err)
	}
	edit(&r, &p)
	pb, _ = cbor.Marshal(&p)
	enc, _ := cbor.Marshal(pb)
	r.Unprotected[396][-1][0] = enc
	content, err := cbor.Marshal(&r)
	if err != nil {
		t.Fatal(err)
	}
	out, err := cbor.Marshal(cbor.RawTag{Number: 18, Content: content})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestReceiptRefuses(t *testing.T) {
	t.Parallel()
	f, leaves, m := lotFixture(t, 6)
	pub := f.parties["cm"].key.Public()
	rc, err := m.Receipt(2)
	if err != nil {
		t.Fatal(err)
	}
	// The forge helper itself changes nothing when it edits nothing.
	if _, err := manifest.VerifyReceipt(forge(t, rc, func(*receiptParts, *proofParts) {}), leaves[2], pub); err != nil {
		t.Fatalf("control: %v", err)
	}
	verr := func(r manifest.Reason) func(error) bool { return func(err error) bool { return isReason(err, r) } }
	is := func(target error) func(error) bool { return func(err error) bool { return errors.Is(err, target) } }
	for _, tc := range []struct {
		name    string
		receipt []byte
		leaf    []byte
		key     any
		ok      func(error) bool
	}{
		{"another leaf", rc, leaves[3], pub, verr(manifest.ReasonReceipt)},
		{"another index", forge(t, rc, func(_ *receiptParts, p *proofParts) { p.Index = 3 }), leaves[2], pub, verr(manifest.ReasonReceipt)},
		{"another tree size", forge(t, rc, func(_ *receiptParts, p *proofParts) { p.Size = 7 }), leaves[2], pub, verr(manifest.ReasonReceipt)},
		{"smaller tree size", forge(t, rc, func(_ *receiptParts, p *proofParts) { p.Size = 4 }), leaves[2], pub, verr(manifest.ReasonReceipt)},
		{"size in the protected header changed", forge(t, rc, func(r *receiptParts, p *proofParts) {
			var b []byte
			_ = cbor.Unmarshal(r.Protected, &b)
			nb := bytes.Replace(b, []byte{0x3a, 0x00, 0x01, 0x00, 0x00, 0x06}, []byte{0x3a, 0x00, 0x01, 0x00, 0x00, 0x07}, 1)
			if bytes.Equal(nb, b) {
				t.Fatal("signed size not found in the protected header")
			}
			b = nb
			r.Protected, _ = cbor.Marshal(b)
			p.Size = 7
		}), leaves[2], pub, verr(manifest.ReasonReceipt)},
		{"short path", forge(t, rc, func(_ *receiptParts, p *proofParts) { p.Path = p.Path[1:] }), leaves[2], pub, verr(manifest.ReasonReceipt)},
		{"flipped path hash", forge(t, rc, func(_ *receiptParts, p *proofParts) { p.Path[0][0] ^= 1 }), leaves[2], pub, verr(manifest.ReasonReceipt)},
		{"other signer's key", rc, leaves[2], f.parties["qa"].key.Public(), verr(manifest.ReasonReceipt)},
		{"index beyond size", forge(t, rc, func(_ *receiptParts, p *proofParts) { p.Index = 6 }), leaves[2], pub, is(manifest.ErrMalformed)},
		{"empty path", forge(t, rc, func(_ *receiptParts, p *proofParts) { p.Path = [][]byte{} }), leaves[2], pub, is(manifest.ErrMalformed)},
		{"path hash of 31 bytes", forge(t, rc, func(_ *receiptParts, p *proofParts) { p.Path[0] = p.Path[0][:31] }), leaves[2], pub, is(manifest.ErrMalformed)},
		{"attached payload", forge(t, rc, func(r *receiptParts, _ *proofParts) { r.Payload = cbor.RawMessage{0x41, 0x00} }), leaves[2], pub, is(manifest.ErrMalformed)},
		{"two proofs", forge(t, rc, func(r *receiptParts, _ *proofParts) {
			r.Unprotected[396][-1] = append(r.Unprotected[396][-1], r.Unprotected[396][-1][0])
		}), leaves[2], pub, is(manifest.ErrMalformed)},
		{"vds 2", forge(t, rc, func(r *receiptParts, _ *proofParts) {
			var b []byte
			_ = cbor.Unmarshal(r.Protected, &b)
			b = bytes.Replace(b, []byte{0x19, 0x01, 0x8b, 0x01}, []byte{0x19, 0x01, 0x8b, 0x02}, 1)
			r.Protected, _ = cbor.Marshal(b)
		}), leaves[2], pub, is(manifest.ErrMalformed)},
		{"truncated", rc[:len(rc)-3], leaves[2], pub, is(manifest.ErrMalformed)},
		{"duplicate unprotected key", bytes.Replace(rc, []byte{0xa1, 0x19, 0x01, 0x8c}, []byte{0xa2, 0x19, 0x01, 0x8c, 0xa0, 0x19, 0x01, 0x8c}, 1), leaves[2], pub, is(manifest.ErrMalformed)},
		{"oversize", make([]byte, manifest.MaxReceiptSize+1), leaves[2], pub, is(manifest.ErrTooLarge)},
		{"lot manifest as receipt", m.Raw, leaves[2], pub, is(manifest.ErrMalformed)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := manifest.VerifyReceipt(tc.receipt, tc.leaf, tc.key)
			if err == nil || !tc.ok(err) {
				t.Fatalf("got %v", err)
			}
		})
	}
	if _, err := manifest.VerifyLotManifest(m.Raw, f.parties["qa"].key.Public()); !errors.Is(err, manifest.ErrVerification) {
		t.Fatalf("lot manifest, other key: %v", err)
	}
	if _, err := manifest.VerifyLotManifest(rc, pub); !errors.Is(err, manifest.ErrMalformed) {
		t.Fatalf("receipt as lot manifest: %v", err)
	}
}

func TestLotMisuse(t *testing.T) {
	t.Parallel()
	if _, err := manifest.NewLot("", manifest.LotOptions{}); err == nil {
		t.Fatal("empty lot id accepted")
	}
	f := newFixture(t)
	lot, _ := manifest.NewLot("L", manifest.LotOptions{})
	if _, err := lot.Sign(rand.Reader, f.parties["cm"].signer, t0); err == nil {
		t.Fatal("empty lot signed")
	}
	if _, err := lot.AddLeafHash(make([]byte, 31)); err == nil {
		t.Fatal("short leaf hash accepted")
	}
	lot.Add([]byte("a"))
	m, err := lot.Sign(rand.Reader, f.parties["cm"].signer, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Receipt(0); err == nil {
		t.Fatal("receipt without KeepProofs")
	}
	// A lot with proofs refuses receipts once it has grown past its manifest.
	_, leaves, m2 := lotFixture(t, 2)
	_ = leaves
	if _, err := m2.Receipt(2); err == nil {
		t.Fatal("receipt for a leaf beyond the tree")
	}
}
