// Package mem is the in-memory key store: keys live in process memory and
// vanish with it. It is the store for tests, simulations and device
// simulators, and for keys whose whole life is one process.
//
// Importing the package registers the "mem" scheme with
// [keystore.Open]; "mem:" opens a new, empty store each time:
//
//	import _ "github.com/ztmkit/ztm/identity/keystore/mem"
//
//	store, err := keystore.Open(ctx, "mem:")
//
// [New] makes one without the registry.
package mem
