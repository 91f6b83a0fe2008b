package main

import (
	"strconv"
	"strings"
	"testing"
)

func TestPage(t *testing.T) {
	path := fixtureFile(t)
	var rows []pageRow
	mustJSON(t, mustRun(t, "pages", "--json", path), &rows)
	first := map[string]uint64{}
	for _, r := range rows {
		if _, ok := first[r.Type]; !ok {
			first[r.Type] = r.ID
		}
	}
	// One golden file per kind of page.
	for _, typ := range []string{"meta", "leaf", "overflow", "freelist", "freechunk", "free"} {
		id, ok := first[typ]
		if !ok {
			t.Fatalf("the fixture has no %s page", typ)
		}
		golden(t, "page-"+typ+".txt", mustRun(t, "page", path, strconv.FormatUint(id, 10)))
	}
	golden(t, "page-hex.txt", mustRun(t, "page", "--hex", path, "0"))
	out := mustRun(t, "page", path, "0-1", "300")
	if strings.Count(out, "meta") < 2 || !strings.Contains(out, "page 300: page 300: beyond the end of the file") {
		t.Errorf("page 0-1 300:\n%s", out)
	}
	wantCode(t, run(t, "", "page", path, "x"), exitError, "not a number")
	wantCode(t, run(t, "", "page", path, "5-2"), exitError, "want FIRST-LAST")
	wantCode(t, run(t, "", "page", path), exitUsage)
}
