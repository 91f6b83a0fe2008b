package main

import (
	"strings"
	"testing"
)

func TestGet(t *testing.T) {
	path := fixtureFile(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"users", "user001"}, `{"name":"user 1","admin":false}` + "\n"},
		{[]string{"users/archive", "old2"}, "gone\n"},
		{[]string{`a\/b`, "k"}, "v\n"},
		{[]string{"bin", "empty"}, "\n"},
		{[]string{"bin", "--format", "hex", "01ff80"}, "0001025c\n"},
		{[]string{"bin", "--format", "hex", "00"}, "7a65726f206b6579\n"},
		{[]string{"bin", "--format", "text", "tab\there"}, "line\nbreak\n"},
		{[]string{"bin", "tab\there"}, "6c696e650a627265616b\n"},
		{[]string{"bin", "--format", "base64", "AA=="}, "emVybyBrZXk=\n"},
	} {
		if got := mustRun(t, append([]string{"get", path}, c.args...)...); got != c.want {
			t.Errorf("get %v = %q, want %q", c.args, got, c.want)
		}
	}
	big := mustRun(t, "get", path, "big", "blob")
	if len(big) != 10001 || !strings.HasPrefix(big, "0123456789") {
		t.Errorf("get big blob: %d bytes", len(big))
	}

	var r getReport
	mustJSON(t, mustRun(t, "get", "--json", path, "bin", "empty"), &r)
	if r.Bucket != "bin" || *r.Key.Text != "empty" || r.Value.Text == nil || *r.Value.Text != "" {
		t.Errorf("get --json = %+v", r)
	}
	mustJSON(t, mustRun(t, "get", "--json", "--format", "text", path, "bin", "\x01\xff\x80"), &r)
	if r.Key.Hex == nil || *r.Key.Hex != "01ff80" || *r.Value.Text != "\x00\x01\x02\\" { // JSON cannot hold invalid UTF-8
		t.Errorf("get --json of a binary key under --format text = %+v", r)
	}

	wantCode(t, run(t, "", "get", path, "users", "nope"), exitError, "key nope: key not found")
	wantCode(t, run(t, "", "get", path, "users", "archive"), exitError, "names a nested bucket")
	wantCode(t, run(t, "", "get", path, "nope", "k"), exitError, "bucket nope: not found")
	wantCode(t, run(t, "", "get", path, "users"), exitUsage)
}
