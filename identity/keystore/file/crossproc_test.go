package file

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ztmkit/ztm/identity/keystore"
)

// The cross-process test re-executes the test binary: the children run
// TestCrossProcessChild with these variables set.
const (
	envChildDir  = "ZTM_FILE_XPROC_DIR"
	envChildSync = "ZTM_FILE_XPROC_SYNC"
	envChildID   = "ZTM_FILE_XPROC_ID"

	xprocLabels = 6
	xprocRounds = 3
)

// xprocWork creates, signs with and deletes keys under shared labels,
// reporting each successful Create ("WIN") and Delete ("DEL"). Other
// processes do the same at the same time, so ErrExists and ErrNotFound are
// expected outcomes; anything else is a failure. It returns the last handle
// it got for each label.
func xprocWork(s *Store, report func(kind, label string)) (map[string]keystore.Key, error) {
	ctx := context.Background()
	handles := map[string]keystore.Key{}
	for round := range xprocRounds {
		for i := range xprocLabels {
			label := fmt.Sprintf("shared-%d", i)
			_, err := s.Create(ctx, keystore.CreateRequest{Label: label, Algorithm: keystore.ES256})
			switch {
			case err == nil:
				report("WIN", label)
			case !errors.Is(err, keystore.ErrExists):
				return nil, fmt.Errorf("Create(%s): %w", label, err)
			}
			k, err := s.Get(ctx, label)
			switch {
			case err == nil:
				handles[label] = k
				if err := signCheck(k); err != nil && !errors.Is(err, keystore.ErrNotFound) {
					return nil, fmt.Errorf("Sign(%s): %w", label, err)
				}
			case !errors.Is(err, keystore.ErrNotFound):
				return nil, fmt.Errorf("Get(%s): %w", label, err)
			}
			// Even labels are deleted in every round but the last.
			if i%2 == 0 && round < xprocRounds-1 {
				switch err := s.Delete(ctx, label); {
				case err == nil:
					report("DEL", label)
				case !errors.Is(err, keystore.ErrNotFound):
					return nil, fmt.Errorf("Delete(%s): %w", label, err)
				}
			}
		}
	}
	return handles, nil
}

func waitForFile(path string) error {
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
		if _, err := os.Stat(path); err == nil {
			return nil
		}
	}
	return errors.New("timed out waiting for " + path)
}

// TestCrossProcessChild is the child half of TestCrossProcess; run alone it
// only skips.
func TestCrossProcessChild(t *testing.T) {
	dir, syncDir, id := os.Getenv(envChildDir), os.Getenv(envChildSync), os.Getenv(envChildID)
	if dir == "" {
		t.Skip("helper process of TestCrossProcess")
	}
	s, err := Open(dir, testConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	os.WriteFile(filepath.Join(syncDir, "ready-"+id), nil, 0o600)
	if err := waitForFile(filepath.Join(syncDir, "go")); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	_, err = xprocWork(s, func(kind, label string) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Printf("XPROC %s %s\n", kind, label)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// Three processes (this one and two children) create, sign with and delete
// keys under the same labels at once: no Create is lost or doubled, keys
// deleted by another process stop signing, and the final directory matches
// the recorded history.
func TestCrossProcess(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("re-executes the test binary")
	}
	dir := filepath.Join(t.TempDir(), "keys")
	syncDir := t.TempDir()
	s := openTest(t, dir, testConfig())

	const children = 2
	var outs [children]bytes.Buffer
	var cmds []*exec.Cmd
	for i := range children {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrossProcessChild$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), envChildDir+"="+dir, envChildSync+"="+syncDir, fmt.Sprintf("%s=%d", envChildID, i))
		cmd.Stdout = &outs[i]
		cmd.Stderr = &outs[i]
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
	}
	for i := range children {
		if err := waitForFile(filepath.Join(syncDir, fmt.Sprintf("ready-%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(syncDir, "go"), nil, 0o600)

	wins, dels := map[string]int{}, map[string]int{}
	handles, err := xprocWork(s, func(kind, label string) {
		if kind == "WIN" {
			wins[label]++
		} else {
			dels[label]++
		}
	})
	if err != nil {
		t.Error(err)
	}
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("child %d: %v\n%s", i, err, outs[i].String())
		}
		sc := bufio.NewScanner(&outs[i])
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) != 3 || f[0] != "XPROC" {
				continue
			}
			if f[1] == "WIN" {
				wins[f[2]]++
			} else {
				dels[f[2]]++
			}
		}
	}

	ctx := context.Background()
	fresh := openTest(t, dir, testConfig())
	listed, err := fresh.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	totalWins, totalDels := 0, 0
	for i := range xprocLabels {
		label := fmt.Sprintf("shared-%d", i)
		totalWins += wins[label]
		totalDels += dels[label]
		exists := wins[label] - dels[label]
		want := 1
		if exists != want {
			t.Errorf("%s: %d creates and %d deletes succeeded, want exactly one more create than delete", label, wins[label], dels[label])
		}
		if i%2 == 0 && dels[label] < xprocRounds-1 {
			t.Errorf("%s: %d deletes succeeded, want at least %d", label, dels[label], xprocRounds-1)
		}
		k, err := fresh.Get(ctx, label)
		if err != nil {
			t.Errorf("Get(%s) in a fresh store: %v", label, err)
			continue
		}
		if err := signCheck(k); err != nil {
			t.Errorf("%s: %v", label, err)
		}
		// The handle this process got last signs only if it is the
		// surviving key.
		if h := handles[label]; h != nil {
			err := signCheck(h)
			if publicEqual(h.Public(), k.Public()) {
				if err != nil {
					t.Errorf("%s: handle to the surviving key: %v", label, err)
				}
			} else if !errors.Is(err, keystore.ErrNotFound) {
				t.Errorf("%s: handle to a deleted key: err = %v, want ErrNotFound", label, err)
			}
		}
	}
	if len(listed) != xprocLabels {
		t.Errorf("List = %v, want %d labels", listed, xprocLabels)
	}
	if names := dirNames(t, dir); len(names) != xprocLabels+1 {
		t.Errorf("directory holds %v (temporary files left?)", names)
	}
	t.Logf("%d creates and %d deletes succeeded across 3 processes", totalWins, totalDels)
}
