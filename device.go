package ztm

import (
	"context"
	"crypto/x509"

	"github.com/ztmkit/ztm/identity"
	"github.com/ztmkit/ztm/identity/keyseal"
	"github.com/ztmkit/ztm/identity/keystore"
)

// Device is what an OEM implements for its test jig: the station's view of
// one device on the line. Each method is one exchange with the device; a
// real jig talks to it over a debug probe, a serial line or a test socket.
// The simulated devices of examples/factoryline implement it over package
// github.com/ztmkit/ztm/attest/devicesim.
//
// A Device is used by one Provision call at a time.
type Device interface {
	// Info returns what the device says about itself: at least its serial
	// number, its UEID, which names the device in the manifest, and its
	// hardwareModuleName, whose serial number must be the UEID's bytes.
	// That rule ties the certificate to the evidence: the UEID is the one
	// device identifier the attestation key signs (the evidence's ueid
	// claim), the hardwareModuleName the one IEEE 802.1AR puts in the
	// IDevID, and the CA refuses a request in which they differ
	// (enroll.BindUEIDToHardwareModule). identity.DeviceInfoFromUEID builds
	// device info that keeps it. Provision checks it before it asks for a
	// nonce, and refuses (StageInfo) with an *identity.MismatchError naming
	// the field, both values and the fix; it refuses (StageAppraisal) an
	// OEMID or HardwareModel that is set and disagrees with the evidence.
	Info(ctx context.Context) (identity.DeviceInfo, error)
	// Attest answers nonce with attestation evidence signed by the
	// device's attestation key: an EAT as a CWT or JWT (see package attest)
	// whose eat_nonce is nonce and whose cnf claim confirms the identity
	// key GenerateKey made (attest.Confirmation; devicesim's BindKey). The
	// CA issues an IDevID only for a key the evidence confirms, unless its
	// configuration lists the profile for legacy evidence without cnf
	// (enroll.Config.UnconfirmedKeyProfiles). Provision calls GenerateKey
	// before Attest; a device whose key is injected attests before it has
	// one, and its evidence carries no cnf.
	Attest(ctx context.Context, nonce []byte) ([]byte, error)
	// GenerateKey makes the device's identity key of algorithm alg on the
	// device and returns a DER PKCS#10 certificate request signed by it and
	// carrying the device's IDevID fields, those Info returned (see
	// identity.CreateCSR); Provision checks the request against them before
	// it asks for a nonce. A device
	// that cannot make keys returns an error wrapping
	// ErrKeyGenerationUnsupported; it then needs to implement KeyImporter.
	GenerateKey(ctx context.Context, alg keystore.Algorithm) (csr []byte, err error)
	// InstallChain stores the device's certificate chain, leaf first, then
	// intermediates. On error the device must not keep the chain.
	InstallChain(ctx context.Context, chain []*x509.Certificate) error
}

// KeyImporter is the optional interface of a device that cannot generate
// keys but can receive one sealed to its attestation key (key injection).
type KeyImporter interface {
	// ImportKey opens the sealed key with the device's attestation key
	// (keyseal.Open does it for a device with an ECDH-capable key), stores
	// it as the device's identity key, and returns a DER PKCS#10 request
	// signed by it with the device's IDevID fields: proof that the device
	// holds the key. On error the device must not keep the key.
	ImportKey(ctx context.Context, sealed *keyseal.Sealed) (csr []byte, err error)
}

// KeyDestroyer is the optional interface of a device that can destroy its
// identity key at end of life (see Station.Decommission).
type KeyDestroyer interface {
	// DestroyKey erases the device's identity key and certificate. It is
	// idempotent: destroying an absent key is not an error.
	DestroyKey(ctx context.Context) error
}
