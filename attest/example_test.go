package attest_test

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

// counter is a deterministic "random" source for examples.
type counter struct{ n byte }

func (c *counter) Read(p []byte) (int, error) {
	for i := range p {
		c.n++
		p[i] = c.n
	}
	return len(p), nil
}

// A test jig challenges a device, verifies its answer and reads the
// decision.
func Example_jig() {
	ctx := context.Background()
	now := func() time.Time { return time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC) }

	// The device, with its attestation key in a key store.
	key, err := mem.New().Create(ctx, keystore.CreateRequest{Label: "attestation"})
	if err != nil {
		panic(err)
	}
	device, err := devicesim.New(devicesim.Config{
		Key: key, KeyID: []byte("sensor-0001"),
		UEID: append([]byte{0x01}, make([]byte, 16)...), OEMID: []byte{0x00, 0x1b, 0x63}, HWModel: []byte("sensor-v2"),
		SWName: "sensor-fw", SWVersion: "2.3.1",
		Images: map[string][]byte{"firmware": []byte("firmware image")},
		Time:   now,
	})
	if err != nil {
		panic(err)
	}

	// The jig's verifier: the registered device key, nonces, and the
	// reference values of the model.
	nonces := attest.NewNonces(attest.NonceConfig{Time: now, Rand: &counter{}})
	verifier, err := attest.NewVerifier(attest.Config{
		Keys:            map[string]crypto.PublicKey{"sensor-0001": key.Public()},
		Nonces:          nonces,
		ReferenceValues: []attest.ReferenceValues{device.ReferenceValues()},
		Time:            now,
		VerifierID:      attest.VerifierID{Build: "jig 1.0", Developer: "https://oem.example"},
	})
	if err != nil {
		panic(err)
	}

	// 1. Challenge, 2. evidence, 3. appraisal.
	nonce, err := nonces.Issue()
	if err != nil {
		panic(err)
	}
	fmt.Printf("nonce %x…\n", nonce[:4])
	evidence, err := device.EvidenceCWT(nonce)
	if err != nil {
		panic(err)
	}
	result, err := verifier.Verify(ctx, evidence)
	if err != nil {
		panic(err)
	}
	a := result.Submods["device"]
	fmt.Println("status:", result.Status())
	fmt.Printf("hardware %d, configuration %d, executables %d\n",
		a.TrustVector.Hardware, a.TrustVector.Configuration, a.TrustVector.Executables)

	// A tampered device is refused, and the Result says why.
	device.SetTamper(devicesim.Tamper{DebugEnabled: true})
	nonce, _ = nonces.Issue()
	evidence, _ = device.EvidenceCWT(nonce)
	result, err = verifier.Verify(ctx, evidence)
	fmt.Println("refused:", errors.Is(err, attest.ErrPolicy), result.Status())
	fmt.Println(result.Reasons()[0])
	// Output:
	// nonce 01020304…
	// status: affirming
	// hardware 2, configuration 2, executables 2
	// refused: true contraindicated
	// device: debug-enabled: dbgstat enabled, want at least disabled
}

func ExampleNonces() {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	nonces := attest.NewNonces(attest.NonceConfig{TTL: time.Minute, Time: func() time.Time { return now }})
	n, _ := nonces.Issue()
	fmt.Println(nonces.Consume(n))
	fmt.Println(errors.Is(nonces.Consume(n), attest.ErrNonceReused))
	m, _ := nonces.Issue()
	now = now.Add(time.Minute)
	fmt.Println(errors.Is(nonces.Consume(m), attest.ErrNonceExpired))
	// Output:
	// <nil>
	// true
	// true
}

// Claims encode deterministically, with the registered integer keys.
func ExampleClaims_MarshalCBOR() {
	c := &attest.Claims{
		Nonce:       []byte("01234567"),
		OEMID:       []byte{0x00, 0x1b, 0x63},
		DebugStatus: attest.DebugPtr(attest.DebugDisabledPermanently),
	}
	b, err := c.MarshalCBOR()
	if err != nil {
		panic(err)
	}
	fmt.Printf("%x\n", b)
	j, _ := c.MarshalJSON()
	fmt.Println(string(j))
	// Output:
	// a30a48303132333435363719010243001b6319010703
	// {"dbgstat":"disabled-permanently","eat_nonce":"MDEyMzQ1Njc","oemid":"ABtj"}
}

// A verifier signs its Result as an EAR JWT; the CA reads it back.
func ExampleResult_SignJWT() {
	ctx := context.Background()
	verifierKey, _ := mem.New().Create(ctx, keystore.CreateRequest{Label: "verifier"})
	r := &attest.Result{
		Profile:  attest.EARProfile,
		IssuedAt: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC),
		Submods: map[string]*attest.Appraisal{"device": {
			Status:      attest.StatusAffirming,
			TrustVector: attest.TrustVector{Hardware: attest.TrustGenuineHardware},
		}},
	}
	token, err := r.SignJWT(nil, verifierKey, &attest.SignOptions{KeyID: []byte("verifier-1")})
	if err != nil {
		panic(err)
	}
	back, err := attest.ParseResult(token, verifierKey.Public(), nil)
	if err != nil {
		panic(err)
	}
	fmt.Println(back.Status(), back.Submods["device"].TrustVector.Hardware, len(back.Digest()))
	// Output:
	// affirming 2 32
}

// A line's verifier looks attestation keys up in a KeySet, so that the
// keys of a new lot of chips are accepted from the moment they are added,
// without making a new verifier.
func ExampleKeySet() {
	ctx := context.Background()
	now := func() time.Time { return time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC) }
	key, err := mem.New().Create(ctx, keystore.CreateRequest{Label: "attestation"})
	if err != nil {
		panic(err)
	}
	device, err := devicesim.New(devicesim.Config{
		Key: key, KeyID: []byte("lot-7/0001"),
		UEID: append([]byte{0x01}, make([]byte, 16)...), OEMID: []byte{0x00, 0x1b, 0x63}, HWModel: []byte("sensor-v2"),
		SWName: "sensor-fw", SWVersion: "2.3.1",
		Images: map[string][]byte{"firmware": []byte("firmware image")},
		Time:   now,
	})
	if err != nil {
		panic(err)
	}

	var keys attest.KeySet
	verifier, err := attest.NewVerifier(attest.Config{
		KeyLookup:       keys.Lookup,
		Nonces:          attest.NewNonces(attest.NonceConfig{Time: now}),
		ReferenceValues: []attest.ReferenceValues{device.ReferenceValues()},
		Time:            now,
	})
	if err != nil {
		panic(err)
	}
	verify := func() error {
		nonce, err := verifier.Nonces().Issue()
		if err != nil {
			return err
		}
		evidence, err := device.EvidenceCWT(nonce)
		if err != nil {
			return err
		}
		_, err = verifier.Verify(ctx, evidence)
		return err
	}

	fmt.Println("before:", errors.Is(verify(), attest.ErrUntrustedSigner))
	// The chip vendor delivers lot 7's attestation keys while the line runs.
	if err := keys.Add([]byte("lot-7/0001"), key.Public()); err != nil {
		panic(err)
	}
	fmt.Println("after:", verify())
	// Output:
	// before: true
	// after: <nil>
}
