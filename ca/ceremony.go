package ca

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"math/big"
	"net"
	"time"
)

// RootRequest describes a root CA certificate for [NewRoot].
type RootRequest struct {
	// Subject of the root. It must not be empty.
	Subject pkix.Name
	// Signer is the root's key, typically a keystore.Key created for the
	// ceremony. Required.
	Signer crypto.Signer
	// Validity of the root. If zero, the root has no well-defined
	// expiration: notAfter 99991231235959Z (RFC 5280 §4.1.2.5), which IEEE
	// 802.1AR §8.5 permits for the CAs of IDevIDs, and which the chain of
	// any profile issuing certificates without expiration needs (see
	// [New]). Set a Validity only for a CA whose profiles all have one.
	Validity time.Duration
	// Rand is the source of the serial number. If nil, crypto/rand.Reader.
	Rand io.Reader
	// Time returns the current time. If nil, time.Now.
	Time func() time.Time
}

// NewRoot makes a self-signed root CA certificate: basicConstraints CA:true
// without a path length limit, keyUsage keyCertSign and cRLSign, a
// subjectKeyIdentifier. Errors wrap ErrInvalidConfig.
func NewRoot(req RootRequest) (*x509.Certificate, error) {
	if req.Signer == nil || len(req.Subject.ToRDNSequence()) == 0 {
		return nil, fmt.Errorf("ca: %w: root needs a Signer and a Subject", ErrInvalidConfig)
	}
	tmpl := &x509.Certificate{
		Subject:               req.Subject,
		BasicConstraintsValid: true,
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	return ceremony(tmpl, req.Validity, req.Rand, req.Time, req.Signer.Public(), nil, req.Signer)
}

// IntermediateRequest describes an intermediate CA certificate for
// [NewIntermediate].
type IntermediateRequest struct {
	// Subject of the intermediate. It must not be empty.
	Subject pkix.Name
	// PublicKey is the intermediate's key (its Signer's Public()). Required.
	PublicKey crypto.PublicKey
	// Parent is the issuing CA's certificate and ParentSigner its key.
	// Required.
	Parent       *x509.Certificate
	ParentSigner crypto.Signer
	// Validity of the intermediate. If zero, no well-defined expiration
	// (99991231235959Z), as for [RootRequest.Validity]. It is cut to the
	// parent's notAfter.
	Validity time.Duration
	// MaxPathLen is the number of CA certificates that may follow this one
	// in a path; the zero value, 0, lets it issue only end-entity
	// certificates. UnlimitedPathLen leaves the limit out.
	MaxPathLen       int
	UnlimitedPathLen bool
	// Name constraints (RFC 5280 §4.2.1.10), critical when any is set.
	PermittedDNSDomains     []string
	ExcludedDNSDomains      []string
	PermittedEmailAddresses []string
	ExcludedEmailAddresses  []string
	PermittedURIDomains     []string
	ExcludedURIDomains      []string
	PermittedIPRanges       []*net.IPNet
	ExcludedIPRanges        []*net.IPNet
	// CRLDistributionPoint, if set, is the URL of the parent's CRL, put in
	// the intermediate's certificate.
	CRLDistributionPoint string
	// Rand is the source of the serial number. If nil, crypto/rand.Reader.
	Rand io.Reader
	// Time returns the current time. If nil, time.Now.
	Time func() time.Time
}

// NewIntermediate makes an intermediate CA certificate signed by the
// parent: basicConstraints CA:true with the path length asked for,
// keyUsage keyCertSign and cRLSign, and the name constraints given. Errors
// wrap ErrInvalidConfig.
func NewIntermediate(req IntermediateRequest) (*x509.Certificate, error) {
	if req.PublicKey == nil || req.Parent == nil || req.ParentSigner == nil || len(req.Subject.ToRDNSequence()) == 0 {
		return nil, fmt.Errorf("ca: %w: intermediate needs a Subject, PublicKey, Parent and ParentSigner", ErrInvalidConfig)
	}
	if !req.Parent.IsCA || req.Parent.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, fmt.Errorf("ca: %w: parent is not a CA", ErrInvalidConfig)
	}
	if !publicKeysEqual(req.Parent.PublicKey, req.ParentSigner.Public()) {
		return nil, fmt.Errorf("ca: %w: parent certificate does not match ParentSigner", ErrInvalidConfig)
	}
	if req.MaxPathLen < 0 {
		return nil, fmt.Errorf("ca: %w: negative MaxPathLen", ErrInvalidConfig)
	}
	if req.Parent.MaxPathLen == 0 && req.Parent.MaxPathLenZero {
		return nil, fmt.Errorf("ca: %w: parent has path length 0", ErrInvalidConfig)
	}
	if req.CRLDistributionPoint != "" {
		if err := validURI(req.CRLDistributionPoint); err != nil {
			return nil, fmt.Errorf("ca: %w: CRLDistributionPoint: %v", ErrInvalidConfig, err)
		}
	}
	tmpl := &x509.Certificate{
		Subject:                 req.Subject,
		BasicConstraintsValid:   true,
		IsCA:                    true,
		KeyUsage:                x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		PermittedDNSDomains:     req.PermittedDNSDomains,
		ExcludedDNSDomains:      req.ExcludedDNSDomains,
		PermittedEmailAddresses: req.PermittedEmailAddresses,
		ExcludedEmailAddresses:  req.ExcludedEmailAddresses,
		PermittedURIDomains:     req.PermittedURIDomains,
		ExcludedURIDomains:      req.ExcludedURIDomains,
		PermittedIPRanges:       req.PermittedIPRanges,
		ExcludedIPRanges:        req.ExcludedIPRanges,
	}
	tmpl.PermittedDNSDomainsCritical = len(tmpl.PermittedDNSDomains)+len(tmpl.ExcludedDNSDomains)+
		len(tmpl.PermittedEmailAddresses)+len(tmpl.ExcludedEmailAddresses)+
		len(tmpl.PermittedURIDomains)+len(tmpl.ExcludedURIDomains)+
		len(tmpl.PermittedIPRanges)+len(tmpl.ExcludedIPRanges) > 0
	if req.UnlimitedPathLen {
		tmpl.MaxPathLen = -1
	} else {
		tmpl.MaxPathLen = req.MaxPathLen
		tmpl.MaxPathLenZero = req.MaxPathLen == 0
	}
	if req.CRLDistributionPoint != "" {
		tmpl.CRLDistributionPoints = []string{req.CRLDistributionPoint}
	}
	return ceremony(tmpl, req.Validity, req.Rand, req.Time, req.PublicKey, req.Parent, req.ParentSigner)
}

func ceremony(tmpl *x509.Certificate, validity time.Duration, rnd io.Reader,
	now func() time.Time, pub crypto.PublicKey, parent *x509.Certificate, signer crypto.Signer) (*x509.Certificate, error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	if now == nil {
		now = time.Now
	}
	if validity < 0 {
		return nil, fmt.Errorf("ca: %w: negative validity", ErrInvalidConfig)
	}
	sigAlg, err := signatureAlgorithm(signer.Public())
	if err != nil {
		return nil, fmt.Errorf("ca: %w: signer: %v", ErrInvalidConfig, err)
	}
	spki, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("ca: %w: public key: %v", ErrInvalidConfig, err)
	}
	if sigAlgOfSubject, err := signatureAlgorithm(pub); err != nil || sigAlgOfSubject == 0 {
		return nil, fmt.Errorf("ca: %w: public key: %v", ErrInvalidConfig, err)
	}
	ski, err := subjectKeyID(spki)
	if err != nil {
		return nil, fmt.Errorf("ca: %w: public key: %v", ErrInvalidConfig, err)
	}
	var b [16]byte
	if _, err := io.ReadFull(rnd, b[:]); err != nil {
		return nil, fmt.Errorf("ca: failed to read random serial: %w", err)
	}
	tmpl.SerialNumber = new(big.Int).SetBytes(b[:])
	if tmpl.SerialNumber.Sign() == 0 {
		tmpl.SerialNumber.SetInt64(1)
	}
	tmpl.SubjectKeyId = ski
	tmpl.SignatureAlgorithm = sigAlg
	start := now().UTC().Truncate(time.Second)
	tmpl.NotBefore = start
	tmpl.NotAfter = noWellDefinedExpiration
	if end := start.Add(validity - time.Second); validity != 0 && end.Before(noWellDefinedExpiration) {
		tmpl.NotAfter = end
	}
	if parent == nil {
		parent = tmpl
	} else if tmpl.NotAfter.After(parent.NotAfter) {
		tmpl.NotAfter = parent.NotAfter
	}
	der, err := x509.CreateCertificate(rnd, tmpl, parent, pub, signer)
	if err != nil {
		return nil, fmt.Errorf("ca: failed to sign CA certificate: %w", err)
	}
	return x509.ParseCertificate(der)
}
