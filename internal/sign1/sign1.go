// Package sign1 is ztm's one COSE_Sign1 layer (RFC 9052 §4.2), over
// go-cose's algorithm-bound signers and verifiers: the Sig_structure, the
// tagged message ztm writes (protected header, empty unprotected header,
// attached payload), an adapter from any crypto.Signer (a key in an HSM or
// TPM) to a [cose.Signer], and the x5chain header (RFC 9360 §2) with one set
// of limits. attest (evidence, results), manifest (steps, policies, lots)
// and ca (ledger checkpoints) sign and verify through it; each keeps the
// rules of its own protected header.
//
// The encodings are core deterministic (RFC 8949 §4.2.1), byte for byte
// what go-cose and internal/detcbor write.
package sign1

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/fxamacker/cbor/v2"
	"github.com/veraison/go-cose"

	"github.com/ztmkit/ztm/identity/keystore"
	"github.com/ztmkit/ztm/internal/detcbor"
)

// COSE header labels ztm reads and writes. Reference: RFC 9052 §3.1,
// RFC 9597 §2 (CWT claims), RFC 9360 §2 (x5chain, x5t).
const (
	HeaderAlg         int64 = 1
	HeaderCrit        int64 = 2
	HeaderContentType int64 = 3
	HeaderKid         int64 = 4
	HeaderCWTClaims   int64 = 15
	HeaderX5Chain     int64 = 33
	HeaderX5T         int64 = 34
)

// Tags: COSE_Sign1 (RFC 9052 §4.2) and the CWT tag that may wrap it
// (RFC 8392 §6).
const (
	TagSign1 = 18
	TagCWT   = 61
)

// MaxX5Chain is the most certificates an x5chain header may carry: a leaf
// and its intermediates (and perhaps its root) on any real PKI.
const MaxX5Chain = 8

// NewSigner returns the go-cose signer of key as alg. ECDSA keys other than
// *ecdsa.PrivateKey (keystore keys, which want the hash named) are given
// alg's SignerOpts where go-cose passes none.
func NewSigner(key crypto.Signer, alg keystore.Algorithm) (cose.Signer, error) {
	if key == nil {
		return nil, errors.New("nil signer")
	}
	k := key
	if _, std := key.(*ecdsa.PrivateKey); !std && (alg == keystore.ES256 || alg == keystore.ES384) {
		k = hashNamingSigner{key, alg.SignerOpts()}
	}
	return cose.NewSigner(cose.Algorithm(alg.COSE()), k)
}

// hashNamingSigner passes opts to its signer when called with nil options.
type hashNamingSigner struct {
	crypto.Signer
	opts crypto.SignerOpts
}

func (h hashNamingSigner) Sign(rand io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	if opts == nil {
		opts = h.opts
	}
	return h.Signer.Sign(rand, digest, opts)
}

// SigStructure returns the Sig_structure of a COSE_Sign1 without external
// data: ["Signature1", protected, empty bstr, payload], protected being the
// encoded protected header map (the contents of its bstr). Reference: RFC
// 9052 §4.4.
func SigStructure(protected, payload []byte) []byte {
	b := make([]byte, 0, 11+9+len(protected)+1+9+len(payload))
	b = append(b, 0x84, 0x6a)
	b = append(b, "Signature1"...)
	b = appendBstr(b, protected)
	b = append(b, 0x40)
	return appendBstr(b, payload)
}

// appendHead appends a CBOR head of the given major type and argument, in
// its shortest form.
func appendHead(b []byte, major byte, n uint64) []byte {
	m := major << 5
	switch {
	case n < 24:
		return append(b, m|byte(n))
	case n <= 0xff:
		return append(b, m|24, byte(n))
	case n <= 0xffff:
		return binary.BigEndian.AppendUint16(append(b, m|25), uint16(n))
	case n <= 0xffffffff:
		return binary.BigEndian.AppendUint32(append(b, m|26), uint32(n))
	}
	return binary.BigEndian.AppendUint64(append(b, m|27), n)
}

func appendBstr(b, v []byte) []byte {
	return append(appendHead(b, 2, uint64(len(v))), v...)
}

// Encode returns the tagged COSE_Sign1 [protected, {}, payload, signature]
// with an empty unprotected header; protected is the encoded header map.
func Encode(protected, payload, sig []byte) []byte {
	b := make([]byte, 0, 2+3*9+1+len(protected)+len(payload)+len(sig))
	b = append(b, 0xc0|TagSign1, 0x84)
	b = appendBstr(b, protected)
	b = append(b, 0xa0)
	b = appendBstr(b, payload)
	return appendBstr(b, sig)
}

// Sign signs payload under protected (the encoded protected header map,
// which must name signer's algorithm) and returns the tagged COSE_Sign1,
// with an empty unprotected header, and its signature. rand may be nil
// (crypto/rand).
func Sign(rnd io.Reader, signer cose.Signer, protected, payload []byte) (raw, sig []byte, err error) {
	if signer == nil {
		return nil, nil, errors.New("nil signer")
	}
	if rnd == nil {
		rnd = rand.Reader
	}
	sig, err = signer.Sign(rnd, SigStructure(protected, payload))
	if err != nil {
		return nil, nil, err
	}
	return Encode(protected, payload, sig), sig, nil
}

// Verify checks sig over the Sig_structure of protected (the encoded
// protected header map) and payload with v; its errors are go-cose's
// (wrapping [cose.ErrVerification] for a signature that does not verify).
func Verify(v cose.Verifier, protected, payload, sig []byte) error {
	if v == nil {
		return errors.New("nil verifier")
	}
	return v.Verify(SigStructure(protected, payload), sig)
}

// X5Chain returns the x5chain header value of chain (leaf first): one bstr
// for one certificate, an array of bstr for more (RFC 9360 §2), or nil for
// an empty chain.
func X5Chain(chain []*x509.Certificate) any {
	switch len(chain) {
	case 0:
		return nil
	case 1:
		return chain[0].Raw
	}
	ders := make([][]byte, len(chain))
	for i, c := range chain {
		ders[i] = c.Raw
	}
	return ders
}

// ParseX5Chain decodes an x5chain header value strictly into the DER of
// its certificates, leaf first: one bstr, or an array of 2 to [MaxX5Chain]
// bstr (RFC 9360 §2: a single certificate is a bstr). It does not parse the
// certificates. Errors say what is wrong and wrap no sentinel; callers add
// their own.
func ParseX5Chain(raw []byte) ([][]byte, error) {
	if len(raw) > 0 && raw[0]>>5 == 2 {
		var one []byte
		if err := detcbor.Unmarshal(raw, &one, len(raw)); err != nil {
			return nil, fmt.Errorf("x5chain: %w", err)
		}
		return [][]byte{one}, nil
	}
	var items []cbor.RawMessage
	if len(raw) == 0 || raw[0]>>5 != 4 || detcbor.Unmarshal(raw, &items, len(raw)) != nil || len(items) < 2 {
		return nil, errors.New("x5chain is neither a bstr nor an array of two or more bstr")
	}
	if len(items) > MaxX5Chain {
		return nil, fmt.Errorf("x5chain of %d certificates, limit %d", len(items), MaxX5Chain)
	}
	ders := make([][]byte, len(items))
	for i, it := range items {
		if len(it) == 0 || it[0]>>5 != 2 || detcbor.Unmarshal(it, &ders[i], len(it)) != nil {
			return nil, fmt.Errorf("x5chain item %d is not a bstr", i)
		}
	}
	return ders, nil
}

// Message is the signed parts of a COSE_Sign1: the encoded protected
// header map (the contents of its bstr), the payload (attached, or supplied
// by the verifier for a detached one) and the signature.
type Message struct {
	Protected []byte
	Payload   []byte
	Signature []byte
}

// Verify checks m's signature with v (see [Verify]).
func (m *Message) Verify(v cose.Verifier) error {
	return Verify(v, m.Protected, m.Payload, m.Signature)
}
