package main

import (
	"errors"
	"strings"
	"testing"
)

func TestHelp(t *testing.T) {
	out := mustRun(t, "help")
	for _, cmd := range []string{"backup", "bench", "buckets", "check", "compact", "completion", "delete", "dump",
		"get", "info", "keys", "load", "page", "pages", "put", "snapshot", "stats", "version"} {
		if !strings.Contains(out, "\n  "+cmd+" ") {
			t.Errorf("help does not list %s:\n%s", cmd, out)
		}
	}
	golden(t, "help.txt", out)
	if got := mustRun(t, "--help"); got != out {
		t.Error("--help differs from help")
	}
	if out := mustRun(t, "help", "check"); !strings.Contains(out, "Exit status: 0 when the database is clean, 3 when") {
		t.Errorf("help check:\n%s", out)
	}
}

func TestUsageErrors(t *testing.T) {
	wantCode(t, run(t, "", "frobnicate"), exitUsage, `unknown command "frobnicate"`, "Run 'mapkv --help' for usage.")
	wantCode(t, run(t, "", "info", "--frob", "x"), exitUsage, "unknown flag: --frob", "Run 'mapkv info --help'")
	wantCode(t, run(t, "", "check", "--timeout", "soon", "x"), exitUsage, "invalid argument")
	wantCode(t, run(t, "", "check", "--progress", "sometimes", "x"), exitUsage, "--progress")
}

func TestCompletion(t *testing.T) {
	out := mustRun(t, "completion", "bash")
	if !strings.Contains(out, "__start_mapkv") {
		t.Errorf("completion bash does not look like a bash completion script:\n%.300s", out)
	}
	for _, sh := range []string{"zsh", "fish", "powershell"} {
		mustRun(t, "completion", sh)
	}
	// Bucket paths complete from the file named first.
	path := fixtureFile(t)
	out = mustRun(t, "__complete", "keys", path, "us")
	if !strings.HasPrefix(out, "users\nusers/archive\n:") {
		t.Errorf("completion of a bucket path:\n%s", out)
	}
	out = mustRun(t, "__complete", "stats", path, "users", "")
	if !strings.Contains(out, `a\/b`) || !strings.Contains(out, "big") {
		t.Errorf("completion of every bucket:\n%s", out)
	}
}

func TestMessage(t *testing.T) {
	for in, want := range map[string]string{
		"mapkv: x.db: database corrupt": "x.db: database corrupt",
		"mapkv: mapkv: twice":           "twice",
		"two\nlines":                    "two; lines",
	} {
		if got := message(errors.New(in)); got != want {
			t.Errorf("message(%q) = %q, want %q", in, got, want)
		}
	}
}
