package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// progress draws a one-line bar on stderr while a long operation runs:
// label, bar, percentage, amount done, rate and time left. It is silent
// unless stderr is a terminal (or --progress=always), so that scripts and
// logs never see it. Its methods are safe for concurrent use and cheap
// enough to call for every item: it redraws at most ten times a second.
type progress struct {
	mu     sync.Mutex
	w      io.Writer
	on     bool
	label  string
	bytes  bool // amounts are bytes (else plain counts)
	width  int
	start  time.Time
	last   time.Time
	done   int64
	total  int64
	drawn  bool
	update time.Duration
}

// newProgress returns the bar for one operation of cmd. unit "bytes"
// shows amounts as sizes.
func (g *globals) newProgress(cmd *cobra.Command, label string, bytes bool) *progress {
	w := cmd.ErrOrStderr()
	p := &progress{w: w, label: label, bytes: bytes, width: 80, start: time.Now(), update: 100 * time.Millisecond}
	switch g.progress {
	case "always":
		p.on = true
	case "never":
	default:
		if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			p.on = true
			if w, _, err := term.GetSize(int(f.Fd())); err == nil && w > 20 {
				p.width = w
			}
		}
	}
	return p
}

// set records progress; total <= 0 means unknown.
func (p *progress) set(done, total int64) {
	if p == nil || !p.on {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done, p.total = done, total
	if now := time.Now(); now.Sub(p.last) >= p.update {
		p.last = now
		p.draw(now)
	}
}

// add advances the amount done by n.
func (p *progress) add(n int64) {
	if p == nil || !p.on {
		return
	}
	p.mu.Lock()
	done, total := p.done+n, p.total
	p.mu.Unlock()
	p.set(done, total)
}

// setDone records the amount done against the total set before.
func (p *progress) setDone(done int64) {
	if p == nil || !p.on {
		return
	}
	p.mu.Lock()
	total := p.total
	p.mu.Unlock()
	p.set(done, total)
}

// setTotal changes the total without drawing.
func (p *progress) setTotal(total int64) {
	if p == nil || !p.on {
		return
	}
	p.mu.Lock()
	p.total = total
	p.mu.Unlock()
}

// finish erases the bar, leaving the line for the command's own output.
func (p *progress) finish() {
	if p == nil || !p.on {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.drawn {
		fmt.Fprint(p.w, "\r\x1b[K")
		p.drawn = false
	}
}

func (p *progress) amount(n int64) string {
	if p.bytes {
		return humanBytes(n)
	}
	return fmt.Sprint(n)
}

func (p *progress) draw(now time.Time) {
	elapsed := now.Sub(p.start)
	var tail strings.Builder
	if p.total > 0 {
		fmt.Fprintf(&tail, " %3d%% %s/%s", min(100, p.done*100/p.total), p.amount(p.done), p.amount(p.total))
	} else {
		fmt.Fprintf(&tail, " %s", p.amount(p.done))
	}
	if secs := elapsed.Seconds(); secs > 0.5 && p.done > 0 {
		rate := float64(p.done) / secs
		if p.bytes {
			fmt.Fprintf(&tail, " %s/s", humanBytes(int64(rate)))
		} else {
			fmt.Fprintf(&tail, " %s/s", humanCount(rate))
		}
		if p.total > p.done {
			left := time.Duration(float64(p.total-p.done) / rate * float64(time.Second))
			fmt.Fprintf(&tail, " eta %s", left.Round(time.Second))
		}
	}
	barw := p.width - len(p.label) - tail.Len() - 4
	bar := ""
	if barw >= 10 && p.total > 0 {
		fill := int(int64(barw) * min(p.done, p.total) / p.total)
		bar = " [" + strings.Repeat("=", fill) + strings.Repeat(" ", barw-fill) + "]"
	}
	fmt.Fprintf(p.w, "\r%s%s%s\x1b[K", p.label, bar, tail.String())
	p.drawn = true
}
