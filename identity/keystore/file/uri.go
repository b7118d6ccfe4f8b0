package file

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/ztmkit/ztm/identity/keystore"
)

func init() {
	keystore.Register("file", openURI)
}

// maxSecretFile bounds the size of a passphrase or KEK file.
const maxSecretFile = 4096

// openURI opens the store a "file:" URI names; [keystore.Open] calls it for
// that scheme. The URI forms are described in the package documentation.
// A URI it cannot use gives a [*keystore.URIError] naming the part at fault,
// with any passphrase redacted. ctx is not used: opening does no waiting.
func openURI(ctx context.Context, uri string) (keystore.Store, error) {
	dir, cfg, err := parseURI(uri)
	if err != nil {
		return nil, err
	}
	s, err := Open(dir, cfg)
	clear(cfg.Passphrase)
	clear(cfg.KEK)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// parseURI returns the directory and configuration a "file:" URI names.
func parseURI(uri string) (dir string, cfg Config, err error) {
	fail := func(part, reason string, err error) (string, Config, error) {
		clear(cfg.Passphrase)
		clear(cfg.KEK)
		return "", Config{}, &keystore.URIError{URI: keystore.RedactURI(uri), Part: part, Reason: reason, Err: err}
	}
	scheme, rest, ok := strings.Cut(uri, ":")
	if !ok || !strings.EqualFold(scheme, "file") {
		return fail("scheme", `want "file"`, nil)
	}
	if strings.Contains(rest, "#") {
		return fail("fragment", "a file key store URI has no fragment", nil)
	}
	rawPath, query, _ := strings.Cut(rest, "?")
	if auth, ok := strings.CutPrefix(rawPath, "//"); ok {
		host, p, _ := strings.Cut(auth, "/")
		if host != "" && !strings.EqualFold(host, "localhost") {
			return fail("host", "host "+strconv.Quote(host)+": only the local host (empty or \"localhost\") is allowed", nil)
		}
		rawPath = "/" + p
	}
	p, err := url.PathUnescape(rawPath)
	if err != nil {
		return fail("path", "bad percent-encoding", err)
	}
	switch {
	case p == "":
		return fail("path", "empty: name the key directory, as in file:/var/lib/station/keys", nil)
	case strings.ContainsRune(p, 0):
		return fail("path", "contains a NUL byte", nil)
	case !filepath.IsAbs(p) && p != "." && p != ".." && !strings.HasPrefix(p, "./") && !strings.HasPrefix(p, "../"):
		return fail("path", "relative path "+strconv.Quote(p)+" must start with ./ or ../ (or use an absolute path)", nil)
	}

	seen := map[string]bool{}
	credentials := 0
	for attr := range strings.SplitSeq(query, "&") {
		if attr == "" {
			continue
		}
		rawName, rawValue, ok := strings.Cut(attr, "=")
		name, err := url.PathUnescape(rawName)
		if err != nil {
			return fail(rawName, "bad percent-encoding", err)
		}
		if !ok {
			return fail(name, "missing \"=value\"", nil)
		}
		value, err := url.PathUnescape(rawValue)
		if err != nil {
			return fail(name, "bad percent-encoding", err)
		}
		if seen[name] {
			return fail(name, "given twice", nil)
		}
		seen[name] = true
		switch name {
		case "passphrase-source", "kek-source", "passphrase":
			credentials++
			if credentials > 1 {
				return fail(name, "give only one of passphrase-source, kek-source and passphrase", nil)
			}
		}
		switch name {
		case "passphrase-source":
			secret, err := readSource(value)
			if err != nil {
				return fail(name, "", err)
			}
			// Like openssl's -passin file:, the first line is the passphrase.
			line, _, _ := bytes.Cut(secret, []byte("\n"))
			cfg.Passphrase = bytes.Clone(bytes.TrimSuffix(line, []byte("\r")))
			clear(secret)
		case "kek-source":
			secret, err := readSource(value)
			if err != nil {
				return fail(name, "", err)
			}
			cfg.KEK, err = decodeKEK(secret)
			clear(secret)
			if err != nil {
				return fail(name, "", err)
			}
		case "passphrase":
			cfg.Passphrase = []byte(value)
		case "iterations":
			n, err := strconv.Atoi(value)
			if err != nil || n < MinIterations || n > MaxIterations {
				return fail(name, "want an integer from "+strconv.Itoa(MinIterations)+" to "+strconv.Itoa(MaxIterations), nil)
			}
			cfg.Iterations = n
		default:
			return fail(name, "unknown attribute (want passphrase-source, kek-source, passphrase or iterations)", nil)
		}
	}
	if credentials == 0 {
		return fail("passphrase-source", "a credential is required: passphrase-source=file:<path>, passphrase-source=env:<NAME>, kek-source=… or passphrase=…", nil)
	}
	if _, err := cfg.password(); err != nil {
		part := "passphrase"
		if cfg.KEK != nil {
			part = "kek-source"
		} else if seen["passphrase-source"] {
			part = "passphrase-source"
		}
		return fail(part, "", err)
	}
	return p, cfg, nil
}

// readSource reads a secret from "file:<path>" or "env:<NAME>".
func readSource(src string) ([]byte, error) {
	if name, ok := strings.CutPrefix(src, "env:"); ok {
		v, ok := os.LookupEnv(name)
		if !ok || name == "" {
			return nil, errors.New("environment variable " + strconv.Quote(name) + " is not set")
		}
		return []byte(v), nil
	}
	path, ok := strings.CutPrefix(src, "file:")
	if !ok || path == "" {
		return nil, errors.New("source " + strconv.Quote(src) + ": want file:<path> or env:<NAME>")
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxSecretFile+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxSecretFile {
		clear(data)
		return nil, errors.New("secret file " + strconv.Quote(path) + " is larger than " + strconv.Itoa(maxSecretFile) + " bytes")
	}
	return data, nil
}

// decodeKEK accepts 32 raw bytes or 64 hexadecimal digits, optionally
// followed by a line break.
func decodeKEK(b []byte) ([]byte, error) {
	if len(b) == KEKSize {
		return bytes.Clone(b), nil
	}
	h := bytes.TrimSuffix(bytes.TrimSuffix(b, []byte("\n")), []byte("\r"))
	if len(h) == hex.EncodedLen(KEKSize) {
		kek := make([]byte, KEKSize)
		if _, err := hex.Decode(kek, h); err == nil {
			return kek, nil
		}
		clear(kek)
	}
	return nil, errors.New("key-encryption key must be 32 raw bytes or 64 hexadecimal digits")
}
