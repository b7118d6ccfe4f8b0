package tpm_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"fmt"
	"log"
	"os"

	"github.com/google/go-tpm-tools/simulator"
	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"

	"github.com/ztmkit/ztm/identity/keystore"
	"github.com/ztmkit/ztm/identity/keystore/tpm"
)

// Opening the machine's TPM by URI, through the keystore registry. The
// blank import registers the "tpm" scheme. (Not run: it needs a TPM.)
func Example_open() {
	ctx := context.Background()
	store, err := keystore.Open(ctx, "tpm:/dev/tpmrm0?dir=/var/lib/ztm/tpmkeys")
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()

	key, err := store.Create(ctx, keystore.CreateRequest{Label: "station"})
	if err != nil {
		log.Fatal(err)
	}
	digest := sha256.Sum256([]byte("manifest step"))
	sig, err := key.Sign(rand.Reader, digest[:], crypto.SHA256)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%d-byte signature\n", len(sig))
}

// A store on the TPM 2.0 simulator, made with New instead of a URI.
func ExampleNew() {
	sim, err := simulator.Get() // go-tpm-tools' in-process simulator
	if err != nil {
		log.Fatal(err)
	}
	defer sim.Close()
	dir, err := os.MkdirTemp("", "tpmkeys")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	ctx := context.Background()
	store, err := tpm.New(ctx, transport.FromReadWriter(sim), tpm.Config{Dir: dir})
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()

	key, err := store.Create(ctx, keystore.CreateRequest{Label: "device-id", Algorithm: keystore.ES384})
	if err != nil {
		log.Fatal(err)
	}
	digest := sha512.New384()
	digest.Write([]byte("hello"))
	sig, err := key.Sign(rand.Reader, digest.Sum(nil), crypto.SHA384)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(key.Label(), key.Algorithm())
	fmt.Println("verifies:", ecdsa.VerifyASN1(key.Public().(*ecdsa.PublicKey), digest.Sum(nil), sig))
	fmt.Println("PS256 on this TPM:", store.Supports(keystore.PS256))
	// Output:
	// device-id ES384
	// verifies: true
	// PS256 on this TPM: false
}

// A quote over PCRs 0 to 7 with a verifier's nonce, checked the way a
// verifier does.
func ExampleStore_Quote() {
	sim, err := simulator.Get()
	if err != nil {
		log.Fatal(err)
	}
	defer sim.Close()
	dir, err := os.MkdirTemp("", "tpmkeys")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()
	store, err := tpm.New(ctx, transport.FromReadWriter(sim), tpm.Config{Dir: dir})
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()

	ak, err := store.CreateAttestationKey(ctx, "ak")
	if err != nil {
		log.Fatal(err)
	}
	nonce := []byte("verifier nonce, single use")
	q, err := store.Quote(ctx, "ak", nonce, []int{0, 1, 2, 3, 4, 5, 6, 7})
	if err != nil {
		log.Fatal(err)
	}

	digest := sha256.Sum256(q.Attest)
	fmt.Println("signature:", ecdsa.VerifyASN1(ak.Public().(*ecdsa.PublicKey), digest[:], q.SignatureDER))
	attest, err := tpm2.Unmarshal[tpm2.TPMSAttest](q.Attest)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("quote:", attest.Type == tpm2.TPMSTAttestQuote)
	fmt.Println("nonce:", bytes.Equal(attest.ExtraData.Buffer, nonce))
	fmt.Println("PCRs:", len(q.PCRs))
	// Output:
	// signature: true
	// quote: true
	// nonce: true
	// PCRs: 8
}
