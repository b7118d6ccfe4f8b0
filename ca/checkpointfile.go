package ca

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
)

// CheckpointFile is a [CheckpointStore] in one file, replaced atomically
// (written beside it, synced, renamed over it, directory synced) by every
// save, so that a crash leaves the previous or the new checkpoint, never
// half of one. Put it where the ledger's writers cannot write: another
// disk or host, a directory of another user. It is safe for concurrent
// use within one process.
type CheckpointFile struct {
	path string
	mu   sync.Mutex
}

var _ CheckpointStore = (*CheckpointFile)(nil)

// NewCheckpointFile returns the store in the file at path. The file is
// created by the first save.
func NewCheckpointFile(path string) *CheckpointFile { return &CheckpointFile{path: path} }

// LatestCheckpoint implements CheckpointSource: it returns the file's
// content, or ErrNoCheckpoint if the file does not exist.
func (f *CheckpointFile) LatestCheckpoint(ctx context.Context) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	raw, err := os.ReadFile(f.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNoCheckpoint
	}
	if err != nil {
		return nil, fmt.Errorf("ca: failed to read checkpoint file: %w", err)
	}
	if len(raw) > maxCheckpointSize {
		return nil, &CheckpointFormatError{Detail: "checkpoint file too large"}
	}
	return raw, nil
}

// SaveCheckpoint implements CheckpointStore.
func (f *CheckpointFile) SaveCheckpoint(ctx context.Context, raw []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	dir := filepath.Dir(f.path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(f.path)+".*")
	if err != nil {
		return fmt.Errorf("ca: failed to save checkpoint: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(raw)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), f.path)
	}
	if err == nil {
		err = syncDir(dir)
	}
	if err != nil {
		return fmt.Errorf("ca: failed to save checkpoint: %w", err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
