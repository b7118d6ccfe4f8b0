package attest

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"fmt"

	"github.com/veraison/go-cose"

	"github.com/ztmkit/ztm/identity/keystore"
	"github.com/ztmkit/ztm/internal/sign1"
)

// jws is a compact JWS (RFC 7515 §7.1) with one signature, read strictly:
// the envelope checks that evidence and results share, as parseSign1 is
// for COSE.
type jws struct {
	alg    keystore.Algorithm
	kid    []byte // nil if absent
	x5c    [][]byte
	signed []byte // the JWS signing input, header.payload
	// payload and sig are decoded.
	payload, sig []byte
}

// stdB64 decodes x5c values (RFC 7515 §4.1.6: base64, not base64url).
var stdB64 = base64.StdEncoding.Strict()

// parseJWS splits and decodes a compact JWS and reads its protected
// header with the strict JSON decoder: alg (ES256, ES384, EdDSA or PS256;
// anything else, none and HMAC among them, is an unsupported algorithm),
// kid, x5c (1 to [sign1.MaxX5Chain] certificates), typ and cty; crit is
// refused as not understood, and so is b64 other than true (RFC 7797);
// other members are ignored. Duplicate members are malformed.
func parseJWS(token []byte) (*jws, *VerificationError) {
	h64, rest, ok1 := bytes.Cut(token, []byte{'.'})
	p64, s64, ok2 := bytes.Cut(rest, []byte{'.'})
	if !ok1 || !ok2 || bytes.IndexByte(s64, '.') >= 0 {
		return nil, verr(ReasonMalformed, nil, "JWS: not three base64url parts")
	}
	hdr, err := decodeB64(string(h64))
	if err != nil {
		return nil, verr(ReasonMalformed, err, "JWS header")
	}
	j := &jws{signed: token[:len(h64)+1+len(p64)]}
	if e := j.readHeader(hdr); e != nil {
		return nil, e
	}
	if j.payload, err = decodeB64(string(p64)); err != nil {
		return nil, verr(ReasonMalformed, err, "JWS payload")
	}
	if j.sig, err = decodeB64(string(s64)); err != nil || len(j.sig) == 0 {
		return nil, verr(ReasonMalformed, err, "JWS signature")
	}
	return j, nil
}

// readHeader reads the members of the JOSE header ztm defines.
func (j *jws) readHeader(hdr []byte) *VerificationError {
	members, err := scanObject(hdr)
	if err != nil {
		return verr(ReasonMalformed, err, "JWS header")
	}
	var alg string
	hasAlg := false
	for _, m := range members {
		var err error
		switch string(m.name) {
		case "alg":
			hasAlg = true
			alg, err = jsonString(m.value)
		case "kid":
			var kid string
			kid, err = jsonString(m.value)
			j.kid = []byte(kid)
		case "typ", "cty":
			_, err = jsonString(m.value)
		case "x5c":
			j.x5c, err = decodeX5C(m.value)
		case "crit":
			return verr(ReasonMalformed, nil, "critical header parameters are not understood")
		case "b64":
			if b, e := jsonBool(m.value); e != nil || !b {
				return verr(ReasonMalformed, e, "unencoded payloads (b64) are not supported")
			}
		}
		if err != nil {
			return verr(ReasonMalformed, err, "JWS header %q", m.name)
		}
	}
	if !hasAlg {
		return verr(ReasonUnsupportedAlgorithm, nil, "no alg in the JOSE header")
	}
	a, err := keystore.ParseAlgorithm(alg)
	if err != nil || string(joseAlg(a)) != alg {
		return verr(ReasonUnsupportedAlgorithm, err, "JOSE algorithm %.20q", alg)
	}
	j.alg = a
	return nil
}

// decodeX5C decodes an x5c header: an array of 1 to [sign1.MaxX5Chain]
// base64 DER certificates, leaf first.
func decodeX5C(v []byte) ([][]byte, error) {
	items, err := scanArray(v)
	if err != nil {
		return nil, err
	}
	if len(items) == 0 || len(items) > sign1.MaxX5Chain {
		return nil, fmt.Errorf("%d certificates, want 1 to %d", len(items), sign1.MaxX5Chain)
	}
	ders := make([][]byte, len(items))
	for i, it := range items {
		s, err := jsonString(it)
		if err != nil {
			return nil, err
		}
		if ders[i], err = stdB64.DecodeString(s); err != nil {
			return nil, fmt.Errorf("certificate %d: %w", i, err)
		}
	}
	return ders, nil
}

// verify checks the signature with cv (a verifier for j.alg), or one made
// for pub when cv is nil. JWS and COSE share the signature forms (RFC 7518
// §3.4, RFC 9053 §2.1), so go-cose's verifiers serve both.
func (j *jws) verify(cv cose.Verifier, pub crypto.PublicKey, what string) *VerificationError {
	if cv == nil {
		var err error
		if cv, err = cose.NewVerifier(coseAlg(j.alg), pub); err != nil {
			return verr(ReasonUntrustedSigner, err, "signer key")
		}
	}
	if err := cv.Verify(j.signed, j.sig); err != nil {
		return verr(ReasonBadSignature, err, "%s", what)
	}
	return nil
}

// certificates parses the x5c certificates.
func (j *jws) certificates() ([]*x509.Certificate, *VerificationError) {
	certs := make([]*x509.Certificate, len(j.x5c))
	for i, der := range j.x5c {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, verr(ReasonUntrustedSigner, err, "x5c certificate %d", i)
		}
		certs[i] = c
	}
	return certs, nil
}
