package file_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/ztmkit/ztm/identity/keystore"
	"github.com/ztmkit/ztm/identity/keystore/file" // also registers "file:"
)

// Example opens a file key store by URI, reading the passphrase from a
// file, creates two keys and lists them. The key files are encrypted PKCS#8
// that openssl reads with `openssl pkey -in <label>.pem -passin file:<pass>`.
func Example() {
	ctx := context.Background()
	tmp, err := os.MkdirTemp("", "ztm-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	passFile := filepath.Join(tmp, "pass")
	if err := os.WriteFile(passFile, []byte("station passphrase\n"), 0o600); err != nil {
		log.Fatal(err)
	}

	store, err := keystore.Open(ctx, "file:"+tmp+"/keys?passphrase-source=file:"+passFile)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()

	key, err := store.Create(ctx, keystore.CreateRequest{Label: "station-1"})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := store.Create(ctx, keystore.CreateRequest{Label: "device-0001", Algorithm: keystore.EdDSA}); err != nil {
		log.Fatal(err)
	}
	digest := sha256.Sum256([]byte("hello"))
	if _, err := key.Sign(rand.Reader, digest[:], key.Algorithm().SignerOpts()); err != nil {
		log.Fatal(err)
	}
	labels, err := store.List(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(key.Label(), key.Algorithm())
	fmt.Println(labels)
	// Output:
	// station-1 ES256
	// [device-0001 station-1]
}

// ExampleOpen opens a store without the registry, under a 32-byte
// key-encryption key instead of a passphrase.
func ExampleOpen() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "ztm-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	kek := make([]byte, file.KEKSize) // in practice: unsealed from a TPM, or from a secrets manager
	if _, err := rand.Read(kek); err != nil {
		log.Fatal(err)
	}
	store, err := file.Open(filepath.Join(dir, "keys"), file.Config{KEK: kek})
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	if _, err := store.Create(ctx, keystore.CreateRequest{Label: "line-1"}); err != nil {
		log.Fatal(err)
	}
	_, err = store.Create(ctx, keystore.CreateRequest{Label: "line-1"})
	fmt.Println(errors.Is(err, keystore.ErrExists))

	_, err = file.Open(filepath.Join(dir, "keys"), file.Config{})
	fmt.Println(errors.Is(err, file.ErrNoCredential))
	// Output:
	// true
	// true
}
