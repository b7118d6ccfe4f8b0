// Package identity makes and checks device identities: the key a device is
// known by, the facts that name the device, and the certificate request
// that turns them into an IEEE 802.1AR initial device identity (IDevID).
//
// An IDevID is the certificate a device leaves the factory with. Its key is
// generated for the device and never leaves the key store that holds it
// (the device's secure element or TPM, or a station's HSM); its subject
// carries the device serial number (the serialNumber attribute, OID
// 2.5.4.5) and its subject alternative name a hardwareModuleName (RFC 4108
// §5): the OID of the hardware model and the module's serial number. The
// manufacturer's CA issues it against a PKCS#10 request, after checking
// evidence from the device itself.
//
// Most users need three functions:
//
//   - [Create], on a provisioning station: make a key in a
//     [keystore.Store] and the signed IDevID request for it.
//   - [CreateCSR], on a device or for a key that already exists: make the
//     request with any [crypto.Signer].
//   - [CheckCSR], on the station or CA that receives a request: parse it,
//     verify its signature and key, and compare its fields with what was
//     expected.
//
// # Creating an identity
//
// A station opens its key store by URI and creates one identity per
// device:
//
//	store, err := keystore.Open(ctx, "mem:") // or "file:…", "pkcs11:…", "tpm:…"
//	…
//	id, err := identity.Create(ctx, store, identity.CreateRequest{
//		Label: "dev-0001",
//		Device: identity.DeviceInfo{
//			SerialNumber:   "SN-0001",
//			HardwareModule: identity.HardwareModuleName{Type: modelOID, SerialNumber: []byte("SN-0001")},
//		},
//	})
//
// id.Key signs for the device and id.CSR goes to the CA. The key algorithm
// defaults to ES256; [ES384], [EdDSA] and [PS256] (RSA-3072) are the
// others. If the request cannot be made, the key is deleted again: Create
// leaves the store as it found it on every error.
//
// # Checking a request
//
// [ParseCSR] refuses anything that is not a well-formed, correctly signed
// request for an acceptable key (P-256, P-384, Ed25519, RSA of at least
// 3072 bits) asking only for what an IDevID carries: no CA certificate, no
// extra names, no challenge passwords. [CSR.Check] and [CheckCSR] then
// compare the serial number and hardware module name with a [CSRPolicy].
// Every refusal is a [*CSRError] wrapping [ErrInvalidCSR]; its
// [CSRErrorReason] says why. [ParseRequest] is the same check for a
// request of any profile (a CA's: names and subject attributes left to
// it, with [RequestRules] for requests other tools made), and
// [ParseSubjectAltName] the one subjectAltName parser.
//
// # Device information
//
// [DeviceInfo] gathers what names a device: its [UEID] (RFC 9711 §4.2.1:
// random, IEEE EUI or IMEI), serial number, [HardwareModuleName], [OEMID]
// (an IANA Private Enterprise Number, IEEE OUI or random bytes), hardware
// model and version. The request carries the serial number, the hardware
// module name, and an optional common name and organization; the UEID,
// OEM ID, model and version are EAT claims, carried by the device's
// attestation evidence.
//
// One rule ties the certificate to the evidence: the hardwareModuleName's
// serial number is the device's UEID. [DeviceInfoFromUEID] builds device
// information that keeps it, [DeviceInfo.CheckBinding] checks it, and
// [DeviceInfo.CheckClaims] checks the UEID, OEM ID and model against the
// claims of the device's verified evidence; a disagreement is a
// [*MismatchError] naming the field, both values and the fix.
//
// UEIDs and OEM IDs have a text form (lowercase hex for a UEID,
// "pen:32473" for an OEM ID), returned by String and read back by
// [ParseUEID] and [ParseOEMID], and a CBOR form, that of their EAT claims.
//
// # Certificates
//
// A CA that issues the IDevID copies the hardware module name into the
// certificate with [HardwareModuleNameExtension]; a verifier reads it back
// with [HardwareModuleNameFromExtensions].
//
// # Algorithms
//
// [Algorithm] is [keystore.Algorithm], aliased here: key stores need it
// and cannot import this package.
//
// # Concurrency
//
// The functions of this package are safe for concurrent use; [UEID] and
// [OEMID] are immutable values.
package identity
