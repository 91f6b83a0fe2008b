package main

import (
	"testing"
	"time"

	"github.com/mapkv/mapkv"
)

// TestLocked holds the file open for writing, as an application would:
// read commands run beside it (the engine's lock file lets readers follow
// a writer process); write commands wait --timeout for the writer's lock,
// then say who has it.
func TestLocked(t *testing.T) {
	path := fixtureFile(t)
	db, err := mapkv.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(func(tx *mapkv.Tx) error {
		return tx.Bucket([]byte("users")).Put([]byte("live"), []byte("yes"))
	}); err != nil {
		t.Fatal(err)
	}
	if got := mustRun(t, "get", "--timeout", "0", path, "users", "live"); got != "yes\n" {
		t.Errorf("a reader beside the writer process read %q", got)
	}
	mustRun(t, "check", "--timeout", "0", path)
	start := time.Now()
	wantCode(t, run(t, "", "put", "--timeout", "200ms", path, "b", "k", "v"), exitError,
		"locked by another process (waited 200ms for the file lock; use --timeout to wait longer)")
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Errorf("gave up after %v, before the timeout", d)
	}
	wantCode(t, run(t, "", "delete", "--timeout", "0", path, "users", "live"), exitError, "locked by another process")
	db.Close()
	mustRun(t, "delete", "--timeout", "0", path, "users", "live")
}
