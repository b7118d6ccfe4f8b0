package file

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/pem"
	"errors"
	"strings"
	"testing"

	"github.com/ztmkit/ztm/identity/keystore"
	"github.com/ztmkit/ztm/internal/softkey"
)

var testPassword = []byte(testPass)

// lowIter is the iteration count of files made only for parser tests.
const lowIter = 2

func genKey(t testing.TB, alg keystore.Algorithm) crypto.Signer {
	t.Helper()
	k, err := softkey.Generate(nil, alg)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func marshalTest(t testing.TB, key crypto.Signer, iter int) []byte {
	t.Helper()
	data, err := marshalKeyFile(rand.Reader, key, testPassword, iter)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// split returns the parameters of a key file made by marshalKeyFile.
func split(t testing.TB, data []byte) *pbes2Params {
	t.Helper()
	block, _ := pem.Decode(data)
	p, err := parseEncryptedPrivateKeyInfo(block.Bytes, MaxIterations)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func reencode(t testing.TB, salt []byte, iter int, iv, ct []byte) []byte {
	t.Helper()
	data, err := encodeKeyFile(salt, iter, iv, ct)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func publicEqual(a, b crypto.PublicKey) bool {
	e, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && e.Equal(b)
}

func TestKeyFileRoundTrip(t *testing.T) {
	t.Parallel()
	for _, alg := range keystore.Algorithms() {
		t.Run(alg.String(), func(t *testing.T) {
			key := genKey(t, alg)
			data := marshalTest(t, key, lowIter)
			if !bytes.HasPrefix(data, []byte("-----BEGIN ENCRYPTED PRIVATE KEY-----\n")) {
				t.Fatalf("file starts %q", data[:40])
			}
			got, err := parseKeyFile(data, testPassword, MaxIterations)
			if err != nil {
				t.Fatal(err)
			}
			if !publicEqual(got.Public(), key.Public()) {
				t.Fatal("parsed key differs")
			}
			if err := signVerify(got, []byte("round trip")); err != nil {
				t.Fatal(err)
			}
			p := split(t, data)
			if len(p.salt) != saltLen || p.iterations != lowIter || p.keyLen != 32 || len(p.iv) != 16 {
				t.Fatalf("parameters: salt %d bytes, %d iterations, key %d bytes, IV %d bytes", len(p.salt), p.iterations, p.keyLen, len(p.iv))
			}
			// Salt and IV are fresh for every file.
			if p2 := split(t, marshalTest(t, key, lowIter)); bytes.Equal(p2.salt, p.salt) || bytes.Equal(p2.iv, p.iv) {
				t.Fatal("salt or IV repeated")
			}
		})
	}
}

func TestParseKeyFileBadInput(t *testing.T) {
	t.Parallel()
	key := genKey(t, keystore.ES256)
	good := marshalTest(t, key, lowIter)
	p := split(t, good)
	flip := func(i int) []byte {
		ct := bytes.Clone(p.ciphertext)
		ct[i] ^= 0x40
		return reencode(t, p.salt, p.iterations, p.iv, ct)
	}
	lines := strings.Split(strings.TrimSpace(string(good)), "\n")
	body := strings.Join(lines[1:len(lines)-1], "\n")
	block, _ := pem.Decode(good)
	rsa2048, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p521, err := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name     string
		data     []byte
		password []byte
		want     error
	}{
		{"wrong passphrase", good, []byte("wrong"), keystore.ErrAuth},
		{"empty passphrase", good, nil, keystore.ErrAuth},
		{"empty file", nil, nil, ErrCorrupt},
		{"truncated in half", good[:len(good)/2], nil, ErrCorrupt},
		{"truncated END line", good[:len(good)-10], nil, ErrCorrupt},
		{"BEGIN line only", []byte(lines[0] + "\n"), nil, ErrCorrupt},
		{"corrupted base64", []byte(strings.Replace(string(good), body[10:11], "*", 1)), nil, ErrCorrupt},
		{"truncated DER", pem.EncodeToMemory(&pem.Block{Type: pemType, Bytes: block.Bytes[:len(block.Bytes)-16]}), nil, ErrCorrupt},
		{"trailing DER", pem.EncodeToMemory(&pem.Block{Type: pemType, Bytes: append(bytes.Clone(block.Bytes), 0, 0)}), nil, ErrCorrupt},
		{"ciphertext truncated by a block", reencode(t, p.salt, p.iterations, p.iv, p.ciphertext[:len(p.ciphertext)-16]), nil, ErrCorrupt},
		{"ciphertext not whole blocks", reencode(t, p.salt, p.iterations, p.iv, p.ciphertext[:len(p.ciphertext)-3]), nil, ErrCorrupt},
		{"empty ciphertext", reencode(t, p.salt, p.iterations, p.iv, nil), nil, ErrCorrupt},
		{"short IV", reencode(t, p.salt, p.iterations, p.iv[:8], p.ciphertext), nil, ErrCorrupt},
		{"short salt", reencode(t, p.salt[:4], p.iterations, p.iv, p.ciphertext), nil, ErrUnsupportedFormat},
		{"flipped byte, middle block", flip(len(p.ciphertext) / 2), nil, ErrCorrupt},
		{"flipped byte, last block", flip(len(p.ciphertext) - 1), nil, ErrCorrupt},
		{"flipped byte, first block", flip(3), nil, keystore.ErrAuth},
		{"wrong PEM type", bytes.Replace(good, []byte("ENCRYPTED PRIVATE KEY"), []byte("CERTIFICATE"), 2), nil, ErrCorrupt},
		{"unencrypted PKCS#8", bytes.Replace(good, []byte("ENCRYPTED PRIVATE KEY"), []byte("PRIVATE KEY"), 2), nil, ErrUnsupportedFormat},
		{"mismatched END type", bytes.Replace(good, []byte("END ENCRYPTED"), []byte("END FUNNY"), 1), nil, ErrCorrupt},
		{"PEM headers", []byte(lines[0] + "\nProc-Type: 4,ENCRYPTED\n\n" + body + "\n" + lines[len(lines)-1] + "\n"), nil, ErrCorrupt},
		{"trailing garbage", append(bytes.Clone(good), "garbage"...), nil, ErrCorrupt},
		{"second PEM block", append(bytes.Clone(good), good...), nil, ErrCorrupt},
		{"leading garbage", append([]byte("garbage\n"), good...), nil, ErrCorrupt},
		{"huge iteration count", reencode(t, p.salt, 1<<31-1, p.iv, p.ciphertext), nil, ErrUnsupportedFormat},
		{"iteration count above the maximum", reencode(t, p.salt, MaxIterations+1, p.iv, p.ciphertext), nil, ErrUnsupportedFormat},
		{"zero iterations", reencode(t, p.salt, 0, p.iv, p.ciphertext), nil, ErrCorrupt},
		{"negative iterations", reencode(t, p.salt, -1, p.iv, p.ciphertext), nil, ErrCorrupt},
		{"oversize file", bytes.Repeat([]byte(" "), maxFileSize+1), nil, ErrCorrupt},
		{"RSA-2048 key", marshalTest(t, rsa2048, lowIter), nil, keystore.ErrUnsupportedAlgorithm},
		{"P-521 key", marshalTest(t, p521, lowIter), nil, keystore.ErrUnsupportedAlgorithm},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pw := tc.password
			if pw == nil && tc.want != keystore.ErrAuth {
				pw = testPassword
			}
			k, err := parseKeyFile(tc.data, pw, MaxIterations)
			if k != nil || !errors.Is(err, tc.want) {
				t.Fatalf("parseKeyFile = %v, %v; want error wrapping %v", k, err, tc.want)
			}
			var fe *FormatError
			if isFormat := errors.As(err, &fe); isFormat != (tc.want == ErrCorrupt || tc.want == ErrUnsupportedFormat) {
				t.Fatalf("error %v (%T): *FormatError = %v", err, err, isFormat)
			}
			// A wrong passphrase is never reported as corruption, nor
			// corruption as a wrong passphrase.
			if errors.Is(err, keystore.ErrAuth) && errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v is both ErrAuth and ErrCorrupt", err)
			}
		})
	}
}

// Flipping any bit of a key file's salt, IV or ciphertext gives an error,
// never another key: the localKeyID attribute catches what CBC lets
// through. Damage after the first block is reported as corruption.
func TestEveryFlipDetected(t *testing.T) {
	t.Parallel()
	for _, alg := range []keystore.Algorithm{keystore.ES256, keystore.EdDSA} {
		key := genKey(t, alg)
		p := split(t, marshalTest(t, key, 1))
		check := func(where string, i int, data []byte, blockIndex int) {
			k, err := parseKeyFile(data, testPassword, MaxIterations)
			if err == nil {
				if !publicEqual(k.Public(), key.Public()) {
					t.Fatalf("%v: flipping %s byte %d decrypted to another key", alg, where, i)
				}
				return // the flip hit bytes the parser ignores
			}
			// A flip in the first block may also turn the algorithm OID
			// into one ztm does not use.
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, keystore.ErrAuth) &&
				!(blockIndex < 1 && errors.Is(err, keystore.ErrUnsupportedAlgorithm)) {
				t.Fatalf("%v: flipping %s byte %d: %v", alg, where, i, err)
			}
			if blockIndex >= 1 && !errors.Is(err, ErrCorrupt) {
				t.Fatalf("%v: flipping ciphertext byte %d (block %d): %v, want ErrCorrupt", alg, i, blockIndex, err)
			}
		}
		for i := range p.ciphertext {
			ct := bytes.Clone(p.ciphertext)
			ct[i] ^= 1 << (i % 8)
			check("ciphertext", i, reencode(t, p.salt, 1, p.iv, ct), i/16)
		}
		for i := range p.iv {
			iv := bytes.Clone(p.iv)
			iv[i] ^= 0x80
			check("IV", i, reencode(t, p.salt, 1, iv, p.ciphertext), -1)
		}
		for i := range p.salt {
			salt := bytes.Clone(p.salt)
			salt[i] ^= 0x01
			data := reencode(t, salt, 1, p.iv, p.ciphertext)
			if _, err := parseKeyFile(data, testPassword, MaxIterations); !errors.Is(err, keystore.ErrAuth) {
				t.Fatalf("%v: flipping salt byte %d: %v, want ErrAuth", alg, i, err)
			}
		}
	}
}
