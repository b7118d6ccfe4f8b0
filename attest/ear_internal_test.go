package attest

import (
	"encoding/hex"
	"os"
	"strings"
	"testing"

	"github.com/ztmkit/ztm/internal/detcbor"
)

// TestEARDraftFigure5 decodes Figure 5 of draft-ietf-rats-ear-03 (an EAR
// CBOR claims set written by the draft's authors): the verifier is named
// with developer = 0 and build = 1, and the appraisal policy ids array of
// later revisions is read.
func TestEARDraftFigure5(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("testdata/draft-ietf-rats-ear-03-fig5.hex")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := hex.DecodeString(strings.Join(strings.Fields(string(b)), ""))
	if err != nil {
		t.Fatal(err)
	}
	r, err := decodeResultCBOR(raw)
	if err != nil {
		t.Fatal(err)
	}
	if r.VerifierID.Developer != "https://veraison-project.org" || r.VerifierID.Build != "vts 0.0.1" {
		t.Errorf("verifier id %+v", r.VerifierID)
	}
	a := r.Submods["PSA"]
	if a == nil || a.Status != StatusContraindicated || a.TrustVector.InstanceIdentity != 2 ||
		a.TrustVector.Executables != 96 || a.TrustVector.Hardware != 2 ||
		a.PolicyID != "https://veraison.example/policy/1/60a0068d" || r.IssuedAt.Unix() != 1666529184 {
		t.Errorf("appraisal %+v, iat %v", a, r.IssuedAt)
	}

	// ztm writes the same verifier id with the same keys: the encoding of
	// its ear.verifier-id is the draft's, byte for byte.
	mine, err := detcbor.Marshal(r.cborMap()[earKeyVerifierID])
	if err != nil {
		t.Fatal(err)
	}
	if want := hex.EncodeToString(mine); !strings.Contains(hex.EncodeToString(raw), want) {
		t.Errorf("ztm's ear.verifier-id %s is not in the draft's bytes", want)
	}

	// Several policy ids are refused, not cut to the first.
	var p policyIDField
	two, _ := detcbor.Marshal([]string{"a", "b"})
	if err := p.UnmarshalCBOR(two); err == nil {
		t.Errorf("two policy ids read as %q", p)
	}
}

// FuzzDecodeResultCBOR: no EAR claims set in CBOR panics the decoder, and
// whatever it accepts has an appraisal for every submodule.
func FuzzDecodeResultCBOR(f *testing.F) {
	if b, err := os.ReadFile("testdata/draft-ietf-rats-ear-03-fig5.hex"); err == nil {
		if raw, err := hex.DecodeString(strings.Join(strings.Fields(string(b)), "")); err == nil {
			f.Add(raw)
		}
	}
	f.Add([]byte{0xa0})
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := decodeResultCBOR(data)
		if err != nil {
			return
		}
		for _, a := range r.Submods {
			if a == nil {
				t.Fatal("nil appraisal")
			}
		}
	})
}
