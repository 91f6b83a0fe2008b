package main

import "testing"

func TestBuckets(t *testing.T) {
	path := fixtureFile(t)
	golden(t, "buckets.txt", mustRun(t, "buckets", path))
	if got, want := mustRun(t, "buckets", path, "users"), "users/archive\n"; got != want {
		t.Errorf("buckets DB users = %q, want %q", got, want)
	}
	if got := mustRun(t, "buckets", "--top", path); got != "a\\/b\nbig\nbin\nempty\nusers\n" {
		t.Errorf("buckets --top = %q", got)
	}
	var list []bucketJSON
	mustJSON(t, mustRun(t, "buckets", "--json", path), &list)
	if len(list) != 6 || list[0].Path != `a\/b` || *list[0].Name.Text != "a/b" || list[5].Path != "users/archive" || list[5].Depth != 2 {
		t.Errorf("buckets --json = %+v", list)
	}
	wantCode(t, run(t, "", "buckets", path, "nope"), exitError, "bucket nope: not found")
}
