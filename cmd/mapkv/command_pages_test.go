package main

import (
	"strings"
	"testing"
)

func TestPages(t *testing.T) {
	path := fixtureFile(t)
	golden(t, "pages.txt", mustRun(t, "pages", path))

	var rows []pageRow
	mustJSON(t, mustRun(t, "pages", "--json", path), &rows)
	var covered uint64
	types := map[string]int{}
	for _, r := range rows {
		if r.ID != covered {
			t.Errorf("row at page %d, expected %d: rows must cover the file in order", r.ID, covered)
		}
		covered += r.Pages
		types[r.Type]++
		if r.Type == "leaf" && r.Checksum != "ok" {
			t.Errorf("page %d: checksum %q", r.ID, r.Checksum)
		}
	}
	if covered != 256 {
		t.Errorf("rows cover %d pages, the file has 256", covered)
	}
	for _, typ := range []string{"meta", "leaf", "overflow", "freelist", "freechunk", "free", "tail"} {
		if types[typ] == 0 {
			t.Errorf("no %s page listed: %v", typ, types)
		}
	}
}

func TestPagesDamaged(t *testing.T) {
	path := fixtureFile(t)
	id := leafOf(t, path, "bucket bin")
	flipBytes(t, path, int64(id)*4096+300, 1)
	out := mustRun(t, "pages", path)
	if !strings.Contains(out, "BAD (stored") {
		t.Errorf("pages does not flag the damaged page %d:\n%s", id, out)
	}
	// Both metas gone: pages still works given the page size.
	flipBytes(t, path, 40, 1)
	flipBytes(t, path, 4096+40, 1)
	wantCode(t, run(t, "", "pages", path), exitError, "--page-size")
	out = mustRun(t, "pages", "--page-size", "4096", path)
	if !strings.Contains(out, "invalid: ") || !strings.Contains(out, "leaf") {
		t.Errorf("pages --page-size on a file without metas:\n%s", out)
	}
	wantCode(t, run(t, "", "pages", "--page-size", "1000", path), exitError, "power of two")
}
