package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mapkv/mapkv"
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

// TestInfoDeferredFreeList: a file whose last commit went through the
// write-ahead log names no free list (its pages are copied here as the
// writer left them, a snapshot taken while it ran): info says the free
// pages are not counted instead of calling every page in use, and check
// is clean.
func TestInfoDeferredFreeList(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "live.db")
	db, err := mapkv.Open(src, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for i := range 3 {
		if err := db.Update(func(tx *mapkv.Tx) error {
			b, err := tx.CreateBucketIfNotExists([]byte("b"))
			if err != nil {
				return err
			}
			return b.Put([]byte(fmt.Sprint("k", i)), []byte("v"))
		}); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "copy.db")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	out := mustRun(t, "info", path)
	if !strings.Contains(out, "free pages not counted") {
		t.Errorf("info on a file whose free list is deferred:\n%s", out)
	}
	var r infoReport
	mustJSON(t, mustRun(t, "info", "--json", path), &r)
	if !r.FreeUnknown {
		t.Errorf("info --json = %+v, want free_unknown", r)
	}
	if out := mustRun(t, "check", path); !strings.Contains(out, "no problems") {
		t.Errorf("check: %s", out)
	}
}
