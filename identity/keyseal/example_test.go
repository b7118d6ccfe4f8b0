package keyseal_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"

	"github.com/ztmkit/ztm/identity/keyseal"
)

// The device side of key injection: a key sealed to the device's
// attestation key opens only with that key, for that device.
func ExampleOpen() {
	deviceAK, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ueid := []byte{0x02, 0x00, 0x00, 0x5e, 0xfe, 0x00, 0x00, 0x00, 0x01}
	injected, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)

	sealed, err := keyseal.Seal(deviceAK.Public(), ueid, injected) // station side
	if err != nil {
		panic(err)
	}
	fmt.Printf("HPKE suite: KEM %#04x, KDF %#04x, AEAD %#04x\n", sealed.KEM, sealed.KDF, sealed.AEAD)

	key, err := keyseal.Open(deviceAK, ueid, sealed) // device side
	fmt.Println(err == nil && key.Public().(*ecdsa.PublicKey).Equal(injected.Public()))

	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, err = keyseal.Open(other, ueid, sealed)
	fmt.Println(errors.Is(err, keyseal.ErrOpen))
	// Output:
	// HPKE suite: KEM 0x0010, KDF 0x0001, AEAD 0x0001
	// true
	// true
}
