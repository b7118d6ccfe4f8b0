package file

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
)

// lock takes the directory's advisory lock, flock(2) on <dir>/.lock, shared
// (syscall.LOCK_SH) or exclusive (syscall.LOCK_EX), waiting until ctx is
// done. Each call opens the lock file anew: flock locks belong to an open
// file description, so goroutines sharing one descriptor would not exclude
// each other.
func (s *Store) lock(ctx context.Context, how int) (unlock func(), err error) {
	f, err := os.OpenFile(s.lockPath, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("file: cannot open lock file: %w", err)
	}
	fd := int(f.Fd())
	wait := 100 * time.Microsecond
	for {
		err := syscall.Flock(fd, how|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("file: cannot lock key directory: %w", err)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			f.Close()
			return nil, ctx.Err()
		case <-t.C:
		}
		wait = min(2*wait, 10*time.Millisecond)
	}
	return func() {
		syscall.Flock(fd, syscall.LOCK_UN)
		f.Close()
	}, nil
}

// syncDir flushes a directory's entries to stable storage, so that a
// created, renamed or removed name survives a crash.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("file: cannot sync key directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("file: cannot sync key directory: %w", err)
	}
	return nil
}
