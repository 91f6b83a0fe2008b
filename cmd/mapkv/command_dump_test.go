package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestDump(t *testing.T) {
	path := fixtureFile(t)
	golden(t, "dump-bytevalue.txt", mustRun(t, "dump", path))
	golden(t, "dump-print.txt", mustRun(t, "dump", "--print", path))

	// Named buckets bring their nested buckets along.
	out := mustRun(t, "dump", path, "users")
	if got := strings.Count(out, "database="); got != 2 || !strings.Contains(out, "database=users/archive\n") {
		t.Errorf("dump DB users: %d sections:\n%s", got, out)
	}
	// --file writes the same bytes, through a temporary file.
	file := filepath.Join(t.TempDir(), "out.dump")
	if r := run(t, "", "dump", "-f", file, path); r.code != 0 || r.stdout != "" {
		t.Fatalf("dump -f: exit %d, stdout %q, stderr %s", r.code, r.stdout, r.stderr)
	}
	if b, _ := os.ReadFile(file); string(b) != mustRun(t, "dump", path) {
		t.Error("dump -f wrote other bytes than dump to stdout")
	}
	if left := leftovers(t, filepath.Dir(file), "out.dump"); left != nil {
		t.Errorf("dump -f left %q behind", left)
	}
	wantCode(t, run(t, "", "dump", path, "nope"), exitError, "bucket nope: not found")
}

// TestDumpLoadRoundTrip loads a dump into a new database and dumps that:
// the bytes must be the same, in both formats.
func TestDumpLoadRoundTrip(t *testing.T) {
	path := fixtureFile(t)
	for _, format := range [][]string{nil, {"--print"}} {
		dump := mustRun(t, append([]string{"dump", path}, format...)...)
		copyPath := filepath.Join(t.TempDir(), "copy.db")
		r := run(t, dump, "load", copyPath)
		wantCode(t, r, exitOK)
		if !strings.Contains(r.stdout, "loaded 39 keys in 6 bucket sections, 1 transaction into") {
			t.Errorf("load summary: %q", r.stdout)
		}
		if again := mustRun(t, append([]string{"dump", copyPath}, format...)...); again != dump {
			t.Errorf("dump %v of the loaded copy differs:\n%s\n--- want\n%s", format, again, dump)
		}
		mustRun(t, "check", copyPath)
	}
}

// TestLMDBRoundTrip carries data mapkv -> LMDB -> mapkv with Debian's
// lmdb-utils: mapkv dump | mdb_load, mdb_dump -a | mapkv load, and
// compares the dumps byte for byte.
func TestLMDBRoundTrip(t *testing.T) {
	mdbLoad, err1 := exec.LookPath("mdb_load")
	mdbDump, err2 := exec.LookPath("mdb_dump")
	if err1 != nil || err2 != nil {
		t.Skip("mdb_load and mdb_dump not installed (apt-get install lmdb-utils): the LMDB round trip is not tested")
	}
	path := fixtureFile(t)
	for _, print := range []bool{false, true} {
		args := []string{"dump", path}
		lmdbArgs := []string{"-n", "-a"}
		if print {
			args = append(args, "--print")
			lmdbArgs = append(lmdbArgs, "-p")
		}
		dump := mustRun(t, args...)
		// LMDB has no bucket sequence numbers: they do not survive.
		want := regexp.MustCompile(`(?m)^sequence=\d+\n`).ReplaceAllString(dump, "")

		dir := t.TempDir()
		env := filepath.Join(dir, "lmdb.mdb")
		load := exec.Command(mdbLoad, "-n", env)
		load.Stdin = strings.NewReader(dump)
		if out, err := load.CombinedOutput(); err != nil {
			t.Fatalf("mdb_load: %v\n%s", err, out)
		}
		lmdbDump, err := exec.Command(mdbDump, append(lmdbArgs, env)...).Output()
		if err != nil {
			t.Fatalf("mdb_dump: %v", err)
		}
		back := filepath.Join(dir, "back.db")
		r := run(t, string(lmdbDump), "load", back)
		wantCode(t, r, exitOK)
		if r.stderr != "" {
			t.Errorf("load of mdb_dump's output warned: %s", r.stderr)
		}
		got := mustRun(t, append([]string{"dump", back}, args[2:]...)...)
		if got != want {
			t.Errorf("print=%v: mapkv -> LMDB -> mapkv changed the data:\n%s\n--- want\n%s", print, got, want)
		}
	}
}
