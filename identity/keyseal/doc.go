// Package keyseal is the sealing of key injection: a station that must
// give a device its identity key (a device that cannot generate one) seals
// the private key to the device's attestation key with HPKE (RFC 9180,
// base mode), and only that device opens it. It depends on the standard
// library and identity/keystore alone, so that the device side ([Open]) builds
// into a small program without the CA, EST or a database.
//
// The station side is [Seal], which ztm.Station calls during Provision
// after exporting the key from its store; the device side is [Open].
package keyseal
