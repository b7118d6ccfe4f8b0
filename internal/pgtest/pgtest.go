// Package pgtest starts a real, throwaway PostgreSQL server for tests: initdb
// on a temporary directory, pg_ctl start on a free loopback port, stopped and
// removed when the test ends. As root (as in CI) the server runs as the
// unprivileged user "nobody", since PostgreSQL refuses to run as root.
//
// The server binaries come from Debian's postgresql package (make test
// installs it when missing). Without them, [Start] fails the test with a
// message naming the package; with -short it skips instead.
package pgtest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Server is a running PostgreSQL server.
type Server struct {
	// Port is the loopback TCP port the server listens on.
	Port int

	bin     string // directory of initdb, pg_ctl, createdb
	dir     string // holds data/ and the log
	cred    *syscall.Credential
	dbCount atomic.Int64
}

// User is the superuser of every server Start makes; it authenticates by
// trust, on loopback only.
const User = "ztm"

// BinDir returns the directory holding the PostgreSQL server binaries, or an
// error naming the package to install.
func BinDir() (string, error) {
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			if _, err := os.Stat(filepath.Join(filepath.Dir(real), "initdb")); err == nil {
				return filepath.Dir(real), nil
			}
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int { return version(b) - version(a) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	return "", fmt.Errorf("pgtest: PostgreSQL server binaries (initdb, pg_ctl) not found; install them with: apt-get install postgresql")
}

func version(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

// Start starts a server for the test and stops it in t's cleanup.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := BinDir()
	if err != nil {
		if testing.Short() {
			t.Skip(err)
		}
		t.Fatal(err)
	}
	s := &Server{bin: bin}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("nobody")
		if err != nil {
			t.Fatalf("pgtest: running as root and no user \"nobody\" to run PostgreSQL as: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		s.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	// t.TempDir is private to root; the server user must reach its files.
	s.dir, err = os.MkdirTemp("", "ztm-pgtest-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(s.dir) })
	if err := os.Chmod(s.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if s.cred != nil {
		if err := os.Chown(s.dir, int(s.cred.Uid), int(s.cred.Gid)); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := s.run("initdb", "-D", s.dataDir(), "-U", User, "--auth=trust", "-E", "UTF8", "--no-locale", "--no-sync"); err != nil {
		t.Fatalf("pgtest: initdb: %v\n%s", err, out)
	}
	s.Port = freePort(t)
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Stop() })
	return s
}

func (s *Server) dataDir() string { return filepath.Join(s.dir, "data") }

// Start starts the server again after Stop or Kill, on the same port and
// data. Start is called by the package-level Start; tests call it to bring
// a stopped server back.
func (s *Server) Start() error {
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=on", s.Port, s.dataDir())
	out, err := s.run("pg_ctl", "-D", s.dataDir(), "-o", opts, "-l", filepath.Join(s.dir, "server.log"), "-w", "-t", "60", "start")
	if err != nil {
		log, _ := os.ReadFile(filepath.Join(s.dir, "server.log"))
		return fmt.Errorf("pgtest: pg_ctl start: %v\n%s\n%s", err, out, log)
	}
	return nil
}

// Stop shuts the server down (fast mode: connections are closed, open
// transactions roll back). Stopping a stopped server is not an error.
func (s *Server) Stop() error { return s.stop("fast") }

// Kill stops the server the way a crash does (immediate mode: no
// checkpoint; the next Start runs recovery).
func (s *Server) Kill() error { return s.stop("immediate") }

func (s *Server) stop(mode string) error {
	if _, err := os.Stat(filepath.Join(s.dataDir(), "postmaster.pid")); err != nil {
		return nil
	}
	if out, err := s.run("pg_ctl", "-D", s.dataDir(), "-m", mode, "-w", "-t", "60", "stop"); err != nil {
		return fmt.Errorf("pgtest: pg_ctl stop: %v\n%s", err, out)
	}
	return nil
}

// DSN returns a connection string for database db on the server.
func (s *Server) DSN(db string) string {
	return fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable", User, s.Port, db)
}

// NewDatabase creates a new, empty database and returns its DSN.
func (s *Server) NewDatabase(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("ztm_%d_%d", os.Getpid(), s.dbCount.Add(1))
	if out, err := s.run("createdb", "-h", "127.0.0.1", "-p", strconv.Itoa(s.Port), "-U", User, name); err != nil {
		t.Fatalf("pgtest: createdb: %v\n%s", err, out)
	}
	return s.DSN(name)
}

func (s *Server) run(name string, args ...string) ([]byte, error) {
	cmd := exec.Command(filepath.Join(s.bin, name), args...)
	cmd.Dir = s.dir
	cmd.Env = append(os.Environ(), "LC_ALL=C", "PGTZ=UTC")
	if s.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.Bytes(), err
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	// Give the kernel a moment to release the port before postgres binds it.
	defer time.Sleep(10 * time.Millisecond)
	return l.Addr().(*net.TCPAddr).Port
}

// CPUTime returns the CPU time (user and system) the server's processes
// have used so far: the postmaster, its children still running, and those
// it has reaped. Benchmarks report it per operation next to the client's
// own, as both share the machine's cores. It returns 0 where /proc cannot
// tell.
func (s *Server) CPUTime() time.Duration {
	pidFile, err := os.ReadFile(filepath.Join(s.dataDir(), "postmaster.pid"))
	if err != nil {
		return 0
	}
	first, _, _ := bytes.Cut(pidFile, []byte("\n"))
	master, err := strconv.Atoi(string(bytes.TrimSpace(first)))
	if err != nil {
		return 0
	}
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	var ticks int64
	for _, p := range stats {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		// pid (comm) state ppid … utime stime: fields 14 and 15, counted
		// after the command name, which may hold spaces.
		end := bytes.LastIndexByte(b, ')')
		if end < 0 {
			continue
		}
		pid, _ := strconv.Atoi(string(bytes.TrimSpace(b[:bytes.IndexByte(b, '(')])))
		f := bytes.Fields(b[end+1:])
		if len(f) < 13 {
			continue
		}
		if ppid, _ := strconv.Atoi(string(f[1])); pid != master && ppid != master {
			continue
		}
		fields := []int{11, 12} // utime, stime
		if pid == master {
			fields = append(fields, 13, 14) // cutime, cstime: reaped children
		}
		for _, i := range fields {
			v, _ := strconv.ParseInt(string(f[i]), 10, 64)
			ticks += v
		}
	}
	// USER_HZ is 100 on every Linux ABI Go supports.
	return time.Duration(ticks) * 10 * time.Millisecond
}
