package queue_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ztmkit/ztm/ca/enroll"
	"github.com/ztmkit/ztm/transport/est"
	"github.com/ztmkit/ztm/transport/est/queue"
)

// childConfig is what the station child process gets.
type childConfig struct {
	Phase     string // "queue": add all, fail to reach the CA, wait; "flush": send
	QueuePath string
	URL       string
	Root      []byte
	Cert      []byte
	Key       []byte
	Requests  []enroll.Request
}

const childEnv = "ZTM_EST_QUEUE_CHILD"

// TestQueueChildProcess is the station process of TestQueueKill; it does
// nothing unless started by it.
func TestQueueChildProcess(t *testing.T) {
	path := os.Getenv(childEnv)
	if path == "" {
		return
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var cfg childConfig
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	q, err := queue.Open(ctx, cfg.QueuePath, queue.Options{MinBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond, Concurrency: 4})
	if err != nil {
		t.Fatal(err)
	}
	root, _ := x509.ParseCertificate(cfg.Root)
	pool := x509.NewCertPool()
	pool.AddCert(root)
	key, err := x509.ParsePKCS8PrivateKey(cfg.Key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := est.NewClient(est.ClientConfig{URL: cfg.URL, Roots: pool, MaxRetries: -1,
		Certificate: &tls.Certificate{Certificate: [][]byte{cfg.Cert}, PrivateKey: key}})
	if err != nil {
		t.Fatal(err)
	}
	switch cfg.Phase {
	case "queue":
		for i := range cfg.Requests {
			if _, err := q.Add(ctx, &cfg.Requests[i]); err != nil {
				t.Fatal(err)
			}
		}
		st, err := q.Flush(ctx, c)
		if err != nil || st.Pending != len(cfg.Requests) || st.Retry != len(cfg.Requests) {
			t.Fatalf("flush with the CA unreachable: %+v, %v", st, err)
		}
		os.Stdout.WriteString("QUEUED\n")
	case "flush":
		os.Stdout.WriteString("FLUSHING\n")
		q.Run(ctx, c)
	}
	select {} // until killed
}

// TestQueueKill kills the station process (SIGKILL) twice: once with every
// request queued while the CA is unreachable, once in the middle of sending
// them. After the restart every request enrolls exactly once.
func TestQueueKill(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newCALine(t)
	st, key := e.Station("idevid")
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	dir := t.TempDir()
	const n = 40
	cfg := childConfig{QueuePath: filepath.Join(dir, "queue.db"), Root: e.PKI.Root.Raw, Cert: st.Raw, Key: kder}
	d := e.Devices[0]
	for i := range n {
		nonce, err := e.Nonces.Issue()
		if err != nil {
			t.Fatal(err)
		}
		tw := d.Twin(t) // one device, one IDevID
		cfg.Requests = append(cfg.Requests, enroll.Request{CSR: tw.CSR(t, "SN-Q-"+string(rune('A'+i%26))+string(rune('A'+i/26))),
			Profile: "idevid", Evidence: tw.Evidence(t, nonce)})
	}
	before := e.Issuances()

	// Phase 1: the CA is unreachable (a port nobody listens on).
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg.URL = "https://" + l.Addr().String()
	l.Close()
	cfg.Phase = "queue"
	child := startChild(t, dir, cfg)
	child.waitLine(t, "QUEUED")
	child.kill(t)
	if got := e.Issuances(); got != before {
		t.Fatalf("%d issued while the CA was unreachable", got-before)
	}

	// Phase 2: the CA is up; the station is killed while sending.
	cfg.URL = e.URL
	cfg.Phase = "flush"
	child = startChild(t, dir, cfg)
	child.waitLine(t, "FLUSHING")
	deadline := time.Now().Add(60 * time.Second)
	for e.Issuances() < before+5 && time.Now().Before(deadline) {
		time.Sleep(2 * time.Millisecond)
	}
	child.kill(t)
	killedAt := e.Issuances() - before
	if killedAt < 5 || killedAt >= n {
		t.Logf("killed after %d of %d issuances", killedAt, n)
	}

	q0, err := queue.Open(ctx, cfg.QueuePath, queue.Options{})
	if err != nil {
		t.Fatal(err)
	}
	items0, err := q0.List(ctx)
	q0.Close()
	if err != nil {
		t.Fatal(err)
	}
	doneAtKill := 0
	for _, it := range items0 {
		if it.State == queue.Done {
			doneAtKill++
		}
	}

	// Restart in process: everything pending is sent; what the killed
	// process had in flight is answered from the server's idempotency
	// table.
	q, err := queue.Open(ctx, cfg.QueuePath, queue.Options{MinBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	c := e.Client(st, key)
	for i := 0; ; i++ {
		s, err := q.Flush(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		if s.Pending == 0 {
			break
		}
		if i > 200 {
			t.Fatalf("still pending: %+v", s)
		}
		time.Sleep(10 * time.Millisecond)
	}
	items, err := q.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != n {
		t.Fatalf("%d items, want %d", len(items), n)
	}
	serials := map[string]bool{}
	for _, it := range items {
		if it.State != queue.Done {
			t.Fatalf("item %v: %v %s", it.Key, it.State, it.LastError)
		}
		leaf := it.Chain[0]
		stt, err := e.Ledger.Lookup(ctx, leaf.SerialNumber)
		if err != nil || !bytes.Equal(stt.Issuance.Certificate, leaf.Raw) {
			t.Fatalf("leaf not in ledger: %v", err)
		}
		serials[leaf.SerialNumber.String()] = true
	}
	if len(serials) != n {
		t.Fatalf("%d distinct certificates for %d requests", len(serials), n)
	}
	if got := e.Issuances() - before; got != n {
		t.Fatalf("ledger holds %d issuances for %d requests: a request enrolled twice", got, n)
	}
	t.Logf("killed mid-flush after %d issuances, %d recorded done by the station (%d answered again from the server's idempotency table); %d enrolled exactly once",
		killedAt, doneAtKill, int(killedAt)-doneAtKill, n)
}

type childProc struct {
	cmd   *exec.Cmd
	lines *bufio.Scanner
}

func startChild(t *testing.T, dir string, cfg childConfig) *childProc {
	t.Helper()
	raw, _ := json.Marshal(cfg)
	path := filepath.Join(dir, "child-"+cfg.Phase+".json")
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestQueueChildProcess$", "-test.v=false")
	cmd.Env = append(os.Environ(), childEnv+"="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &childProc{cmd: cmd, lines: bufio.NewScanner(out)}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
		if t.Failed() && stderr.Len() > 0 {
			t.Logf("child stderr:\n%s", stderr.String())
		}
	})
	return p
}

func (p *childProc) waitLine(t *testing.T, want string) {
	t.Helper()
	done := make(chan bool, 1)
	go func() {
		for p.lines.Scan() {
			if strings.TrimSpace(p.lines.Text()) == want {
				done <- true
				return
			}
		}
		done <- false
	}()
	select {
	case ok := <-done:
		if !ok {
			p.cmd.Wait()
			t.Fatalf("child ended before %q: %v", want, p.cmd.ProcessState)
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("child did not say %q", want)
	}
}

func (p *childProc) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	p.cmd.Wait()
}
