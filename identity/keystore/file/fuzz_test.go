package file

import (
	"bytes"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/ztmkit/ztm/identity/keystore"
)

// fuzzMaxIter bounds the iteration count in the fuzz target, so that each
// input costs at most a few milliseconds; the bound is itself under test.
const fuzzMaxIter = 4096

// FuzzParseKeyFile feeds key files and passwords to the parser. Seeds: a
// key file of each fast algorithm written by the store (one iteration),
// damaged copies of them, and encrypted keys openssl wrote
// (testdata/openssl-*.pem, passphrase "ztm-test", 2048 iterations).
// Whatever the input, the parser returns a key or a typed error, and never
// panics.
func FuzzParseKeyFile(f *testing.F) {
	for _, alg := range []keystore.Algorithm{keystore.ES256, keystore.ES384, keystore.EdDSA} {
		key := genKey(f, alg)
		data, err := marshalKeyFile(rand.Reader, key, testPassword, 1)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data, testPassword)
		f.Add(data, []byte("wrong"))
		f.Add(data[:len(data)/2], testPassword)
		f.Add(append(bytes.Clone(data), "trailing"...), testPassword)
		p := split(f, data)
		ct := bytes.Clone(p.ciphertext)
		ct[len(ct)/2] ^= 1
		if flipped, err := encodeKeyFile(p.salt, 1, p.iv, ct); err == nil {
			f.Add(flipped, testPassword)
		}
		if huge, err := encodeKeyFile(p.salt, 1<<31-1, p.iv, p.ciphertext); err == nil {
			f.Add(huge, testPassword)
		}
	}
	files, _ := filepath.Glob(filepath.Join("testdata", "openssl-*.pem"))
	if len(files) == 0 {
		f.Fatal("no testdata/openssl-*.pem seeds")
	}
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data, []byte("ztm-test"))
	}
	f.Fuzz(func(t *testing.T, data, password []byte) {
		key, err := parseKeyFile(data, password, fuzzMaxIter)
		if err != nil {
			if key != nil {
				t.Fatal("key returned with an error")
			}
			var fe *FormatError
			isFormat := errors.As(err, &fe)
			switch {
			case isFormat && (errors.Is(err, ErrCorrupt) || errors.Is(err, ErrUnsupportedFormat)):
			case !isFormat && (errors.Is(err, keystore.ErrAuth) || errors.Is(err, keystore.ErrUnsupportedAlgorithm)):
			default:
				t.Fatalf("untyped error %T: %v", err, err)
			}
			return
		}
		alg, err := keystore.AlgorithmOf(key.Public())
		if err != nil {
			t.Fatalf("parsed a key ztm does not use: %v", err)
		}
		if alg != keystore.PS256 { // RSA signing is too slow to fuzz
			if err := signVerify(key, []byte("fuzz")); err != nil {
				t.Fatalf("parsed %v key does not sign: %v", alg, err)
			}
		}
	})
}

// The openssl seeds decrypt, so the fuzzer starts from valid files.
func TestOpensslSeedsParse(t *testing.T) {
	t.Parallel()
	files, _ := filepath.Glob(filepath.Join("testdata", "openssl-*.pem"))
	for _, name := range files {
		key, err := parseKeyFile(mustRead(t, name), []byte("ztm-test"), fuzzMaxIter)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := signVerify(key, []byte("seed")); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
}
