// Command opener is the smallest device-side program of key injection: it
// opens a sealed key and nothing else. TestDeviceSideSize builds it to
// hold the size of what a device program links.
package main

import (
	"crypto/ecdh"
	"crypto/rand"
	"fmt"
	"os"

	"github.com/ztmkit/ztm/identity/keyseal"
)

func main() {
	k, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	_, err = keyseal.Open(k, []byte{1}, &keyseal.Sealed{})
	fmt.Fprintln(os.Stderr, err)
}
