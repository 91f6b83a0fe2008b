package main

import (
	"strings"
	"testing"
)

func TestPut(t *testing.T) {
	path := fixtureFile(t)
	mustRun(t, "put", path, "users", "user001", "changed")
	mustRun(t, "put", path, "new/deeper/still", "k", "v") // creates the bucket path
	mustRun(t, "put", "--format", "hex", path, "bin", "ff00", "")
	mustRun(t, "put", "--format", "base64", path, "bin", "/w==", "AAE=")
	if r := run(t, "raw\x00bytes", "put", path, "bin", "stdin"); r.code != 0 {
		t.Fatal(r.stderr)
	}
	if r := run(t, "6869\n", "put", "--format", "hex", path, "bin", "6869"); r.code != 0 {
		t.Fatal(r.stderr)
	}
	for _, c := range []struct{ args, want string }{
		{"users user001", "changed\n"},
		{"new/deeper/still k", "v\n"},
		{"--format hex bin ff00", "\n"},
		{"--format hex bin ff", "0001\n"},
		{"--format hex bin 737464696e", "726177006279746573\n"}, // "raw\x00bytes" from stdin
		{"bin hi", "hi\n"},
	} {
		if got := mustRun(t, append([]string{"get", path}, strings.Fields(c.args)...)...); got != c.want {
			t.Errorf("get %s = %q, want %q", c.args, got, c.want)
		}
	}
	mustRun(t, "check", path)

	wantCode(t, run(t, "", "put", path, "users", "archive", "x"), exitError, "names a bucket")
	wantCode(t, run(t, "", "put", path, "users", "", "x"), exitError, "key required")
	missing := t.TempDir() + "/new.db"
	wantCode(t, run(t, "", "put", missing, "b", "k", "v"), exitError, "no such file")
	mustRun(t, "put", "--create", missing, "b", "k", "v")
	if got := mustRun(t, "get", missing, "b", "k"); got != "v\n" {
		t.Errorf("after put --create: %q", got)
	}
}
