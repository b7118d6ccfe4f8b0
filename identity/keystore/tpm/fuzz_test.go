package tpm

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"errors"
	"math/big"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-tpm/tpm2"

	"github.com/ztmkit/ztm/identity/keystore"
)

// validKeyFile builds a well-formed key file for alg from a software key,
// as TPM2_Create would return it (with a stand-in private blob).
func validKeyFile(t testing.TB, alg keystore.Algorithm, restricted bool) []byte {
	pub := keyTemplate(alg, restricted)
	switch alg {
	case keystore.PS256:
		n := new(big.Int).Lsh(big.NewInt(1), keystore.RSABits-1)
		n.Add(n, big.NewInt(12345))
		pub.Unique = tpm2.NewTPMUPublicID(tpm2.TPMAlgRSA, &tpm2.TPM2BPublicKeyRSA{Buffer: n.Bytes()})
	default:
		curve := elliptic.P256()
		if alg == keystore.ES384 {
			curve = elliptic.P384()
		}
		// The curve's generator: a valid point with no key generation.
		p := curve.Params()
		size := (p.BitSize + 7) / 8
		pub.Unique = tpm2.NewTPMUPublicID(tpm2.TPMAlgECC, &tpm2.TPMSECCPoint{
			X: tpm2.TPM2BECCParameter{Buffer: p.Gx.FillBytes(make([]byte, size))},
			Y: tpm2.TPM2BECCParameter{Buffer: p.Gy.FillBytes(make([]byte, size))},
		})
	}
	kf := &keyFile{
		parentName: append([]byte{0, 0x0b}, bytes.Repeat([]byte{0xaa}, 32)...),
		public:     tpm2.Marshal(&pub),
		private:    bytes.Repeat([]byte{0x55}, 126),
	}
	b := kf.marshal()
	if _, err := parseKeyFile(b); err != nil {
		t.Fatalf("seed for %v does not parse: %v", alg, err)
	}
	return b
}

func FuzzParseKeyFile(f *testing.F) {
	for _, alg := range []keystore.Algorithm{keystore.ES256, keystore.ES384, keystore.PS256} {
		f.Add(validKeyFile(f, alg, false))
	}
	ak := validKeyFile(f, keystore.ES256, true)
	f.Add(ak)
	f.Add(ak[:len(ak)-1])
	f.Add(append(bytes.Clone(ak), 0))
	f.Add([]byte(keyFileMagic))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		kf, err := parseKeyFile(data)
		if err != nil {
			return
		}
		if !bytes.Equal(kf.marshal(), data) || !bytes.Equal(kf.raw, data) {
			t.Fatal("a parsed key file does not marshal back to its bytes")
		}
		if got, err := keystore.AlgorithmOf(kf.pub); err != nil || got != kf.alg {
			t.Fatalf("parsed key says %v, its public key %v (%v)", kf.alg, got, err)
		}
		if kf.restricted && kf.alg != keystore.ES256 {
			t.Fatalf("restricted %v key accepted", kf.alg)
		}
		switch p := kf.pub.(type) {
		case *ecdsa.PublicKey:
			if _, err := p.ECDH(); err != nil {
				t.Fatal("accepted a point off the curve")
			}
		case *rsa.PublicKey:
		default:
			t.Fatalf("public key of type %T", p)
		}
	})
}

func TestKeyFileRefusals(t *testing.T) {
	good := validKeyFile(t, keystore.ES256, false)
	tpub, _ := tpm2.Unmarshal[tpm2.TPMTPublic](mustPublic(t, good))
	mutate := func(f func(p *tpm2.TPMTPublic)) []byte {
		p := *tpub
		f(&p)
		kf := &keyFile{parentName: []byte{0, 0x0b, 1}, public: tpm2.Marshal(&p), private: []byte{1}}
		return kf.marshal()
	}
	for name, data := range map[string][]byte{
		"empty":        nil,
		"magic":        append([]byte("ZTMTPMK2"), good[8:]...),
		"truncated":    good[:len(good)-3],
		"trailing":     append(bytes.Clone(good), 0),
		"decrypt key":  mutate(func(p *tpm2.TPMTPublic) { p.ObjectAttributes.Decrypt = true }),
		"not fixedTPM": mutate(func(p *tpm2.TPMTPublic) { p.ObjectAttributes.FixedTPM = false }),
		"SHA-1 name":   mutate(func(p *tpm2.TPMTPublic) { p.NameAlg = tpm2.TPMAlgSHA1 }),
		"P-521": mutate(func(p *tpm2.TPMTPublic) {
			p.Parameters = tpm2.NewTPMUPublicParms(tpm2.TPMAlgECC, &tpm2.TPMSECCParms{CurveID: tpm2.TPMECCNistP521, Scheme: tpm2.TPMTECCScheme{Scheme: tpm2.TPMAlgECDSA, Details: tpm2.NewTPMUAsymScheme(tpm2.TPMAlgECDSA, &tpm2.TPMSSigSchemeECDSA{HashAlg: tpm2.TPMAlgSHA256})}})
		}),
		"off curve": mutate(func(p *tpm2.TPMTPublic) {
			pt, _ := p.Unique.ECC()
			q := *pt
			q.Y = tpm2.TPM2BECCParameter{Buffer: bytes.Repeat([]byte{1}, 32)}
			p.Unique = tpm2.NewTPMUPublicID(tpm2.TPMAlgECC, &q)
		}),
	} {
		if _, err := parseKeyFile(data); err == nil {
			t.Errorf("%s: parseKeyFile accepted it", name)
		}
	}
}

func mustPublic(t *testing.T, file []byte) []byte {
	kf, err := parseKeyFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return kf.public
}

func FuzzParseURI(f *testing.F) {
	for _, s := range []string{
		"tpm:/dev/tpmrm0?dir=/var/lib/ztm/tpmkeys",
		"tpm:?dir=/k",
		"TPM:/dev/tpm0?dir=/k&max-loaded=2",
		"tpm:swtpm?host=127.0.0.1&port=2321&dir=/k",
		"tpm:swtpm?host=::1&port=2321&dir=/k",
		"tpm:swtpm?host=localhost&dir=/k",
		"tpm:swtpm?port=65535&dir=/k",
		"tpm://x/dev?dir=/k",
		"tpm:/dev/tpmrm0?dir=/k&dir=/j",
		"tpm:/dev/%2e%2e/x?dir=/k",
		"tpm:/dev/tpmrm0?dir=%2Fk%00",
		"tpm:swtpm?host=10.0.0.1&dir=/k",
		"pkcs11:token=x",
		"tpm",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, uri string) {
		c, err := parseURI(uri)
		if err != nil {
			var ue *keystore.URIError
			if !errors.As(err, &ue) || ue.Part == "" {
				t.Fatalf("error %v is not a *keystore.URIError naming a part", err)
			}
			return
		}
		if !filepath.IsAbs(c.dir) || filepath.Clean(c.dir) != c.dir || strings.ContainsRune(c.dir, 0) {
			t.Fatalf("accepted dir %q", c.dir)
		}
		if c.maxLoaded < 0 || c.maxLoaded > 64 {
			t.Fatalf("accepted max-loaded %d", c.maxLoaded)
		}
		switch {
		case c.device != "":
			if !filepath.IsAbs(c.device) || filepath.Clean(c.device) != c.device || c.addr != "" {
				t.Fatalf("accepted device %q", c.device)
			}
		default:
			for _, a := range []string{c.addr} {
				host, port, err := net.SplitHostPort(a)
				n, perr := strconv.Atoi(port)
				if err != nil || !isLoopback(host) || perr != nil || n < 1 || n > 65535 {
					t.Fatalf("accepted TCP address %q", a)
				}
			}
		}
	})
}
