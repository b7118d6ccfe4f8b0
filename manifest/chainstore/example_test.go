package chainstore_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/ztmkit/ztm/manifest"
	"github.com/ztmkit/ztm/manifest/chainstore"
)

// A station appends each step it signs; a fork is refused.
func Example() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "chainstore-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	store, err := chainstore.Open(ctx, filepath.Join(dir, "chains.db"))
	if err != nil {
		log.Fatal(err)
	}
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

	for _, s := range []*manifest.SignedStep{first, second, rival} {
		if _, err := store.Append(ctx, s.Raw); err != nil {
			fmt.Println("refused:", errors.Is(err, chainstore.ErrFork))
		}
	}
	chain, err := store.Chain(ctx, device)
	if err != nil {
		log.Fatal(err)
	}
	for _, s := range chain {
		fmt.Println(s.Step.Sequence, s.Step.Name)
	}
	devices, _ := store.Devices(ctx, "LOT-1")
	fmt.Println(len(devices), "device in LOT-1")
	// Output:
	// refused: true
	// 0 die-sort
	// 1 final-test
	// 1 device in LOT-1
}

// A station that records two steps of a device at once (a key and its
// enrollment, say) stores them together: one durable commit, both or
// neither. Last gives the step the next one must follow.
func ExampleStore_AppendAll() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "chainstore-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	store, err := chainstore.Open(ctx, filepath.Join(dir, "chains.db"))
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()

	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	signer, err := manifest.NewStepSigner(key, manifest.SignOptions{Issuer: "station-1"})
	if err != nil {
		log.Fatal(err)
	}
	device := []byte{0x01, 0x02, 0x04}
	at := time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)
	keyStep, _ := signer.Sign(rand.Reader, &manifest.Step{Name: "key-generation", Subject: device, Time: at, Lot: "LOT-1"})
	prev := manifest.Sum(manifest.SHA256, keyStep.Raw)
	enrolled, _ := signer.Sign(rand.Reader, &manifest.Step{Name: "enrollment", Subject: device, Sequence: 1, Prev: &prev, Time: at, Lot: "LOT-1"})

	if _, err := store.AppendAll(ctx, keyStep.Raw, enrolled.Raw); err != nil {
		log.Fatal(err)
	}
	last, err := store.Last(ctx, device)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(last.Step.Sequence, last.Step.Name)
	// Output:
	// 1 enrollment
}
