package ztm_test

import (
	"context"
	"errors"
	"math/big"
	"testing"

	"github.com/ztmkit/ztm"
	"github.com/ztmkit/ztm/ca"
	"github.com/ztmkit/ztm/ca/enroll"
	"github.com/ztmkit/ztm/examples/linesim"
)

// TestProvisionTwice: provisioning a device that holds a live IDevID is
// refused with a typed reason and issues nothing; re-provisioning it
// issues a new IDevID, revokes the old one (superseded) in the same
// ledger transaction, and records the step. In process and over EST.
func TestProvisionTwice(t *testing.T) {
	t.Parallel()
	for _, overEST := range []bool{false, true} {
		name := map[bool]string{false: "local", true: "est"}[overEST]
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			l := newLineEST(t, overEST)
			cm := l.Partners[linesim.ContractManufacturer].Station
			d, err := l.NewDevice(30, linesim.DeviceOptions{})
			if err != nil {
				t.Fatal(err)
			}
			first, err := cm.Provision(ctx, d)
			if err != nil {
				t.Fatal(err)
			}
			head, _ := l.Ledger.Head(ctx)
			_, err = cm.Provision(ctx, d)
			var pe *ztm.ProvisionError
			var re *enroll.RefusalError
			if !errors.As(err, &pe) || pe.Stage != ztm.StageEnroll || !pe.Refused ||
				!errors.As(err, &re) || re.Reason != enroll.ReasonAlreadyProvisioned || !errors.Is(err, ca.ErrDeviceProvisioned) {
				t.Fatalf("second Provision: %v", err)
			}
			if h, _ := l.Ledger.Head(ctx); h.Seq != head.Seq {
				t.Fatalf("a refused second provisioning grew the ledger by %d records", h.Seq-head.Seq)
			}
			if st, err := l.Ledger.Lookup(ctx, first.CertChain[0].SerialNumber); err != nil || st.Revocation != nil {
				t.Fatalf("first certificate after the refusal: %+v, %v", st, err)
			}

			second, err := cm.Reprovision(ctx, d)
			if err != nil {
				t.Fatal(err)
			}
			if second.CertChain[0].SerialNumber.Cmp(first.CertChain[0].SerialNumber) == 0 {
				t.Fatal("re-provisioning returned the first certificate")
			}
			st, err := l.Ledger.Lookup(ctx, first.CertChain[0].SerialNumber)
			if err != nil || st.Revocation == nil || st.Revocation.Reason != ca.ReasonSuperseded {
				t.Fatalf("superseded certificate: %+v, %v", st, err)
			}
			issued, err := l.Ledger.Lookup(ctx, second.CertChain[0].SerialNumber)
			if err != nil || issued.Issuance.Seq != st.Revocation.Seq+1 {
				t.Fatalf("the revocation (%d) and the new issuance (%+v, %v) are not one transaction's neighbours", st.Revocation.Seq, issued, err)
			}
			last := second.Steps[len(second.Steps)-1].Step
			if last.Name != ztm.StepReprovisioned {
				t.Fatalf("last step %q, want %q", last.Name, ztm.StepReprovisioned)
			}
			if b, _ := last.Predicate["superseded"].([]byte); new(big.Int).SetBytes(b).Cmp(first.CertChain[0].SerialNumber) != 0 {
				t.Fatalf("reprovisioned step names %x, want %x", b, first.CertChain[0].SerialNumber)
			}
			if _, err := l.Ledger.Verify(ctx); err != nil {
				t.Fatal(err)
			}
		})
	}
}
