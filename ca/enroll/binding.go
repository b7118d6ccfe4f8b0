package enroll

import (
	"bytes"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"

	"github.com/ztmkit/ztm/attest"
	"github.com/ztmkit/ztm/ca"
	"github.com/ztmkit/ztm/identity"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

var (
	oidSubjectAltName    = asn1.ObjectIdentifier{2, 5, 29, 17}
	oidChallengePassword = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 7}
)

// BindingFunc checks that verified evidence names the device that made the
// certificate request. It returns an error to refuse the enrollment.
type BindingFunc func(csr *x509.CertificateRequest, ev *attest.Evidence) error

// BindUEIDToHardwareModule is the default [BindingFunc]: the evidence must
// carry a UEID (EAT claim 256) and the request a hardwareModuleName (RFC
// 4108) whose hwSerialNum is exactly the UEID's bytes. This is the ztm
// convention that ties an IDevID to the evidence: the UEID is the only
// device identifier the attestation key signs, and hwSerialNum is the only
// one IEEE 802.1AR puts in the certificate. A request without a
// hardwareModuleName, or evidence without a UEID, is refused.
func BindUEIDToHardwareModule(csr *x509.CertificateRequest, ev *attest.Evidence) error {
	if ev == nil || ev.Claims == nil || len(ev.Claims.UEID) == 0 {
		return errors.New("evidence carries no ueid")
	}
	for _, ext := range csr.Extensions {
		if !ext.Id.Equal(oidSubjectAltName) {
			continue
		}
		san, err := identity.ParseSubjectAltName(ext.Value)
		if err != nil {
			return err
		}
		hms := san.HardwareModules
		for _, h := range hms {
			if bytes.Equal(h.SerialNumber, ev.Claims.UEID) {
				return nil
			}
		}
		var first []byte
		if len(hms) > 0 {
			first = hms[0].SerialNumber
		}
		return fmt.Errorf("hardwareModuleName serial %x is not the evidence's ueid %x", first, ev.Claims.UEID)
	}
	return errors.New("request carries no hardwareModuleName")
}

// checkRenewalNames checks a re-enrollment request against the
// certificate being renewed (RFC 7030 §4.2.2): the same subject, compared
// as RFC 5280 §7.1 compares names (ca.EqualNames: string types, case and
// insignificant spaces aside), and the same subjectAltName.
func checkRenewalNames(csr *x509.CertificateRequest, cur *x509.Certificate) error {
	if same, err := ca.EqualNames(csr.RawSubject, cur.RawSubject); err != nil || !same {
		return refuse(ReasonRenewal, nil, "re-enrollment subject differs from the current certificate's")
	}
	if !bytes.Equal(sanValue(csr.Extensions), sanValue(cur.Extensions)) {
		return refuse(ReasonRenewal, nil, "re-enrollment subjectAltName differs from the current certificate's")
	}
	return nil
}

func sanValue(exts []pkix.Extension) []byte {
	for _, e := range exts {
		if e.Id.Equal(oidSubjectAltName) {
			return e.Value
		}
	}
	return nil
}

// ChallengePassword returns the challengePassword attribute of a
// request's TBS (its single value, PrintableString, UTF8String or
// IA5String), whether it was present, and an error when it is malformed
// or present twice. EST carries the channel binding in it (RFC 7030 §3.5,
// RFC 9266).
func ChallengePassword(rawTBS []byte) (string, bool, error) {
	s := cryptobyte.String(rawTBS)
	var tbs, attrs cryptobyte.String
	if !s.ReadASN1(&tbs, cbasn1.SEQUENCE) ||
		!tbs.SkipASN1(cbasn1.INTEGER) || // version
		!tbs.SkipASN1(cbasn1.SEQUENCE) || // subject
		!tbs.SkipASN1(cbasn1.SEQUENCE) { // subjectPKInfo
		return "", false, errors.New("enroll: malformed certificate request")
	}
	if !tbs.ReadASN1(&attrs, cbasn1.Tag(0).Constructed().ContextSpecific()) {
		return "", false, nil
	}
	var pw string
	found := false
	for !attrs.Empty() {
		var attr, values cryptobyte.String
		var oid asn1.ObjectIdentifier
		if !attrs.ReadASN1(&attr, cbasn1.SEQUENCE) || !attr.ReadASN1ObjectIdentifier(&oid) || !attr.ReadASN1(&values, cbasn1.SET) {
			return "", false, errors.New("enroll: malformed request attribute")
		}
		if !oid.Equal(oidChallengePassword) {
			continue
		}
		if found {
			return "", false, errors.New("enroll: challengePassword present twice")
		}
		found = true
		var v cryptobyte.String
		var tag cbasn1.Tag
		if !values.ReadAnyASN1(&v, &tag) || !values.Empty() {
			return "", false, errors.New("enroll: challengePassword must have one value")
		}
		switch tag {
		case cbasn1.PrintableString, cbasn1.UTF8String, cbasn1.IA5String:
		default:
			return "", false, fmt.Errorf("enroll: challengePassword of ASN.1 tag %d", tag)
		}
		pw = string(v)
	}
	return pw, found, nil
}
