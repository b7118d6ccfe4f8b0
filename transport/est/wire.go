package est

import (
	"bytes"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"fmt"

	"github.com/smallstep/pkcs7"
	"github.com/ztmkit/ztm/identity"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// Media types of RFC 7030 §3.2.4 and §4, and of the ztm nonce extension.
const (
	// MediaTypePKCS10 is the media type of a certificate request body.
	MediaTypePKCS10 = "application/pkcs10"
	// MediaTypeCertsOnly is the media type of /cacerts and enrollment
	// answers: a certs-only CMS SignedData (RFC 5751 §3.2.2).
	MediaTypeCertsOnly = "application/pkcs7-mime; smime-type=certs-only"
	// MediaTypeCSRAttrs is the media type of the /csrattrs answer.
	MediaTypeCSRAttrs = "application/csrattrs"
	// MediaTypeNonce is the media type of the ztm-nonce answer: the
	// base64 of the raw nonce bytes.
	MediaTypeNonce = "application/octet-stream"
	// HeaderEvidence carries the device's attestation evidence (an EAT as
	// CWT or JWT) on simpleenroll and simplereenroll, base64 (standard
	// alphabet, padding optional) of the exact evidence bytes.
	HeaderEvidence = "ZTM-Evidence"
)

// oidChallengePassword is PKCS#9 challengePassword (1.2.840.113549.1.9.7),
// the attribute RFC 7030 §3.5 carries the channel binding in.
var (
	oidChallengePassword = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 7}
	oidSerialNumber      = asn1.ObjectIdentifier{2, 5, 4, 5}
	oidHardwareModule    = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 8, 4}
)

// decodeBase64Body decodes an RFC 7030 body: base64 (RFC 4648 §4) with any
// line breaks and spaces, as Content-Transfer-Encoding: base64 produces.
// Padding is required when the length calls for it.
func decodeBase64Body(body []byte) ([]byte, error) {
	clean := make([]byte, 0, len(body))
	for _, c := range body {
		switch c {
		case '\r', '\n', ' ', '\t':
			continue
		}
		clean = append(clean, c)
	}
	if len(clean) == 0 {
		return nil, fmt.Errorf("est: empty body")
	}
	out := make([]byte, base64.StdEncoding.DecodedLen(len(clean)))
	n, err := base64.StdEncoding.Strict().Decode(out, clean)
	if err != nil {
		return nil, fmt.Errorf("est: body is not base64: %w", err)
	}
	return out[:n], nil
}

// encodeBase64Body encodes der as base64 in lines of 64 characters, each
// ended by CRLF, as RFC 2045 §6.8 asks of a base64 transfer encoding.
func encodeBase64Body(der []byte) []byte {
	enc := base64.StdEncoding.EncodeToString(der)
	var b bytes.Buffer
	b.Grow(len(enc) + len(enc)/32 + 2)
	for len(enc) > 64 {
		b.WriteString(enc[:64])
		b.WriteString("\r\n")
		enc = enc[64:]
	}
	b.WriteString(enc)
	b.WriteString("\r\n")
	return b.Bytes()
}

// DecodeCSRBody decodes the body of a simpleenroll or simplereenroll
// request (base64 of a DER PKCS#10 request) and checks the request with
// [identity.ParseRequest], as the CA checks every request before its
// profile's rules: one well-formed request, a key ztm accepts, a
// self-signature that verifies (SHA-1 refused), no extension the CA never
// gives. It returns the DER bytes exactly as sent and the parsed request.
// Errors wrap [ErrBadRequest]; a refused request's also wrap the
// [*identity.CSRError].
func DecodeCSRBody(body []byte) ([]byte, *x509.CertificateRequest, error) {
	der, err := decodeBase64Body(body)
	if err != nil {
		return nil, nil, &RequestError{Reason: "malformed base64", Err: err}
	}
	c, err := identity.ParseRequest(der, identity.RequestRules{AnySHA2Signature: true, AnyAttribute: true})
	if err != nil {
		return nil, nil, &RequestError{Reason: "certificate request refused", Err: err}
	}
	return der, c.Request, nil
}

// certsOnly returns the DER certs-only SignedData holding certs in order.
func certsOnly(certs []*x509.Certificate) ([]byte, error) {
	var all []byte
	for _, c := range certs {
		all = append(all, c.Raw...)
	}
	return pkcs7.DegenerateCertificate(all)
}

// parseCertsOnly parses a certs-only SignedData (DER) and returns its
// certificates in order. It refuses one without certificates. The DER
// form is read directly; anything else (BER) goes through pkcs7.Parse.
func parseCertsOnly(der []byte) ([]*x509.Certificate, error) {
	if certs, ok := readCertsOnlyDER(der); ok {
		return certs, nil
	}
	p7, err := pkcs7.Parse(der)
	if err != nil {
		return nil, fmt.Errorf("est: malformed certs-only SignedData: %w", err)
	}
	if len(p7.Certificates) == 0 {
		return nil, fmt.Errorf("est: certs-only SignedData holds no certificate")
	}
	return p7.Certificates, nil
}

// CSRAttr is one element of a /csrattrs answer (RFC 7030 §4.5.2,
// AttrOrOID): an OID alone, or an attribute with its values.
type CSRAttr struct {
	// OID is the bare OID or the attribute type.
	OID asn1.ObjectIdentifier
	// Values are the DER values of an attribute; nil for a bare OID.
	Values [][]byte
}

// MarshalCSRAttrs returns the DER CsrAttrs SEQUENCE of attrs.
//
//	CsrAttrs ::= SEQUENCE SIZE (0..MAX) OF AttrOrOID
//	AttrOrOID ::= CHOICE { oid OBJECT IDENTIFIER, attribute Attribute }
//
// Reference: RFC 7030 §4.5.2.
func MarshalCSRAttrs(attrs []CSRAttr) ([]byte, error) {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		for _, a := range attrs {
			if a.Values == nil {
				b.AddASN1ObjectIdentifier(a.OID)
				continue
			}
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddASN1ObjectIdentifier(a.OID)
				b.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) {
					for _, v := range a.Values {
						b.AddBytes(v)
					}
				})
			})
		}
	})
	return b.Bytes()
}

// ParseCSRAttrs parses a DER CsrAttrs SEQUENCE (see [MarshalCSRAttrs]).
// Trailing data and malformed elements are errors wrapping [ErrBadResponse].
func ParseCSRAttrs(der []byte) ([]CSRAttr, error) {
	bad := func(what string) error { return fmt.Errorf("%w: csrattrs: %s", ErrBadResponse, what) }
	s := cryptobyte.String(der)
	var seq cryptobyte.String
	if !s.ReadASN1(&seq, cbasn1.SEQUENCE) || !s.Empty() {
		return nil, bad("not one DER SEQUENCE")
	}
	var out []CSRAttr
	for !seq.Empty() {
		if seq.PeekASN1Tag(cbasn1.OBJECT_IDENTIFIER) {
			var oid asn1.ObjectIdentifier
			if !seq.ReadASN1ObjectIdentifier(&oid) {
				return nil, bad("malformed OID")
			}
			out = append(out, CSRAttr{OID: oid})
			continue
		}
		var attr, set cryptobyte.String
		var oid asn1.ObjectIdentifier
		if !seq.ReadASN1(&attr, cbasn1.SEQUENCE) || !attr.ReadASN1ObjectIdentifier(&oid) || !attr.ReadASN1(&set, cbasn1.SET) || !attr.Empty() {
			return nil, bad("malformed attribute")
		}
		a := CSRAttr{OID: oid, Values: [][]byte{}}
		for !set.Empty() {
			var v cryptobyte.String
			if !readAnyElement(&set, &v) {
				return nil, bad("malformed attribute value")
			}
			a.Values = append(a.Values, bytes.Clone(v))
		}
		out = append(out, a)
	}
	return out, nil
}

// readAnyElement reads one TLV of any tag, header included.
func readAnyElement(s *cryptobyte.String, out *cryptobyte.String) bool {
	var tag cbasn1.Tag
	return s.ReadAnyASN1Element(out, &tag)
}

var oidSignedData = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 2}

// readCertsOnlyDER reads the certificates of a DER ContentInfo holding a
// SignedData (RFC 5652 §5.1) with no signers.
func readCertsOnlyDER(der []byte) ([]*x509.Certificate, bool) {
	s := cryptobyte.String(der)
	var ci, content, sd, certs cryptobyte.String
	var oid asn1.ObjectIdentifier
	var version int
	if !s.ReadASN1(&ci, cbasn1.SEQUENCE) || !s.Empty() ||
		!ci.ReadASN1ObjectIdentifier(&oid) || !oid.Equal(oidSignedData) ||
		!ci.ReadASN1(&content, cbasn1.Tag(0).Constructed().ContextSpecific()) || !ci.Empty() ||
		!content.ReadASN1(&sd, cbasn1.SEQUENCE) || !content.Empty() ||
		!sd.ReadASN1Integer(&version) ||
		!sd.SkipASN1(cbasn1.SET) || // digestAlgorithms
		!sd.SkipASN1(cbasn1.SEQUENCE) || // encapContentInfo
		!sd.ReadASN1(&certs, cbasn1.Tag(0).Constructed().ContextSpecific()) {
		return nil, false
	}
	if sd.PeekASN1Tag(cbasn1.Tag(1).Constructed().ContextSpecific()) {
		sd.SkipASN1(cbasn1.Tag(1).Constructed().ContextSpecific()) // crls
	}
	var signers cryptobyte.String
	if !sd.ReadASN1(&signers, cbasn1.SET) || !sd.Empty() || len(certs) == 0 {
		return nil, false
	}
	out, err := x509.ParseCertificates(certs)
	if err != nil || len(out) == 0 {
		return nil, false
	}
	return out, true
}

// csrPublicKeyInfo returns the DER SubjectPublicKeyInfo of a DER request.
func csrPublicKeyInfo(der []byte) ([]byte, error) {
	s := cryptobyte.String(der)
	var req, tbs cryptobyte.String
	var spki cryptobyte.String
	if !s.ReadASN1(&req, cbasn1.SEQUENCE) || !s.Empty() ||
		!req.ReadASN1(&tbs, cbasn1.SEQUENCE) ||
		!tbs.SkipASN1(cbasn1.INTEGER) || !tbs.SkipASN1(cbasn1.SEQUENCE) ||
		!tbs.ReadASN1Element(&spki, cbasn1.SEQUENCE) {
		return nil, &RequestError{Reason: "malformed certificate request"}
	}
	return spki, nil
}
