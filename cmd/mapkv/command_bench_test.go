package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestBench(t *testing.T) {
	out := mustRun(t, "bench", "--count", "2000", "--batch-size", "500", "--no-sync")
	for _, want := range []string{"mapkv bench: 2000 keys of 16 bytes", "write seq", "read seq", "commit of 500 puts", "P99"} {
		if !strings.Contains(out, want) {
			t.Errorf("bench output lacks %q:\n%s", want, out)
		}
	}
	var r benchReport
	mustJSON(t, mustRun(t, "bench", "--json", "--count", "1000", "--write-mode", "rnd", "--read-mode", "rnd", "--key-size", "8", "--value-size", "0"), &r)
	if r.Write.Ops != 1000 || r.Read.Ops != 1000 || r.Write.OpsPerSec <= 0 || r.Read.P99 < r.Read.P50 || r.Read.LatencyOf != "Get" || !r.Sync {
		t.Errorf("bench --json = %+v", r)
	}

	// --path with --work keeps the database; bench refuses an existing file.
	path := filepath.Join(t.TempDir(), "bench.db")
	mustRun(t, "bench", "--count", "100", "--no-sync", "--path", path, "--work")
	mustRun(t, "check", path)
	wantCode(t, run(t, "", "bench", "--count", "100", "--path", path), exitError, "exists")
	os.Remove(path)
	mustRun(t, "bench", "--count", "100", "--no-sync", "--path", path)
	if _, err := os.Stat(path); err == nil {
		t.Error("bench --path without --work left the file")
	}

	for _, args := range [][]string{
		{"--count", "0"}, {"--key-size", "4"}, {"--write-mode", "zigzag"}, {"--read-mode", "x"}, {"--batch-size", "-1"},
	} {
		wantCode(t, run(t, "", append([]string{"bench"}, args...)...), exitUsage)
	}
}
