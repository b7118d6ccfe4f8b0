// Package sqlitefile checks the part of an SQLite file's header that
// SQLite reads without complaint but that changes how it opens the file:
// the file format versions. The module's three SQLite stores (the CA
// ledger in ca/ledger/sqlite, the step store in manifest/chainstore and
// the EST client's queue) call it before they open a file, so that a
// damaged header is refused at Open rather than at the first write. It
// imports no SQLite driver and is internal to the module.
package sqlitefile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// magic begins every SQLite 3 database file.
const magic = "SQLite format 3\x00"

// VersionError says that a file's header names file format versions
// SQLite would not open for writing.
type VersionError struct {
	// Write and Read are header bytes 18 and 19: 1 for a rollback
	// journal, 2 for WAL.
	Write, Read byte
}

func (e *VersionError) Error() string {
	return fmt.Sprintf("file format write/read versions %d/%d, want 1 or 2", e.Write, e.Read)
}

// CheckHeader checks the file format versions in the header of the SQLite
// file at path (bytes 18 and 19: 1 for a rollback journal, 2 for WAL),
// which PRAGMA integrity_check does not read. Any other write version
// makes SQLite open the file read-only, and any other read version makes
// it refuse the file, so a store that opened it would fail at its first
// write, not at Open. It returns a *VersionError for such a file, an
// error from the file system if the file cannot be read, and nil for a
// missing or new file (shorter than a header) or one that is not an
// SQLite file, which are left to SQLite. It only reads.
func CheckHeader(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	var h [100]byte
	if _, err := io.ReadFull(f, h[:]); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil
		}
		return err
	}
	if string(h[:len(magic)]) != magic {
		return nil
	}
	if w, r := h[18], h[19]; (w != 1 && w != 2) || (r != 1 && r != 2) {
		return &VersionError{Write: w, Read: r}
	}
	return nil
}
