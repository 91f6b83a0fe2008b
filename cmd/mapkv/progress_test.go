package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestProgressBar(t *testing.T) {
	var w bytes.Buffer
	p := &progress{w: &w, on: true, label: "load", bytes: true, width: 60, update: time.Hour, start: time.Now().Add(-2 * time.Second)}
	p.set(512<<10, 1<<20)
	got := w.String()
	if !strings.HasPrefix(got, "\rload [") || !strings.Contains(got, "  50% 512.0 KiB/1.0 MiB 256.0 KiB/s eta 2s") {
		t.Errorf("bar = %q", got)
	}
	if n := len(strings.TrimSuffix(strings.TrimPrefix(got, "\r"), "\x1b[K")); n > 60 {
		t.Errorf("bar of %d columns in a 60-column terminal: %q", n, got)
	}
	w.Reset()
	p.set(600<<10, 1<<20) // too soon after the last draw
	if w.Len() != 0 {
		t.Errorf("redrew within the update interval: %q", w.String())
	}
	p.finish()
	if w.String() != "\r\x1b[K" {
		t.Errorf("finish wrote %q, want the line erased", w.String())
	}

	var off *progress
	off.set(1, 2) // a nil bar is silent
	(&progress{w: &w}).set(1, 2)
}

func TestProgressFlag(t *testing.T) {
	r := run(t, "", "bench", "--count", "500", "--no-sync", "--progress", "always")
	wantCode(t, r, exitOK)
	if !strings.Contains(r.stderr, "\rwrite") || !strings.HasSuffix(r.stderr, "\r\x1b[K") {
		t.Errorf("--progress always: stderr %q", r.stderr)
	}
	// Not a terminal: silent.
	for _, mode := range []string{"auto", "never"} {
		r := run(t, "", "check", "--progress", mode, fixtureFile(t))
		if r.stderr != "" {
			t.Errorf("--progress %s wrote %q", mode, r.stderr)
		}
	}
}
