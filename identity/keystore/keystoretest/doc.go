// Package keystoretest is the conformance kit for [keystore.Store]
// implementations. Every store in ztm runs it, and a third-party backend
// should too:
//
//	func TestConformance(t *testing.T) {
//		keystoretest.Run(t, func(t *testing.T) keystoretest.Opener {
//			dir := t.TempDir()
//			return func() (keystore.Store, error) { return mystore.Open(dir) }
//		}, keystoretest.Config{Persistent: true})
//	}
//
// The kit checks: signing and verifying with every algorithm the store claims
// (and a typed refusal for the others), duplicate and missing labels, delete
// then use, persistence across reopen (for persistent stores), 16 goroutines
// signing at once, bad labels, and use after close.
package keystoretest
