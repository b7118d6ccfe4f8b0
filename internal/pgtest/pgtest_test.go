package pgtest

import (
	"net"
	"strconv"
	"testing"
	"time"
)

func TestStartStopRestart(t *testing.T) {
	s := Start(t)
	addr := "127.0.0.1:" + strconv.Itoa(s.Port)
	dial := func() error {
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err == nil {
			c.Close()
		}
		return err
	}
	if err := dial(); err != nil {
		t.Fatalf("server not listening: %v", err)
	}
	cpu0 := s.CPUTime()
	dsn := s.NewDatabase(t)
	if dsn == "" || dsn == s.NewDatabase(t) {
		t.Fatal("NewDatabase returned an empty or repeated DSN")
	}
	// Startup and two createdb runs cost the server some CPU; the counter
	// only grows (its processes' own time, in ticks of 10 ms).
	if cpu := s.CPUTime(); cpu <= 0 || cpu < cpu0 {
		t.Errorf("CPUTime %v after work, %v before", cpu, cpu0)
	}
	if err := s.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := dial(); err == nil {
		t.Fatal("server still listening after Kill")
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	if err := dial(); err != nil {
		t.Fatalf("server not back after Start: %v", err)
	}
}
