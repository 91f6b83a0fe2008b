package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mapkv/mapkv"
)

// crashedDB returns a database whose writer "crashed" after committing
// key k: the data file and its write-ahead log as the writer left them.
func crashedDB(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	live := filepath.Join(dir, "live.db")
	db, err := mapkv.Open(live, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, k := range []string{"a", "b", "k"} {
		if err := db.Update(func(tx *mapkv.Tx) error {
			b, err := tx.CreateBucketIfNotExists([]byte("users"))
			if err != nil {
				return err
			}
			return b.Put([]byte(k), []byte("v-"+k))
		}); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, "app.db")
	for _, suffix := range []string{"", "-wal"} {
		b, err := os.ReadFile(live + suffix)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path+suffix, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return path
}

func TestRecover(t *testing.T) {
	path := crashedDB(t)
	wantCode(t, run(t, "", "info", path), exitError, "needs recovery", "mapkv recover "+path)
	out := mustRun(t, "recover", path)
	if !strings.Contains(out, "recovered at tx") {
		t.Errorf("recover says: %q", out)
	}
	if _, err := os.Stat(path + "-wal"); !os.IsNotExist(err) {
		t.Errorf("the log is still there after recover: %v", err)
	}
	if got := mustRun(t, "get", path, "users", "k"); strings.TrimSpace(got) != "v-k" {
		t.Errorf("get after recover: %q", got)
	}
	mustRun(t, "check", path)
	out = mustRun(t, "recover", path)
	if !strings.Contains(out, "nothing to recover") {
		t.Errorf("second recover says: %q", out)
	}
	wantCode(t, run(t, "", "recover", path+".missing"), exitError, "no such file")
}
