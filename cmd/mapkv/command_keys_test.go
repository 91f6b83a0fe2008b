package main

import (
	"strings"
	"testing"
)

func TestKeys(t *testing.T) {
	path := fixtureFile(t)
	out := mustRun(t, "keys", path, "users")
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 30 || lines[0] != "user001" || lines[29] != "user039" {
		t.Errorf("keys users: %d lines: %q", len(lines), out)
	}
	// The nested bucket "archive" is not a key with a value.
	if strings.Contains(out, "archive") {
		t.Errorf("keys lists a nested bucket:\n%s", out)
	}
	if got := mustRun(t, "keys", path, "users", "--prefix", "user01", "--limit", "3"); got != "user010\nuser011\nuser013\n" {
		t.Errorf("keys --prefix --limit = %q", got)
	}
	// Binary keys print as hex unless a format is forced.
	golden(t, "keys-bin.txt", mustRun(t, "keys", path, "bin"))
	golden(t, "keys-bin-base64.txt", mustRun(t, "keys", path, "bin", "--format", "base64"))
	if got := mustRun(t, "keys", path, "bin", "--format", "hex", "--prefix", "01ff"); got != "01ff80\n" {
		t.Errorf("keys --format hex --prefix 01ff = %q", got)
	}

	var r keysReport
	mustJSON(t, mustRun(t, "keys", "--json", "--limit", "2", path, "bin"), &r)
	if len(r.Keys) != 2 || r.Keys[0].Hex == nil || *r.Keys[0].Hex != "00" || !r.More {
		t.Errorf("keys --json = %+v", r)
	}

	wantCode(t, run(t, "", "keys", path, "nope"), exitError, "bucket nope: not found")
	wantCode(t, run(t, "", "keys", path, "bin", "--format", "hex", "--prefix", "zz"), exitError, "not hex")
	wantCode(t, run(t, "", "keys", path, "bin", "--format", "octal"), exitError, "want auto, text, hex or base64")
}
