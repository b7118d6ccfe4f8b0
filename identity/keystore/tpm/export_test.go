package tpm

import "testing"

// SetTestOnlyBeforeInstall sets testOnlyBeforeInstall for t's duration.
func SetTestOnlyBeforeInstall(t *testing.T, f func(dir, label string)) {
	testOnlyBeforeInstall = f
	t.Cleanup(func() { testOnlyBeforeInstall = nil })
}
