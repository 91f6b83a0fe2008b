package main

import "testing"

func TestStats(t *testing.T) {
	path := fixtureFile(t)
	golden(t, "stats.txt", mustRun(t, "stats", path))
	golden(t, "stats-nested.txt", mustRun(t, "stats", path, "users/archive", `a\/b`))

	var r statsReport
	mustJSON(t, mustRun(t, "stats", "--json", path), &r)
	if len(r.Buckets) != 5 || r.Total.Keys != 39 || r.Total.Buckets != 6 || r.Total.OverflowPages != 3 {
		t.Errorf("stats --json: %d buckets, total %+v", len(r.Buckets), r.Total)
	}
	if r.Total.Fill <= 0 || r.Total.Fill > 1 {
		t.Errorf("fill %v out of (0, 1]", r.Total.Fill)
	}

	wantCode(t, run(t, "", "stats", path, "nope"), exitError, "bucket nope: not found")
	wantCode(t, run(t, "", "stats", path, "users/nope"), exitError, "bucket users/nope: not found")
	wantCode(t, run(t, "", "stats", path, `bad\q`), exitError, "unknown escape")
}
