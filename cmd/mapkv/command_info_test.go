package main

import (
	"testing"
)

func TestInfo(t *testing.T) {
	path := fixtureFile(t)
	golden(t, "info.txt", normalize(mustRun(t, "info", path), path, "fixture.db"))

	var r infoReport
	mustJSON(t, mustRun(t, "info", "--json", path), &r)
	if r.PageSize != 4096 || r.TxID != 7 || r.Buckets != 5 || r.BucketsTotal != 6 || r.Keys != 30+3+4+1+1 {
		t.Errorf("info --json = %+v", r)
	}
	if r.PagesInUse+r.FreePages != r.PageCount || r.FreePages == 0 {
		t.Errorf("pages in use %d + free %d != %d (the fixture has free pages)", r.PagesInUse, r.FreePages, r.PageCount)
	}
}

func TestInfoErrors(t *testing.T) {
	dir := t.TempDir()
	wantCode(t, run(t, "", "info", dir+"/missing.db"), exitError, "missing.db: no such file")
	wantCode(t, run(t, "", "info", dir), exitError, "is a directory")
	wantCode(t, run(t, "", "info"), exitUsage, "usage: mapkv info DB", "mapkv info --help")
	wantCode(t, run(t, "", "info", "a", "b"), exitUsage)
	// A read command never creates the file it is pointed at.
	if _, err := statFile(dir + "/missing.db"); err == nil {
		t.Error("info created the missing file")
	}
}
