// Package keyuri is the one parser of ztm's key store URIs ("pkcs11:…",
// "file:…", "tpm:…"), and the one reader of the secrets they name. Each
// backend describes its URI with a [Form] (scheme, whether the path holds
// attributes, its attribute names) and reads the parsed [URI] with typed
// getters; every refusal is a [*keystore.URIError] naming the part at
// fault, with secrets redacted by [keystore.RedactURI].
//
// # Syntax
//
// The rules are those of RFC 3986 as RFC 7512 applies them:
//
//   - The scheme is matched without regard to case. A URI has no fragment:
//     a '#' anywhere is refused.
//   - The path is either a list of attributes separated by ';' (RFC 7512
//     path attributes, [Form.AttrPath]) or a file or device path,
//     percent-decoded, never holding NUL. An authority ("//host") is
//     allowed only where the form says so, and then only an empty host or
//     "localhost".
//   - The query, after the first '?', is a list of attributes separated
//     by '&'. A ';' in the query is refused: it separates path attributes,
//     and parsers disagree on what it means after '?' (Go's net/url
//     refuses it too); write it as %3B.
//   - Each attribute is name=value. Names are percent-decoded and matched
//     without regard to case; values are percent-decoded, and a '+' is a
//     literal plus, never a space. An empty attribute (a stray separator),
//     an attribute without '=', an attribute given twice (in the path or
//     the query) and a name the form does not know are refused. Names
//     starting with "x-" are vendor extensions, ignored where the form
//     allows them (RFC 7512 §2.3).
//
// # Secrets
//
// A secret (PIN, passphrase, key-encryption key) comes from one of three
// places, the same for every backend:
//
//   - in the URI itself (pkcs11's pin-value, file's passphrase). WARNING:
//     a secret in a URI ends up in shell histories, process lists (ps,
//     /proc/PID/cmdline), configuration files and logs that print the
//     URI; ztm redacts it in its own errors and String methods, but
//     cannot reach the other copies. Use it for tests and demos only.
//   - "file:<path>" (pkcs11's pin-source, file's passphrase-source and
//     kek-source): a file readable only by the service's user, the usual
//     choice on a production station. The path is absolute, or relative
//     starting with "./" or "../"; "file:///p" and "file://localhost/p"
//     are accepted as RFC 8089 writes them.
//   - "env:<NAME>": an environment variable, as container platforms and
//     systemd's credentials inject secrets. The environment of a process is
//     readable by its user and root (/proc/PID/environ) and is inherited by
//     its children, so it is weaker than a file with tight permissions; it
//     never appears in a process list, unlike a URI.
//
// Reference: RFC 3986 §3, RFC 7512 §2.3, RFC 8089 §2.
package keyuri

import (
	"errors"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/ztmkit/ztm/identity/keystore"
)

// Form describes one backend's URIs.
type Form struct {
	// Scheme is the URI scheme, in lower case.
	Scheme string
	// AttrPath says that the path is a list of attributes separated by
	// ';' (RFC 7512); otherwise the path is a file or device path.
	AttrPath bool
	// Authority says that a path may start with "//host", where host is
	// empty or "localhost" (RFC 8089). Otherwise "//" is refused.
	Authority bool
	// Example is a URI of the form, shown in the error for an authority
	// the form does not take.
	Example string
	// PathAttrs and QueryAttrs are the attribute names the form takes in
	// the path (if AttrPath) and in the query, in lower case.
	PathAttrs, QueryAttrs []string
	// Refused maps attribute names the form knows of but does not
	// support to the reason it gives.
	Refused map[string]string
	// Vendor says that attributes starting with "x-" are ignored (RFC 7512
	// §2.3); otherwise they are unknown attributes.
	Vendor bool
}

// Attr is one attribute of a URI.
type Attr struct {
	Name   string // percent-decoded, in lower case
	Value  string // percent-decoded
	InPath bool   // the attribute stands in the path, before '?'
}

// URI is a parsed key store URI.
type URI struct {
	redacted string
	// Path is the percent-decoded path of a form without AttrPath.
	Path  string
	attrs []Attr
}

// Parse parses uri as f describes. Errors are [*keystore.URIError].
func Parse(uri string, f *Form) (*URI, error) {
	u := &URI{redacted: keystore.RedactURI(uri)}
	scheme, rest, ok := strings.Cut(uri, ":")
	if !ok || !strings.EqualFold(scheme, f.Scheme) {
		return nil, u.Fail("scheme", "want "+strconv.Quote(f.Scheme+":"), nil)
	}
	if strings.Contains(rest, "#") {
		return nil, u.Fail("fragment", "a "+f.Scheme+" URI has no fragment", nil)
	}
	path, query, _ := strings.Cut(rest, "?")
	if strings.Contains(query, ";") {
		return nil, u.Fail("query", "';' in the query: write it as %3B (';' separates path attributes)", nil)
	}
	if f.AttrPath {
		if err := u.addAttrs(f, path, ";", true); err != nil {
			return nil, err
		}
	} else if err := u.setPath(f, path); err != nil {
		return nil, err
	}
	if err := u.addAttrs(f, query, "&", false); err != nil {
		return nil, err
	}
	return u, nil
}

// setPath decodes the path of a form without attributes in its path.
func (u *URI) setPath(f *Form, raw string) error {
	if auth, ok := strings.CutPrefix(raw, "//"); ok {
		if !f.Authority {
			return u.Fail("path", "a "+f.Scheme+" URI has no authority: write "+strconv.Quote(f.Example)+", without \"//\"", nil)
		}
		host, p, _ := strings.Cut(auth, "/")
		if host != "" && !strings.EqualFold(host, "localhost") {
			return u.Fail("host", "host "+strconv.Quote(host)+": only the local host (empty or \"localhost\") is allowed", nil)
		}
		raw = "/" + p
	}
	p, err := url.PathUnescape(raw)
	if err != nil {
		return u.Fail("path", "bad percent-encoding", err)
	}
	if strings.ContainsRune(p, 0) {
		return u.Fail("path", "contains a NUL byte", nil)
	}
	u.Path = p
	return nil
}

// addAttrs splits list at sep and adds its attributes, checking each
// against f.
func (u *URI) addAttrs(f *Form, list, sep string, inPath bool) error {
	if list == "" {
		return nil
	}
	for _, raw := range strings.Split(list, sep) {
		a, err := u.splitAttr(raw)
		if err != nil {
			return err
		}
		a.InPath = inPath
		if u.Has(a.Name) {
			return u.Fail(a.Name, "appears more than once", nil)
		}
		u.attrs = append(u.attrs, a)
		if err := u.checkName(f, a); err != nil {
			return err
		}
	}
	return nil
}

// splitAttr splits name=value and percent-decodes both. An error's Part
// is the name as far as it could be decoded.
func (u *URI) splitAttr(raw string) (Attr, error) {
	rawName, rawValue, ok := strings.Cut(raw, "=")
	name, err := url.PathUnescape(rawName)
	if err != nil {
		return Attr{}, u.Fail(rawName, "bad percent-encoding in attribute name", nil)
	}
	name = strings.ToLower(name)
	switch {
	case raw == "":
		return Attr{}, u.Fail("attribute", "empty attribute (stray separator)", nil)
	case name == "":
		return Attr{}, u.Fail("attribute", "attribute without a name", nil)
	case !ok:
		return Attr{}, u.Fail(name, "missing '=' and value", nil)
	}
	value, err := url.PathUnescape(rawValue)
	if err != nil {
		return Attr{}, u.Fail(name, "bad percent-encoding in value", nil)
	}
	return Attr{Name: name, Value: value}, nil
}

// checkName refuses an attribute that f does not take where it stands.
func (u *URI) checkName(f *Form, a Attr) error {
	if f.Vendor && strings.HasPrefix(a.Name, "x-") {
		return nil
	}
	if reason, ok := f.Refused[a.Name]; ok {
		return u.Fail(a.Name, reason, nil)
	}
	inPath, inQuery := slices.Contains(f.PathAttrs, a.Name), slices.Contains(f.QueryAttrs, a.Name)
	switch {
	case a.InPath && inPath, !a.InPath && inQuery:
		return nil
	case a.InPath && inQuery:
		return u.Fail(a.Name, "is a query attribute: put it after '?'", nil)
	case !a.InPath && inPath:
		return u.Fail(a.Name, "is a path attribute: put it before '?', separated by ';'", nil)
	case a.InPath:
		return u.Fail(a.Name, "unknown path attribute", nil)
	}
	return u.Fail(a.Name, "unknown attribute (want "+strings.Join(f.QueryAttrs, ", ")+")", nil)
}

// Fail returns a [*keystore.URIError] for the URI, with its secrets
// redacted, naming part.
func (u *URI) Fail(part, reason string, err error) error {
	return &keystore.URIError{URI: u.redacted, Part: part, Reason: reason, Err: err}
}

// Attrs returns the URI's attributes in the order they stand, vendor
// extensions included.
func (u *URI) Attrs() []Attr { return slices.Clone(u.attrs) }

// Has reports whether the URI has the attribute name.
func (u *URI) Has(name string) bool {
	_, ok := u.Value(name)
	return ok
}

// Value returns the value of the attribute name, and whether it is there.
func (u *URI) Value(name string) (string, bool) {
	for _, a := range u.attrs {
		if a.Name == name {
			return a.Value, true
		}
	}
	return "", false
}

// NonEmpty returns the value of the attribute name, refusing an empty one.
func (u *URI) NonEmpty(name string) (string, bool, error) {
	v, ok := u.Value(name)
	if ok && v == "" {
		return "", false, u.Fail(name, "empty", nil)
	}
	return v, ok, nil
}

// Int returns the attribute name as a decimal integer from lo to hi.
func (u *URI) Int(name string, lo, hi int) (int, bool, error) {
	v, ok := u.Value(name)
	if !ok {
		return 0, false, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, false, u.Fail(name, "want a decimal number from "+strconv.Itoa(lo)+" to "+strconv.Itoa(hi), nil)
	}
	return n, true, nil
}

// Uint returns the attribute name as a decimal unsigned integer of at most
// bits bits.
func (u *URI) Uint(name string, bits int) (uint64, bool, error) {
	v, ok := u.Value(name)
	if !ok {
		return 0, false, nil
	}
	n, err := strconv.ParseUint(v, 10, bits)
	if err != nil {
		return 0, false, u.Fail(name, "want a decimal number of at most "+strconv.Itoa(bits)+" bits", nil)
	}
	return n, true, nil
}

// OneOf returns which of names the URI has, refusing more than one; it
// returns "" for none. The error names the second one found.
func (u *URI) OneOf(names ...string) (string, error) {
	found := ""
	for _, a := range u.attrs {
		if !slices.Contains(names, a.Name) {
			continue
		}
		if found != "" {
			return "", u.Fail(a.Name, "give only one of "+strings.Join(names, ", "), nil)
		}
		found = a.Name
	}
	return found, nil
}

// Source returns the attribute name as a secret [Source].
func (u *URI) Source(name string) (Source, bool, error) {
	v, ok := u.Value(name)
	if !ok {
		return Source{}, false, nil
	}
	src, err := ParseSource(v)
	if err != nil {
		return Source{}, false, u.Fail(name, "", err)
	}
	return src, true, nil
}

// errSource is the reason every malformed source gives.
var errSource = errors.New(`want "file:/path/to/secret" or "env:NAME"`)
