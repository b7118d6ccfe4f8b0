package keystoretest_test

import (
	"testing"

	"github.com/ztmkit/ztm/identity/keystore"
	"github.com/ztmkit/ztm/identity/keystore/keystoretest"
	"github.com/ztmkit/ztm/identity/keystore/mem"
)

// A backend's test runs the kit with an Opener over fresh storage. This is
// the in-memory store's own conformance test; a persistent backend returns
// an Opener that reopens the same storage and sets Config.Persistent.
func ExampleRun() {
	conformance := func(t *testing.T) {
		keystoretest.Run(t, func(t *testing.T) keystoretest.Opener {
			return func() (keystore.Store, error) { return mem.New(), nil }
		}, keystoretest.Config{})
	}
	_ = conformance // in a _test.go file: func TestConformance(t *testing.T) { … }
}
