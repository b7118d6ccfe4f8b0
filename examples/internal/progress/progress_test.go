package progress

import (
	"bytes"
	"strings"
	"sync"
	"testing"
)

func TestPlainLines(t *testing.T) {
	var out bytes.Buffer
	plain := false
	p := New(&out, 20, "verified", &plain)
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(p.Tick)
	}
	wg.Wait()
	p.Done()
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 10 || lines[0] != "verified 2/20 devices (10%)" || lines[9] != "verified 20/20 devices (100%)" {
		t.Fatalf("output:\n%s", out.String())
	}
}

func TestBar(t *testing.T) {
	var out bytes.Buffer
	bar := true
	p := New(&out, 3, "verified", &bar)
	for range 3 {
		p.Tick()
	}
	p.Done()
	s := out.String()
	if !strings.HasPrefix(s, "\r[") || !strings.Contains(s, "\r["+strings.Repeat("#", 40)+"] 3/3 ") || !strings.HasSuffix(s, "/s\n") {
		t.Fatalf("output: %q", s)
	}
	// Not a terminal: plain lines.
	out.Reset()
	if p := New(&out, 1, "verified", nil); p.bar {
		t.Fatal("a buffer taken for a terminal")
	}
}
