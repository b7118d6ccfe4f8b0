package pkcs11

import (
	"crypto/rand"
	"fmt"
	"io"
	"net/url"
	"os"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/ztmkit/ztm/identity/keystore"
)

// Scheme is the URI scheme this package registers with [keystore.Open].
const Scheme = "pkcs11"

// DefaultMaxSessions is the number of PKCS#11 sessions a store opens at
// most when [Config.MaxSessions] is zero.
const DefaultMaxSessions = 16

// Config says which token a [Store] opens and how. A Config is usually made
// by [ParseURI]; the zero value with ModulePath, a token selector and, for
// tokens that need one, a PIN works.
//
// Config holds a PIN: its String and GoString methods redact it, so
// printing a Config with the fmt verbs %v, %+v, %s and %#v never shows it.
type Config struct {
	// ModulePath is the file name of the PKCS#11 module (a shared
	// library), such as "/usr/lib/softhsm/libsofthsm2.so". Required.
	// URI: module-path.
	ModulePath string

	// The token is the one whose token information matches every
	// non-empty selector below; at least one is required, and exactly one
	// token must match. Slot ids change between runs on some modules
	// (SoftHSM among them): prefer TokenLabel or TokenSerial.

	// TokenLabel is the token's label (CK_TOKEN_INFO.label). URI: token.
	TokenLabel string
	// TokenSerial is the token's serial number. URI: serial.
	TokenSerial string
	// TokenManufacturer is the token's manufacturer id. URI: manufacturer.
	TokenManufacturer string
	// TokenModel is the token's model. URI: model.
	TokenModel string
	// SlotID is the slot the token is in, if HasSlotID. URI: slot-id.
	SlotID uint
	// HasSlotID says that SlotID selects the slot.
	HasSlotID bool

	// Object is the CKA_LABEL of one key the URI names (URI: object), and
	// ID its CKA_ID (URI: id, percent-encoded bytes), for callers that
	// keep one URI per key, such as a station's signing key: the store is
	// not limited to that key, and [Store.Get] opens it when given the
	// same URI. Object may be any UTF-8 label, spaces included, as keys
	// made by other tools have; see [Store.Get].
	Object string
	ID     []byte

	// PIN is the user PIN (URI: pin-value). Leave it and PINSource empty
	// for tokens that need no login.
	//
	// WARNING: a PIN in a URI ends up in shell histories, process lists
	// and configuration files. Prefer PINSource.
	PIN string
	// PINSource is a file that holds the user PIN (URI: pin-source, as
	// "file:/path" or an absolute path). [Open] reads it; one trailing
	// newline is removed. Used only if PIN is empty.
	PINSource string

	// MaxSessions bounds the number of sessions, and so concurrent
	// operations, the store opens on the token. If zero,
	// [DefaultMaxSessions] is used.
	MaxSessions int

	// Rand is the source of the random CKA_ID of the keys the store
	// creates. If nil, crypto/rand.Reader is used. The key material itself
	// is always generated inside the token.
	Rand io.Reader
}

// pathAttrs are the RFC 7512 path attributes ParseURI accepts.
var pathAttrs = map[string]bool{
	"token": true, "serial": true, "manufacturer": true, "model": true,
	"slot-id": true, "object": true, "id": true, "type": true,
}

// refusedPathAttrs are RFC 7512 path attributes that name something other
// than a token, with the reason ParseURI gives.
var refusedPathAttrs = map[string]string{
	"library-manufacturer": "selecting the module by its information is not supported; use module-path",
	"library-description":  "selecting the module by its information is not supported; use module-path",
	"library-version":      "selecting the module by its information is not supported; use module-path",
	"slot-manufacturer":    "not supported; select the token with token=, serial= or slot-id=",
	"slot-description":     "not supported; select the token with token=, serial= or slot-id=",
}

// ParseURI parses a PKCS#11 URI (RFC 7512) that names a token:
//
//	pkcs11:token=line1;object=station?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/etc/line1/pin
//
// Path attributes (separated by ';'): token, serial, manufacturer, model,
// slot-id (decimal), object and id (a key's CKA_LABEL and CKA_ID, see
// [Config.Object]) and type (only "private"). Query attributes (separated by '&'): module-path
// (required), pin-source, pin-value, and max-sessions (a ztm extension).
// Values are percent-decoded; a '+' is a literal plus, not a space.
// Attributes starting with "x-" are vendor extensions and are ignored, as
// RFC 7512 §2.3 allows. Each attribute may appear once.
//
// ParseURI reads no file; [Open] reads pin-source. Errors are
// [*keystore.URIError] values whose Part names the wrong attribute and whose
// URI has the PIN removed.
//
// Reference: RFC 7512 §2.3.
func ParseURI(uri string) (*Config, error) { return parseURI(uri, true) }

// parseURI is ParseURI; store says that the URI must name a token and
// its module, as a store URI does (a key URI given to Get need not).
func parseURI(uri string, store bool) (*Config, error) {
	fail := func(part, reason string, err error) (*Config, error) {
		return nil, &keystore.URIError{URI: redact(uri), Part: part, Reason: reason, Err: err}
	}
	scheme, rest, ok := strings.Cut(uri, ":")
	if !ok || !strings.EqualFold(scheme, Scheme) {
		return fail("scheme", `want "pkcs11:"`, nil)
	}
	if strings.Contains(rest, "#") {
		return fail("fragment", "a PKCS#11 URI has no fragment", nil)
	}
	path, query, _ := strings.Cut(rest, "?")
	cfg := &Config{}
	seen := map[string]bool{}
	if path != "" {
		for _, attr := range strings.Split(path, ";") {
			name, value, err := splitAttr(attr)
			if err != nil {
				return fail(name, err.Error(), nil)
			}
			if seen[name] {
				return fail(name, "appears more than once", nil)
			}
			seen[name] = true
			if strings.HasPrefix(name, "x-") {
				continue
			}
			if reason, refused := refusedPathAttrs[name]; refused {
				return fail(name, reason, nil)
			}
			if !pathAttrs[name] {
				if queryAttrs[name] {
					return fail(name, "is a query attribute: put it after '?'", nil)
				}
				return fail(name, "unknown path attribute", nil)
			}
			switch name {
			case "token":
				cfg.TokenLabel = value
			case "serial":
				cfg.TokenSerial = value
			case "manufacturer":
				cfg.TokenManufacturer = value
			case "model":
				cfg.TokenModel = value
			case "slot-id":
				id, err := strconv.ParseUint(value, 10, 64)
				if err != nil || uint64(uint(id)) != id {
					return fail(name, "not a decimal slot number", nil)
				}
				cfg.SlotID, cfg.HasSlotID = uint(id), true
			case "object":
				if err := validObject(value); err != nil {
					return fail(name, "not a usable CKA_LABEL", err)
				}
				cfg.Object = value
			case "id":
				if value == "" {
					return fail(name, "empty", nil)
				}
				cfg.ID = []byte(value)
			case "type":
				if value != "private" {
					return fail(name, `a key store URI names private keys: only "private" is accepted`, nil)
				}
			}
		}
	}
	if query != "" {
		for _, attr := range strings.Split(query, "&") {
			name, value, err := splitAttr(attr)
			if err != nil {
				return fail(name, err.Error(), nil)
			}
			if seen[name] {
				return fail(name, "appears more than once", nil)
			}
			seen[name] = true
			if strings.HasPrefix(name, "x-") {
				continue
			}
			if !queryAttrs[name] {
				if pathAttrs[name] || refusedPathAttrs[name] != "" {
					return fail(name, "is a path attribute: put it before '?', separated by ';'", nil)
				}
				return fail(name, "unknown query attribute", nil)
			}
			switch name {
			case "module-path":
				if value == "" {
					return fail(name, "empty", nil)
				}
				cfg.ModulePath = value
			case "module-name":
				return fail(name, "not supported; give the module's file name with module-path", nil)
			case "pin-value":
				cfg.PIN = value
			case "pin-source":
				if _, err := pinFile(value); err != nil {
					return fail(name, err.Error(), nil)
				}
				cfg.PINSource = value
			case "max-sessions":
				n, err := strconv.Atoi(value)
				if err != nil || n < 1 || n > 1024 {
					return fail(name, "want a number of sessions from 1 to 1024", nil)
				}
				cfg.MaxSessions = n
			}
		}
	}
	if seen["pin-value"] && seen["pin-source"] {
		return fail("pin-source", "give pin-value or pin-source, not both", nil)
	}
	if !store {
		return cfg, nil
	}
	if cfg.ModulePath == "" {
		return fail("module-path", "required: the file name of the PKCS#11 module, e.g. module-path=/usr/lib/softhsm/libsofthsm2.so", nil)
	}
	if !cfg.selects() {
		return fail("token", "no token selected: give token=, serial= or slot-id=", nil)
	}
	return cfg, nil
}

// redact returns uri with the value of every pin-value attribute replaced
// by "REDACTED", as [keystore.RedactURI] does, but splitting at every
// separator a malformed URI may use (';', '?', '&', ':' and '#'), so that
// no PIN reaches an error message whatever the URI looks like.
func redact(uri string) string {
	var b strings.Builder
	for len(uri) > 0 {
		i := strings.IndexAny(uri, ";?&:#")
		tok := uri
		if i >= 0 {
			tok = uri[:i]
		}
		name, _, hasValue := strings.Cut(tok, "=")
		n, err := url.PathUnescape(name)
		if err != nil {
			n = name
		}
		if hasValue && strings.EqualFold(n, "pin-value") {
			tok = name + "=REDACTED"
		}
		b.WriteString(tok)
		if i < 0 {
			break
		}
		b.WriteByte(uri[i])
		uri = uri[i+1:]
	}
	return keystore.RedactURI(b.String())
}

var queryAttrs = map[string]bool{
	"module-path": true, "module-name": true, "pin-value": true, "pin-source": true, "max-sessions": true,
}

// splitAttr splits name=value and percent-decodes both. On error the name
// is as far as it could be decoded, for the error's Part.
func splitAttr(attr string) (name, value string, err error) {
	rawName, rawValue, ok := strings.Cut(attr, "=")
	name, nerr := url.PathUnescape(rawName)
	if nerr != nil {
		return rawName, "", fmt.Errorf("bad percent-encoding in attribute name")
	}
	name = strings.ToLower(name)
	if name == "" {
		if attr == "" {
			return "attribute", "", fmt.Errorf("empty attribute (stray separator)")
		}
		return "attribute", "", fmt.Errorf("attribute without a name")
	}
	if !ok {
		return name, "", fmt.Errorf("missing '=' and value")
	}
	value, verr := url.PathUnescape(rawValue)
	if verr != nil {
		return name, "", fmt.Errorf("bad percent-encoding in value")
	}
	return name, value, nil
}

// pinFile returns the file name a pin-source names: a "file:" URI or an
// absolute path.
func pinFile(src string) (string, error) {
	if rest, ok := strings.CutPrefix(src, "file:"); ok {
		if strings.HasPrefix(rest, "//") {
			u, err := url.Parse(src)
			if err != nil || (u.Host != "" && u.Host != "localhost") {
				return "", fmt.Errorf("only local file: URIs are supported")
			}
			rest = u.Path
		}
		if !strings.HasPrefix(rest, "/") {
			return "", fmt.Errorf("file: URI with a relative path")
		}
		return rest, nil
	}
	if strings.HasPrefix(src, "/") {
		return src, nil
	}
	return "", fmt.Errorf(`want "file:/path/to/pin" or an absolute path`)
}

// check returns a [*keystore.URIError] for a Config that [Open] cannot
// use.
func (c *Config) check() error {
	if c.ModulePath == "" {
		return &keystore.URIError{URI: c.String(), Part: "module-path", Reason: "required"}
	}
	if !c.selects() {
		return &keystore.URIError{URI: c.String(), Part: "token", Reason: "no token selected: give token=, serial= or slot-id="}
	}
	if c.Object != "" {
		if err := validObject(c.Object); err != nil {
			return &keystore.URIError{URI: c.String(), Part: "object", Reason: "not a usable CKA_LABEL", Err: err}
		}
	}
	if c.MaxSessions < 0 {
		return &keystore.URIError{URI: c.String(), Part: "max-sessions", Reason: "negative"}
	}
	return nil
}

// selects reports whether c has at least one token selector.
func (c *Config) selects() bool {
	return c.TokenLabel != "" || c.TokenSerial != "" || c.TokenManufacturer != "" || c.TokenModel != "" || c.HasSlotID
}

// pin returns the PIN: PIN, or the content of PINSource.
func (c *Config) pin() (string, error) {
	if c.PIN != "" || c.PINSource == "" {
		return c.PIN, nil
	}
	name, err := pinFile(c.PINSource)
	if err != nil {
		return "", &keystore.URIError{URI: c.String(), Part: "pin-source", Reason: err.Error()}
	}
	b, err := os.ReadFile(name)
	if err != nil {
		return "", fmt.Errorf("pkcs11: failed to read the PIN from pin-source: %w", err)
	}
	s := string(b)
	s = strings.TrimSuffix(s, "\n")
	s = strings.TrimSuffix(s, "\r")
	return s, nil
}

func (c *Config) rand() io.Reader {
	if c.Rand != nil {
		return c.Rand
	}
	return rand.Reader
}

// String returns c as a PKCS#11 URI that [ParseURI] accepts, with a
// pin-value written as "REDACTED": the URI never carries the PIN. Every
// other field round-trips.
func (c Config) String() string {
	var path, query []string
	add := func(list *[]string, name, value string) {
		*list = append(*list, name+"="+escapeValue(value))
	}
	if c.TokenLabel != "" {
		add(&path, "token", c.TokenLabel)
	}
	if c.TokenManufacturer != "" {
		add(&path, "manufacturer", c.TokenManufacturer)
	}
	if c.TokenModel != "" {
		add(&path, "model", c.TokenModel)
	}
	if c.TokenSerial != "" {
		add(&path, "serial", c.TokenSerial)
	}
	if c.HasSlotID {
		add(&path, "slot-id", strconv.FormatUint(uint64(c.SlotID), 10))
	}
	if c.Object != "" {
		add(&path, "object", c.Object)
	}
	if len(c.ID) > 0 {
		path = append(path, "id="+escapeBytes(c.ID))
	}
	if c.ModulePath != "" {
		add(&query, "module-path", c.ModulePath)
	}
	if c.PIN != "" {
		query = append(query, "pin-value=REDACTED")
	} else if c.PINSource != "" {
		add(&query, "pin-source", c.PINSource)
	}
	if c.MaxSessions != 0 {
		add(&query, "max-sessions", strconv.Itoa(c.MaxSessions))
	}
	s := Scheme + ":" + strings.Join(path, ";")
	if len(query) > 0 {
		s += "?" + strings.Join(query, "&")
	}
	return s
}

// GoString is String, so that %#v does not print the PIN either.
func (c Config) GoString() string { return "pkcs11.Config(" + strconv.Quote(c.String()) + ")" }

// escapeValue percent-encodes every byte of v that RFC 7512 does not allow
// unencoded in an attribute value (its pk11-pchar / pk11-qchar sets, less
// the separators).
func escapeValue(v string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
			c == '-', c == '.', c == '_', c == '~', c == ':', c == '[', c == ']', c == '@',
			c == '!', c == '$', c == '\'', c == '(', c == ')', c == '*', c == '+', c == ',', c == '/':
			b.WriteByte(c)
		default:
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		}
	}
	return b.String()
}

// maxObjectLen bounds a CKA_LABEL in a URI; tokens keep labels far shorter.
const maxObjectLen = 1024

// validObject checks a CKA_LABEL from a URI: any UTF-8 text, spaces
// included (keys made by other tools have such labels), but not empty,
// not longer than maxObjectLen bytes and without NUL or other control
// characters. The error is a [*keystore.LabelError].
func validObject(label string) error {
	switch {
	case label == "":
		return &keystore.LabelError{Label: label, Reason: "empty"}
	case len(label) > maxObjectLen:
		return &keystore.LabelError{Label: label, Reason: "longer than " + strconv.Itoa(maxObjectLen) + " bytes"}
	case !utf8.ValidString(label):
		return &keystore.LabelError{Label: label, Reason: "not UTF-8"}
	case strings.IndexFunc(label, unicode.IsControl) >= 0:
		return &keystore.LabelError{Label: label, Reason: "contains a control character"}
	}
	return nil
}

// escapeBytes percent-encodes every byte of b, as RFC 7512 §2.3 writes
// an id.
func escapeBytes(b []byte) string {
	const hex = "0123456789ABCDEF"
	out := make([]byte, 0, 3*len(b))
	for _, c := range b {
		out = append(out, '%', hex[c>>4], hex[c&15])
	}
	return string(out)
}
