package enroll

import (
	"crypto"
	"crypto/ed25519"
	crand "crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"

	"github.com/ztmkit/ztm/identity/keystore"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// OIDEvidenceAttribute returns id-aa-evidence, 1.2.840.113549.1.9.16.2.59:
// the PKCS#10 attribute of draft-ietf-lamps-csr-attestation that carries
// attestation evidence inside a certificate request. The draft's IANA
// section asks for the value in "SMI Security for S/MIME Attributes"
// (id-aa) and records 59 as early-allocated; ztm uses 59, and will follow
// the RFC should the final value differ.
func OIDEvidenceAttribute() asn1.ObjectIdentifier {
	return asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 16, 2, 59}
}

// OIDEvidenceEAT returns the EvidenceStatement type ztm writes for an EAT
// (a CWT or a JWT, the statement being an OCTET STRING of the token's
// bytes): 2.25.1868605989.3.1, under ztm's private arc (see package ca).
// draft-ietf-lamps-csr-attestation registers no statement type for EAT; its
// registry of types is to be opened by IANA. ztm will read a registered
// type too once there is one.
func OIDEvidenceEAT() asn1.ObjectIdentifier {
	return asn1.ObjectIdentifier{2, 25, 1868605989, 3, 1}
}

var (
	oidEvidenceAttribute = OIDEvidenceAttribute()
	oidEvidenceEAT       = OIDEvidenceEAT()
)

// maxStatements bounds the evidence statements read from one request.
const maxStatements = 8

// EvidenceFromCSR returns the EAT evidence a certificate request carries
// in its id-aa-evidence attribute (draft-ietf-lamps-csr-attestation):
// rawTBS is the request's certificationRequestInfo
// (x509.CertificateRequest.RawTBSCertificateRequest). The attribute holds
// one EvidenceBundle:
//
//	EvidenceBundle ::= SEQUENCE {
//	   evidences SEQUENCE SIZE (1..MAX) OF EvidenceStatement,
//	   certs SEQUENCE SIZE (1..MAX) OF CertificateChoices OPTIONAL }
//	EvidenceStatement ::= SEQUENCE {
//	   type OBJECT IDENTIFIER, stmt ANY DEFINED BY type,
//	   hint IA5String OPTIONAL }
//
// It returns the stmt of the one statement of type [OIDEvidenceEAT] and
// whether there was one. The attribute present twice, a bundle with
// several EAT statements, or a malformed one is an error; statements of
// other types and the certs are skipped (an EAT names its own signer).
func EvidenceFromCSR(rawTBS []byte) ([]byte, bool, error) {
	s := cryptobyte.String(rawTBS)
	var tbs, attrs cryptobyte.String
	if !s.ReadASN1(&tbs, cbasn1.SEQUENCE) ||
		!tbs.SkipASN1(cbasn1.INTEGER) ||
		!tbs.SkipASN1(cbasn1.SEQUENCE) ||
		!tbs.SkipASN1(cbasn1.SEQUENCE) {
		return nil, false, errors.New("enroll: malformed certificate request")
	}
	if !tbs.ReadASN1(&attrs, cbasn1.Tag(0).Constructed().ContextSpecific()) {
		return nil, false, nil
	}
	var out []byte
	found := false
	for !attrs.Empty() {
		var attr, values cryptobyte.String
		var oid asn1.ObjectIdentifier
		if !attrs.ReadASN1(&attr, cbasn1.SEQUENCE) || !attr.ReadASN1ObjectIdentifier(&oid) || !attr.ReadASN1(&values, cbasn1.SET) {
			return nil, false, errors.New("enroll: malformed request attribute")
		}
		if !oid.Equal(oidEvidenceAttribute) {
			continue
		}
		if found {
			return nil, false, errors.New("enroll: evidence attribute present twice")
		}
		found = true
		var bundle cryptobyte.String
		if !values.ReadASN1(&bundle, cbasn1.SEQUENCE) || !values.Empty() {
			return nil, false, errors.New("enroll: evidence attribute must hold one EvidenceBundle")
		}
		ev, err := eatFromBundle(bundle)
		if err != nil {
			return nil, false, err
		}
		out = ev
	}
	return out, out != nil, nil
}

// eatFromBundle returns the one EAT statement of an EvidenceBundle.
func eatFromBundle(bundle cryptobyte.String) ([]byte, error) {
	var stmts cryptobyte.String
	if !bundle.ReadASN1(&stmts, cbasn1.SEQUENCE) || stmts.Empty() {
		return nil, errors.New("enroll: EvidenceBundle without evidence statements")
	}
	if !bundle.Empty() && !bundle.SkipASN1(cbasn1.SEQUENCE) || !bundle.Empty() {
		return nil, errors.New("enroll: malformed EvidenceBundle certs")
	}
	var eat []byte
	for n := 0; !stmts.Empty(); n++ {
		if n == maxStatements {
			return nil, fmt.Errorf("enroll: more than %d evidence statements", maxStatements)
		}
		var st cryptobyte.String
		var typ asn1.ObjectIdentifier
		var stmt cryptobyte.String
		var tag cbasn1.Tag
		if !stmts.ReadASN1(&st, cbasn1.SEQUENCE) || !st.ReadASN1ObjectIdentifier(&typ) || !st.ReadAnyASN1(&stmt, &tag) {
			return nil, errors.New("enroll: malformed EvidenceStatement")
		}
		if !st.Empty() && !st.SkipASN1(cbasn1.IA5String) || !st.Empty() {
			return nil, errors.New("enroll: malformed EvidenceStatement hint")
		}
		if !typ.Equal(oidEvidenceEAT) {
			continue
		}
		if eat != nil {
			return nil, errors.New("enroll: more than one EAT evidence statement")
		}
		if tag != cbasn1.OCTET_STRING || len(stmt) == 0 {
			return nil, errors.New("enroll: EAT evidence statement is not a non-empty OCTET STRING")
		}
		eat = append([]byte(nil), stmt...)
	}
	if eat == nil {
		return nil, errors.New("enroll: evidence attribute without an EAT statement")
	}
	return eat, nil
}

// AddEvidenceToCSR returns csr with evidence (an EAT, CWT or JWT) added in
// an id-aa-evidence attribute (draft-ietf-lamps-csr-attestation, see
// [EvidenceFromCSR]) and signed again by key, which must be the key the
// request is for, with the request's signature algorithm. A plain RFC 7030
// client can then send the attested request as it is, without ztm's
// ZTM-Evidence header. csr must not carry evidence already. If rand is
// nil, crypto/rand is used.
func AddEvidenceToCSR(rand io.Reader, key crypto.Signer, csr, evidence []byte) ([]byte, error) {
	req, err := x509.ParseCertificateRequest(csr)
	if err != nil {
		return nil, fmt.Errorf("enroll: %w", err)
	}
	if !keystore.PublicKeysEqual(key.Public(), req.PublicKey) {
		return nil, errors.New("enroll: key is not the request's key")
	}
	if len(evidence) == 0 {
		return nil, errors.New("enroll: no evidence")
	}
	if rand == nil {
		rand = crand.Reader
	}
	if _, ok, err := EvidenceFromCSR(req.RawTBSCertificateRequest); err != nil || ok {
		return nil, errors.New("enroll: request carries evidence already, or a malformed attribute")
	}
	tbs, err := tbsWithEvidence(req.RawTBSCertificateRequest, evidence)
	if err != nil {
		return nil, err
	}
	sig, err := signTBS(rand, key, req.SignatureAlgorithm, tbs)
	if err != nil {
		return nil, err
	}
	// The signature algorithm identifier is the request's, as received.
	outer := cryptobyte.String(csr)
	var body, sigAlg cryptobyte.String
	if !outer.ReadASN1(&body, cbasn1.SEQUENCE) || !body.SkipASN1(cbasn1.SEQUENCE) || !body.ReadASN1Element(&sigAlg, cbasn1.SEQUENCE) {
		return nil, errors.New("enroll: malformed certificate request")
	}
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddBytes(tbs)
		b.AddBytes(sigAlg)
		b.AddASN1BitString(sig)
	})
	return b.Bytes()
}

// tbsWithEvidence appends the evidence attribute to a
// certificationRequestInfo.
func tbsWithEvidence(rawTBS, evidence []byte) ([]byte, error) {
	s := cryptobyte.String(rawTBS)
	var tbs, version, subject, spki, attrs cryptobyte.String
	if !s.ReadASN1(&tbs, cbasn1.SEQUENCE) ||
		!tbs.ReadASN1Element(&version, cbasn1.INTEGER) ||
		!tbs.ReadASN1Element(&subject, cbasn1.SEQUENCE) ||
		!tbs.ReadASN1Element(&spki, cbasn1.SEQUENCE) {
		return nil, errors.New("enroll: malformed certificate request")
	}
	if !tbs.ReadASN1(&attrs, cbasn1.Tag(0).Constructed().ContextSpecific()) {
		attrs = nil
	}
	if !tbs.Empty() {
		return nil, errors.New("enroll: trailing data in certificate request")
	}
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddBytes(version)
		b.AddBytes(subject)
		b.AddBytes(spki)
		b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
			b.AddBytes(attrs)
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddASN1ObjectIdentifier(oidEvidenceAttribute)
				b.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) {
					b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // EvidenceBundle
						b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // evidences
							b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // EvidenceStatement
								b.AddASN1ObjectIdentifier(oidEvidenceEAT)
								b.AddASN1OctetString(evidence)
							})
						})
					})
				})
			})
		})
	})
	return b.Bytes()
}

// signTBS signs tbs as x509 does for alg.
func signTBS(rand io.Reader, key crypto.Signer, alg x509.SignatureAlgorithm, tbs []byte) ([]byte, error) {
	var h crypto.Hash
	var opts crypto.SignerOpts
	switch alg {
	case x509.ECDSAWithSHA256, x509.SHA256WithRSA:
		h = crypto.SHA256
	case x509.ECDSAWithSHA384, x509.SHA384WithRSA:
		h = crypto.SHA384
	case x509.ECDSAWithSHA512, x509.SHA512WithRSA:
		h = crypto.SHA512
	case x509.SHA256WithRSAPSS:
		h, opts = crypto.SHA256, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA256}
	case x509.SHA384WithRSAPSS:
		h, opts = crypto.SHA384, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA384}
	case x509.SHA512WithRSAPSS:
		h, opts = crypto.SHA512, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA512}
	case x509.PureEd25519:
		if _, ok := key.Public().(ed25519.PublicKey); !ok {
			return nil, errors.New("enroll: Ed25519 request, other key")
		}
		return key.Sign(rand, tbs, crypto.Hash(0))
	default:
		return nil, fmt.Errorf("enroll: request signature algorithm %v not supported", alg)
	}
	if opts == nil {
		opts = h
	}
	d := h.New()
	d.Write(tbs)
	return key.Sign(rand, d.Sum(nil), opts)
}
