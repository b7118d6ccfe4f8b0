package identity

import (
	"crypto/x509/pkix"
	"encoding/asn1"
	"strconv"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// Object identifiers this package reads and writes.
var (
	oidHardwareModuleName = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 8, 4} // RFC 4108 §5, id-on-hardwareModuleName
	oidSubjectAltName     = asn1.ObjectIdentifier{2, 5, 29, 17}              // RFC 5280 §4.2.1.6
	oidBasicConstraints   = asn1.ObjectIdentifier{2, 5, 29, 19}              // RFC 5280 §4.2.1.9
	oidKeyUsage           = asn1.ObjectIdentifier{2, 5, 29, 15}              // RFC 5280 §4.2.1.3
	oidExtensionRequest   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 14}
	oidSerialNumber       = asn1.ObjectIdentifier{2, 5, 4, 5} // X.520 serialNumber
)

// OIDHardwareModuleName returns id-on-hardwareModuleName
// (1.3.6.1.5.5.7.8.4), the otherName type of a [HardwareModuleName].
// Reference: RFC 4108 §5.
func OIDHardwareModuleName() asn1.ObjectIdentifier {
	return append(asn1.ObjectIdentifier(nil), oidHardwareModuleName...)
}

// otherName and GeneralNames tags (RFC 5280 §4.2.1.6).
var (
	tagOtherName      = cbasn1.Tag(0).ContextSpecific().Constructed()
	tagOtherNameValue = cbasn1.Tag(0).ContextSpecific().Constructed() // [0] EXPLICIT
)

// Marshal returns the DER encoding of h, the HardwareModuleName SEQUENCE of
// RFC 4108 §5. It validates h first (see [HardwareModuleName.Validate]).
func (h HardwareModuleName) Marshal() ([]byte, error) {
	if err := h.Validate(); err != nil {
		return nil, err
	}
	var b cryptobyte.Builder
	addHardwareModuleName(&b, h)
	return b.Bytes()
}

func addHardwareModuleName(b *cryptobyte.Builder, h HardwareModuleName) {
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1ObjectIdentifier(h.Type)
		b.AddASN1OctetString(h.SerialNumber)
	})
}

// ParseHardwareModuleName parses the DER encoding of a HardwareModuleName
// (RFC 4108 §5). Malformed or oversize input, or trailing data, gives an
// error wrapping [ErrInvalidDevice].
func ParseHardwareModuleName(der []byte) (HardwareModuleName, error) {
	s := cryptobyte.String(der)
	h, ok := readHardwareModuleName(&s)
	if !ok || !s.Empty() {
		return HardwareModuleName{}, &DeviceError{Field: "HardwareModule", Reason: "malformed HardwareModuleName"}
	}
	if err := h.Validate(); err != nil {
		return HardwareModuleName{}, err
	}
	return h, nil
}

func readHardwareModuleName(s *cryptobyte.String) (HardwareModuleName, bool) {
	var seq, serial cryptobyte.String
	var oid asn1.ObjectIdentifier
	if !s.ReadASN1(&seq, cbasn1.SEQUENCE) ||
		!seq.ReadASN1ObjectIdentifier(&oid) ||
		!seq.ReadASN1(&serial, cbasn1.OCTET_STRING) ||
		!seq.Empty() {
		return HardwareModuleName{}, false
	}
	return HardwareModuleName{Type: oid, SerialNumber: append([]byte(nil), serial...)}, true
}

// HardwareModuleNameExtension returns a subject alternative name extension
// (2.5.29.17) whose only GeneralName is the otherName hardwareModuleName h,
// for a certificate request's or certificate's ExtraExtensions. RFC 5280
// §4.2.1.6 makes the extension critical when the subject is empty; pass
// critical accordingly. h is validated first.
func HardwareModuleNameExtension(h HardwareModuleName, critical bool) (pkix.Extension, error) {
	if err := h.Validate(); err != nil {
		return pkix.Extension{}, err
	}
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // GeneralNames
		b.AddASN1(tagOtherName, func(b *cryptobyte.Builder) {
			b.AddASN1ObjectIdentifier(oidHardwareModuleName)
			b.AddASN1(tagOtherNameValue, func(b *cryptobyte.Builder) {
				addHardwareModuleName(b, h)
			})
		})
	})
	der, err := b.Bytes()
	if err != nil {
		return pkix.Extension{}, &DeviceError{Field: "HardwareModule", Reason: "cannot encode", Err: err}
	}
	return pkix.Extension{Id: oidSubjectAltName, Critical: critical, Value: der}, nil
}

// HardwareModuleNameFromExtensions finds the hardwareModuleName in the
// subject alternative name among exts (a certificate's or certificate
// request's Extensions). It returns ok false if there is no subject
// alternative name or it holds no hardwareModuleName. Other GeneralNames
// are ignored. A malformed extension, more than one subject alternative
// name extension, or more than one hardwareModuleName gives an error
// wrapping [ErrInvalidDevice].
func HardwareModuleNameFromExtensions(exts []pkix.Extension) (h HardwareModuleName, ok bool, err error) {
	var found *pkix.Extension
	for i := range exts {
		if exts[i].Id.Equal(oidSubjectAltName) {
			if found != nil {
				return HardwareModuleName{}, false, &DeviceError{Field: "HardwareModule", Reason: "more than one subject alternative name extension"}
			}
			found = &exts[i]
		}
	}
	if found == nil {
		return HardwareModuleName{}, false, nil
	}
	san, err := ParseSubjectAltName(found.Value)
	if err != nil {
		return HardwareModuleName{}, false, err
	}
	switch len(san.HardwareModules) {
	case 0:
		return HardwareModuleName{}, false, nil
	case 1:
		return san.HardwareModules[0], true, nil
	}
	return HardwareModuleName{}, false, &DeviceError{Field: "HardwareModule", Reason: strconv.Itoa(len(san.HardwareModules)) + " hardwareModuleNames in one subject alternative name"}
}

// SubjectAltName is what ztm reads of a subject alternative name
// extension (RFC 5280 §4.2.1.6): its hardwareModuleNames (RFC 4108), its
// dNSNames and uniformResourceIdentifiers as written, and how many
// GeneralNames of other kinds it holds. [ParseSubjectAltName] makes one;
// it is the one subjectAltName parser of ztm, which the CA and the
// verifiers use too.
type SubjectAltName struct {
	// HardwareModules are the otherName hardwareModuleNames, each
	// validated ([HardwareModuleName.Validate]).
	HardwareModules []HardwareModuleName
	// DNSNames are the dNSName entries, not validated.
	DNSNames []string
	// URIs are the uniformResourceIdentifier entries, not validated.
	URIs []string
	// Others counts the other GeneralNames (rfc822Name, iPAddress,
	// directoryName, otherNames of other types…), none of which ztm
	// issues.
	Others int
}

// GeneralName tags (RFC 5280 §4.2.1.6).
var (
	tagDNSName = cbasn1.Tag(2).ContextSpecific()
	tagURI     = cbasn1.Tag(6).ContextSpecific()
)

// ParseSubjectAltName parses the value of a subject alternative name
// extension (2.5.29.17): one DER GeneralNames SEQUENCE of at least one
// GeneralName, with no trailing data. Malformed input, or a
// hardwareModuleName that is malformed or not valid, gives a
// [*DeviceError] wrapping [ErrInvalidDevice]. Reference: RFC 5280
// §4.2.1.6; RFC 4108 §5.
func ParseSubjectAltName(der []byte) (SubjectAltName, error) {
	var out SubjectAltName
	malformed := func(what string) (SubjectAltName, error) {
		return SubjectAltName{}, &DeviceError{Field: "HardwareModule", Reason: "malformed subject alternative name: " + what}
	}
	input := cryptobyte.String(der)
	var seq cryptobyte.String
	if !input.ReadASN1(&seq, cbasn1.SEQUENCE) || !input.Empty() {
		return malformed("not one GeneralNames SEQUENCE")
	}
	if seq.Empty() {
		return malformed("empty GeneralNames") // SIZE (1..MAX)
	}
	for !seq.Empty() {
		var gn cryptobyte.String
		var tag cbasn1.Tag
		if !seq.ReadAnyASN1(&gn, &tag) {
			return malformed("bad GeneralName")
		}
		switch tag {
		case tagDNSName:
			out.DNSNames = append(out.DNSNames, string(gn))
			continue
		case tagURI:
			out.URIs = append(out.URIs, string(gn))
			continue
		case tagOtherName:
		default:
			out.Others++
			continue
		}
		var typeID asn1.ObjectIdentifier
		var value cryptobyte.String
		if !gn.ReadASN1ObjectIdentifier(&typeID) || !gn.ReadASN1(&value, tagOtherNameValue) || !gn.Empty() {
			return malformed("bad otherName")
		}
		if !typeID.Equal(oidHardwareModuleName) {
			out.Others++
			continue
		}
		h, ok := readHardwareModuleName(&value)
		if !ok || !value.Empty() {
			return malformed("bad hardwareModuleName")
		}
		if err := h.Validate(); err != nil {
			return SubjectAltName{}, err
		}
		out.HardwareModules = append(out.HardwareModules, h)
	}
	return out, nil
}
