package tpm

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-tpm/tpm2"
	"golang.org/x/crypto/cryptobyte"

	"github.com/ztmkit/ztm/identity/keystore"
)

// A key file holds what TPM2_Load needs to bring a key back into the TPM,
// and nothing secret in the clear: TPM2B_PRIVATE is encrypted and
// integrity-protected by the TPM under the storage root key. Layout
// (all lengths big-endian uint16):
//
//	"ZTMTPMK1"                magic and version
//	u16 len, parent name      TPM2B_NAME contents of the SRK the key was made under
//	u16 len, TPMT_PUBLIC      the key's public area
//	u16 len, TPM2B_PRIVATE    the key's private blob, as TPM2_Create returned it
//
// and no trailing bytes.
const (
	keyFileMagic  = "ZTMTPMK1"
	keyFileSuffix = ".tpmkey"
	maxKeyFile    = 8 << 10
)

// keyFile is a parsed key file.
type keyFile struct {
	raw        []byte // the file's contents
	parentName []byte
	public     []byte // TPMT_PUBLIC bytes
	private    []byte // TPM2B_PRIVATE contents
	tpub       *tpm2.TPMTPublic
	alg        keystore.Algorithm
	restricted bool // an attestation key
	pub        crypto.PublicKey
}

func (f *keyFile) marshal() []byte {
	var b cryptobyte.Builder
	b.AddBytes([]byte(keyFileMagic))
	for _, part := range [][]byte{f.parentName, f.public, f.private} {
		b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(part) })
	}
	return b.BytesOrPanic() // parts are bounded by their TPM2B sizes
}

// parseKeyFile parses and checks a key file's contents. The error is a
// plain reason; callers wrap it in a *KeyFileError.
func parseKeyFile(data []byte) (*keyFile, error) {
	s := cryptobyte.String(data)
	var magic []byte
	if !s.ReadBytes(&magic, len(keyFileMagic)) || string(magic) != keyFileMagic {
		return nil, errors.New("bad magic (not a ztm TPM key file, or an unknown version)")
	}
	var parent, public, private cryptobyte.String
	if !s.ReadUint16LengthPrefixed(&parent) || !s.ReadUint16LengthPrefixed(&public) || !s.ReadUint16LengthPrefixed(&private) {
		return nil, errors.New("truncated")
	}
	if !s.Empty() {
		return nil, errors.New("trailing data")
	}
	if len(parent) == 0 || len(public) == 0 || len(private) == 0 {
		return nil, errors.New("empty field")
	}
	tpub, err := tpm2.Unmarshal[tpm2.TPMTPublic](public)
	if err != nil {
		return nil, fmt.Errorf("bad public area: %v", err)
	}
	// The public area must be exactly the bytes given, so that the key's
	// name (its digest) is the one the TPM computes.
	if !bytes.Equal(tpm2.Marshal(tpub), public) {
		return nil, errors.New("public area has trailing bytes")
	}
	alg, restricted, err := classify(tpub)
	if err != nil {
		return nil, err
	}
	pub, err := tpm2.Pub(*tpub)
	if err != nil {
		return nil, fmt.Errorf("bad public key: %v", err)
	}
	if ec, ok := pub.(*ecdsa.PublicKey); ok {
		if _, err := ec.ECDH(); err != nil {
			return nil, errors.New("public key is not a point on its curve")
		}
	}
	if got, err := keystore.AlgorithmOf(pub); err != nil || got != alg {
		return nil, fmt.Errorf("public key does not match its parameters")
	}
	return &keyFile{
		raw:        bytes.Clone(data),
		parentName: bytes.Clone(parent), public: bytes.Clone(public), private: bytes.Clone(private),
		tpub: tpub, alg: alg, restricted: restricted, pub: pub,
	}, nil
}

// classify returns the algorithm of a public area made by this package, and
// whether it is a restricted (attestation) key. Anything else is refused.
func classify(p *tpm2.TPMTPublic) (keystore.Algorithm, bool, error) {
	a := p.ObjectAttributes
	if !a.SignEncrypt || a.Decrypt || !a.FixedTPM || !a.FixedParent || !a.SensitiveDataOrigin {
		return 0, false, errors.New("not a fixedTPM, TPM-generated signing key")
	}
	if p.NameAlg != tpm2.TPMAlgSHA256 {
		return 0, false, fmt.Errorf("name algorithm %v is not SHA-256", p.NameAlg)
	}
	for _, alg := range []keystore.Algorithm{keystore.ES256, keystore.ES384, keystore.PS256} {
		want := keyTemplate(alg, a.Restricted)
		if bytes.Equal(tpm2.Marshal(withoutUnique(*p)), tpm2.Marshal(withoutUnique(want))) {
			if a.Restricted && alg != keystore.ES256 {
				break
			}
			return alg, a.Restricted, nil
		}
	}
	return 0, false, errors.New("key parameters match no algorithm this store makes")
}

// withoutUnique returns p with its unique field emptied, to compare
// templates.
func withoutUnique(p tpm2.TPMTPublic) tpm2.TPMTPublic {
	switch p.Type {
	case tpm2.TPMAlgECC:
		p.Unique = tpm2.NewTPMUPublicID(tpm2.TPMAlgECC, &tpm2.TPMSECCPoint{})
	case tpm2.TPMAlgRSA:
		p.Unique = tpm2.NewTPMUPublicID(tpm2.TPMAlgRSA, &tpm2.TPM2BPublicKeyRSA{})
	}
	return p
}

// keyPath returns the path of label's key file in dir.
func keyPath(dir, label string) string { return filepath.Join(dir, label+keyFileSuffix) }

// readKeyFile reads and parses label's key file. A missing file gives an
// error wrapping keystore.ErrNotFound.
func readKeyFile(dir, label string) (*keyFile, error) {
	data, err := readSmall(keyPath(dir, label))
	if errors.Is(err, os.ErrNotExist) {
		return nil, errorf("tpm: %w: %q", keystore.ErrNotFound, label)
	}
	if errors.Is(err, errTooLarge) {
		return nil, &KeyFileError{Label: label, Reason: "larger than any key file", Err: ErrCorruptKeyFile}
	}
	if err != nil {
		return nil, errorf("tpm: failed to read key file: %w", err)
	}
	kf, err := parseKeyFile(data)
	if err != nil {
		return nil, &KeyFileError{Label: label, Reason: err.Error(), Err: ErrCorruptKeyFile}
	}
	return kf, nil
}

var errTooLarge = errors.New("file too large")

// readSmall reads a file of at most maxKeyFile bytes.
func readSmall(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var buf [maxKeyFile + 1]byte
	n, err := io.ReadFull(f, buf[:])
	switch {
	case err == nil:
		return nil, errTooLarge
	case err == io.EOF || err == io.ErrUnexpectedEOF:
		return bytes.Clone(buf[:n]), nil
	}
	return nil, err
}

// fileHas reports whether the file at path exists and holds exactly want.
func fileHas(path string, want []byte) (bool, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	buf := make([]byte, len(want)+1)
	n, err := io.ReadFull(f, buf)
	switch {
	case err == nil:
		return false, nil // longer than want
	case err != io.EOF && err != io.ErrUnexpectedEOF:
		return false, err
	}
	return bytes.Equal(buf[:n], want), nil
}

// writeKeyFileExcl writes data as label's key file, atomically and only if
// no file of that name exists: the data goes to a temporary file that is
// synced and then hard-linked to its name (link fails if the name is
// taken, even against another process), and the directory is synced. On
// any error nothing is left behind.
func writeKeyFileExcl(dir, label string, data []byte) error {
	tmp, err := os.CreateTemp(dir, ".tmp-"+label+"-*")
	if err != nil {
		return errorf("tpm: failed to create key file: %w", err)
	}
	tmpName := tmp.Name()
	defer os.Remove(tmpName)
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return errorf("tpm: failed to create key file: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return errorf("tpm: failed to write key file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return errorf("tpm: failed to sync key file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return errorf("tpm: failed to write key file: %w", err)
	}
	final := keyPath(dir, label)
	if err := os.Link(tmpName, final); err != nil {
		if errors.Is(err, os.ErrExist) {
			return errorf("tpm: %w: %q", keystore.ErrExists, label)
		}
		return errorf("tpm: failed to install key file: %w", err)
	}
	if err := syncDir(dir); err != nil {
		os.Remove(final)
		syncDir(dir)
		return errorf("tpm: failed to install key file: %w", err)
	}
	return nil
}

// removeKeyFile removes label's key file and syncs the directory.
func removeKeyFile(dir, label string) error {
	if err := os.Remove(keyPath(dir, label)); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return errorf("tpm: %w: %q", keystore.ErrNotFound, label)
		}
		return errorf("tpm: failed to delete key file: %w", err)
	}
	if err := syncDir(dir); err != nil {
		return errorf("tpm: failed to sync key index: %w", err)
	}
	return nil
}

// listKeyFiles returns the labels of the key files in dir, in directory
// order. Names that are not valid labels are ignored.
func listKeyFiles(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, errorf("tpm: failed to list key index: %w", err)
	}
	var labels []string
	for _, e := range ents {
		label, ok := strings.CutSuffix(e.Name(), keyFileSuffix)
		if !ok || !e.Type().IsRegular() || keystore.ValidateLabel(label) != nil {
			continue
		}
		labels = append(labels, label)
	}
	return labels, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
