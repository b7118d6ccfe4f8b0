package tpm

import (
	"context"
	"crypto"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"

	"github.com/ztmkit/ztm/identity/keystore"
	"github.com/ztmkit/ztm/internal/tpmtest"
)

// warningTPM passes commands to a real TPM, except that it answers the next
// `remaining` commands with code cc with the response code rc instead,
// as a busy TPM does. It counts the real responses carrying TPM warnings.
type warningTPM struct {
	transport.TPM
	mu        sync.Mutex
	cc        tpm2.TPMCC
	rc        tpm2.TPMRC
	remaining int
	injected  int
	seen      map[tpm2.TPMRC]int
}

func (w *warningTPM) Send(cmd []byte) ([]byte, error) {
	w.mu.Lock()
	if len(cmd) >= 10 && tpm2.TPMCC(binary.BigEndian.Uint32(cmd[6:10])) == w.cc && w.remaining != 0 {
		w.remaining--
		w.injected++
		w.mu.Unlock()
		rsp := make([]byte, 10)
		binary.BigEndian.PutUint16(rsp, uint16(tpm2.TPMSTNoSessions))
		binary.BigEndian.PutUint32(rsp[2:], 10)
		binary.BigEndian.PutUint32(rsp[6:], uint32(w.rc))
		return rsp, nil
	}
	w.mu.Unlock()
	rsp, err := w.TPM.Send(cmd)
	if err == nil && len(rsp) >= 10 {
		if rc := tpm2.TPMRC(binary.BigEndian.Uint32(rsp[6:10])); rc.IsWarning() {
			w.mu.Lock()
			if w.seen == nil {
				w.seen = make(map[tpm2.TPMRC]int)
			}
			w.seen[rc]++
			w.mu.Unlock()
		}
	}
	return rsp, err
}

func TestRetryOnWarnings(t *testing.T) {
	for _, rc := range []tpm2.TPMRC{tpm2.TPMRCRetry, tpm2.TPMRCYielded, tpm2.TPMRCTesting} {
		t.Run(fmt.Sprintf("%#x", uint32(rc)), func(t *testing.T) {
			w := &warningTPM{TPM: tpmtest.Open(t), cc: tpm2.TPMCCSign, rc: rc}
			s, err := New(context.Background(), w, Config{Dir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			k, err := s.Create(context.Background(), keystore.CreateRequest{Label: "k"})
			if err != nil {
				t.Fatal(err)
			}
			w.mu.Lock()
			w.remaining = 3
			w.mu.Unlock()
			if _, err := k.Sign(rand.Reader, make([]byte, 32), crypto.SHA256); err != nil {
				t.Fatalf("Sign through 3 warnings: %v", err)
			}
			if w.injected != 3 {
				t.Fatalf("%d warnings injected, want 3", w.injected)
			}
			// A TPM that never stops answering the warning: Sign gives
			// up with the TPM's code, after a bounded time.
			s.retries = 4
			w.mu.Lock()
			w.remaining = -1
			w.mu.Unlock()
			_, err = k.Sign(rand.Reader, make([]byte, 32), crypto.SHA256)
			if !errors.Is(err, rc) {
				t.Fatalf("Sign on a TPM that stays busy: err = %v, want %v", err, rc)
			}
		})
	}
}

func TestRetryStopsAtContext(t *testing.T) {
	w := &warningTPM{TPM: tpmtest.Open(t), cc: tpm2.TPMCCCreate, rc: tpm2.TPMRCRetry}
	s, err := New(context.Background(), w, Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	w.remaining = -1
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err = s.Create(ctx, keystore.CreateRequest{Label: "k"})
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, tpm2.TPMRCRetry) {
		t.Fatalf("Create on a busy TPM past its deadline: err = %v, want DeadlineExceeded and TPM_RC_RETRY", err)
	}
	if labels, _ := s.List(context.Background()); len(labels) != 0 {
		t.Fatalf("failed Create left %v", labels)
	}
}

// TestFreshSwtpmWarnings signs on a freshly started swtpm over TCP, whose
// transport (unlike go-tpm's device and simulator transports) does not
// retry by itself, and reports the warnings the TPM really sent.
func TestFreshSwtpmWarnings(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: starts swtpm")
	}
	sw := tpmtest.StartSwtpm(t)
	tt, err := dialMSSim(fmt.Sprintf("127.0.0.1:%d", sw.Port))
	if err != nil {
		t.Fatal(err)
	}
	defer tt.Close()
	w := &warningTPM{TPM: tt}
	s, err := New(context.Background(), w, Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, alg := range []keystore.Algorithm{keystore.ES256, keystore.ES384, keystore.PS256} {
		k, err := s.Create(context.Background(), keystore.CreateRequest{Label: alg.String(), Algorithm: alg})
		if err != nil {
			t.Fatal(err)
		}
		h := alg.Hash().New()
		if _, err := k.Sign(rand.Reader, h.Sum(nil), alg.SignerOpts()); err != nil {
			t.Fatalf("first %v Sign on a fresh swtpm: %v", alg, err)
		}
	}
	t.Logf("warnings from a fresh swtpm: %v", w.seen)
}

// slotWatcher passes commands to a real TPM and, after each, records how
// many transient objects are loaded.
type slotWatcher struct {
	transport.TPM
	max int
}

func (w *slotWatcher) Send(cmd []byte) ([]byte, error) {
	rsp, err := w.TPM.Send(cmd)
	if err != nil {
		return rsp, err
	}
	caps, cerr := tpm2.GetCapability{Capability: tpm2.TPMCapHandles, Property: uint32(tpm2.TPMHTTransient) << 24, PropertyCount: 16}.Execute(w.TPM)
	if cerr == nil {
		if h, err := caps.CapabilityData.Data.Handles(); err == nil {
			w.max = max(w.max, len(h.Handle))
		}
	}
	return rsp, err
}

// TestNeverMoreThanMaxLoaded checks that the store holds at most
// MaxLoaded transient objects at any time, as /dev/tpmrm0 requires (it
// fails a connection's fourth object with ENOMEM).
func TestNeverMoreThanMaxLoaded(t *testing.T) {
	for _, maxLoaded := range []int{2, 3} {
		t.Run(fmt.Sprint(maxLoaded), func(t *testing.T) {
			w := &slotWatcher{TPM: tpmtest.Open(t)}
			ctx := context.Background()
			s, err := New(ctx, w, Config{Dir: t.TempDir(), MaxLoaded: maxLoaded})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			var keys []keystore.Key
			for i := range 4 {
				k, err := s.Create(ctx, keystore.CreateRequest{Label: fmt.Sprint("k", i)})
				if err != nil {
					t.Fatal(err)
				}
				keys = append(keys, k)
			}
			for range 2 {
				for _, k := range keys {
					if _, err := k.Sign(rand.Reader, make([]byte, 32), crypto.SHA256); err != nil {
						t.Fatal(err)
					}
				}
			}
			if _, err := s.EndorsementKey(ctx, EKECC); err != nil {
				t.Fatal(err)
			}
			if _, err := s.CreateAttestationKey(ctx, "ak"); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Quote(ctx, "ak", []byte("nonce"), []int{0}); err != nil {
				t.Fatal(err)
			}
			if w.max > maxLoaded {
				t.Fatalf("%d transient objects loaded at once, MaxLoaded is %d", w.max, maxLoaded)
			}
			if w.max < 2 {
				t.Fatalf("at most %d objects loaded: the watcher sees nothing", w.max)
			}
			s.Close()
			caps, err := tpm2.GetCapability{Capability: tpm2.TPMCapHandles, Property: uint32(tpm2.TPMHTTransient) << 24, PropertyCount: 16}.Execute(w.TPM)
			if err != nil {
				t.Fatal(err)
			}
			if h, _ := caps.CapabilityData.Data.Handles(); len(h.Handle) != 0 {
				t.Fatalf("Close left %d objects loaded", len(h.Handle))
			}
		})
	}
}
