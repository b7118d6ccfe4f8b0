package mem_test

import (
	"testing"

	"github.com/ztmkit/ztm/identity/keystore"
	"github.com/ztmkit/ztm/identity/keystore/keystoretest"
	"github.com/ztmkit/ztm/identity/keystore/mem"
)

func TestConformance(t *testing.T) {
	t.Parallel()
	keystoretest.Run(t, func(t *testing.T) keystoretest.Opener {
		return func() (keystore.Store, error) { return mem.New(), nil }
	}, keystoretest.Config{})
}
