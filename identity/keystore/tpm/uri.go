package tpm

import (
	"context"
	"io"
	"net"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/google/go-tpm/tpm2/transport"
	"github.com/google/go-tpm/tpm2/transport/linuxtpm"

	"github.com/ztmkit/ztm/identity/keystore"
	"github.com/ztmkit/ztm/identity/keystore/internal/keyuri"
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

// uriForm is the "tpm:" URI: a device path or "swtpm", and the key index
// directory in the query.
var uriForm = &keyuri.Form{
	Scheme:     "tpm",
	Example:    "tpm:/dev/tpmrm0?dir=…",
	QueryAttrs: []string{"dir", "max-loaded", "host", "port"},
}

// parseURI parses a "tpm:" URI (see the package documentation). Errors
// are *keystore.URIError naming the part that is wrong.
func parseURI(uri string) (*uriConfig, error) {
	u, err := keyuri.Parse(uri, uriForm)
	if err != nil {
		return nil, err
	}
	c := &uriConfig{}
	tcpMode := false
	switch path := u.Path; {
	case path == "":
		c.device = DefaultDevice
	case path == "swtpm":
		tcpMode = true
	case strings.HasPrefix(path, "/"):
		if filepath.Clean(path) != path {
			return nil, u.Fail("path", "device path "+strconv.Quote(path)+" is not a clean absolute path", nil)
		}
		c.device = path
	default:
		return nil, u.Fail("path", `want an absolute device path such as "/dev/tpmrm0", or "swtpm" for a TPM simulator on a loopback TCP port`, nil)
	}
	dir, _ := u.Value("dir")
	switch {
	case dir == "":
		return nil, u.Fail("dir", "required: the key index directory, e.g. dir=/var/lib/ztm/tpmkeys", nil)
	case !filepath.IsAbs(dir) || filepath.Clean(dir) != dir || strings.ContainsRune(dir, 0):
		return nil, u.Fail("dir", strconv.Quote(dir)+" is not a clean absolute path", nil)
	}
	c.dir = dir
	if c.maxLoaded, _, err = u.Int("max-loaded", 1, 64); err != nil {
		return nil, err
	}
	if !tcpMode {
		for _, name := range []string{"host", "port"} {
			if u.Has(name) {
				return nil, u.Fail(name, `only a "tpm:swtpm" URI takes a TCP address`, nil)
			}
		}
		return c, nil
	}
	host, ok := u.Value("host")
	if !ok {
		host = "127.0.0.1"
	}
	if !isLoopback(host) {
		return nil, u.Fail("host", strconv.Quote(host)+" is not a loopback address: TPM commands over TCP are neither encrypted nor authenticated", nil)
	}
	port, ok, err := u.Int("port", 1, 65535)
	if err != nil {
		return nil, err
	}
	if !ok {
		port = 2321
	}
	c.addr = net.JoinHostPort(host, strconv.Itoa(port))
	return c, nil
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
