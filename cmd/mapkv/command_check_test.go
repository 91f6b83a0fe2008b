package main

import (
	"bytes"
	"flag"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
)

func TestCheckClean(t *testing.T) {
	path := fixtureFile(t)
	golden(t, "check-clean.txt", normalize(mustRun(t, "check", path), path, "fixture.db"))
	var r checkReport
	mustJSON(t, mustRun(t, "check", "--json", path), &r)
	if !r.OK || len(r.Problems) != 0 || r.TxID != 7 {
		t.Errorf("check --json = %+v", r)
	}
}

// leafOf returns the id of a leaf page of bucket owner that an older
// commit than the newest wrote: damaging it does not make Open fall back
// to the previous meta, so Check is what must find it.
func leafOf(t *testing.T, path, owner string) uint64 {
	t.Helper()
	var rows []pageRow
	mustJSON(t, mustRun(t, "pages", "--json", path), &rows)
	var newest uint64
	for _, r := range rows {
		newest = max(newest, r.TxID)
	}
	for _, r := range rows {
		if r.Type == "leaf" && r.Owner == owner && r.TxID < newest {
			return r.ID
		}
	}
	t.Fatalf("no leaf of %s older than tx %d", owner, newest)
	return 0
}

func flipBytes(t *testing.T, path string, off int64, n int) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, n)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	for i := range b {
		b[i] ^= 0xff
	}
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

func TestCheckCorrupt(t *testing.T) {
	path := fixtureFile(t)
	id := leafOf(t, path, "bucket bin")
	flipBytes(t, path, int64(id)*4096+200, 4)

	r := run(t, "", "check", path)
	wantCode(t, r, exitCorrupt)
	if !strings.Contains(r.stdout, "checksum mismatch") || !strings.Contains(r.stdout, "bin") {
		t.Errorf("check report does not name the damage:\n%s", r.stdout)
	}
	golden(t, "check-corrupt.txt", normalize(r.stdout, path, "fixture.db"))

	r = run(t, "", "check", "--json", path)
	wantCode(t, r, exitCorrupt)
	var rep checkReport
	mustJSON(t, r.stdout, &rep)
	if rep.OK || len(rep.Problems) == 0 {
		t.Errorf("check --json on a damaged file = %+v", rep)
	}
}

func TestCheckUnopenable(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string][]byte{
		"empty.db":   nil,
		"garbage.db": bytes.Repeat([]byte("not a database "), 1000),
		"short.db":   []byte("x"),
	} {
		p := dir + "/" + name
		if err := os.WriteFile(p, content, 0o600); err != nil {
			t.Fatal(err)
		}
		r := run(t, "", "check", p)
		wantCode(t, r, exitCorrupt)
		if !strings.Contains(r.stdout, "problem") {
			t.Errorf("%s: check printed no report:\n%s", name, r.stdout)
		}
	}
	// Both metas destroyed.
	path := fixtureFile(t)
	flipBytes(t, path, 40, 8)
	flipBytes(t, path, 4096+40, 8)
	wantCode(t, run(t, "", "check", path), exitCorrupt)
	// Not corruption: a missing file is an ordinary error.
	wantCode(t, run(t, "", "check", dir+"/missing.db"), exitError, "no such file")
}

var damageN = flag.Int("damage", 150, "number of damaged files TestNoPanicOnDamage tries")

// TestNoPanicOnDamage damages the fixture in many ways (bytes flipped or
// zeroed at random places, the file cut short) and runs every read
// command on each result: whatever they say, none may panic (run fails
// the test on the exit status of a panic), and check must exit 0 or 3.
func TestNoPanicOnDamage(t *testing.T) {
	orig, err := os.ReadFile(fixtureFile(t))
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	used := 16 * 4096 // the fixture's pages, past them the file is zero
	dir := t.TempDir()
	n := *damageN
	if testing.Short() {
		n = min(n, 30)
	}
	for i := 0; i < n; i++ {
		b := append([]byte(nil), orig...)
		switch i % 4 {
		case 0: // a burst of random bytes in one page
			off := rng.IntN(used - 64)
			for j := 0; j < 1+rng.IntN(32); j++ {
				b[off+j] = byte(rng.Uint32())
			}
		case 1: // single bits flipped anywhere in use
			for j := 0; j < 1+rng.IntN(4); j++ {
				b[rng.IntN(used)] ^= 1 << rng.IntN(8)
			}
		case 2: // a header field rewritten (counts, overflow, type, ids)
			page := 2 + rng.IntN(14)
			off := page*4096 + 8 + rng.IntN(24)
			b[off] = byte(rng.Uint32())
		case 3: // cut short
			b = b[:rng.IntN(used)]
		}
		p := dir + "/damaged.db"
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if r := run(t, "", "check", p); r.code != exitOK && r.code != exitCorrupt {
			t.Errorf("variant %d: check exit %d: %s", i, r.code, r.stderr)
		}
		for _, args := range [][]string{
			{"info", p}, {"stats", p}, {"buckets", p}, {"keys", p, "users"}, {"get", p, "users", "user001"},
			{"dump", p}, {"pages", p}, {"page", p, "0-16"}, {"page", "--hex", p, "2-4"},
		} {
			run(t, "", args...) // exits as it may; a panic fails the test
		}
	}
}

// TestCheckFallback damages a page of the newest commit: Open then uses
// the previous commit, which is intact, and check says so without
// calling it corruption.
func TestCheckFallback(t *testing.T) {
	path := fixtureFile(t)
	var rows []pageRow
	mustJSON(t, mustRun(t, "pages", "--json", path), &rows)
	var id uint64
	for _, r := range rows {
		if r.Type == "leaf" && r.TxID == 7 {
			id = r.ID
		}
	}
	flipBytes(t, path, int64(id)*4096+100, 1)
	r := run(t, "", "check", path)
	wantCode(t, r, exitOK)
	if !strings.Contains(r.stdout, "note: using meta") || !strings.Contains(r.stdout, "at tx 6") {
		t.Errorf("check after damage to the newest commit:\n%s", r.stdout)
	}
}
