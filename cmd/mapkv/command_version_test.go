package main

import (
	"strings"
	"testing"
)

func TestVersion(t *testing.T) {
	out := mustRun(t, "version")
	if !strings.HasPrefix(out, "mapkv ") || !strings.Contains(out, "file format 1") {
		t.Errorf("version = %q", out)
	}
	if got := mustRun(t, "--version"); got != out {
		t.Errorf("--version = %q, version = %q", got, out)
	}
	var v versionInfo
	mustJSON(t, mustRun(t, "version", "--json"), &v)
	if v.Version == "" || v.FormatVersion != 1 || !strings.HasPrefix(v.Go, "go") {
		t.Errorf("version --json = %+v", v)
	}
}
