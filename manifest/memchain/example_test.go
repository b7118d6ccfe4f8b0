package memchain_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/ztmkit/ztm/manifest"
	"github.com/ztmkit/ztm/manifest/memchain"
)

// A test or a demo keeps a line's steps in memory: each step is appended
// as it is signed, a fork is refused, and the chain read back verifies.
func Example() {
	ctx := context.Background()
	store := memchain.New() // lost when the process ends
	defer store.Close()

	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	signer, err := manifest.NewStepSigner(key, manifest.SignOptions{Issuer: "station-1"})
	if err != nil {
		log.Fatal(err)
	}
	device := []byte{0x01, 0x02, 0x03}
	at := time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)
	first, _ := signer.Sign(rand.Reader, &manifest.Step{Name: "die-sort", Subject: device, Time: at, Lot: "LOT-1"})
	prev := manifest.Sum(manifest.SHA256, first.Raw)
	second, _ := signer.Sign(rand.Reader, &manifest.Step{Name: "final-test", Subject: device, Sequence: 1, Prev: &prev, Time: at, Lot: "LOT-1"})
	rival, _ := signer.Sign(rand.Reader, &manifest.Step{Name: "rework", Subject: device, Sequence: 1, Prev: &prev, Time: at, Lot: "LOT-1"})

	if _, err := store.AppendAll(ctx, first.Raw, second.Raw); err != nil {
		log.Fatal(err)
	}
	_, err = store.Append(ctx, rival.Raw)
	fmt.Println("rival refused as a fork:", errors.Is(err, manifest.ErrFork))

	chain, err := store.Chain(ctx, device)
	if err != nil {
		log.Fatal(err)
	}
	for _, s := range chain {
		fmt.Println(s.Step.Sequence, s.Step.Name)
	}
	policy := &manifest.Policy{
		Name: "line-1",
		Keys: []manifest.PolicyKey{{Name: "station-1", Public: key.Public()}},
		Steps: []manifest.StepRule{
			{Name: "die-sort", Signers: []string{"station-1"}},
			{Name: "final-test", Signers: []string{"station-1"}},
		},
	}
	report := manifest.Verify(ctx, chain, policy, &manifest.VerifyOptions{CurrentTime: at})
	fmt.Println("verified:", report.Err() == nil)
	devices, _ := store.Devices(ctx, "LOT-1")
	fmt.Println(len(devices), "device in LOT-1")
	// Output:
	// rival refused as a fork: true
	// 0 die-sort
	// 1 final-test
	// verified: true
	// 1 device in LOT-1
}
