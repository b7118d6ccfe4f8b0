package manifest_test

import (
	"context"
	"crypto/rand"
	"errors"
	"testing"

	"github.com/ztmkit/ztm/identity/keystore"
	"github.com/ztmkit/ztm/identity/keystore/mem"
	"github.com/ztmkit/ztm/manifest"
)

// TestKeystoreKeys signs and verifies steps with keystore keys of every
// algorithm ztm uses, and checks that an algorithm the key does not have is
// refused.
func TestKeystoreKeys(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := mem.New()
	defer store.Close()
	f := newFixture(t)
	for _, alg := range keystore.Algorithms() {
		t.Run(alg.String(), func(t *testing.T) {
			key, err := store.Create(ctx, keystore.CreateRequest{Label: "station-" + alg.String(), Algorithm: alg})
			if err != nil {
				t.Fatal(err)
			}
			signer, err := manifest.NewStepSigner(key, manifest.SignOptions{Issuer: key.Label()})
			if err != nil {
				t.Fatal(err)
			}
			if signer.Algorithm() != alg {
				t.Fatalf("signer algorithm %v", signer.Algorithm())
			}
			ss, err := signer.Sign(rand.Reader, f.newStep(manifest.StepDieSort, 0, nil))
			if err != nil {
				t.Fatal(err)
			}
			if ss.Alg != alg.COSE() {
				t.Fatalf("protected alg %d, want %d", ss.Alg, alg.COSE())
			}
			pol := &manifest.Policy{Name: "p", Keys: []manifest.PolicyKey{{Name: "s", Public: key.Public()}},
				Steps: []manifest.StepRule{{Name: manifest.StepDieSort, Signers: []string{"s"}}}}
			if err := verify(f, manifest.Chain{ss}, pol, nil).Err(); err != nil {
				t.Fatal(err)
			}
			// Parsed back from its bytes, it verifies the same.
			if err := verify(f, manifest.Chain{mustParse(t, ss.Raw)}, pol, nil).Err(); err != nil {
				t.Fatal(err)
			}
			// A deleted key no longer signs.
			if err := store.Delete(ctx, key.Label()); err != nil {
				t.Fatal(err)
			}
			if _, err := signer.Sign(rand.Reader, f.newStep(manifest.StepDieSort, 0, nil)); !errors.Is(err, keystore.ErrNotFound) {
				t.Fatalf("deleted key: %v", err)
			}
		})
	}
}
