package tpm

import (
	"context"
	"io"
	"net"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/google/go-tpm/tpm2/transport"
	"github.com/google/go-tpm/tpm2/transport/linuxtpm"

	"github.com/ztmkit/ztm/identity/keystore"
)

func init() {
	keystore.Register("tpm", openURI)
}

// DefaultDevice is the TPM device a "tpm:" URI with an empty path opens:
// the Linux kernel's resource-managed TPM device.
const DefaultDevice = "/dev/tpmrm0"

// uriConfig is a parsed "tpm:" URI.
type uriConfig struct {
	device    string // device path, or "" for TCP
	addr      string // TCP command address host:port
	dir       string
	maxLoaded int
}

// parseURI parses a "tpm:" URI (see the package documentation). Errors
// are *keystore.URIError naming the part that is wrong.
func parseURI(uri string) (*uriConfig, error) {
	fail := func(part, reason string) error {
		return &keystore.URIError{URI: keystore.RedactURI(uri), Part: part, Reason: reason}
	}
	scheme, rest, ok := strings.Cut(uri, ":")
	if !ok || !strings.EqualFold(scheme, "tpm") {
		return nil, fail("scheme", `want "tpm"`)
	}
	rawPath, rawQuery, _ := strings.Cut(rest, "?")
	if strings.HasPrefix(rawPath, "//") {
		return nil, fail("path", `a TPM URI has no authority: write "tpm:/dev/tpmrm0?dir=…", not "tpm://…"`)
	}
	if strings.Contains(rawPath, "#") || strings.Contains(rawQuery, "#") {
		return nil, fail("fragment", "a TPM URI has no fragment")
	}
	path, err := url.PathUnescape(rawPath)
	if err != nil {
		return nil, fail("path", "bad percent-encoding")
	}
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return nil, fail("query", "bad query: "+err.Error())
	}
	c := &uriConfig{}
	tcpMode := false
	switch {
	case path == "":
		c.device = DefaultDevice
	case path == "swtpm":
		tcpMode = true
	case strings.HasPrefix(path, "/"):
		if filepath.Clean(path) != path || strings.ContainsRune(path, 0) {
			return nil, fail("path", "device path "+strconv.Quote(path)+" is not a clean absolute path")
		}
		c.device = path
	default:
		return nil, fail("path", `want an absolute device path such as "/dev/tpmrm0", or "swtpm" for a TPM simulator on a loopback TCP port`)
	}
	get := func(name string) (string, bool, error) {
		v, ok := q[name]
		if !ok {
			return "", false, nil
		}
		if len(v) != 1 {
			return "", false, fail(name, "given more than once")
		}
		return v[0], true, nil
	}
	known := map[string]bool{"dir": true, "max-loaded": true}
	if tcpMode {
		known["host"], known["port"] = true, true
	}
	for name := range q {
		if name == "" {
			return nil, fail("query", "an attribute has no name")
		}
		if !known[name] {
			if name == "host" || name == "port" {
				return nil, fail(name, `only a "tpm:swtpm" URI takes a TCP address`)
			}
			return nil, fail(name, "unknown attribute (known: dir, max-loaded; host, port for swtpm)")
		}
	}
	dir, ok, err := get("dir")
	switch {
	case err != nil:
		return nil, err
	case !ok || dir == "":
		return nil, fail("dir", "required: the key index directory, e.g. dir=/var/lib/ztm/tpmkeys")
	case !filepath.IsAbs(dir) || filepath.Clean(dir) != dir || strings.ContainsRune(dir, 0):
		return nil, fail("dir", strconv.Quote(dir)+" is not a clean absolute path")
	}
	c.dir = dir
	if v, ok, err := get("max-loaded"); err != nil {
		return nil, err
	} else if ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 64 {
			return nil, fail("max-loaded", "want a number from 1 to 64")
		}
		c.maxLoaded = n
	}
	if tcpMode {
		host, ok, err := get("host")
		if err != nil {
			return nil, err
		}
		if !ok {
			host = "127.0.0.1"
		}
		if !isLoopback(host) {
			return nil, fail("host", strconv.Quote(host)+" is not a loopback address: TPM commands over TCP are neither encrypted nor authenticated")
		}
		port, err := portAttr(get, fail, "port", 2321)
		if err != nil {
			return nil, err
		}
		c.addr = net.JoinHostPort(host, strconv.Itoa(port))
	}
	return c, nil
}

func portAttr(get func(string) (string, bool, error), fail func(part, reason string) error, name string, def int) (int, error) {
	v, ok, err := get(name)
	if err != nil || !ok {
		return def, err
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 65535 {
		return 0, fail(name, "want a TCP port number from 1 to 65535")
	}
	return n, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// openURI is the OpenFunc registered for "tpm".
func openURI(ctx context.Context, uri string) (keystore.Store, error) {
	c, err := parseURI(uri)
	if err != nil {
		return nil, err
	}
	var dial func() (transport.TPMCloser, error)
	if c.device != "" {
		dial = func() (transport.TPMCloser, error) { return linuxtpm.Open(c.device) }
	} else {
		dial = func() (transport.TPMCloser, error) {
			t, err := dialMSSim(c.addr)
			if err != nil {
				return nil, errorf("tpm: cannot connect to TPM simulator at %s: %w", c.addr, err)
			}
			return t, nil
		}
	}
	t, err := dial()
	if err != nil {
		if c.device != "" {
			return nil, &keystore.URIError{URI: keystore.RedactURI(uri), Part: "path", Reason: "cannot open TPM device " + strconv.Quote(c.device), Err: err}
		}
		return nil, err
	}
	s, err := New(ctx, t, Config{Dir: c.dir, MaxLoaded: c.maxLoaded})
	if err != nil {
		t.Close()
		return nil, err
	}
	s.closer = io.Closer(t)
	s.reopen = dial
	return s, nil
}
