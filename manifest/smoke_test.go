package manifest_test

import (
	"context"
	"testing"

	"github.com/ztmkit/ztm/manifest"
)

func TestSmoke(t *testing.T) {
	f := newFixture(t)
	c := f.build(goodSpecs)
	rep := manifest.Verify(context.Background(), c, f.policy, &manifest.VerifyOptions{CurrentTime: t0})
	for _, ch := range rep.Checks {
		t.Logf("%-18s %2d %v %s %v", ch.Check, ch.Step, ch.OK, ch.Detail, ch.Err)
	}
	if err := rep.Err(); err != nil {
		t.Fatal(err)
	}
	for _, s := range c {
		t.Logf("%s %d bytes", s.Step.Name, len(s.Raw))
	}
}
