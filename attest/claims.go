package attest

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/ztmkit/ztm/internal/detcbor"
)

// Registered claim keys (CWT) of the claims [Claims] defines. Reference:
// RFC 8392 §3.1.4–6 (exp, nbf, iat), RFC 9711 §4 and §10 (the EAT claims).
const (
	KeyExpiry    int64 = 4
	KeyNotBefore int64 = 5
	KeyIssuedAt  int64 = 6
	// KeyConfirmation (8, cnf) is declared in cnf.go.
	KeyNonce        int64 = 10
	KeyUEID         int64 = 256
	KeyOEMID        int64 = 258
	KeyHWModel      int64 = 259
	KeyHWVersion    int64 = 260
	KeyOEMBoot      int64 = 262
	KeyDebugStatus  int64 = 263
	KeyProfile      int64 = 265
	KeySubmods      int64 = 266
	KeySWName       int64 = 270
	KeySWVersion    int64 = 271
	KeyMeasurements int64 = 273
)

// MeasurementContentFormat is the CoAP content-format number ztm uses in the
// measurements claim for its own measurement form (see [Measurement]). It
// lies in the experimental range of the CoAP Content-Formats registry
// (65000–65535, RFC 7252 §12.3), as no registered format describes a bare
// named digest.
const MeasurementContentFormat = 65090

// maxSubmodDepth bounds the nesting of submodules.
const maxSubmodDepth = 4

// DebugStatus is the EAT dbgstat claim. Reference: RFC 9711 §4.2.9.
type DebugStatus int

// The dbgstat values, in increasing order of lock-down.
const (
	DebugEnabled                     DebugStatus = 0
	DebugDisabled                    DebugStatus = 1
	DebugDisabledSinceBoot           DebugStatus = 2
	DebugDisabledPermanently         DebugStatus = 3
	DebugDisabledFullyAndPermanently DebugStatus = 4
)

// Valid reports whether d is one of the five values RFC 9711 defines.
func (d DebugStatus) Valid() bool { return d >= DebugEnabled && d <= DebugDisabledFullyAndPermanently }

// String returns the RFC 9711 name of d ("enabled", "disabled", …).
func (d DebugStatus) String() string {
	switch d {
	case DebugEnabled:
		return "enabled"
	case DebugDisabled:
		return "disabled"
	case DebugDisabledSinceBoot:
		return "disabled-since-boot"
	case DebugDisabledPermanently:
		return "disabled-permanently"
	case DebugDisabledFullyAndPermanently:
		return "disabled-fully-and-permanently"
	}
	return fmt.Sprintf("DebugStatus(%d)", int(d))
}

// parseDebugStatusJSON reads dbgstat in its JSON form, the names of RFC
// 9711 §4.2.9 ("disabled-since-boot", …); the integer form is CBOR's only
// (debug-status-type = JC<debug-status-json, debug-status-cbor>, §7.2.1).
func parseDebugStatusJSON(v []byte) (DebugStatus, error) {
	s, err := jsonString(v)
	if err != nil {
		return 0, errors.New(`dbgstat: want one of the RFC 9711 JSON names ("enabled", "disabled", "disabled-since-boot", "disabled-permanently", "disabled-fully-and-permanently")`)
	}
	for d := DebugEnabled; d <= DebugDisabledFullyAndPermanently; d++ {
		if s == d.String() {
			return d, nil
		}
	}
	return 0, fmt.Errorf("dbgstat: unknown value %.40q", s)
}

// Measurement is one named digest of a component (bootloader, firmware,
// application image). ztm carries it in the measurements claim (RFC 9711
// §4.2.16) as the pair [MeasurementContentFormat, bstr .cbor ztm-measurement]
// where
//
//	ztm-measurement = [ name: tstr, digest: [ alg: int, value: bstr ] ]
//
// The digest is a SUIT-style [COSE hash algorithm, bytes] pair (RFC 9054:
// SHA-256 is -16, SHA-384 -43, SHA-512 -44). In the JWT form the bstr is
// base64url without padding (RFC 9711 §7.2.2).
type Measurement struct {
	// Name names the measured component, e.g. "bootloader".
	Name string
	// Alg is the COSE algorithm of the digest, e.g. -16 for SHA-256.
	Alg int64
	// Digest is the digest value.
	Digest []byte
}

// RawMeasurement is an entry of the measurements claim in a content format
// other than [MeasurementContentFormat] (a CoSWID, for instance). It is kept
// as received; appraisal does not read it.
type RawMeasurement struct {
	// ContentType is the entry's CoAP content-format number.
	ContentType uint16
	// Value is the entry's content, as the bytes received.
	Value []byte
}

// Claims is an EAT claims set (RFC 9711) as ztm reads and writes it: in a
// CWT with the registered integer keys ([KeyNonce], [KeyUEID], …), in a JWT
// with the registered names ("eat_nonce", "ueid", …). A zero field is an
// absent claim. Claims is a plain value; it is not safe for concurrent
// mutation.
type Claims struct {
	// Nonce is eat_nonce (10): the verifier's challenge, 8 to 64 bytes.
	Nonce []byte
	// UEID is ueid (256): the device's universal entity ID, 7 to 33
	// bytes, the first being its type (1 RAND, 2 EUI-64, 3 IMEI).
	UEID []byte
	// OEMID is oemid (258): a 16-byte random ID or a 3-byte IEEE OUI.
	// (The integer form, an IANA PEN, is not supported.)
	OEMID []byte
	// HWModel is hwmodel (259): 1 to 32 bytes naming the model.
	HWModel []byte
	// HWVersion is the version string of hwversion (260).
	HWVersion string
	// HWVersionScheme is the optional version scheme of hwversion
	// (CoSWID version-scheme; 0 when absent).
	HWVersionScheme int64
	// SecureBoot is oemboot (262, RFC 9711 §4.2.8): true when the boot was
	// authorized by the OEM (secure boot); nil when absent.
	SecureBoot *bool
	// DebugStatus is dbgstat (263); nil when absent.
	DebugStatus *DebugStatus
	// SWName is swname (270).
	SWName string
	// SWVersion is the version string of swversion (271).
	SWVersion string
	// SWVersionScheme is the optional version scheme of swversion (0
	// when absent).
	SWVersionScheme int64
	// Measurements is the ztm-form part of measurements (273).
	Measurements []Measurement
	// OtherMeasurements are the other entries of measurements (273).
	OtherMeasurements []RawMeasurement
	// Submods is submods (266): the claims sets of the device's
	// submodules, by name. Only claims-set submodules are supported, not
	// nested tokens or detached digests.
	Submods map[string]*Claims
	// IssuedAt is iat (6), in whole seconds; zero when absent.
	IssuedAt time.Time
	// Expiry is exp (4), in whole seconds; zero when absent. A
	// [Verifier] refuses evidence from its exp on (RFC 7519 §4.1.4).
	Expiry time.Time
	// NotBefore is nbf (5), in whole seconds; zero when absent. A
	// [Verifier] refuses evidence before its nbf (RFC 7519 §4.1.5).
	NotBefore time.Time
	// Profile is eat_profile (265), as a URI.
	Profile string
	// Confirmation is cnf (8; RFC 8747, RFC 7800): the key the device
	// generated and holds, which a certificate request asks a
	// certificate for; nil when absent.
	Confirmation *Confirmation
	// Extensions are the claims of a CWT that ztm does not define, by
	// integer key, as the encoded CBOR received (or to be sent).
	Extensions map[int64]cbor.RawMessage
	// JSONExtensions are the claims of a JWT that ztm does not define,
	// by name, as the JSON received (or to be sent).
	JSONExtensions map[string]json.RawMessage
}

// BoolPtr returns a pointer to b, for [Claims.SecureBoot].
func BoolPtr(b bool) *bool { return &b }

// DebugPtr returns a pointer to d, for [Claims.DebugStatus].
func DebugPtr(d DebugStatus) *DebugStatus { return &d }

type cborMeasurementDigest struct {
	_     struct{} `cbor:",toarray"`
	Alg   int64
	Value []byte
}

type cborMeasurement struct {
	_      struct{} `cbor:",toarray"`
	Name   string
	Digest cborMeasurementDigest
}

// validate checks the shape of claims that ztm reads, at every level.
func (c *Claims) validate(depth int) error {
	if depth > maxSubmodDepth {
		return fmt.Errorf("submodules nested deeper than %d", maxSubmodDepth)
	}
	if c.Nonce != nil && (len(c.Nonce) < 8 || len(c.Nonce) > 64) {
		return fmt.Errorf("eat_nonce of %d bytes (want 8 to 64)", len(c.Nonce))
	}
	if c.UEID != nil && (len(c.UEID) < 7 || len(c.UEID) > 33) {
		return fmt.Errorf("ueid of %d bytes (want 7 to 33)", len(c.UEID))
	}
	if c.OEMID != nil && len(c.OEMID) != 3 && len(c.OEMID) != 16 {
		return fmt.Errorf("oemid of %d bytes (want 3 or 16)", len(c.OEMID))
	}
	if c.HWModel != nil && (len(c.HWModel) < 1 || len(c.HWModel) > 32) {
		return fmt.Errorf("hwmodel of %d bytes (want 1 to 32)", len(c.HWModel))
	}
	if c.DebugStatus != nil && !c.DebugStatus.Valid() {
		return fmt.Errorf("dbgstat %d out of range", int(*c.DebugStatus))
	}
	if c.Confirmation != nil {
		if err := c.Confirmation.validate(); err != nil {
			return err
		}
	}
	// Two digests for one component: appraisal would compare one and a
	// reader could take the other.
	names := make(map[string]struct{}, len(c.Measurements))
	for _, m := range c.Measurements {
		if m.Name == "" || len(m.Digest) == 0 {
			return errors.New("measurement without name or digest")
		}
		if _, dup := names[m.Name]; dup {
			return fmt.Errorf("measurement %q appears twice", m.Name)
		}
		names[m.Name] = struct{}{}
	}
	for name, s := range c.Submods {
		if s == nil {
			return fmt.Errorf("submodule %q is empty", name)
		}
		if err := s.validate(depth + 1); err != nil {
			return fmt.Errorf("submodule %q: %w", name, err)
		}
	}
	return nil
}

func version(v string, scheme int64) []any {
	if scheme != 0 {
		return []any{v, scheme}
	}
	return []any{v}
}

// MarshalCBOR encodes c as a deterministic CBOR map with integer keys, the
// payload of a CWT. It returns an error for claims that violate RFC 9711
// (a nonce, ueid, oemid or hwmodel of the wrong size, dbgstat out of range).
func (c *Claims) MarshalCBOR() ([]byte, error) {
	if err := c.validate(0); err != nil {
		return nil, fmt.Errorf("attest: %w", err)
	}
	m, err := c.cborMap()
	if err != nil {
		return nil, err
	}
	return detcbor.Marshal(m)
}

func (c *Claims) cborMap() (map[int64]any, error) {
	m := make(map[int64]any, 16)
	for k, v := range c.Extensions {
		if _, ok := knownKeys[k]; ok {
			return nil, fmt.Errorf("attest: extension claim %d collides with a defined claim", k)
		}
		m[k] = v
	}
	if c.Nonce != nil {
		m[KeyNonce] = c.Nonce
	}
	if c.UEID != nil {
		m[KeyUEID] = c.UEID
	}
	if c.OEMID != nil {
		m[KeyOEMID] = c.OEMID
	}
	if c.HWModel != nil {
		m[KeyHWModel] = c.HWModel
	}
	if c.HWVersion != "" {
		m[KeyHWVersion] = version(c.HWVersion, c.HWVersionScheme)
	}
	if c.SecureBoot != nil {
		m[KeyOEMBoot] = *c.SecureBoot
	}
	if c.DebugStatus != nil {
		m[KeyDebugStatus] = int64(*c.DebugStatus)
	}
	if c.SWName != "" {
		m[KeySWName] = c.SWName
	}
	if c.SWVersion != "" {
		m[KeySWVersion] = version(c.SWVersion, c.SWVersionScheme)
	}
	if len(c.Measurements)+len(c.OtherMeasurements) > 0 {
		ms := make([]any, 0, len(c.Measurements)+len(c.OtherMeasurements))
		for _, x := range c.Measurements {
			b, err := detcbor.Marshal(cborMeasurement{Name: x.Name, Digest: cborMeasurementDigest{Alg: x.Alg, Value: x.Digest}})
			if err != nil {
				return nil, err
			}
			ms = append(ms, []any{uint64(MeasurementContentFormat), b})
		}
		for _, x := range c.OtherMeasurements {
			ms = append(ms, []any{uint64(x.ContentType), x.Value})
		}
		m[KeyMeasurements] = ms
	}
	if len(c.Submods) > 0 {
		sm := make(map[string]any, len(c.Submods))
		for name, s := range c.Submods {
			sub, err := s.cborMap()
			if err != nil {
				return nil, err
			}
			sm[name] = sub
		}
		m[KeySubmods] = sm
	}
	if !c.IssuedAt.IsZero() {
		m[KeyIssuedAt] = c.IssuedAt.Unix()
	}
	if !c.Expiry.IsZero() {
		m[KeyExpiry] = c.Expiry.Unix()
	}
	if !c.NotBefore.IsZero() {
		m[KeyNotBefore] = c.NotBefore.Unix()
	}
	if c.Profile != "" {
		m[KeyProfile] = c.Profile
	}
	if c.Confirmation != nil {
		cnf, err := c.Confirmation.cborValue()
		if err != nil {
			return nil, err
		}
		m[KeyConfirmation] = cnf
	}
	return m, nil
}

var knownKeys = map[int64]struct{}{
	KeyExpiry: {}, KeyNotBefore: {}, KeyIssuedAt: {}, KeyNonce: {}, KeyUEID: {}, KeyOEMID: {}, KeyHWModel: {},
	KeyHWVersion: {}, KeyOEMBoot: {}, KeyDebugStatus: {}, KeyProfile: {},
	KeySubmods: {}, KeySWName: {}, KeySWVersion: {}, KeyMeasurements: {},
	KeyConfirmation: {},
}

// UnmarshalCBOR decodes a CBOR claims map strictly: duplicate keys,
// indefinite lengths, text keys, trailing data and claims of the wrong type
// are errors. It does not check signatures; use a [Verifier] for evidence.
func (c *Claims) UnmarshalCBOR(data []byte) error {
	var nc Claims
	if err := nc.decodeCBOR(data, 0); err != nil {
		return err
	}
	*c = nc
	return nil
}

// finish validates decoded claims and puts measurements in name order.
func (c *Claims) finish(depth int) error {
	if err := c.validate(depth); err != nil {
		return fmt.Errorf("attest: %w", err)
	}
	sortMeasurements(c.Measurements)
	return nil
}

func unixUTC(t int64) time.Time { return time.Unix(t, 0).UTC() }

// timeClaim returns the field of the time claim with CWT key k.
func (c *Claims) timeClaim(k int64) *time.Time {
	switch k {
	case KeyExpiry:
		return &c.Expiry
	case KeyNotBefore:
		return &c.NotBefore
	}
	return &c.IssuedAt
}

func sortMeasurements(ms []Measurement) {
	sort.SliceStable(ms, func(i, j int) bool { return ms[i].Name < ms[j].Name })
}

// JWT claim names of the claims [Claims] defines. Reference: RFC 7519
// §4.1.6, RFC 9711 §10.1.
var jsonNames = map[string]struct{}{
	"eat_nonce": {}, "ueid": {}, "oemid": {}, "hwmodel": {}, "hwversion": {},
	"oemboot": {}, "dbgstat": {}, "swname": {}, "swversion": {},
	"measurements": {}, "submods": {}, "iat": {}, "exp": {}, "nbf": {},
	"eat_profile": {}, "cnf": {},
}

// jsonTimeKeys maps the JWT names of the time claims to their CWT keys.
var jsonTimeKeys = map[string]int64{"iat": KeyIssuedAt, "exp": KeyExpiry, "nbf": KeyNotBefore}

// b64 is base64url without padding (RFC 7515 §2), decoding strictly:
// unused trailing bits must be zero, so that one value has one encoding
// (decodeB64 also refuses the line breaks the decoder would skip).
var b64 = base64.RawURLEncoding.Strict()

// decodeB64 decodes s as b64, refusing CR and LF.
func decodeB64(s string) ([]byte, error) {
	if strings.ContainsAny(s, "\r\n") {
		return nil, errors.New("line break in base64url")
	}
	return b64.DecodeString(s)
}

// MarshalJSON encodes c as a JWT claims set with the registered JWT claim
// names; byte strings are base64url without padding (RFC 9711 §7.2.2).
func (c *Claims) MarshalJSON() ([]byte, error) {
	if err := c.validate(0); err != nil {
		return nil, fmt.Errorf("attest: %w", err)
	}
	m, err := c.jsonMap()
	if err != nil {
		return nil, err
	}
	return json.Marshal(m)
}

func (c *Claims) jsonMap() (map[string]any, error) {
	m := make(map[string]any, 16)
	for k, v := range c.JSONExtensions {
		if _, ok := jsonNames[k]; ok {
			return nil, fmt.Errorf("attest: extension claim %q collides with a defined claim", k)
		}
		m[k] = v
	}
	if c.Nonce != nil {
		m["eat_nonce"] = b64.EncodeToString(c.Nonce)
	}
	if c.UEID != nil {
		m["ueid"] = b64.EncodeToString(c.UEID)
	}
	if c.OEMID != nil {
		m["oemid"] = b64.EncodeToString(c.OEMID)
	}
	if c.HWModel != nil {
		m["hwmodel"] = b64.EncodeToString(c.HWModel)
	}
	if c.HWVersion != "" {
		m["hwversion"] = version(c.HWVersion, c.HWVersionScheme)
	}
	if c.SecureBoot != nil {
		m["oemboot"] = *c.SecureBoot
	}
	if c.DebugStatus != nil {
		m["dbgstat"] = c.DebugStatus.String()
	}
	if c.SWName != "" {
		m["swname"] = c.SWName
	}
	if c.SWVersion != "" {
		m["swversion"] = version(c.SWVersion, c.SWVersionScheme)
	}
	if len(c.Measurements)+len(c.OtherMeasurements) > 0 {
		ms := make([]any, 0, len(c.Measurements)+len(c.OtherMeasurements))
		for _, x := range c.Measurements {
			b, err := detcbor.Marshal(cborMeasurement{Name: x.Name, Digest: cborMeasurementDigest{Alg: x.Alg, Value: x.Digest}})
			if err != nil {
				return nil, err
			}
			ms = append(ms, []any{MeasurementContentFormat, b64.EncodeToString(b)})
		}
		for _, x := range c.OtherMeasurements {
			ms = append(ms, []any{x.ContentType, b64.EncodeToString(x.Value)})
		}
		m["measurements"] = ms
	}
	if len(c.Submods) > 0 {
		sm := make(map[string]any, len(c.Submods))
		for name, s := range c.Submods {
			sub, err := s.jsonMap()
			if err != nil {
				return nil, err
			}
			sm[name] = sub
		}
		m["submods"] = sm
	}
	if !c.IssuedAt.IsZero() {
		m["iat"] = c.IssuedAt.Unix()
	}
	if !c.Expiry.IsZero() {
		m["exp"] = c.Expiry.Unix()
	}
	if !c.NotBefore.IsZero() {
		m["nbf"] = c.NotBefore.Unix()
	}
	if c.Profile != "" {
		m["eat_profile"] = c.Profile
	}
	if c.Confirmation != nil {
		cnf, err := c.Confirmation.jsonValue()
		if err != nil {
			return nil, err
		}
		m["cnf"] = cnf
	}
	return m, nil
}

// UnmarshalJSON decodes a JWT claims set. Duplicate member names, byte
// claims that are not base64url, and claims of the wrong type are errors.
func (c *Claims) UnmarshalJSON(data []byte) error {
	var nc Claims
	if err := nc.decodeJSON(data, 0); err != nil {
		return err
	}
	*c = nc
	return nil
}

func unmarshalB64(v json.RawMessage, out *[]byte) error {
	s, err := jsonString(v)
	if err != nil {
		return err
	}
	b, err := decodeB64(s)
	if err != nil {
		return fmt.Errorf("not base64url: %w", err)
	}
	*out = b
	return nil
}

func unmarshalJSONVersion(v json.RawMessage) (string, int64, error) {
	arr, err := scanArray(v)
	if err != nil {
		return "", 0, err
	}
	if len(arr) < 1 || len(arr) > 2 {
		return "", 0, errors.New("version: want [version, ?scheme]")
	}
	var scheme int64
	s, err := jsonString(arr[0])
	if err != nil {
		return "", 0, err
	}
	if s == "" {
		return "", 0, errors.New("version: empty")
	}
	if len(arr) == 2 {
		if scheme, err = jsonInt(arr[1]); err != nil {
			return "", 0, err
		}
	}
	return s, scheme, nil
}

func (c *Claims) decodeJSONMeasurements(v []byte) error {
	entries, err := scanArray(v)
	if err != nil {
		return err
	}
	for _, e := range entries {
		pair, err := scanArray(e)
		if err != nil {
			return err
		}
		if len(pair) != 2 {
			return errors.New("measurement: want [content-type, content]")
		}
		ct, err := jsonInt(pair[0])
		if err != nil {
			return err
		}
		if ct < 0 || ct > 65535 {
			return fmt.Errorf("measurement: content type %d", ct)
		}
		var val []byte
		if err := unmarshalB64(pair[1], &val); err != nil {
			return err
		}
		if err := c.addMeasurement(uint16(ct), val); err != nil {
			return err
		}
	}
	return nil
}

func (c *Claims) decodeJSON(data []byte, depth int) error {
	if depth > maxSubmodDepth {
		return fmt.Errorf("attest: submodules nested deeper than %d", maxSubmodDepth)
	}
	members, err := scanObject(data)
	if err != nil {
		return fmt.Errorf("attest: claims: %w", err)
	}
	for _, m := range members {
		v := json.RawMessage(m.value)
		var err error
		switch string(m.name) {
		case "eat_nonce":
			err = unmarshalB64(v, &c.Nonce)
		case "ueid":
			err = unmarshalB64(v, &c.UEID)
		case "oemid":
			err = unmarshalB64(v, &c.OEMID)
		case "hwmodel":
			err = unmarshalB64(v, &c.HWModel)
		case "hwversion":
			c.HWVersion, c.HWVersionScheme, err = unmarshalJSONVersion(v)
		case "oemboot":
			var b bool
			if b, err = jsonBool(v); err == nil {
				c.SecureBoot = &b
			}
		case "dbgstat":
			var ds DebugStatus
			if ds, err = parseDebugStatusJSON(v); err == nil {
				c.DebugStatus = &ds
			}
		case "swname":
			c.SWName, err = jsonString(v)
		case "swversion":
			c.SWVersion, c.SWVersionScheme, err = unmarshalJSONVersion(v)
		case "measurements":
			err = c.decodeJSONMeasurements(v)
		case "submods":
			var sm []jsonMember
			if sm, err = scanObject(v); err == nil {
				c.Submods = make(map[string]*Claims, len(sm))
				for _, sub := range sm {
					s := new(Claims)
					if err = s.decodeJSON(sub.value, depth+1); err != nil {
						err = fmt.Errorf("submodule %q: %w", sub.name, err)
						break
					}
					c.Submods[string(sub.name)] = s
				}
			}
		case "iat", "exp", "nbf":
			var t int64
			if t, err = jsonNumericDate(v); err == nil {
				*c.timeClaim(jsonTimeKeys[string(m.name)]) = unixUTC(t)
			}
		case "eat_profile":
			c.Profile, err = jsonString(v)
		case "cnf":
			c.Confirmation, err = decodeConfirmationJSON(v)
		default:
			if !json.Valid(v) {
				err = errors.New("invalid JSON")
				break
			}
			if c.JSONExtensions == nil {
				c.JSONExtensions = make(map[string]json.RawMessage)
			}
			c.JSONExtensions[string(m.name)] = v
		}
		if err != nil {
			return fmt.Errorf("attest: claim %q: %w", m.name, err)
		}
	}
	if err := c.validate(depth); err != nil {
		return fmt.Errorf("attest: %w", err)
	}
	sortMeasurements(c.Measurements)
	return nil
}
