package manifest_test

import (
	"bytes"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/ztmkit/ztm/manifest"
)

// The vectors in testdata/vectors pin the wire format: a signed policy,
// the OEM key that signed it, a good chain and bad ones, written once
// (go test -run TestVectors -update) and checked ever after.
var vectorChains = []struct {
	file string
	make func(f *fixture, good manifest.Chain) manifest.Chain
	want []manifest.Reason
}{
	{"chain-good.cbor", nil, nil},
	{"chain-fork.cbor", func(f *fixture, c manifest.Chain) manifest.Chain {
		alt := f.newStep(manifest.StepFinalTest, 3, c[2])
		alt.Predicate = manifest.Claims{1: "fail"}
		return slices.Insert(slices.Clone(c), 4, f.sign(alt, "testhouse"))
	}, []manifest.Reason{manifest.ReasonSequence, manifest.ReasonLink, manifest.ReasonFork}},
	{"chain-reordered.cbor", func(f *fixture, c manifest.Chain) manifest.Chain {
		c = slices.Clone(c)
		c[4], c[5] = c[5], c[4]
		return c
	}, []manifest.Reason{manifest.ReasonSequence, manifest.ReasonLink}},
	{"chain-below-threshold.cbor", func(f *fixture, c manifest.Chain) manifest.Chain {
		return f.build(slices.Delete(slices.Clone(goodSpecs), 5, 6))
	}, []manifest.Reason{manifest.ReasonThreshold}},
}

func TestVectors(t *testing.T) {
	t.Parallel()
	dir := filepath.Join("testdata", "vectors")
	if *update {
		f := newFixture(t)
		oem := mustKey(t)
		signed, err := manifest.SignPolicy(rand.Reader, f.policy, oem, manifest.SignOptions{Issuer: "ACME"})
		if err != nil {
			t.Fatal(err)
		}
		der, _ := x509.MarshalPKIXPublicKey(oem.Public())
		js, err := f.policy.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		files := map[string][]byte{
			"oem.pub.pem": pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}),
			"policy.cose": signed,
			"policy.json": append(js, '\n'),
		}
		good := f.build(goodSpecs)
		for _, v := range vectorChains {
			c := good
			if v.make != nil {
				c = v.make(f, good)
			}
			if files[v.file], err = c.Marshal(); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, b := range files {
			if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatalf("%v (run go test -run TestVectors -update)", err)
		}
		return b
	}
	blk, _ := pem.Decode(read("oem.pub.pem"))
	oem, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	policy, err := manifest.VerifyPolicy(read("policy.cose"), oem)
	if err != nil {
		t.Fatal(err)
	}
	// The signed policy is the JSON one, encoded canonically.
	fromJSON, err := manifest.ParsePolicyJSON(read("policy.json"))
	if err != nil {
		t.Fatal(err)
	}
	a, _ := fromJSON.Marshal()
	b, _ := policy.Marshal()
	if !bytes.Equal(a, b) {
		t.Fatal("policy.json and policy.cose differ")
	}
	for _, v := range vectorChains {
		t.Run(v.file, func(t *testing.T) {
			data := read(v.file)
			c, err := manifest.ParseChain(data)
			if err != nil {
				t.Fatal(err)
			}
			// Exact bytes survive parsing and re-encoding.
			again, err := c.Marshal()
			if err != nil || !bytes.Equal(again, data) {
				t.Fatalf("chain re-encodes differently: %v", err)
			}
			rep := verify(nil, c, policy, nil)
			got := reasons(t, rep)
			want := slices.Clone(v.want)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Fatalf("reasons %v, want %v: %v", got, want, rep.Err())
			}
		})
	}
}
