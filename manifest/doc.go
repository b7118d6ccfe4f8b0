// Package manifest records and checks the supply-chain history of devices:
// signed steps, chains of them, verification policies, lot manifests with
// per-device receipts, and custody transfer.
package manifest
