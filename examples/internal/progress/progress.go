// Package progress draws the progress of a long job of the example
// programs: a bar redrawn in place on a terminal, a line per tenth
// otherwise (a log file, a test).
package progress

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// Bar counts done items out of a known total. It is safe for concurrent
// use.
type Bar struct {
	w          io.Writer
	verb       string
	total      int
	bar        bool
	mu         sync.Mutex
	n          int
	lastTenth  int
	start      time.Time
	lastRedraw time.Time
}

// New returns a bar for total items, printed to w. verb says what was done
// to them in the plain lines ("provisioned 100/1000 devices (10%)"). force
// chooses the bar (true) or plain lines (false); if nil, the bar is drawn
// when w is a terminal.
func New(w io.Writer, total int, verb string, force *bool) *Bar {
	p := &Bar{w: w, verb: verb, total: max(total, 1), start: time.Now()}
	if force != nil {
		p.bar = *force
	} else if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			p.bar = true
		}
	}
	return p
}

// Tick counts one more item done.
func (p *Bar) Tick() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n++
	n := p.n
	if p.bar {
		if now := time.Now(); n == p.total || now.Sub(p.lastRedraw) > 50*time.Millisecond {
			p.lastRedraw = now
			const width = 40
			filled := width * min(n, p.total) / p.total
			rate := float64(n) / time.Since(p.start).Seconds()
			fmt.Fprintf(p.w, "\r[%s%s] %d/%d  %.0f/s", strings.Repeat("#", filled), strings.Repeat(".", width-filled), n, p.total, rate)
		}
		return
	}
	if tenth := 10 * n / p.total; tenth > p.lastTenth {
		p.lastTenth = tenth
		fmt.Fprintf(p.w, "%s %d/%d devices (%d%%)\n", p.verb, n, p.total, 10*tenth)
	}
}

// Done ends the bar's line.
func (p *Bar) Done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bar {
		fmt.Fprintln(p.w)
	}
}
