package ca

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"time"

	"github.com/ztmkit/ztm/identity/keystore"
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
		return nil, fmt.Errorf("%w: root needs a Signer and a Subject", ErrInvalidConfig)
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
	// NameConstraints limits the names of the certificates the
	// intermediate may issue.
	NameConstraints NameConstraints
	// CRLDistributionPoint, if set, is the URL of the parent's CRL, put in
	// the intermediate's certificate.
	CRLDistributionPoint string
	// Rand is the source of the serial number. If nil, crypto/rand.Reader.
	Rand io.Reader
	// Time returns the current time. If nil, time.Now.
	Time func() time.Time
}

// NameConstraints are the name constraints of a CA certificate (RFC 5280
// §4.2.1.10): a name the CA certifies must lie in a permitted subtree of
// its form, if any is given, and in no excluded one. The extension is
// marked critical when any subtree is set. The zero value constrains
// nothing.
type NameConstraints struct {
	Permitted, Excluded NameSubtrees
}

// NameSubtrees are the subtrees of one side (permitted or excluded) of
// [NameConstraints], by name form, as in [x509.Certificate].
type NameSubtrees struct {
	DNSDomains     []string     // dNSName subtrees, such as "devices.example.com"
	EmailAddresses []string     // rfc822Name subtrees
	URIDomains     []string     // the host part of uniformResourceIdentifier names
	IPRanges       []*net.IPNet // iPAddress subtrees
}

// empty reports whether s has no subtree.
func (s NameSubtrees) empty() bool {
	return len(s.DNSDomains)+len(s.EmailAddresses)+len(s.URIDomains)+len(s.IPRanges) == 0
}

// apply sets the name constraints of tmpl.
func (c NameConstraints) apply(tmpl *x509.Certificate) {
	tmpl.PermittedDNSDomains, tmpl.ExcludedDNSDomains = c.Permitted.DNSDomains, c.Excluded.DNSDomains
	tmpl.PermittedEmailAddresses, tmpl.ExcludedEmailAddresses = c.Permitted.EmailAddresses, c.Excluded.EmailAddresses
	tmpl.PermittedURIDomains, tmpl.ExcludedURIDomains = c.Permitted.URIDomains, c.Excluded.URIDomains
	tmpl.PermittedIPRanges, tmpl.ExcludedIPRanges = c.Permitted.IPRanges, c.Excluded.IPRanges
	tmpl.PermittedDNSDomainsCritical = !c.Permitted.empty() || !c.Excluded.empty()
}

// NewIntermediate makes an intermediate CA certificate signed by the
// parent: basicConstraints CA:true with the path length asked for,
// keyUsage keyCertSign and cRLSign, and the name constraints given. Errors
// wrap ErrInvalidConfig.
func NewIntermediate(req IntermediateRequest) (*x509.Certificate, error) {
	if req.PublicKey == nil || req.Parent == nil || req.ParentSigner == nil || len(req.Subject.ToRDNSequence()) == 0 {
		return nil, fmt.Errorf("%w: intermediate needs a Subject, PublicKey, Parent and ParentSigner", ErrInvalidConfig)
	}
	if !req.Parent.IsCA || req.Parent.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, fmt.Errorf("%w: parent is not a CA", ErrInvalidConfig)
	}
	if !keystore.PublicKeysEqual(req.Parent.PublicKey, req.ParentSigner.Public()) {
		return nil, fmt.Errorf("%w: parent certificate does not match ParentSigner", ErrInvalidConfig)
	}
	if req.MaxPathLen < 0 {
		return nil, fmt.Errorf("%w: negative MaxPathLen", ErrInvalidConfig)
	}
	if req.Parent.MaxPathLen == 0 && req.Parent.MaxPathLenZero {
		return nil, fmt.Errorf("%w: parent has path length 0", ErrInvalidConfig)
	}
	if req.CRLDistributionPoint != "" {
		if err := validURI(req.CRLDistributionPoint); err != nil {
			return nil, fmt.Errorf("%w: CRLDistributionPoint: %v", ErrInvalidConfig, err)
		}
	}
	tmpl := &x509.Certificate{
		Subject:               req.Subject,
		BasicConstraintsValid: true,
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	req.NameConstraints.apply(tmpl)
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
		return nil, fmt.Errorf("%w: negative validity", ErrInvalidConfig)
	}
	sigAlg, err := signatureAlgorithm(signer.Public())
	if err != nil {
		return nil, fmt.Errorf("%w: signer: %v", ErrInvalidConfig, err)
	}
	spki, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("%w: public key: %v", ErrInvalidConfig, err)
	}
	if sigAlgOfSubject, err := signatureAlgorithm(pub); err != nil || sigAlgOfSubject == 0 {
		return nil, fmt.Errorf("%w: public key: %v", ErrInvalidConfig, err)
	}
	ski, err := subjectKeyID(spki)
	if err != nil {
		return nil, fmt.Errorf("%w: public key: %v", ErrInvalidConfig, err)
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

// IntermediateProfile is the profile name under which an [Authority]
// records the CA certificates it signs ([Authority.IssueIntermediate],
// [Authority.RecordIntermediate]). No [Profile] may take it.
const IntermediateProfile = "intermediate-ca"

// IssueIntermediate is the ceremony of an Authority over a parent CA's key
// (typically the root, opened from its key store for the ceremony): it
// makes the intermediate CA certificate req describes with [NewIntermediate],
// signed by the Authority's key under its certificate (req.Parent and
// req.ParentSigner must be nil or the Authority's own), records it in the
// Authority's ledger under [IntermediateProfile] for requester, and returns
// it once recorded. The intermediate can then be revoked with
// [Authority.Revoke] like any certificate the Authority issued, and the
// Authority's CRL (the root's CRL) lists it. req.Rand and req.Time default
// to the Authority's. Errors wrap ErrInvalidConfig for req, or are the
// ledger's; on any error no certificate is returned.
func (a *Authority) IssueIntermediate(ctx context.Context, req IntermediateRequest, requester string) (*x509.Certificate, error) {
	if err := a.made(); err != nil {
		return nil, err
	}
	if (req.Parent != nil && !req.Parent.Equal(a.chain[0])) ||
		(req.ParentSigner != nil && !keystore.PublicKeysEqual(a.chain[0].PublicKey, req.ParentSigner.Public())) {
		return nil, fmt.Errorf("%w: the intermediate's parent must be the Authority's certificate and key", ErrInvalidConfig)
	}
	if err := checkRequesterName(requester); err != nil {
		return nil, err
	}
	req.Parent, req.ParentSigner = a.chain[0], a.signer
	if req.Rand == nil {
		req.Rand = a.rand
	}
	if req.Time == nil {
		req.Time = a.now
	}
	cert, err := NewIntermediate(req)
	if err != nil {
		return nil, err
	}
	if err := a.RecordIntermediate(ctx, cert, requester); err != nil {
		return nil, err
	}
	return cert, nil
}

// RecordIntermediate records in the Authority's ledger a CA certificate
// its key signed outside it (with [NewIntermediate] before ledgers
// recorded intermediates, or by another tool), so that it can be revoked
// with [Authority.Revoke] and listed on the Authority's CRL. cert must be
// a CA certificate for another key than the Authority's, issued by the
// Authority's certificate; its signature is verified. Errors: ErrInvalidRequest for such a cert or requester,
// ErrSerialExists when its serial number is recorded already, or the
// ledger's.
func (a *Authority) RecordIntermediate(ctx context.Context, cert *x509.Certificate, requester string) error {
	if err := a.made(); err != nil {
		return err
	}
	if err := checkRequesterName(requester); err != nil {
		return err
	}
	if cert == nil || !cert.IsCA || cert.SerialNumber == nil || cert.SerialNumber.Sign() <= 0 {
		return fmt.Errorf("%w: not a CA certificate with a positive serial number", ErrInvalidRequest)
	}
	if keystore.PublicKeysEqual(cert.PublicKey, a.chain[0].PublicKey) {
		return fmt.Errorf("%w: CA certificate %q is for the Authority's own key", ErrInvalidRequest, cert.Subject)
	}
	if !bytes.Equal(cert.RawIssuer, a.chain[0].RawSubject) || cert.CheckSignatureFrom(a.chain[0]) != nil {
		return fmt.Errorf("%w: CA certificate %q not issued by this Authority's certificate", ErrInvalidRequest, cert.Subject)
	}
	pk := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	rec := &Record{
		Kind:          KindIssuance,
		Serial:        new(big.Int).Set(cert.SerialNumber),
		Subject:       cert.Subject.String(),
		PublicKeyHash: pk[:],
		Profile:       IntermediateProfile,
		Requester:     requester,
		Time:          a.now().UTC(),
		Certificate:   bytes.Clone(cert.Raw),
	}
	if err := a.ledger.Append(ctx, rec, nil); err != nil {
		if errors.Is(err, ErrSerialExists) {
			return fmt.Errorf("ca: CA certificate %x: %w", cert.SerialNumber, err)
		}
		return fmt.Errorf("ca: failed to record CA certificate %x: %w", cert.SerialNumber, err)
	}
	return nil
}

// checkRequesterName checks the name a ledger record carries.
func checkRequesterName(requester string) error {
	if requester == "" || len(requester) > 256 {
		return fmt.Errorf("%w: requester must be 1 to 256 bytes", ErrInvalidRequest)
	}
	return nil
}
