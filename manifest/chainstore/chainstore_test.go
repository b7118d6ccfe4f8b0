package chainstore_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
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
	"time"

	"github.com/ztmkit/ztm/manifest"
	"github.com/ztmkit/ztm/manifest/chainstore"
)

var t0 = time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)

type line struct {
	key    *ecdsa.PrivateKey
	signer *manifest.StepSigner
}

func newLine(t testing.TB) *line {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := manifest.NewStepSigner(k, manifest.SignOptions{Issuer: "station-1"})
	if err != nil {
		t.Fatal(err)
	}
	return &line{key: k, signer: s}
}

// next signs the step after prev (nil for the first) for subject.
func (l *line) next(t testing.TB, subject []byte, lot, name string, prev *manifest.SignedStep) *manifest.SignedStep {
	t.Helper()
	s := &manifest.Step{Name: name, Subject: subject, Time: t0, Lot: lot}
	if prev != nil {
		s.Sequence = prev.Step.Sequence + 1
		d := manifest.Sum(manifest.SHA256, prev.Raw)
		s.Prev = &d
		s.Time = prev.Step.Time.Add(time.Minute)
	}
	ss, err := l.signer.Sign(rand.Reader, s)
	if err != nil {
		t.Fatal(err)
	}
	return ss
}

func open(t testing.TB, path string) *chainstore.Store {
	t.Helper()
	s, err := chainstore.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	return s
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
		prev = l.next(t, dev, "LOT-1", name, prev)
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
	pol := &manifest.Policy{Name: "p", Keys: []manifest.PolicyKey{{Name: "s1", Public: l.key.Public()}},
		Steps: []manifest.StepRule{{Name: "die-sort", Signers: []string{"s1"}}, {Name: "final-test", Signers: []string{"s1"}}, {Name: "ship", Signers: []string{"s1"}}}}
	if err := manifest.Verify(ctx, got, pol, &manifest.VerifyOptions{CurrentTime: t0}).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Chain(ctx, []byte{0x02}); !errors.Is(err, chainstore.ErrNotFound) {
		t.Fatalf("unknown device: %v", err)
	}
}

func TestAppendRefuses(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := open(t, filepath.Join(t.TempDir(), "chains.db"))
	defer st.Close()
	l := newLine(t)
	dev := []byte{0x01, 0x01}
	s0 := l.next(t, dev, "L", "die-sort", nil)
	s1 := l.next(t, dev, "L", "final-test", s0)
	s2 := l.next(t, dev, "L", "ship", s1)
	for _, s := range []*manifest.SignedStep{s0, s1} {
		if _, err := st.Append(ctx, s.Raw); err != nil {
			t.Fatal(err)
		}
	}
	other := l.next(t, []byte{0x01, 0x02}, "L", "die-sort", nil)
	fork := l.next(t, dev, "L", "rework", s0) // a second step 1
	relink := l.next(t, dev, "L", "ship", fork)
	// A first step with sequence 1 (it names a predecessor that is not stored).
	orphan := l.next(t, []byte{0x01, 0x03}, "L", "final-test", other)
	for _, tc := range []struct {
		name string
		raw  []byte
		want error
	}{
		{"fork", fork.Raw, chainstore.ErrFork},
		{"duplicate", s1.Raw, chainstore.ErrFork},
		{"gap", l.next(t, dev, "L", "pack", s2).Raw, chainstore.ErrOutOfOrder},
		{"broken link", relink.Raw, chainstore.ErrBrokenLink},
		{"first step not 0", orphan.Raw, chainstore.ErrOutOfOrder},
		{"malformed", s2.Raw[:len(s2.Raw)-1], manifest.ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := st.Append(ctx, tc.raw); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	var ae *chainstore.AppendError
	if _, err := st.Append(ctx, fork.Raw); !errors.As(err, &ae) || ae.Sequence != 1 || ae.Stored != 2 {
		t.Fatalf("AppendError: %v", err)
	}
	c, err := st.Chain(ctx, dev)
	if err != nil || len(c) != 2 || !bytes.Equal(c[1].Raw, s1.Raw) {
		t.Fatalf("refusals changed the chain: %d %v", len(c), err)
	}
	if _, err := st.Append(ctx, s2.Raw); err != nil {
		t.Fatalf("the right next step: %v", err)
	}
}

func TestConcurrentAndLots(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := open(t, filepath.Join(t.TempDir(), "chains.db"))
	defer st.Close()
	l := newLine(t)
	const devices, steps = 8, 5
	var wg sync.WaitGroup
	errs := make(chan error, devices+8)
	for d := range devices {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dev := []byte{0x01, byte(d)}
			lot := "LOT-A"
			if d%2 == 1 {
				lot = "LOT-B"
			}
			var prev *manifest.SignedStep
			for i := range steps {
				prev = l.next(t, dev, lot, fmt.Sprintf("step-%d", i), prev)
				if _, err := st.Append(ctx, prev.Raw); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	// Racing appends of different steps 0 for one device: exactly one wins.
	race := []byte{0x01, 0xff}
	var wins atomic.Int32
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := l.next(t, race, "LOT-A", fmt.Sprintf("candidate-%d", i), nil)
			_, err := st.Append(ctx, s.Raw)
			switch {
			case err == nil:
				wins.Add(1)
			case !errors.Is(err, chainstore.ErrFork):
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if wins.Load() != 1 {
		t.Fatalf("%d racing first steps stored, want 1", wins.Load())
	}
	a, err := st.Devices(ctx, "LOT-A")
	if err != nil {
		t.Fatal(err)
	}
	if len(a) != devices/2+1 {
		t.Fatalf("LOT-A has %d devices, want %d", len(a), devices/2+1)
	}
	// A lot manifest over the store's latest steps; each receipt verifies
	// against the device's latest step read back from the store.
	lot, _ := manifest.NewLot("LOT-B", manifest.LotOptions{KeepProofs: true})
	var subjects [][]byte
	if err := st.Lot(ctx, "LOT-B", func(subject, latest []byte) error {
		subjects = append(subjects, subject)
		_, err := lot.Add(latest)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	m, err := lot.Sign(rand.Reader, l.signer, t0)
	if err != nil {
		t.Fatal(err)
	}
	for i, sub := range subjects {
		c, err := st.Chain(ctx, sub)
		if err != nil {
			t.Fatal(err)
		}
		rc, err := m.Receipt(uint64(i))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := manifest.VerifyReceipt(rc, c[len(c)-1].Raw, l.key.Public()); err != nil {
			t.Fatal(err)
		}
	}
	if len(subjects) != devices/2 {
		t.Fatalf("LOT-B: %d devices", len(subjects))
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
	s0 := l.next(t, dev, "L", "die-sort", nil)
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
		x := l.next(t, dev, "L", "x", prev)
		y := l.next(t, dev, "L", "y", prev)
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

func TestClosed(t *testing.T) {
	t.Parallel()
	st := open(t, filepath.Join(t.TempDir(), "chains.db"))
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Chain(context.Background(), []byte{1}); !errors.Is(err, chainstore.ErrClosed) {
		t.Fatal(err)
	}
	if err := st.Close(); !errors.Is(err, chainstore.ErrClosed) {
		t.Fatal(err)
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
		prev = l.next(t, []byte{0x01, 0xc0}, "L", "step", prev)
		if _, err := st.Append(context.Background(), prev.Raw); err != nil {
			t.Fatal(err)
		}
		fmt.Printf("stored %d\n", i+1)
	}
}

func TestAppendAllAtomicAndLast(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := open(t, filepath.Join(t.TempDir(), "chains.db"))
	defer st.Close()
	l := newLine(t)
	dev := []byte{0x01, 0x07}
	if _, err := st.Last(ctx, dev); !errors.Is(err, chainstore.ErrNotFound) {
		t.Fatalf("Last of an unknown device: %v", err)
	}
	s0 := l.next(t, dev, "L", "die-sort", nil)
	s1 := l.next(t, dev, "L", "key-generation", s0)
	s2 := l.next(t, dev, "L", "enrollment", s1)
	if _, err := st.AppendAll(ctx); err == nil {
		t.Fatal("an empty append was accepted")
	}
	// The second step does not follow the first: neither is stored.
	var ae *chainstore.AppendError
	if _, err := st.AppendAll(ctx, s0.Raw, s2.Raw); !errors.As(err, &ae) || !errors.Is(err, chainstore.ErrOutOfOrder) || ae.Sequence != 2 {
		t.Fatalf("gap inside one append: %v", err)
	}
	if _, err := st.Last(ctx, dev); !errors.Is(err, chainstore.ErrNotFound) {
		t.Fatalf("a refused append stored a step: %v", err)
	}
	// Steps of two devices in one append are refused before the writer.
	other := l.next(t, []byte{0x01, 0x08}, "L", "die-sort", nil)
	if _, err := st.AppendAll(ctx, s0.Raw, other.Raw); err == nil {
		t.Fatal("steps of two devices were appended together")
	}
	got, err := st.AppendAll(ctx, s0.Raw, s1.Raw, s2.Raw)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || !bytes.Equal(got[2].Raw, s2.Raw) {
		t.Fatalf("AppendAll returned %d steps", len(got))
	}
	last, err := st.Last(ctx, dev)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(last.Raw, s2.Raw) || last.Step.Sequence != 2 {
		t.Fatalf("Last is step %d", last.Step.Sequence)
	}
	// A fork of a stored step inside a longer append refuses it all.
	fork := l.next(t, dev, "L", "rework", s1)
	after := l.next(t, dev, "L", "ship", fork)
	if _, err := st.AppendAll(ctx, fork.Raw, after.Raw); !errors.Is(err, chainstore.ErrFork) {
		t.Fatalf("fork: %v", err)
	}
	chain, err := st.Chain(ctx, dev)
	if err != nil || len(chain) != 3 {
		t.Fatalf("chain after refusals: %d steps, %v", len(chain), err)
	}
}
