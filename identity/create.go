package identity

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"

	"github.com/ztmkit/ztm/identity/keystore"
)

// Algorithm is the signature algorithm of a device key. It is defined in
// [keystore] (which cannot import this package) and aliased here so that
// identity users need only one import. The zero value is [ES256].
type Algorithm = keystore.Algorithm

// The algorithms ztm offers; see [keystore.Algorithm].
const (
	ES256 = keystore.ES256 // ECDSA P-256 with SHA-256, the default
	ES384 = keystore.ES384 // ECDSA P-384 with SHA-384
	EdDSA = keystore.EdDSA // Ed25519
	PS256 = keystore.PS256 // RSASSA-PSS with SHA-256, RSA-3072
)

// signatureAlgorithm returns the X.509 signature algorithm ztm pairs with
// alg.
func signatureAlgorithm(alg Algorithm) x509.SignatureAlgorithm {
	switch alg {
	case ES256:
		return x509.ECDSAWithSHA256
	case ES384:
		return x509.ECDSAWithSHA384
	case EdDSA:
		return x509.PureEd25519
	case PS256:
		return x509.SHA256WithRSAPSS
	}
	return x509.UnknownSignatureAlgorithm
}

// CreateRequest says what identity [Create] makes.
type CreateRequest struct {
	// Label names the device key in the store; see
	// [keystore.ValidateLabel]. Required.
	Label string
	// Algorithm is the device key's algorithm. The zero value is ES256.
	Algorithm Algorithm
	// Device is what the certificate request says about the device; its
	// SerialNumber is required (see [DeviceInfo]).
	Device DeviceInfo
	// Rand is the randomness for the request's signature. If nil,
	// crypto/rand.Reader is used.
	Rand io.Reader
}

// Identity is a device identity made by [Create]: a key in a store and the
// PKCS#10 request for its IDevID certificate.
type Identity struct {
	// Key is the device key, in the store it was created in.
	Key keystore.Key
	// Device is the device information the request was made from.
	Device DeviceInfo
	// CSR is the DER-encoded PKCS#10 certificate request, signed by Key.
	CSR []byte
}

// Create makes a device identity: a new key of req.Algorithm under
// req.Label in store, and a PKCS#10 certificate request signed by it that
// carries the IEEE 802.1AR IDevID fields of req.Device (see [CreateCSR]).
//
// Bad device information gives a [*DeviceError] (wrapping
// [ErrInvalidDevice]) before the store is touched; the store's own errors
// ([keystore.ErrExists], [keystore.ErrInvalidLabel],
// [keystore.ErrUnsupportedAlgorithm], [keystore.ErrClosed]) are returned
// wrapped. If the key is created but the request cannot be made, the key
// is deleted again: on error, the store is as it was.
func Create(ctx context.Context, store keystore.Store, req CreateRequest) (*Identity, error) {
	if store == nil {
		return nil, errors.New("identity: Create with a nil store")
	}
	if err := req.Device.Validate(); err != nil {
		return nil, err
	}
	tmpl, err := csrTemplate(&req.Device, req.Algorithm)
	if err != nil {
		return nil, err
	}
	key, err := store.Create(ctx, keystore.CreateRequest{Label: req.Label, Algorithm: req.Algorithm})
	if err != nil {
		return nil, fmt.Errorf("identity: failed to create key %q: %w", req.Label, err)
	}
	csr, err := createCSR(req.Rand, key, tmpl)
	if err != nil {
		// No half state: the key without its request is of no use.
		if derr := store.Delete(context.WithoutCancel(ctx), key.Label()); derr != nil {
			return nil, errors.Join(err, fmt.Errorf("identity: failed to delete key %q after the error: %w", key.Label(), derr))
		}
		return nil, err
	}
	return &Identity{Key: key, Device: req.Device, CSR: csr}, nil
}

// CreateCSR returns a DER-encoded PKCS#10 certificate request signed by
// key, with the IEEE 802.1AR IDevID fields of dev: a subject with the
// serialNumber attribute (OID 2.5.4.5, dev.SerialNumber) and, if set,
// commonName and organizationName; and, if dev.HardwareModule is set, a
// subject alternative name holding it as the otherName hardwareModuleName
// (RFC 4108 §5). This is the device-side path, for a key that already
// exists, on the device or in any [keystore.Store].
//
// The signature algorithm follows the key: ECDSA with SHA-256 for P-256,
// with SHA-384 for P-384, pure Ed25519, and RSASSA-PSS with SHA-256 for
// RSA of at least 3072 bits. Other keys give an error wrapping
// [keystore.ErrUnsupportedAlgorithm]; bad device information, a
// [*DeviceError]. If random is nil, crypto/rand.Reader is used.
func CreateCSR(random io.Reader, key crypto.Signer, dev DeviceInfo) ([]byte, error) {
	if key == nil {
		return nil, errors.New("identity: CreateCSR with a nil key")
	}
	if err := dev.Validate(); err != nil {
		return nil, err
	}
	var alg Algorithm
	if k, ok := key.(keystore.Key); ok {
		alg = k.Algorithm()
	} else {
		a, err := keystore.AlgorithmOf(key.Public())
		if err != nil {
			return nil, fmt.Errorf("identity: cannot make a certificate request with this key: %w", err)
		}
		alg = a
	}
	tmpl, err := csrTemplate(&dev, alg)
	if err != nil {
		return nil, err
	}
	return createCSR(random, key, tmpl)
}

// csrTemplate builds the request template for a validated dev.
func csrTemplate(dev *DeviceInfo, alg Algorithm) (*x509.CertificateRequest, error) {
	sigAlg := signatureAlgorithm(alg)
	if sigAlg == x509.UnknownSignatureAlgorithm {
		return nil, fmt.Errorf("identity: %w: %v", keystore.ErrUnsupportedAlgorithm, alg)
	}
	tmpl := &x509.CertificateRequest{
		SignatureAlgorithm: sigAlg,
		Subject: pkix.Name{
			SerialNumber: dev.SerialNumber,
			CommonName:   dev.CommonName,
		},
	}
	if dev.Organization != "" {
		tmpl.Subject.Organization = []string{dev.Organization}
	}
	if !dev.HardwareModule.IsZero() {
		// The subject always holds serialNumber, so the extension is not
		// critical (RFC 5280 §4.2.1.6).
		ext, err := HardwareModuleNameExtension(dev.HardwareModule, false)
		if err != nil {
			return nil, err
		}
		tmpl.ExtraExtensions = []pkix.Extension{ext}
	}
	return tmpl, nil
}

func createCSR(random io.Reader, key crypto.Signer, tmpl *x509.CertificateRequest) ([]byte, error) {
	if random == nil {
		random = rand.Reader
	}
	der, err := x509.CreateCertificateRequest(random, tmpl, key)
	if err != nil {
		return nil, fmt.Errorf("identity: failed to sign the certificate request: %w", err)
	}
	return der, nil
}
