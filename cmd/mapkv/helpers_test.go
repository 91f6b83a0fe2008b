package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/mapkv/mapkv"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

// result is what one in-process run of the command printed and returned.
type result struct {
	stdout, stderr string
	code           int
}

// run executes the mapkv command line args in-process with stdin as its
// input.
func run(t testing.TB, stdin string, args ...string) result {
	t.Helper()
	return runCtx(t, context.Background(), strings.NewReader(stdin), args...)
}

func runCtx(t testing.TB, ctx context.Context, stdin interface{ Read([]byte) (int, error) }, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	code := execute(ctx, args, stdin, &out, &errb)
	if code == exitBug {
		t.Fatalf("mapkv %s: internal error (panic): %s", strings.Join(args, " "), errb.String())
	}
	return result{out.String(), errb.String(), code}
}

// mustRun runs args and fails the test unless they succeed.
func mustRun(t testing.TB, args ...string) string {
	t.Helper()
	r := run(t, "", args...)
	if r.code != 0 {
		t.Fatalf("mapkv %s: exit %d: %s", strings.Join(args, " "), r.code, r.stderr)
	}
	return r.stdout
}

// wantCode fails the test unless r exited with code and its stderr holds
// every one of msgs.
func wantCode(t testing.TB, r result, code int, msgs ...string) {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit %d, want %d; stdout:\n%s\nstderr:\n%s", r.code, code, r.stdout, r.stderr)
	}
	for _, m := range msgs {
		if !strings.Contains(r.stderr, m) {
			t.Errorf("stderr %q does not mention %q", r.stderr, m)
		}
	}
}

// mustJSON decodes the output of a --json command into v.
func mustJSON(t testing.TB, out string, v any) {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("output is not the expected JSON: %v\n%s", err, out)
	}
}

// golden compares got with testdata/golden/name, or rewrites the file
// under -update.
func golden(t testing.TB, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s (go test -update rewrites it):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// newDB creates a database at a fresh path with fixed options, runs each
// fn in its own write transaction, and closes it.
func newDB(t testing.TB, fns ...func(tx *mapkv.Tx) error) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "test.db")
	db, err := mapkv.Open(path, &mapkv.Options{PageSize: 4096})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, fn := range fns {
		if err := db.Update(fn); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// fixture builds the database most tests look at. Every transaction
// changes one bucket path only, so that the pages it writes, and so the
// golden files, do not depend on map iteration order in the engine.
//
//	users          40 keys, 10 of them deleted later (free pages)
//	users/archive  3 keys, sequence 7
//	bin            binary keys, an empty value, a key 0x00
//	big            a 10000-byte value (overflow pages), sequence 42
//	a/b            a bucket whose name holds a slash
//	empty          no keys
func fixture(t testing.TB) string {
	t.Helper()
	put := func(b *mapkv.Bucket, k, v string) error { return b.Put([]byte(k), []byte(v)) }
	return newDB(t,
		func(tx *mapkv.Tx) error {
			b, err := tx.CreateBucket([]byte("users"))
			if err != nil {
				return err
			}
			for i := 0; i < 40; i++ {
				if err := put(b, fmt.Sprintf("user%03d", i), fmt.Sprintf(`{"name":"user %d","admin":%v}`, i, i%7 == 0)); err != nil {
					return err
				}
			}
			return nil
		},
		func(tx *mapkv.Tx) error {
			b, err := tx.Bucket([]byte("users")).CreateBucket([]byte("archive"))
			if err != nil {
				return err
			}
			if err := b.SetSequence(7); err != nil {
				return err
			}
			for _, k := range []string{"old1", "old2", "old3"} {
				if err := put(b, k, "gone"); err != nil {
					return err
				}
			}
			return nil
		},
		func(tx *mapkv.Tx) error {
			b, err := tx.CreateBucket([]byte("bin"))
			if err != nil {
				return err
			}
			if err := put(b, "\x00", "zero key"); err != nil {
				return err
			}
			if err := put(b, "\x01\xff\x80", "\x00\x01\x02\\"); err != nil {
				return err
			}
			if err := put(b, "empty", ""); err != nil {
				return err
			}
			return put(b, "tab\there", "line\nbreak")
		},
		func(tx *mapkv.Tx) error {
			b, err := tx.CreateBucket([]byte("big"))
			if err != nil {
				return err
			}
			if err := b.SetSequence(42); err != nil {
				return err
			}
			v := bytes.Repeat([]byte("0123456789"), 1000)
			return b.Put([]byte("blob"), v)
		},
		func(tx *mapkv.Tx) error {
			b, err := tx.CreateBucket([]byte("a/b"))
			if err != nil {
				return err
			}
			return put(b, "k", "v")
		},
		func(tx *mapkv.Tx) error {
			_, err := tx.CreateBucket([]byte("empty"))
			return err
		},
		func(tx *mapkv.Tx) error {
			b := tx.Bucket([]byte("users"))
			for i := 0; i < 40; i += 4 {
				if err := b.Delete([]byte(fmt.Sprintf("user%03d", i))); err != nil {
					return err
				}
			}
			return nil
		},
	)
}

var (
	fixtureOnce  sync.Once
	fixtureBytes []byte
)

// fixtureFile returns a fresh copy of the fixture (built once per test
// binary) in a directory of t's: tests may change or damage it.
func fixtureFile(t testing.TB) string {
	t.Helper()
	fixtureOnce.Do(func() {
		b, err := os.ReadFile(fixture(t))
		if err != nil {
			t.Fatal(err)
		}
		fixtureBytes = b
	})
	if fixtureBytes == nil {
		t.Fatal("building the fixture failed")
	}
	path := filepath.Join(t.TempDir(), "fixture.db")
	if err := os.WriteFile(path, fixtureBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// normalize replaces a temporary path in command output with a fixed name.
func normalize(out, path, name string) string {
	return strings.ReplaceAll(out, path, name)
}

func statFile(path string) (os.FileInfo, error) { return os.Stat(path) }

// leftovers returns the files in dir other than those named in want and
// the engine's lock files beside them (NAME-lock).
func leftovers(t testing.TB, dir string, want ...string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	ok := map[string]bool{}
	for _, w := range want {
		ok[w], ok[w+"-lock"] = true, true
	}
	var out []string
	for _, e := range ents {
		if !ok[e.Name()] {
			out = append(out, e.Name())
		}
	}
	return out
}
