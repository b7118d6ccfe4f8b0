package file

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/ztmkit/ztm/identity/keystore"
	"github.com/ztmkit/ztm/identity/keystore/internal/keyuri"
)

func init() {
	keystore.Register("file", openURI)
}

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

// maxSecretFile bounds the size of a passphrase or KEK file.
const maxSecretFile = keyuri.MaxSecret

// uriForm is the "file:" URI: a directory, and the credential and work
// factor in the query.
var uriForm = &keyuri.Form{
	Scheme:     "file",
	Authority:  true,
	QueryAttrs: []string{"passphrase-source", "kek-source", "passphrase", "iterations"},
}

// parseURI returns the directory and configuration a "file:" URI names.
// It reads the credential's source.
func parseURI(uri string) (dir string, cfg Config, err error) {
	u, err := keyuri.Parse(uri, uriForm)
	if err != nil {
		return "", Config{}, err
	}
	p := u.Path
	switch {
	case p == "":
		return "", Config{}, u.Fail("path", "empty: name the key directory, as in file:/var/lib/station/keys", nil)
	case !filepath.IsAbs(p) && p != "." && p != ".." && !strings.HasPrefix(p, "./") && !strings.HasPrefix(p, "../"):
		return "", Config{}, u.Fail("path", "relative path "+strconv.Quote(p)+" must start with ./ or ../ (or use an absolute path)", nil)
	}
	if cfg.Iterations, _, err = u.Int("iterations", MinIterations, MaxIterations); err != nil {
		return "", Config{}, err
	}
	part, err := u.OneOf("passphrase-source", "kek-source", "passphrase")
	if err != nil {
		return "", Config{}, err
	}
	if part == "" {
		return "", Config{}, u.Fail("passphrase-source", "a credential is required: passphrase-source=file:<path>, passphrase-source=env:<NAME>, kek-source=… or passphrase=…", nil)
	}
	if err := cfg.setCredential(u, part); err != nil {
		return "", Config{}, u.Fail(part, "", err)
	}
	pw, err := cfg.password()
	clear(pw)
	if err != nil {
		clear(cfg.Passphrase)
		clear(cfg.KEK)
		return "", Config{}, u.Fail(part, "", err)
	}
	return p, cfg, nil
}

// setCredential sets the passphrase or KEK from the attribute name of u.
func (cfg *Config) setCredential(u *keyuri.URI, name string) error {
	value, _ := u.Value(name)
	if name == "passphrase" {
		cfg.Passphrase = []byte(value)
		return nil
	}
	src, err := keyuri.ParseSource(value)
	if err != nil {
		return err
	}
	secret, err := src.Read()
	if err != nil {
		return err
	}
	defer clear(secret)
	if name == "kek-source" {
		cfg.KEK, err = decodeKEK(secret)
		return err
	}
	// Like openssl's -passin file:, the first line is the passphrase.
	cfg.Passphrase = bytes.Clone(keyuri.FirstLine(secret))
	return nil
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
