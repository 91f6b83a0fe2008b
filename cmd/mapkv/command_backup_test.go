package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestBackup(t *testing.T) {
	src := fixtureFile(t)
	dir := t.TempDir()
	dst := filepath.Join(dir, "backup.db")
	out := mustRun(t, "backup", src, dst)
	size := imageSize(t, src)
	if !strings.Contains(out, "at tx 7: "+humanBytes(size)+" written to") {
		t.Errorf("backup says %q", out)
	}
	mustRun(t, "check", dst)
	if mustRun(t, "dump", dst) != mustRun(t, "dump", src) {
		t.Error("the backup holds other data")
	}
	if left := leftovers(t, dir, "backup.db"); left != nil {
		t.Errorf("backup left %q behind", left)
	}

	// To standard output: the image on stdout, the report on stderr.
	r := run(t, "", "backup", src, "-")
	wantCode(t, r, exitOK)
	if int64(len(r.stdout)) != size || !strings.Contains(r.stderr, "written to -") {
		t.Fatalf("backup -: %d bytes, stderr %q", len(r.stdout), r.stderr)
	}
	piped := filepath.Join(dir, "piped.db")
	if err := os.WriteFile(piped, []byte(r.stdout), 0o600); err != nil {
		t.Fatal(err)
	}
	mustRun(t, "check", piped)
	if b, _ := os.ReadFile(dst); string(b) != r.stdout {
		t.Error("backup to a file and to stdout differ")
	}

	wantCode(t, run(t, "", "backup", src, src), exitError, "same file")
	wantCode(t, run(t, "", "backup", src+".missing", dst), exitError, "no such file")
}

// imageSize is the size of the image of the database at path: what a
// backup or a snapshot holds.
func imageSize(t *testing.T, path string) int64 {
	t.Helper()
	var info infoReport
	mustJSON(t, mustRun(t, "info", "--json", path), &info)
	return int64(info.PageCount) * int64(info.PageSize)
}
