package devicesim_test

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"time"

	"github.com/ztmkit/ztm/attest"
	"github.com/ztmkit/ztm/attest/devicesim"
	"github.com/ztmkit/ztm/identity/keystore"
	"github.com/ztmkit/ztm/identity/keystore/mem"
)

// A simulated device answers a nonce with JWT evidence; a tampered one
// reports what an attacker changed.
func ExampleDevice() {
	key, err := mem.New().Create(context.Background(), keystore.CreateRequest{Label: "ak"})
	if err != nil {
		panic(err)
	}
	dev, err := devicesim.New(devicesim.Config{
		Key: key, KeyID: []byte("dev-1"),
		UEID: append([]byte{0x01}, make([]byte, 16)...), OEMID: []byte{0x00, 0x1b, 0x63}, HWModel: []byte("m1"),
		Images: map[string][]byte{"firmware": []byte("v1")},
		Time:   func() time.Time { return time.Unix(1772366400, 0) },
	})
	if err != nil {
		panic(err)
	}
	v, _ := attest.NewVerifier(attest.Config{Keys: map[string]crypto.PublicKey{"dev-1": key.Public()}})
	nonce := make([]byte, 32)

	tok, _ := dev.EvidenceJWT(nonce)
	ev, err := v.Decode(tok)
	if err != nil {
		panic(err)
	}
	fmt.Println(ev.Format, *ev.Claims.DebugStatus, *ev.Claims.SecureBoot)
	fmt.Printf("%s %x\n", ev.Claims.Measurements[0].Name, ev.Claims.Measurements[0].Digest[:4])

	dev.SetTamper(devicesim.Tamper{DebugEnabled: true, WrongMeasurement: "firmware"})
	tok, _ = dev.EvidenceJWT(nonce)
	ev, _ = v.Decode(tok)
	fmt.Println(*ev.Claims.DebugStatus)
	fmt.Printf("%s %x\n", ev.Claims.Measurements[0].Name, ev.Claims.Measurements[0].Digest[:4])

	// The device generates its identity key; its evidence names it.
	idKey, _ := mem.New().Create(context.Background(), keystore.CreateRequest{Label: "idevid"})
	other, _ := mem.New().Create(context.Background(), keystore.CreateRequest{Label: "station"})
	dev.BindKey(idKey.Public())
	tok, _ = dev.EvidenceCWT(nonce)
	ev, _ = v.Decode(tok)
	fmt.Println(ev.ConfirmKey(idKey.Public()) == nil, errors.Is(ev.ConfirmKey(other.Public()), attest.ErrKeyNotConfirmed))
	// Output:
	// JWT disabled-since-boot true
	// firmware 3bfc2695
	// enabled
	// firmware c4fc2695
	// true true
}
