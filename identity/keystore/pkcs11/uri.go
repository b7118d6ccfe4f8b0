package pkcs11

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/ztmkit/ztm/identity/keystore"
	"github.com/ztmkit/ztm/identity/keystore/internal/keyuri"
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
	// PINSource says where the user PIN is read from (URI: pin-source):
	// a file, as "file:/path" or an absolute path, or an environment
	// variable, as "env:NAME". [Open] reads it; one trailing newline is
	// removed. Used only if PIN is empty. A file readable only by the
	// station's user is the safest; a variable is readable through
	// /proc/PID/environ and inherited by child processes.
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

// uriForm is the PKCS#11 URI: RFC 7512 path attributes naming a token
// and a key, query attributes naming the module and the PIN.
var uriForm = &keyuri.Form{
	Scheme:     Scheme,
	AttrPath:   true,
	PathAttrs:  []string{"token", "serial", "manufacturer", "model", "slot-id", "object", "id", "type"},
	QueryAttrs: []string{"module-path", "pin-value", "pin-source", "max-sessions"},
	Refused: map[string]string{
		"library-manufacturer": "selecting the module by its information is not supported; use module-path",
		"library-description":  "selecting the module by its information is not supported; use module-path",
		"library-version":      "selecting the module by its information is not supported; use module-path",
		"slot-manufacturer":    "not supported; select the token with token=, serial= or slot-id=",
		"slot-description":     "not supported; select the token with token=, serial= or slot-id=",
		"module-name":          "not supported; give the module's file name with module-path",
	},
	Vendor: true,
}

// ParseURI parses a PKCS#11 URI (RFC 7512) that names a token:
//
//	pkcs11:token=line1;object=station?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/etc/line1/pin
//
// Path attributes (separated by ';'): token, serial, manufacturer, model,
// slot-id (decimal), object and id (a key's CKA_LABEL and CKA_ID, see
// [Config.Object]) and type (only "private"). Query attributes (separated
// by '&'): module-path (required), pin-source ("file:/path", an absolute
// path, or "env:NAME"), pin-value, and max-sessions (a ztm extension).
// Values are percent-decoded; a '+' is a literal plus, not a space.
// Attributes starting with "x-" are vendor extensions and are ignored, as
// RFC 7512 §2.3 allows. Each attribute may appear once.
//
// WARNING: a pin-value ends up in shell histories, process lists and logs
// wherever the URI is written; prefer pin-source.
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
	u, err := keyuri.Parse(uri, uriForm)
	if err != nil {
		return nil, err
	}
	cfg := &Config{}
	if err := cfg.setToken(u); err != nil {
		return nil, err
	}
	if err := cfg.setKey(u); err != nil {
		return nil, err
	}
	if err := cfg.setModule(u); err != nil {
		return nil, err
	}
	if !store {
		return cfg, nil
	}
	if cfg.ModulePath == "" {
		return nil, u.Fail("module-path", "required: the file name of the PKCS#11 module, e.g. module-path=/usr/lib/softhsm/libsofthsm2.so", nil)
	}
	if !cfg.selects() {
		return nil, u.Fail("token", "no token selected: give token=, serial= or slot-id=", nil)
	}
	return cfg, nil
}

// setToken sets the token selectors from u.
func (c *Config) setToken(u *keyuri.URI) error {
	c.TokenLabel, _ = u.Value("token")
	c.TokenSerial, _ = u.Value("serial")
	c.TokenManufacturer, _ = u.Value("manufacturer")
	c.TokenModel, _ = u.Value("model")
	id, ok, err := u.Uint("slot-id", strconv.IntSize)
	if err != nil {
		return err
	}
	c.SlotID, c.HasSlotID = uint(id), ok
	return nil
}

// setKey sets the key a URI names (object, id) from u.
func (c *Config) setKey(u *keyuri.URI) error {
	if v, ok := u.Value("object"); ok {
		if err := validObject(v); err != nil {
			return u.Fail("object", "not a usable CKA_LABEL", err)
		}
		c.Object = v
	}
	id, ok, err := u.NonEmpty("id")
	if err != nil {
		return err
	}
	if ok {
		c.ID = []byte(id)
	}
	if v, ok := u.Value("type"); ok && v != "private" {
		return u.Fail("type", `a key store URI names private keys: only "private" is accepted`, nil)
	}
	return nil
}

// setModule sets the module, the PIN and the session bound from u.
func (c *Config) setModule(u *keyuri.URI) error {
	var err error
	if c.ModulePath, _, err = u.NonEmpty("module-path"); err != nil {
		return err
	}
	if u.Has("pin-value") && u.Has("pin-source") {
		return u.Fail("pin-source", "give pin-value or pin-source, not both", nil)
	}
	c.PIN, _ = u.Value("pin-value")
	if src, ok := u.Value("pin-source"); ok {
		if _, err := pinSource(src); err != nil {
			return u.Fail("pin-source", "", err)
		}
		c.PINSource = src
	}
	if c.MaxSessions, _, err = u.Int("max-sessions", 1, 1024); err != nil {
		return err
	}
	return nil
}

// pinSource returns the source a pin-source names: "file:/path",
// "env:NAME", or an absolute path (as RFC 7512 tools write it).
func pinSource(src string) (keyuri.Source, error) {
	if strings.HasPrefix(src, "/") {
		return keyuri.ParseSource("file:" + src)
	}
	return keyuri.ParseSource(src)
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
	src, err := pinSource(c.PINSource)
	if err != nil {
		return "", &keystore.URIError{URI: c.String(), Part: "pin-source", Err: err}
	}
	b, err := src.Read()
	if err != nil {
		return "", fmt.Errorf("pkcs11: failed to read the PIN from pin-source: %w", err)
	}
	b = bytes.TrimSuffix(b, []byte("\n"))
	b = bytes.TrimSuffix(b, []byte("\r"))
	pin := string(b)
	clear(b)
	return pin, nil
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
