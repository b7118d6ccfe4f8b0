package ca

import (
	"bytes"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"net/url"
	"slices"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// OIDs of the extensions an issued certificate carries (RFC 5280 §4.2.1).
var (
	oidSubjectKeyID          = asn1.ObjectIdentifier{2, 5, 29, 14}
	oidAuthorityKeyID        = asn1.ObjectIdentifier{2, 5, 29, 35}
	oidExtKeyUsage           = asn1.ObjectIdentifier{2, 5, 29, 37}
	oidCRLDistributionPoints = asn1.ObjectIdentifier{2, 5, 29, 31}
	oidKeyUsage              = asn1.ObjectIdentifier{2, 5, 29, 15}
	oidBasicConstraints      = asn1.ObjectIdentifier{2, 5, 29, 19}
)

// issuedCertificate returns the *x509.Certificate of der, the certificate
// x509.CreateCertificate just made from tmpl, issued by parent, for the
// key of the checked request c. It is what x509.ParseCertificate(der)
// returns (TestIssuedCertificateIsParsed holds it to that, field by
// field), made without parsing again what this package has just encoded:
// the DER is only walked for its raw parts (tbsCertificate, issuer,
// subject, subjectPublicKeyInfo, signature) and the extensions, and the
// decoded fields come from the template, the issuer and the checked
// request. The public key is the request's, already parsed and checked.
// A certificate carrying anything the template cannot account for (an
// extension this package does not issue, an unexpected critical flag) is
// parsed in full instead, so the result is never a guess.
func issuedCertificate(der []byte, tmpl, parent *x509.Certificate, c *checkedCSR) (*x509.Certificate, error) {
	cert, ok := walkIssued(der, tmpl, parent, c)
	if ok {
		return cert, nil
	}
	issuedParsed.Add(1)
	return x509.ParseCertificate(der)
}

// issuedParsed counts the issued certificates issuedCertificate parsed in
// full; the tests read it (export_test.go).
var issuedParsed atomic.Int64

// walkIssued is issuedCertificate's fast path; it reports false for
// anything it does not account for.
func walkIssued(der []byte, tmpl, parent *x509.Certificate, c *checkedCSR) (*x509.Certificate, bool) {
	if tmpl.IsCA || len(parent.Raw) == 0 {
		return nil, false
	}
	input := cryptobyte.String(der)
	var certSeq, tbs, tbsInner, sigAI cryptobyte.String
	var version int64
	var rawIssuer, rawSubject, spki cryptobyte.String
	var sig asn1.BitString
	if !input.ReadASN1Element(&certSeq, cbasn1.SEQUENCE) || !input.Empty() {
		return nil, false
	}
	raw := []byte(certSeq)
	if !certSeq.ReadASN1(&certSeq, cbasn1.SEQUENCE) ||
		!certSeq.ReadASN1Element(&tbs, cbasn1.SEQUENCE) ||
		!certSeq.ReadASN1(&sigAI, cbasn1.SEQUENCE) ||
		!certSeq.ReadASN1BitString(&sig) || !certSeq.Empty() || sig.BitLength%8 != 0 {
		return nil, false
	}
	rawTBS := []byte(tbs)
	if !tbs.ReadASN1(&tbsInner, cbasn1.SEQUENCE) ||
		!tbsInner.ReadOptionalASN1Integer(&version, cbasn1.Tag(0).Constructed().ContextSpecific(), int64(0)) || version != 2 ||
		!tbsInner.SkipASN1(cbasn1.INTEGER) || // serialNumber
		!tbsInner.SkipASN1(cbasn1.SEQUENCE) || // signature
		!tbsInner.ReadASN1Element(&rawIssuer, cbasn1.SEQUENCE) ||
		!tbsInner.SkipASN1(cbasn1.SEQUENCE) || // validity
		!tbsInner.ReadASN1Element(&rawSubject, cbasn1.SEQUENCE) ||
		!tbsInner.ReadASN1Element(&spki, cbasn1.SEQUENCE) {
		return nil, false
	}
	var exts cryptobyte.String
	if !tbsInner.ReadASN1(&exts, cbasn1.Tag(3).Constructed().ContextSpecific()) || !tbsInner.Empty() ||
		!exts.ReadASN1(&exts, cbasn1.SEQUENCE) || !bytes.Equal(rawIssuer, parent.RawSubject) {
		return nil, false
	}
	cert := &x509.Certificate{
		Raw:                     raw,
		RawTBSCertificate:       rawTBS,
		RawSubjectPublicKeyInfo: spki,
		RawSubject:              rawSubject,
		RawIssuer:               rawIssuer,
		Signature:               sig.Bytes,
		SignatureAlgorithm:      tmpl.SignatureAlgorithm,
		PublicKeyAlgorithm:      c.csr.PublicKeyAlgorithm,
		PublicKey:               c.csr.PublicKey,
		Version:                 3,
		SerialNumber:            tmpl.SerialNumber,
		Issuer:                  parent.Subject,
		NotBefore:               time.Unix(tmpl.NotBefore.Unix(), 0).UTC(),
		NotAfter:                time.Unix(tmpl.NotAfter.Unix(), 0).UTC(),
	}
	seq := tmpl.Subject.ToRDNSequence()
	cert.Subject.FillFromRDNSequence(&seq)
	cert.Extensions = make([]pkix.Extension, 0, 8) // this package issues 5 to 8
	for !exts.Empty() {
		var ext, val cryptobyte.String
		var e pkix.Extension
		if !exts.ReadASN1(&ext, cbasn1.SEQUENCE) || !ext.ReadASN1ObjectIdentifier(&e.Id) ||
			(ext.PeekASN1Tag(cbasn1.BOOLEAN) && !ext.ReadASN1Boolean(&e.Critical)) ||
			!ext.ReadASN1(&val, cbasn1.OCTET_STRING) || !ext.Empty() {
			return nil, false
		}
		e.Value = val
		if !fillExtension(cert, e, tmpl, c) {
			return nil, false
		}
		cert.Extensions = append(cert.Extensions, e)
	}
	return cert, true
}

// fillExtension sets the fields of cert that extension e decodes to, from
// the template and the checked request it was encoded from. It reports
// false for an extension it does not account for.
func fillExtension(cert *x509.Certificate, e pkix.Extension, tmpl *x509.Certificate, c *checkedCSR) bool {
	critical := e.Id.Equal(oidKeyUsage) || e.Id.Equal(oidBasicConstraints)
	if e.Critical != critical {
		return false
	}
	v := cryptobyte.String(e.Value)
	switch {
	case e.Id.Equal(oidKeyUsage):
		cert.KeyUsage = tmpl.KeyUsage
	case e.Id.Equal(oidBasicConstraints):
		// cA FALSE, no pathLenConstraint: an empty SEQUENCE.
		var bc cryptobyte.String
		if !v.ReadASN1(&bc, cbasn1.SEQUENCE) || !bc.Empty() || !v.Empty() {
			return false
		}
		cert.BasicConstraintsValid, cert.MaxPathLen = true, -1
	case e.Id.Equal(oidExtKeyUsage):
		cert.ExtKeyUsage = slices.Clone(tmpl.ExtKeyUsage)
		for _, u := range tmpl.UnknownExtKeyUsage {
			cert.UnknownExtKeyUsage = append(cert.UnknownExtKeyUsage, slices.Clone(u))
		}
	case e.Id.Equal(oidSubjectKeyID):
		var ski cryptobyte.String
		if !v.ReadASN1(&ski, cbasn1.OCTET_STRING) || !v.Empty() {
			return false
		}
		cert.SubjectKeyId = ski
	case e.Id.Equal(oidAuthorityKeyID):
		var akid, id cryptobyte.String
		if !v.ReadASN1(&akid, cbasn1.SEQUENCE) || !akid.ReadASN1(&id, cbasn1.Tag(0).ContextSpecific()) || !akid.Empty() {
			return false
		}
		cert.AuthorityKeyId = id
	case e.Id.Equal(oidCRLDistributionPoints):
		cert.CRLDistributionPoints = slices.Clone(tmpl.CRLDistributionPoints)
	case e.Id.Equal(oidSubjectAltName):
		if len(c.san.DNSNames) > 0 {
			cert.DNSNames = slices.Clone(c.san.DNSNames)
		}
		for _, s := range c.san.URIs {
			u, err := url.Parse(s)
			if err != nil {
				return false
			}
			cert.URIs = append(cert.URIs, u)
		}
	case e.Id.Equal(oidStationAuthorization):
		// Kept in Extensions only, as crypto/x509 keeps it.
	default:
		return false
	}
	return true
}
