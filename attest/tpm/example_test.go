package tpm_test

import (
	"fmt"
	"os"

	attesttpm "github.com/ztmkit/ztm/attest/tpm"
)

// Reading a quote: the evidence file holds a TPM2_Quote made by the TPM 2.0
// reference simulator.
func ExampleParseAttest() {
	b, err := os.ReadFile("testdata/quote-evidence.cbor")
	if err != nil {
		panic(err)
	}
	ev, err := attesttpm.ParseEvidence(b, 0)
	if err != nil {
		panic(err)
	}
	a, err := attesttpm.ParseAttest(ev.Attest)
	if err != nil {
		panic(err)
	}
	fmt.Printf("magic %#x type %#x\n", a.Magic, a.Type)
	fmt.Printf("nonce of %d bytes, PCRs %v of bank %#x, digest of %d bytes\n",
		len(a.ExtraData), a.PCRSelection[0].PCRs, a.PCRSelection[0].Hash, len(a.PCRDigest))
	// Output:
	// magic 0xff544347 type 0x8018
	// nonce of 32 bytes, PCRs [0 7] of bank 0xb, digest of 32 bytes
}
