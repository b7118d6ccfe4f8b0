package sqlite_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/ztmkit/ztm/ca"
	"github.com/ztmkit/ztm/ca/ledger/sqlite"
)

// TestBackupRestore takes an online backup while certificates are being
// issued, restores it verified against the newest checkpoint, and refuses
// to restore a backup older than the newest checkpoint or one that was
// edited.
func TestBackupRestore(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	for i := range 3 {
		f.mustIssue(t, fmt.Sprintf("device %d", i), nil)
	}
	if _, err := f.auth.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	backup := filepath.Join(dir, "backup.db")
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := f.issue(t, fmt.Sprintf("busy %d-%d", g, i), nil); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	err := f.l.Backup(ctx, backup)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if err := f.l.Backup(ctx, backup); err == nil {
		t.Fatal("Backup overwrote a file")
	}

	restored := filepath.Join(dir, "restored.db")
	head, err := sqlite.Restore(ctx, backup, restored, f.opts())
	if err != nil {
		t.Fatal(err)
	}
	if head.Seq < 3 {
		t.Fatalf("restored head %d", head.Seq)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".restored.db*")); len(left) > 0 {
		t.Fatalf("Restore left %v", left)
	}
	if _, err := sqlite.Restore(ctx, backup, restored, f.opts()); err == nil {
		t.Fatal("Restore overwrote a ledger")
	}
	if _, err := sqlite.Restore(ctx, backup, filepath.Join(dir, "x.db"), sqlite.Options{}); err == nil {
		t.Fatal("Restore without checkpoints")
	}
	l, err := sqlite.Open(ctx, restored, f.opts())
	if err != nil {
		t.Fatal(err)
	}
	l.Close()

	// A checkpoint past the backup: restoring it would lose records.
	f.mustIssue(t, "after the backup", nil)
	if _, err := f.auth.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	behind := filepath.Join(dir, "behind.db")
	var ce *ca.CheckpointError
	if _, err := sqlite.Restore(ctx, backup, behind, f.opts()); !errors.As(err, &ce) || ce.Ledger.Seq != head.Seq {
		t.Fatalf("Restore of a backup behind the checkpoint: %v", err)
	}
	if _, err := os.Stat(behind); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("refused restore left a file")
	}

	// An edited backup.
	fresh := filepath.Join(dir, "fresh.db")
	if err := f.l.Backup(ctx, fresh); err != nil {
		t.Fatal(err)
	}
	db := rawDB(t, fresh)
	if _, err := db.Exec("UPDATE records SET requester = 'x' WHERE seq = 2"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, err := sqlite.Restore(ctx, fresh, filepath.Join(dir, "edited.db"), f.opts()); !errors.Is(err, ca.ErrLedgerCorrupt) {
		t.Fatalf("Restore of an edited backup: %v", err)
	}
}
