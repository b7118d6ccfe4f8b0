package tpm_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/ztmkit/ztm/identity/keystore"
	"github.com/ztmkit/ztm/identity/keystore/keystoretest"
	"github.com/ztmkit/ztm/identity/keystore/tpm"
)

// swtpmProc is a swtpm that a test can stop and start again on the same
// ports and state, as a TPM simulator restarted under a running store.
type swtpmProc struct {
	bin, state string
	port, ctrl int
	cmd        *exec.Cmd
	done       chan error
}

func (p *swtpmProc) start(t *testing.T) {
	t.Helper()
	p.cmd = exec.Command(p.bin, "socket", "--tpm2",
		"--server", "type=tcp,bindaddr=127.0.0.1,port="+strconv.Itoa(p.port),
		"--ctrl", "type=tcp,bindaddr=127.0.0.1,port="+strconv.Itoa(p.ctrl),
		"--tpmstate", "dir="+p.state,
		"--flags", "not-need-init,startup-clear")
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p.done = make(chan error, 1)
	go func(cmd *exec.Cmd, done chan error) { done <- cmd.Wait() }(p.cmd, p.done)
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p.ctrl)), time.Second)
		if err == nil {
			c.Close()
			return
		}
		select {
		case err := <-p.done:
			t.Fatalf("swtpm exited: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("swtpm not listening: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (p *swtpmProc) stop() {
	if p.cmd != nil {
		p.cmd.Process.Kill()
		<-p.done
		p.cmd = nil
	}
}

// A store opened by URI on swtpm survives swtpm restarting under it (the
// connection breaks: EOF, broken pipe): the next operation reopens the
// connection once and succeeds. While swtpm is down, operations fail with
// an error, and the next one after it is back works.
func TestReconnectAfterSwtpmRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: restarts swtpm")
	}
	bin, err := exec.LookPath("swtpm")
	if err != nil {
		t.Fatal("swtpm is missing: install it with `apt-get install swtpm` (or run scripts/install-deps.sh)")
	}
	p := &swtpmProc{bin: bin, state: t.TempDir(), port: freePort(t), ctrl: freePort(t)}
	p.start(t)
	t.Cleanup(p.stop)
	ctx := context.Background()
	s, err := keystore.Open(ctx, fmt.Sprintf("tpm:swtpm?host=127.0.0.1&port=%d&dir=%s", p.port, t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	k, err := s.Create(ctx, keystore.CreateRequest{Label: "jig"})
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256([]byte("restart"))
	sign := func() error {
		sig, err := k.Sign(rand.Reader, digest[:], crypto.SHA256)
		if err == nil && !ecdsa.VerifyASN1(k.Public().(*ecdsa.PublicKey), digest[:], sig) {
			t.Fatal("bad signature")
		}
		return err
	}
	if err := sign(); err != nil {
		t.Fatal(err)
	}

	ts := s.(*tpm.Store)
	if _, err := ts.CreateAttestationKey(ctx, "ak"); err != nil {
		t.Fatal(err)
	}
	nonce := []byte("a fresh nonce")
	// Each operation is the first after a restart once.
	for _, op := range []struct {
		name string
		run  func() error
	}{
		{"Sign", sign},
		{"Quote", func() error { _, err := ts.Quote(ctx, "ak", nonce, []int{0, 7}); return err }},
		{"EndorsementKey", func() error { _, err := ts.EndorsementKey(ctx, tpm.EKECC); return err }},
	} {
		p.stop()
		p.start(t)
		if err := op.run(); err != nil {
			t.Fatalf("%s after swtpm restarted: %v", op.name, err)
		}
	}
	if _, err := ts.EndorsementCertificate(ctx, tpm.EKECC); err != nil && !errors.Is(err, tpm.ErrNoEKCertificate) {
		t.Fatalf("EndorsementCertificate: %v", err)
	}
	p.stop()
	p.start(t)
	if _, err := ts.EndorsementCertificate(ctx, tpm.EKECC); err != nil && !errors.Is(err, tpm.ErrNoEKCertificate) {
		t.Fatalf("EndorsementCertificate after swtpm restarted: %v", err)
	}
	if _, err := s.Create(ctx, keystore.CreateRequest{Label: "after-restart"}); err != nil {
		t.Fatalf("Create after the reconnect: %v", err)
	}

	p.stop()
	err = sign()
	if err == nil {
		t.Fatal("Sign succeeded with swtpm stopped")
	}
	keystoretest.CheckErrorMessage(t, err)
	_, err = s.Create(ctx, keystore.CreateRequest{Label: "while-down"})
	if err == nil {
		t.Fatal("Create succeeded with swtpm stopped")
	}
	keystoretest.CheckErrorMessage(t, err)
	p.start(t)
	if err := sign(); err != nil {
		t.Fatalf("Sign after swtpm came back: %v", err)
	}
}
