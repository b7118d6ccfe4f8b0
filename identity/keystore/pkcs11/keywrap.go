package pkcs11

import (
	"crypto/aes"
	"crypto/subtle"
	"encoding/binary"
	"errors"
)

// errUnwrap is the one error of unwrapKWP: which check failed is not
// told, as for any authenticated decryption.
var errUnwrap = errors.New("pkcs11: the wrapped key does not unwrap under the key-encryption key (AES-KWP integrity check failed)")

// unwrapKWP undoes AES Key Wrap with Padding (CKM_AES_KEY_WRAP_PAD) of
// ciphertext under kek, a 16-, 24- or 32-byte AES key, checking the
// integrity value and the padding.
//
// Reference: RFC 5649 §4.2 (NIST SP 800-38F KWP-AD).
func unwrapKWP(kek, ciphertext []byte) ([]byte, error) {
	block, err := aes.NewCipher(kek)
	if err != nil {
		return nil, errors.New("pkcs11: the key-encryption key is not a 16-, 24- or 32-byte AES key")
	}
	if len(ciphertext) < 16 || len(ciphertext)%8 != 0 {
		return nil, errUnwrap
	}
	n := len(ciphertext)/8 - 1
	var a [8]byte
	r := make([]byte, 8*n)
	if n == 1 {
		var b [16]byte
		block.Decrypt(b[:], ciphertext)
		copy(a[:], b[:8])
		copy(r, b[8:])
	} else {
		// RFC 3394 §2.2.2, the index-based form.
		copy(a[:], ciphertext[:8])
		copy(r, ciphertext[8:])
		var b [16]byte
		for j := 5; j >= 0; j-- {
			for i := n; i >= 1; i-- {
				t := uint64(n*j + i)
				binary.BigEndian.PutUint64(b[:8], binary.BigEndian.Uint64(a[:])^t)
				copy(b[8:], r[8*(i-1):8*i])
				block.Decrypt(b[:], b[:])
				copy(a[:], b[:8])
				copy(r[8*(i-1):8*i], b[8:])
			}
		}
	}
	// The alternative initial value: A65959A6 and the 32-bit length.
	mli := int(binary.BigEndian.Uint32(a[4:]))
	ok := subtle.ConstantTimeCompare(a[:4], []byte{0xa6, 0x59, 0x59, 0xa6})
	if mli <= 8*(n-1) || mli > 8*n {
		ok = 0
		mli = 8 * n
	}
	pad := r[mli:]
	ok &= subtle.ConstantTimeCompare(pad, make([]byte, len(pad)))
	if ok != 1 {
		clear(r)
		return nil, errUnwrap
	}
	return r[:mli], nil
}
