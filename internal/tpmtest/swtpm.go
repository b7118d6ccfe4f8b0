package tpmtest

import (
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"testing"
	"time"
)

// Swtpm is a swtpm process (libtpms, the TPM behind QEMU's vTPM) serving
// TPM 2.0 on loopback TCP ports with the Microsoft simulator protocol, as
// started by [StartSwtpm]. Unlike the built-in simulator it supports
// RSA-3072. It accepts one connection at a time.
type Swtpm struct {
	// Port is the TPM command port on 127.0.0.1.
	Port int
	// CtrlPort is the control (platform) port on 127.0.0.1.
	CtrlPort int
}

// StartSwtpm starts a fresh swtpm (empty state in a temporary directory)
// on two free 127.0.0.1 ports, with TPM2_Startup already done, and stops it
// when tb ends. It fails tb, naming the Debian package to install, if
// swtpm is not installed.
func StartSwtpm(tb testing.TB) *Swtpm {
	tb.Helper()
	bin, err := exec.LookPath("swtpm")
	if err != nil {
		tb.Fatalf("tpmtest: swtpm not found in PATH: install it (Debian/Ubuntu package \"swtpm\", or run scripts/install-deps.sh): %v", err)
	}
	var lastErr error
	for range 5 {
		port, ctrl := freePort(tb), freePort(tb)
		if port == ctrl {
			continue
		}
		state := tb.TempDir()
		cmd := exec.Command(bin, "socket", "--tpm2",
			"--server", "type=tcp,bindaddr=127.0.0.1,port="+strconv.Itoa(port),
			"--ctrl", "type=tcp,bindaddr=127.0.0.1,port="+strconv.Itoa(ctrl),
			"--tpmstate", "dir="+state,
			"--flags", "not-need-init,startup-clear")
		if err := cmd.Start(); err != nil {
			tb.Fatalf("tpmtest: start swtpm: %v", err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		if lastErr = waitListening(ctrl, done); lastErr != nil {
			cmd.Process.Kill()
			<-done
			continue
		}
		tb.Cleanup(func() {
			cmd.Process.Kill()
			<-done
		})
		return &Swtpm{Port: port, CtrlPort: ctrl}
	}
	tb.Fatalf("tpmtest: swtpm did not start: %v", lastErr)
	return nil
}

// freePort returns a TCP port that was free on 127.0.0.1 a moment ago.
func freePort(tb testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("tpmtest: find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// waitListening waits until swtpm listens, or exits. It probes the control
// port only: a probe of the command port would occupy swtpm's single client
// slot until swtpm noticed it closed. swtpm binds both before serving.
func waitListening(ctrl int, exited <-chan error) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case err := <-exited:
			return fmt.Errorf("swtpm exited: %v", err)
		default:
		}
		c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(ctrl)), time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("swtpm not listening on port %d after 10s: %v", ctrl, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
