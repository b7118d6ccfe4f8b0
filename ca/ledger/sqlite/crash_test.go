package sqlite_test

import (
	"bufio"
	"context"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/ztmkit/ztm/ca"
	"github.com/ztmkit/ztm/ca/ledger/sqlite"
	"github.com/ztmkit/ztm/internal/testpki"
)

// The crash test is an Authority's over this ledger (it was in package ca,
// which tests the CA's logic over a ledger in memory): certificates a CA
// reported issued survive a SIGKILL of its process.

const crashEnv = "ZTM_CA_CRASH_LEDGER"

// TestCrashChild is the child half of TestCrashSafety: it issues
// certificates from several goroutines against the ledger named by
// $ZTM_CA_CRASH_LEDGER and prints "issued <serial hex>" as soon as each
// Issue returns, until it is killed.
func TestCrashChild(t *testing.T) {
	path := os.Getenv(crashEnv)
	if path == "" {
		t.Skip("child process of TestCrashSafety only")
	}
	ctx := context.Background()
	p := testpki.New(t, testpki.Config{})
	l, err := sqlite.Open(ctx, path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	auth := p.Authority(t, l, nil)
	key := deviceKey(t)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				c, err := auth.Issue(ctx, &ca.Request{CSR: testpki.DeviceCSR(t, key, testpki.NewDeviceSerial("CRASH")), Profile: "idevid", Requester: "crash"})
				if err != nil {
					fmt.Fprintln(os.Stderr, "issue:", err)
					os.Exit(3)
				}
				mu.Lock()
				fmt.Fprintf(os.Stdout, "issued %x\n", c.SerialNumber)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
}

func TestCrashSafety(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("spawns child processes")
	}
	path := filepath.Join(t.TempDir(), "ledger.db")
	reported := map[string]bool{}
	for round, killAfter := range []int{50, 150, 300} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashEnv+"="+path)
		cmd.Stderr = os.Stderr
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(stdout)
		n, killed := 0, false
		for sc.Scan() {
			serial, ok := strings.CutPrefix(sc.Text(), "issued ")
			if !ok {
				continue
			}
			if reported[serial] {
				t.Fatalf("child reported serial %s twice", serial)
			}
			reported[serial] = true
			n++
			if n == killAfter && !killed {
				// Kill mid-run: appends are in flight in the writer.
				if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
					t.Fatal(err)
				}
				killed = true
			}
		}
		err = cmd.Wait()
		if !killed {
			t.Fatalf("round %d: child ended after %d certificates before the kill: %v", round, n, err)
		}
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
			t.Fatalf("round %d: child did not die of SIGKILL: %v", round, err)
		}

		ctx := context.Background()
		l, err := sqlite.Open(ctx, path, sqlite.Options{})
		if err != nil {
			t.Fatalf("round %d: reopen: %v", round, err)
		}
		head, err := l.Verify(ctx)
		if err != nil {
			t.Fatalf("round %d: chain: %v", round, err)
		}
		for s := range reported {
			serial, _ := new(big.Int).SetString(s, 16)
			if _, err := l.Lookup(ctx, serial); err != nil {
				t.Fatalf("round %d: reported serial %s not recorded: %v", round, s, err)
			}
		}
		if head.Seq < uint64(len(reported)) {
			t.Fatalf("round %d: %d records for %d reported certificates", round, head.Seq, len(reported))
		}
		t.Logf("round %d: %d reported, %d recorded (killed after %d)", round, len(reported), head.Seq, killAfter)
		l.Close()
	}
}
