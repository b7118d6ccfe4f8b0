//go:build cgo

package pkcs11_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"log"

	"github.com/ztmkit/ztm/identity/keystore"
	"github.com/ztmkit/ztm/identity/keystore/pkcs11"
)

// Opening a token by URI through the registry, as a provisioning station
// does: the import registers the "pkcs11" scheme, and the PIN is read from
// a file. (It needs the token, so it is compiled but not run here;
// TestOpenByURI runs the same steps on a fresh SoftHSM2 token.)
func Example() {
	ctx := context.Background()
	store, err := keystore.Open(ctx, "pkcs11:token=line1;object=station"+
		"?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/etc/ztm/line1.pin")
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()

	key, err := store.Get(ctx, "station")
	if err != nil {
		key, err = store.Create(ctx, keystore.CreateRequest{Label: "station"})
	}
	if err != nil {
		log.Fatal(err)
	}
	digest := sha256.Sum256([]byte("manifest step"))
	sig, err := key.Sign(nil, digest[:], key.Algorithm().SignerOpts())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s signature of %d bytes\n", key.Algorithm(), len(sig))
}

func ExampleParseURI() {
	cfg, err := pkcs11.ParseURI("pkcs11:token=Line%201;object=station" +
		"?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-value=1234")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(cfg.TokenLabel, cfg.Object, cfg.ModulePath)
	fmt.Println(cfg) // the PIN is never printed
	// Output:
	// Line 1 station /usr/lib/softhsm/libsofthsm2.so
	// pkcs11:token=Line%201;object=station?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-value=REDACTED
}

func ExampleParseURI_error() {
	_, err := pkcs11.ParseURI("pkcs11:token=line1;token=line2?module-path=/usr/lib/softhsm/libsofthsm2.so")
	var ue *keystore.URIError
	if errors.As(err, &ue) {
		fmt.Println("wrong part:", ue.Part)
	}
	fmt.Println(err)
	// Output:
	// wrong part: token
	// keystore: invalid URI "pkcs11:token=line1;token=line2?module-path=/usr/lib/softhsm/libsofthsm2.so": token: appears more than once
}

// A station's token, after the PIN was changed on it: the store tried the
// old PIN once, and fails with keystore.ErrAuth, without trying again
// (which would lock a real HSM's PIN), until the new PIN is given. (It
// needs the token, so it is compiled but not run here; TestStalePINOneLogin
// runs the same steps through a fault-injecting module.)
func ExampleStore_Login() {
	ctx := context.Background()
	store, err := pkcs11.Open(ctx, pkcs11.Config{ModulePath: "/usr/lib/softhsm/libsofthsm2.so",
		TokenLabel: "line1", PINSource: "file:/etc/ztm/line1.pin"})
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	key, err := store.Get(ctx, "station")
	if errors.Is(err, keystore.ErrAuth) {
		// An operator rotated the PIN: log in with the new one.
		if err := store.Login(ctx, "new PIN from the operator"); err != nil {
			log.Fatal(err)
		}
		key, err = store.Get(ctx, "station")
	}
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(key.Label())
}

// Keys made by other tools, with any label or only an id, are named by
// RFC 7512 URI; List names each key so that Get reopens it. (Compiled, not
// run: TestInteropRFC7512Keys runs it on keys pkcs11-tool made.)
func ExampleStore_Get_uri() {
	ctx := context.Background()
	uri := "pkcs11:token=line1;object=station%20key;id=%01" +
		"?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/etc/ztm/line1.pin"
	store, err := keystore.Open(ctx, uri)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	key, err := store.Get(ctx, uri) // the store's URI also names its key
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(key.Label()) // pkcs11:object=station%20key;id=%01
	names, err := store.List(ctx)
	if err != nil {
		log.Fatal(err)
	}
	for _, name := range names {
		if _, err := store.Get(ctx, name); err != nil {
			log.Fatal(err)
		}
	}
}

// Setting up a token for key injection: once, the security officer
// installs the trusted wrapping key; then a station creates exportable
// keys and exports them, sealed to each device, through an Exporter.
// (Compiled, not run: TestStationInjectsFromToken runs it on SoftHSM2.)
func ExampleExporter() {
	ctx := context.Background()
	cfg := pkcs11.Config{ModulePath: "/usr/lib/softhsm/libsofthsm2.so", TokenLabel: "line1",
		PINSource: "file:/etc/ztm/line1.pin"}
	kek := make([]byte, 32) // kept by the injection service, as the PIN is
	if _, err := rand.Read(kek); err != nil {
		log.Fatal(err)
	}
	if err := pkcs11.InstallWrappingKey(ctx, cfg, "SO PIN", "ztm-export", kek); err != nil {
		log.Fatal(err)
	}

	store, err := pkcs11.Open(ctx, cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	exporter := &pkcs11.Exporter{Store: store, WrappingKey: "ztm-export", KEK: kek}
	// Given to a station as ztm.StationConfig{Store: store, Exporter: exporter, …}.
	key, err := store.Create(ctx, keystore.CreateRequest{Label: "device-1", Exportable: true})
	if err != nil {
		log.Fatal(err)
	}
	priv, err := exporter.ExportKey(ctx, key)
	if err != nil {
		log.Fatal(err)
	}
	_ = priv // sealed at once with keyseal.Seal, then the token's copy is deleted
}
