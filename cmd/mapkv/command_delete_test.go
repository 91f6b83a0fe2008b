package main

import "testing"

func TestDelete(t *testing.T) {
	path := fixtureFile(t)
	mustRun(t, "delete", path, "users", "user001")
	wantCode(t, run(t, "", "get", path, "users", "user001"), exitError, "key not found")
	wantCode(t, run(t, "", "delete", path, "users", "user001"), exitError, "key not found")
	mustRun(t, "delete", "--force", path, "users", "user001")
	mustRun(t, "delete", "--format", "hex", path, "bin", "00")
	wantCode(t, run(t, "", "get", "--format", "hex", path, "bin", "00"), exitError, "key not found")
	wantCode(t, run(t, "", "delete", path, "users", "archive"), exitError, "names a nested bucket")
	wantCode(t, run(t, "", "delete", path, "nope", "k"), exitError, "bucket nope: not found")
	wantCode(t, run(t, "", "delete", t.TempDir()+"/missing.db", "b", "k"), exitError, "no such file")
	mustRun(t, "check", path)
}
