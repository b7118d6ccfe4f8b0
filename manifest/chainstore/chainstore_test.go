package chainstore_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ztmkit/ztm/manifest"
	"github.com/ztmkit/ztm/manifest/chainstore"
	"github.com/ztmkit/ztm/manifest/internal/steptest"
)

// newLine signs steps, as a station does.
func newLine(t testing.TB) *steptest.Line { return steptest.NewLine(t) }

func open(t testing.TB, path string) *chainstore.Store {
	t.Helper()
	s, err := chainstore.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestConformance runs the behaviours every step store shares (order,
// refusals, all-or-none appends, concurrency, lots, copies, Close); the
// tests below are chainstore's own: the file, durability, a crash, two
// Stores on one file.
func TestConformance(t *testing.T) {
	t.Parallel()
	steptest.Run(t, func(t *testing.T) steptest.Store {
		return open(t, filepath.Join(t.TempDir(), "chains.db"))
	}, chainstore.ErrClosed)
}

func TestAppendReadVerify(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "line 2 #1")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "chains?.db")
	st := open(t, path)
	l := newLine(t)
	dev := []byte{0x01, 0xaa, 0xbb}
	var want manifest.Chain
	var prev *manifest.SignedStep
	for _, name := range []string{"die-sort", "final-test", "ship"} {
		prev = l.Next(t, dev, "LOT-1", name, prev)
		if _, err := st.Append(ctx, prev.Raw); err != nil {
			t.Fatal(err)
		}
		want = append(want, prev)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	// The database is the file named, not another one.
	if fi, err := os.Stat(path); err != nil || fi.Size() == 0 {
		t.Fatalf("database file %q: %v", path, err)
	}
	// Reopened, the chain is there byte for byte and verifies.
	st = open(t, path)
	defer st.Close()
	got, err := st.Chain(ctx, dev)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("%d steps, want %d", len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i].Raw, want[i].Raw) {
			t.Fatalf("step %d changed in the store", i)
		}
	}
	pol := &manifest.Policy{Name: "p", Keys: []manifest.PolicyKey{{Name: "s1", Public: l.Key.Public()}},
		Steps: []manifest.StepRule{{Name: "die-sort", Signers: []string{"s1"}}, {Name: "final-test", Signers: []string{"s1"}}, {Name: "ship", Signers: []string{"s1"}}}}
	if err := manifest.Verify(ctx, got, pol, &manifest.VerifyOptions{CurrentTime: steptest.T0}).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Chain(ctx, []byte{0x02}); !errors.Is(err, chainstore.ErrNotFound) {
		t.Fatalf("unknown device: %v", err)
	}
}

// TestTwoStoresOneFile races forks through two Stores (two connections)
// on one database file: SQLite's write lock lets exactly one through.
func TestTwoStoresOneFile(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "chains.db")
	a, b := open(t, path), open(t, path)
	defer a.Close()
	defer b.Close()
	l := newLine(t)
	dev := []byte{0x01, 0x77}
	s0 := l.Next(t, dev, "L", "die-sort", nil)
	if _, err := a.Append(ctx, s0.Raw); err != nil {
		t.Fatal(err)
	}
	for round := range 10 {
		prev := s0
		if round > 0 {
			c, err := a.Chain(ctx, dev)
			if err != nil {
				t.Fatal(err)
			}
			prev = c[len(c)-1]
		}
		x := l.Next(t, dev, "L", "x", prev)
		y := l.Next(t, dev, "L", "y", prev)
		var wg sync.WaitGroup
		var wins atomic.Int32
		for i, st := range []*chainstore.Store{a, b} {
			raw := []*manifest.SignedStep{x, y}[i].Raw
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := st.Append(ctx, raw)
				if err == nil {
					wins.Add(1)
				} else if !errors.Is(err, chainstore.ErrFork) {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if wins.Load() != 1 {
			t.Fatalf("round %d: %d of two rival steps stored", round, wins.Load())
		}
	}
	c, err := b.Chain(ctx, dev)
	if err != nil || len(c) != 11 {
		t.Fatalf("%d steps, %v", len(c), err)
	}
}

// TestCrash kills a process appending steps (SIGKILL, no chance to
// flush) and checks that every step it reported stored is there, linked.
func TestCrash(t *testing.T) {
	t.Parallel()
	if os.Getenv("ZTM_CHAINSTORE_CRASH_CHILD") != "" {
		crashChild(t)
		return
	}
	path := filepath.Join(t.TempDir(), "chains.db")
	cmd := exec.Command(os.Args[0], "-test.run", "^TestCrash$", "-test.count=1")
	cmd.Env = append(os.Environ(), "ZTM_CHAINSTORE_CRASH_CHILD="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := 0
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if n, ok := strings.CutPrefix(sc.Text(), "stored "); ok {
			acked, _ = strconv.Atoi(n)
			if acked >= 40 {
				break
			}
		}
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	if acked < 40 {
		t.Fatalf("child reported only %d stored steps", acked)
	}
	st := open(t, path)
	defer st.Close()
	c, err := st.Chain(context.Background(), []byte{0x01, 0xc0})
	if err != nil {
		t.Fatal(err)
	}
	if len(c) < acked {
		t.Fatalf("%d steps after the crash, %d were acknowledged", len(c), acked)
	}
	for i := 1; i < len(c); i++ {
		if c[i].Step.Sequence != uint64(i) || !c[i].Step.Prev.Matches(c[i-1].Raw) {
			t.Fatalf("step %d does not link", i)
		}
	}
}

func crashChild(t *testing.T) {
	path := os.Getenv("ZTM_CHAINSTORE_CRASH_CHILD")
	st := open(t, path)
	l := newLine(t)
	var prev *manifest.SignedStep
	for i := 0; ; i++ {
		prev = l.Next(t, []byte{0x01, 0xc0}, "L", "step", prev)
		if _, err := st.Append(context.Background(), prev.Raw); err != nil {
			t.Fatal(err)
		}
		fmt.Printf("stored %d\n", i+1)
	}
}
