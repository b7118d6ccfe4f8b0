package keyuri

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// MaxSecret bounds the size of a secret read from a file or the
// environment: PINs, passphrases and key-encryption keys are far shorter.
const MaxSecret = 4096

// Source is where a secret is read from: a file or an environment
// variable. The zero Source names nothing.
type Source struct {
	File string // the file's path, or ""
	Env  string // the environment variable's name, or ""
}

// ParseSource parses "file:<path>" or "env:<NAME>" (see the package
// documentation for the trade-offs). It reads nothing.
func ParseSource(s string) (Source, error) {
	if name, ok := strings.CutPrefix(s, "env:"); ok {
		if name == "" || strings.ContainsAny(name, "=\x00") {
			return Source{}, errors.New("env: " + strconv.Quote(name) + " is not an environment variable name")
		}
		return Source{Env: name}, nil
	}
	p, ok := strings.CutPrefix(s, "file:")
	if !ok {
		return Source{}, errors.New("source " + strconv.Quote(s) + ": " + errSource.Error())
	}
	if auth, ok := strings.CutPrefix(p, "//"); ok {
		host, rest, _ := strings.Cut(auth, "/")
		if host != "" && !strings.EqualFold(host, "localhost") {
			return Source{}, errors.New("file: host " + strconv.Quote(host) + ": only local files are supported")
		}
		p = "/" + rest
	}
	switch {
	case p == "":
		return Source{}, errors.New("file: no path: " + errSource.Error())
	case strings.ContainsRune(p, 0):
		return Source{}, errors.New("file: path contains a NUL byte")
	case !filepath.IsAbs(p) && !strings.HasPrefix(p, "./") && !strings.HasPrefix(p, "../"):
		return Source{}, errors.New("file: relative path " + strconv.Quote(p) + " must start with ./ or ../ (or use an absolute path)")
	}
	return Source{File: p}, nil
}

// String returns the source as ParseSource reads it.
func (s Source) String() string {
	if s.Env != "" {
		return "env:" + s.Env
	}
	if s.File != "" {
		return "file:" + s.File
	}
	return ""
}

// Read returns the secret: the whole file, or the variable's value, of at
// most [MaxSecret] bytes. The caller clears it when done.
func (s Source) Read() ([]byte, error) {
	switch {
	case s.Env != "":
		v, ok := os.LookupEnv(s.Env)
		if !ok {
			return nil, errors.New("environment variable " + strconv.Quote(s.Env) + " is not set")
		}
		if len(v) > MaxSecret {
			return nil, errors.New("environment variable " + strconv.Quote(s.Env) + " is longer than " + strconv.Itoa(MaxSecret) + " bytes")
		}
		return []byte(v), nil
	case s.File != "":
		return readFile(s.File)
	}
	return nil, errSource
}

func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxSecret+1))
	if err != nil {
		clear(data)
		return nil, err
	}
	if len(data) > MaxSecret {
		clear(data)
		return nil, errors.New("secret file " + strconv.Quote(path) + " is larger than " + strconv.Itoa(MaxSecret) + " bytes")
	}
	return data, nil
}

// FirstLine returns b up to its first line break ("\n" or "\r\n"), as
// openssl's -passin file: reads a passphrase.
func FirstLine(b []byte) []byte {
	line, _, _ := bytes.Cut(b, []byte("\n"))
	return bytes.TrimSuffix(line, []byte("\r"))
}
