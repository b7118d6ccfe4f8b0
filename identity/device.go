package identity

import (
	"bytes"
	"encoding/asn1"
	"strconv"
	"unicode"
	"unicode/utf8"
)

// Bounds on device information, from the X.520 upper bounds that RFC 5280
// Appendix A.1 lists (ub-serial-number, ub-common-name,
// ub-organization-name: 64) and RFC 9711 §4.2.4 (hwmodel: 1 to 32 bytes).
const (
	// MaxSerialNumberLen is the longest subject serialNumber, in
	// characters.
	MaxSerialNumberLen = 64
	// MaxNameLen is the longest CommonName or Organization, in characters.
	MaxNameLen = 64
	// MaxHardwareSerialLen is the longest [HardwareModuleName.SerialNumber]
	// ztm writes or accepts, in bytes. RFC 4108 sets no bound; 128 bytes
	// holds every serial number format in use with room to spare.
	MaxHardwareSerialLen = 128
	// MaxHardwareModelLen is the longest [DeviceInfo.HardwareModel].
	MaxHardwareModelLen = 32
	// MaxHardwareVersionLen is the longest [DeviceInfo.HardwareVersion].
	MaxHardwareVersionLen = 64
)

// HardwareModuleName names a hardware module by its type and serial
// number, the otherName that IEEE 802.1AR puts in an IDevID certificate's
// subject alternative name. Reference: RFC 4108 §5:
//
//	HardwareModuleName ::= SEQUENCE {
//	    hwType OBJECT IDENTIFIER,
//	    hwSerialNum OCTET STRING }
//
// The zero value is the absent name. Use [HardwareModuleNameExtension] to
// put one in a certificate and [HardwareModuleNameFromExtensions] to read
// it back.
type HardwareModuleName struct {
	// Type identifies the kind of module: an OID the manufacturer assigns
	// to the hardware model, usually under its Private Enterprise Number
	// (1.3.6.1.4.1.<PEN>.…).
	Type asn1.ObjectIdentifier
	// SerialNumber is the module's serial number, 1 to
	// [MaxHardwareSerialLen] bytes.
	SerialNumber []byte
}

// IsZero reports whether h is the absent name: no type and no serial
// number.
func (h HardwareModuleName) IsZero() bool { return len(h.Type) == 0 && len(h.SerialNumber) == 0 }

// Equal reports whether h and o name the same module.
func (h HardwareModuleName) Equal(o HardwareModuleName) bool {
	return h.Type.Equal(o.Type) && bytes.Equal(h.SerialNumber, o.SerialNumber)
}

// Validate checks that h can be encoded: a well-formed OID (at least two
// arcs, the first 0, 1 or 2, the second below 40 unless the first is 2, no
// negative arc) and a serial number of 1 to [MaxHardwareSerialLen] bytes.
// The error is a [*DeviceError] wrapping [ErrInvalidDevice].
func (h HardwareModuleName) Validate() error {
	return h.validate("HardwareModule")
}

func (h HardwareModuleName) validate(field string) error {
	if reason := oidProblem(h.Type); reason != "" {
		return &DeviceError{Field: field + ".Type", Reason: reason}
	}
	switch n := len(h.SerialNumber); {
	case n == 0:
		return &DeviceError{Field: field + ".SerialNumber", Reason: "empty"}
	case n > MaxHardwareSerialLen:
		return &DeviceError{Field: field + ".SerialNumber", Reason: strconv.Itoa(n) + " bytes, more than " + strconv.Itoa(MaxHardwareSerialLen)}
	}
	return nil
}

func oidProblem(oid asn1.ObjectIdentifier) string {
	if len(oid) < 2 {
		return "an object identifier has at least two arcs"
	}
	if oid[0] < 0 || oid[0] > 2 {
		return "the first arc of an object identifier is 0, 1 or 2"
	}
	if oid[0] < 2 && (oid[1] < 0 || oid[1] >= 40) {
		return "the second arc is below 40 when the first is 0 or 1"
	}
	for _, a := range oid {
		if a < 0 {
			return "negative arc"
		}
	}
	return ""
}

// DeviceInfo describes one device: what goes into its IDevID certificate
// request and what its attestation evidence says about it.
//
// [Create] and [CreateCSR] put SerialNumber, CommonName and Organization in
// the request's subject and HardwareModule in its subject alternative name.
// UEID, OEMID, HardwareModel and HardwareVersion have no standard place in
// an X.509 request: they are the EAT claims ueid, oemid, hwmodel and
// hwversion (RFC 9711) that the device's evidence carries.
//
// # The certificate-to-evidence rule
//
// The UEID is the one device identifier the attestation key signs, and the
// hardwareModuleName's serial number the one IEEE 802.1AR puts in the
// certificate: ztm ties them together. HardwareModule.SerialNumber must be
// exactly UEID.Bytes(); the CA refuses a request whose hardwareModuleName
// is not the evidence's UEID (package ca/enroll, BindUEIDToHardwareModule),
// and a station (package ztm) checks it before it asks for a nonce
// ([DeviceInfo.CheckBinding]). [DeviceInfoFromUEID] builds device
// information that keeps the rule. OEMID and HardwareModel, when set, must
// be what the evidence says ([DeviceInfo.CheckClaims]).
type DeviceInfo struct {
	// UEID is the device's universal entity ID, the ueid claim of its
	// evidence. Optional for [Create] and [CreateCSR]; required to
	// provision the device, whose HardwareModule.SerialNumber must then be
	// its bytes (see the certificate-to-evidence rule above).
	UEID UEID
	// SerialNumber is the device serial number, the subject serialNumber
	// attribute (OID 2.5.4.5) of the IDevID: 1 to [MaxSerialNumberLen]
	// characters of the X.520 PrintableString set (letters, digits, space
	// and ' ( ) + , - . / : = ?). Required.
	SerialNumber string
	// HardwareModule is the hardwareModuleName of the IDevID's subject
	// alternative name. Optional for [Create] and [CreateCSR] (IEEE 802.1AR
	// recommends it); required to provision the device, with the UEID's
	// bytes as its SerialNumber.
	HardwareModule HardwareModuleName
	// OEMID identifies the manufacturer. Optional; if set, it must be the
	// oemid claim of the device's evidence.
	OEMID OEMID
	// HardwareModel identifies the model, the EAT hwmodel claim: 1 to
	// [MaxHardwareModelLen] bytes. Optional; if set, it must be the
	// device's evidence's hwmodel.
	HardwareModel []byte
	// HardwareVersion is the hardware version, for example "1.2" or
	// "rev C": printable UTF-8, at most [MaxHardwareVersionLen] bytes.
	// Optional.
	HardwareVersion string
	// CommonName is the subject commonName, at most [MaxNameLen]
	// characters. Optional.
	CommonName string
	// Organization is the subject organizationName, at most [MaxNameLen]
	// characters. Optional.
	Organization string
}

// Validate checks every field against the rules in its documentation. The
// error is a [*DeviceError] naming the first bad field; it wraps
// [ErrInvalidDevice].
func (d DeviceInfo) Validate() error {
	if err := validateSerialNumber(d.SerialNumber); err != nil {
		return err
	}
	if !d.HardwareModule.IsZero() {
		if err := d.HardwareModule.Validate(); err != nil {
			return err
		}
	}
	if d.HardwareModel != nil && (len(d.HardwareModel) == 0 || len(d.HardwareModel) > MaxHardwareModelLen) {
		return &DeviceError{Field: "HardwareModel", Reason: "1 to " + strconv.Itoa(MaxHardwareModelLen) + " bytes, not " + strconv.Itoa(len(d.HardwareModel))}
	}
	if err := validateText("HardwareVersion", d.HardwareVersion, MaxHardwareVersionLen); err != nil {
		return err
	}
	if err := validateText("CommonName", d.CommonName, MaxNameLen); err != nil {
		return err
	}
	return validateText("Organization", d.Organization, MaxNameLen)
}

func validateSerialNumber(s string) error {
	fail := func(reason string) error { return &DeviceError{Field: "SerialNumber", Reason: reason} }
	switch {
	case s == "":
		return fail("empty (an IDevID subject carries the device serial number)")
	case len(s) > MaxSerialNumberLen:
		return fail(strconv.Itoa(len(s)) + " characters, more than " + strconv.Itoa(MaxSerialNumberLen))
	}
	for i := 0; i < len(s); i++ {
		if !isPrintableStringChar(s[i]) {
			return fail("character " + strconv.Quote(s[i:i+1]) + " at offset " + strconv.Itoa(i) + " is not in the PrintableString set")
		}
	}
	return nil
}

// isPrintableStringChar reports whether c belongs to the ASN.1
// PrintableString character set (X.680 §41.4).
func isPrintableStringChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	switch c {
	case ' ', '\'', '(', ')', '+', ',', '-', '.', '/', ':', '=', '?':
		return true
	}
	return false
}

// validateText checks an optional free-text field: valid UTF-8, no control
// characters, at most max characters.
func validateText(field, s string, max int) error {
	if !utf8.ValidString(s) {
		return &DeviceError{Field: field, Reason: "not valid UTF-8"}
	}
	if n := utf8.RuneCountInString(s); n > max {
		return &DeviceError{Field: field, Reason: strconv.Itoa(n) + " characters, more than " + strconv.Itoa(max)}
	}
	for i, r := range s {
		if unicode.IsControl(r) {
			return &DeviceError{Field: field, Reason: "control character at offset " + strconv.Itoa(i)}
		}
	}
	return nil
}
