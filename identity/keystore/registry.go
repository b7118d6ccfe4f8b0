package keystore

import (
	"context"
	"net/url"
	"slices"
	"strings"
	"sync"
)

// OpenFunc opens a store from a URI whose scheme it was registered for. It
// receives the whole URI, scheme included.
type OpenFunc func(ctx context.Context, uri string) (Store, error)

var (
	registryMu sync.RWMutex
	registry   = make(map[string]OpenFunc)
)

// Register makes a backend available to [Open] under a URI scheme, such as
// "mem", "file", "pkcs11" or "tpm". Backends call it from an init function,
// so that importing a backend package for its side effect is enough:
//
//	import _ "github.com/ztmkit/ztm/identity/keystore/pkcs11"
//
// Register panics if fn is nil, if scheme is not a valid URI scheme, or if
// the scheme is already registered: all three are programming errors.
func Register(scheme string, fn OpenFunc) {
	if fn == nil {
		panic("keystore: Register of a nil OpenFunc for scheme " + quote(scheme))
	}
	if !validScheme(scheme) {
		panic("keystore: Register of an invalid scheme " + quote(scheme))
	}
	scheme = strings.ToLower(scheme)
	registryMu.Lock()
	defer registryMu.Unlock()
	if _, dup := registry[scheme]; dup {
		panic("keystore: Register called twice for scheme " + quote(scheme))
	}
	registry[scheme] = fn
}

// Schemes returns the registered URI schemes, sorted.
func Schemes() []string {
	registryMu.RLock()
	defer registryMu.RUnlock()
	out := make([]string, 0, len(registry))
	for s := range registry {
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

// Open opens the store that uri names, through the backend registered for
// its scheme:
//
//	mem:                                  a new, empty in-memory store
//	file:/var/lib/line1/keys?passphrase-source=file:/etc/line1/pass
//	pkcs11:token=line1?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/etc/line1/pin
//	tpm:/dev/tpmrm0
//
// Each backend documents its own URI form. A scheme nobody registered gives
// a [*URIError] saying which import is likely missing.
func Open(ctx context.Context, uri string) (Store, error) {
	scheme, _, ok := strings.Cut(uri, ":")
	if !ok || !validScheme(scheme) {
		return nil, &URIError{URI: RedactURI(uri), Part: "scheme", Reason: "missing or malformed scheme (want e.g. \"file:…\")"}
	}
	registryMu.RLock()
	fn := registry[strings.ToLower(scheme)]
	registryMu.RUnlock()
	if fn == nil {
		return nil, &URIError{URI: RedactURI(uri), Part: "scheme", Reason: "unknown scheme " + quote(scheme) + " (forgotten import?)"}
	}
	return fn(ctx, uri)
}

// validScheme reports whether s is a URI scheme (RFC 3986 §3.1).
func validScheme(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case i > 0 && ('0' <= c && c <= '9' || c == '+' || c == '-' || c == '.'):
		default:
			return false
		}
	}
	return true
}

// secretAttrs are the URI attributes whose values never appear in errors or
// logs.
var secretAttrs = []string{"pin-value", "passphrase", "kek", "password"}

// RedactURI returns uri with the values of secret attributes (pin-value,
// passphrase, kek, password) replaced by "REDACTED", wherever they stand:
// in the path or the query, after ';', '&' or '?', and also after the ':'
// or '#' of a malformed URI. Backends use it for every URI they put in an
// error.
func RedactURI(uri string) string {
	// First at every separator a malformed URI may use, then at the
	// attribute separators only, so that a value the first pass cut short
	// at a ':' or '#' is removed whole.
	return redactAttrs(redactAttrs(uri, ";?&:#"), ";?&")
}

// redactAttrs replaces the value of every secret attribute in uri, after
// its scheme, splitting attributes at any byte of seps.
func redactAttrs(uri, seps string) string {
	scheme, rest, ok := strings.Cut(uri, ":")
	if !ok {
		scheme, rest = "", uri
	} else {
		scheme += ":"
	}
	var b strings.Builder
	b.WriteString(scheme)
	for rest != "" {
		i := strings.IndexAny(rest, seps)
		attr, sep := rest, ""
		if i >= 0 {
			attr, sep, rest = rest[:i], rest[i:i+1], rest[i+1:]
		} else {
			rest = ""
		}
		if name, _, ok := strings.Cut(attr, "="); ok {
			n, err := url.PathUnescape(name)
			if err != nil {
				n = name
			}
			if slices.Contains(secretAttrs, strings.ToLower(n)) {
				attr = name + "=REDACTED"
			}
		}
		b.WriteString(attr)
		b.WriteString(sep)
	}
	return b.String()
}
