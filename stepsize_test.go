package ztm_test

import (
	"context"
	"testing"

	"github.com/ztmkit/ztm/examples/linesim"
)

// TestStepSizesOnTheLine signs every step kind a line writes (chip vendor,
// contract manufacturer with key generation and with injection, OEM) and
// checks that each is under 400 bytes as signed.
func TestStepSizesOnTheLine(t *testing.T) {
	t.Parallel()
	l := newLine(t)
	seen := map[string]int{}
	for _, inject := range []bool{false, true} {
		d, err := l.NewDevice(1+boolInt(inject), linesim.DeviceOptions{NoKeyGeneration: inject})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := fullLine(t, l, d); err != nil {
			t.Fatal(err)
		}
		chain, err := l.Chains.Chain(context.Background(), d.UEID())
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range chain {
			if n := len(s.Raw); n > seen[s.Step.Name] {
				seen[s.Step.Name] = n
			}
		}
	}
	for name, n := range seen {
		t.Logf("%-16s %4d bytes", name, n)
		if n >= 400 {
			t.Errorf("%s step is %d bytes signed, the budget is < 400", name, n)
		}
	}
}
