// Package tpmtest gives tests a real TPM 2.0: the Microsoft reference
// implementation, built into the test binary by
// github.com/google/go-tpm-tools/simulator (cgo; it links against OpenSSL's
// libcrypto, so building it needs the libssl-dev package), through [Open];
// and a swtpm process on loopback TCP through [StartSwtpm], for what the
// reference simulator lacks (RSA-3072) and for code that opens a TPM by
// address.
//
// # One simulator per process
//
// The simulator is a single C instance per process. [Open] waits for its
// turn, manufactures a fresh TPM (new seeds, empty NV, PCRs reset, nothing
// loaded) and hands the test a [*TPM]; t.Cleanup powers it off and passes
// the turn to the next test. Tests in one package therefore take turns:
// a test must not call Open while it already holds a TPM from Open (it would
// wait for itself), and t.Parallel gains nothing in TPM tests.
//
// # Concurrency
//
// A [*TPM] is safe for concurrent use: Send calls are serialized, so several
// stores, or a store and the test's own go-tpm code, may share it. The
// simulator has room for only 3 loaded objects, shared by everyone who uses
// it.
package tpmtest

import (
	"errors"
	"sync"
	"testing"

	"github.com/google/go-tpm-tools/simulator"
	"github.com/google/go-tpm/tpm2/transport"
	"github.com/google/go-tpm/tpmutil"
)

// ErrClosed is returned by [TPM.Send] after the test that opened the TPM has
// ended.
var ErrClosed = errors.New("tpmtest: simulator already released")

// TPM is a connection to the process's TPM 2.0 simulator, held by one test.
// It implements [transport.TPM] and is safe for concurrent use.
type TPM struct {
	mu  sync.Mutex
	sim *simulator.Simulator
}

var _ transport.TPM = (*TPM)(nil)

// Open waits until no other test holds the simulator, then returns a freshly
// manufactured TPM 2.0 on which TPM2_Startup(CLEAR) has run. The TPM is
// released when tb and its subtests end; it must not be used afterwards.
// If the simulator fails to start, Open fails tb with a message.
func Open(tb testing.TB) *TPM {
	tb.Helper()
	// simulator.Get blocks until the previous holder calls Close, and
	// manufactures a new TPM (fresh seeds and NV) for every holder.
	sim, err := simulator.Get()
	if err != nil {
		tb.Fatalf("tpmtest: start the TPM 2.0 simulator (go-tpm-tools, needs libssl-dev to build): %v", err)
	}
	t := &TPM{sim: sim}
	tb.Cleanup(func() {
		t.mu.Lock()
		defer t.mu.Unlock()
		if err := t.sim.Close(); err != nil {
			tb.Errorf("tpmtest: power off simulator: %v", err)
		}
		t.sim = nil
	})
	return t
}

// Send sends one TPM command and returns the TPM's response. TPM error
// codes are part of the response, not errors.
func (t *TPM) Send(cmd []byte) ([]byte, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.sim == nil {
		return nil, ErrClosed
	}
	return tpmutil.RunCommandRaw(t.sim, cmd)
}

// Reset power-cycles the TPM as a host reboot would: loaded objects and
// sessions are gone, PCRs return to their initial values, and the seeds and
// NV contents survive. TPM2_Startup(CLEAR) runs again.
func (t *TPM) Reset() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.sim == nil {
		return ErrClosed
	}
	return t.sim.Reset()
}
