package manifest_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/ztmkit/ztm/manifest"
)

func FuzzParseStep(f *testing.F) {
	fx := newFixture(f)
	for _, s := range fx.build(goodSpecs[:3]) {
		p, err := s.Step.Marshal()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(p)
	}
	f.Add([]byte{0xa0})
	f.Add([]byte{0xa2, 0x01, 0x61, 'x', 0x01, 0x61, 'y'})
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := manifest.ParseStep(data)
		if err != nil {
			return
		}
		again, err := s.Marshal()
		if err != nil {
			t.Fatalf("parsed step does not marshal: %v", err)
		}
		if !bytes.Equal(again, data) {
			t.Fatalf("parsed step re-encodes differently:\n%x\n%x", data, again)
		}
	})
}

func FuzzParseSignedStep(f *testing.F) {
	fx := newFixture(f)
	for _, s := range fx.build(goodSpecs) {
		f.Add(s.Raw)
	}
	f.Add([]byte{0xd2, 0x84, 0x40, 0xa0, 0xf6, 0x40})
	f.Fuzz(func(t *testing.T, data []byte) {
		ss, err := manifest.ParseSignedStep(data)
		if err != nil {
			return
		}
		if !bytes.Equal(ss.Raw, data) || ss.Step == nil {
			t.Fatal("parsed step does not keep its exact bytes")
		}
		if _, err := ss.Step.Marshal(); err != nil {
			t.Fatalf("parsed step does not marshal: %v", err)
		}
	})
}

func FuzzParseChain(f *testing.F) {
	fx := newFixture(f)
	c := fx.build(goodSpecs[:3])
	enc, err := c.Marshal()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(enc)
	vectors, _ := filepath.Glob(filepath.Join("testdata", "vectors", "*.cbor"))
	for _, v := range vectors {
		b, err := os.ReadFile(v)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{0x80})
	f.Add([]byte{0x81, 0x40})
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := manifest.ParseChain(data)
		if err != nil {
			return
		}
		enc, err := c.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		c2, err := manifest.ParseChain(enc)
		if err != nil || len(c2) != len(c) {
			t.Fatalf("re-encoded chain does not parse: %v", err)
		}
		for i := range c {
			if !bytes.Equal(c[i].Raw, c2[i].Raw) {
				t.Fatalf("step %d changed", i)
			}
		}
	})
}

func FuzzParseReceipt(f *testing.F) {
	_, leaves, m := lotFixture(f, 5)
	for i := range leaves {
		rc, err := m.Receipt(uint64(i))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(rc)
	}
	f.Add(m.Raw)
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := manifest.ParseReceipt(data)
		if err != nil {
			return
		}
		if r.Index >= r.TreeSize {
			t.Fatalf("index %d, size %d accepted", r.Index, r.TreeSize)
		}
		// Root computation must not panic on any decoded proof.
		_, _ = r.Root(leaves[0])
		_, _ = manifest.VerifyReceipt(data, leaves[0], nil)
	})
}

func FuzzParsePolicyJSON(f *testing.F) {
	fx := newFixture(f)
	js, err := fx.policy.MarshalJSON()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(js)
	f.Add([]byte(`{"name":"x","version":1,"steps":[{"name":"a","signers":["k"]}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := manifest.ParsePolicyJSON(data)
		if err != nil {
			return
		}
		if _, err := p.Marshal(); err != nil {
			t.Fatalf("parsed policy does not marshal: %v", err)
		}
	})
}

// FuzzVerifyAll feeds arbitrary bytes to VerifyAll as two chains' encodings
// (the input and its halves): whatever decodes is verified, nothing
// panics, and every chain gets a report that is refused unless the chain
// is one the fixture signed.
func FuzzVerifyAll(f *testing.F) {
	fx := newFixture(f)
	good, err := fx.build(goodSpecs).Marshal()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	short, _ := fx.build(goodSpecs[:4]).Marshal()
	f.Add(short)
	f.Add([]byte{0x81, 0x40})
	opts := &manifest.BulkOptions{VerifyOptions: manifest.VerifyOptions{CurrentTime: t0, Partial: true}, Workers: 2}
	f.Fuzz(func(t *testing.T, data []byte) {
		ins := []manifest.ChainInput{{Raw: data}, {Raw: data[:len(data)/2]}}
		results := 0
		o := *opts
		o.Result = func(r *manifest.ChainResult) {
			results++
			if r.Report == nil || len(r.Report.Checks) == 0 {
				t.Fatalf("chain %d: no report", r.Index)
			}
			if r.Report.OK() != (r.Report.Err() == nil) {
				t.Fatalf("chain %d: OK and Err disagree", r.Index)
			}
		}
		sum, err := manifest.VerifyAll(context.Background(), slices.Values(ins), fx.policy, &o)
		if err != nil || results != 2 || sum.Chains != 2 || sum.Passed+sum.Refused != 2 {
			t.Fatalf("%v, %d results, %+v", err, results, sum)
		}
	})
}
