package mapkv_test

// Fuzzing a mutated database file. FuzzOpen takes the bytes as they come:
// almost every mutation breaks a checksum, so it mostly exercises meta
// decoding and the choice of meta. FuzzOpenSealed re-seals every node and
// meta after the mutation and marks the metas as flushed before they were
// written, so that Open trusts them and the mutated structure reaches the
// tree decoders, Check, the cursors and the writer. Either way: Open fails
// with ErrCorrupt or opens, and then nothing panics; and a file Check
// passes reads without error (every key ForEach yields, Get finds, and
// backward walks agree).
//
//	go test -run '^$' -fuzz '^FuzzOpen$' -fuzztime 10m .
//	go test -run '^$' -fuzz '^FuzzOpenSealed$' -fuzztime 10m .
//
// The seed corpus is built here (an empty database, a small one with
// nested buckets and an overflow value, one with a two-level tree) and
// kept in testdata/fuzz/FuzzOpen; MAPKV_UPDATE_CORPUS=1 rewrites it.

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/mapkv/mapkv"
	"github.com/mapkv/mapkv/page"
)

// relFuzzSeeds returns small database files: an empty one, one with
// buckets, nested buckets and an overflow value, and one with a deeper
// tree.
func relFuzzSeeds(t testing.TB) [][]byte {
	var out [][]byte
	dir := t.TempDir()
	build := func(name string, fill func(tx *mapkv.Tx) error) {
		path := filepath.Join(dir, name)
		db, err := mapkv.Open(path, &mapkv.Options{PageSize: 1024, InitialSize: 2048, GrowStep: 1024, ShrinkThreshold: 1024})
		if err != nil {
			t.Fatal(err)
		}
		if fill != nil {
			if err := db.Update(fill); err != nil {
				t.Fatal(err)
			}
			// A second commit, so that both metas and the free list matter.
			if err := db.Update(func(tx *mapkv.Tx) error {
				b, err := tx.CreateBucketIfNotExists([]byte("z"))
				if err != nil {
					return err
				}
				return b.Put([]byte("last"), []byte("commit"))
			}); err != nil {
				t.Fatal(err)
			}
		}
		db.Close()
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	build("empty.db", nil)
	build("small.db", func(tx *mapkv.Tx) error {
		b, err := tx.CreateBucket([]byte("a"))
		if err != nil {
			return err
		}
		for i := 0; i < 12; i++ {
			if err := b.Put([]byte(fmt.Sprintf("k%02d", i)), []byte(fmt.Sprintf("value %d", i))); err != nil {
				return err
			}
		}
		n, err := b.CreateBucket([]byte("nested"))
		if err != nil {
			return err
		}
		if err := n.Put([]byte("big"), make([]byte, 700)); err != nil {
			return err
		}
		_, err = n.NextSequence()
		return err
	})
	build("deep.db", func(tx *mapkv.Tx) error {
		b, err := tx.CreateBucket([]byte("d"))
		if err != nil {
			return err
		}
		for i := 0; i < 150; i++ {
			if err := b.Put([]byte(fmt.Sprintf("%04d", i)), []byte("vv")); err != nil {
				return err
			}
		}
		return nil
	})
	return out
}

func relFuzzCorpus(f *testing.F, name string) {
	seeds := relFuzzSeeds(f)
	for _, s := range seeds {
		f.Add(s)
	}
	if os.Getenv("MAPKV_UPDATE_CORPUS") == "" || name != "FuzzOpen" {
		return // FuzzOpenSealed starts from the same files, added above
	}
	dir := filepath.Join("testdata", "fuzz", name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		f.Fatal(err)
	}
	for i, s := range seeds {
		body := "go test fuzz v1\n[]byte(" + strconv.Quote(string(s)) + ")\n"
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%d", i)), []byte(body), 0o644); err != nil {
			f.Fatal(err)
		}
	}
}

// relFuzzOpen writes data to a file, opens it and runs everything over it.
func relFuzzOpen(t *testing.T, data []byte) {
	path := filepath.Join(t.TempDir(), "fuzz.db")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	db, err := mapkv.Open(path, &mapkv.Options{PageSize: 1024, InitialSize: 2048, NoSync: true})
	if err != nil {
		if len(data) > 0 && !errors.Is(err, mapkv.ErrCorrupt) {
			t.Fatalf("Open: %v does not wrap ErrCorrupt", err)
		}
		return
	}
	defer db.Close()
	if _, p := mapkv.WarmupForTest(db); p != nil {
		t.Fatalf("the warm-up panicked: %v", p)
	}
	checkErr := db.Check()
	if checkErr != nil && !errors.Is(checkErr, mapkv.ErrCorrupt) {
		t.Fatalf("Check: %v does not wrap ErrCorrupt", checkErr)
	}
	if checkErr == nil {
		// What Check passes, every reader must be able to read.
		if _, err := relDumpDB(db); err != nil {
			t.Fatalf("Check is clean, but reading fails: %v", err)
		}
	}
	relAbuse(t, db)
}

// relReseal fixes the checksum of every node and meta in b, and marks
// each meta that then decodes as written after its data was flushed.
func relReseal(b []byte) {
	ps := page.MinPageSize
	if m, err := page.DecodeMeta(b, 0); err == nil {
		ps = int(m.PageSize)
	}
	for slot := 0; slot < 2; slot++ {
		off := slot * ps
		if off+page.MetaSize > len(b) {
			break
		}
		mb := b[off : off+page.MetaSize]
		page.Seal(mb)
		if m, err := page.DecodeMeta(mb, page.ID(slot)); err == nil {
			m.Flags |= page.MetaSynced
			page.PutMeta(b[off:], page.ID(slot), &m)
		}
	}
	for id := 2; (id+1)*ps <= len(b); {
		n := 1 + int(page.Overflow(b[id*ps:]))
		if n < 1 || (id+n)*ps > len(b) {
			id++
			continue
		}
		page.Seal(b[id*ps : (id+n)*ps])
		id += n
	}
}

func relFuzzCatch(t *testing.T, what string, fn func()) { relCatch(t, what, fn) }

func FuzzOpen(f *testing.F) {
	relFuzzCorpus(f, "FuzzOpen")
	f.Fuzz(func(t *testing.T, data []byte) {
		relFuzzCatch(t, "FuzzOpen", func() { relFuzzOpen(t, data) })
	})
}

func FuzzOpenSealed(f *testing.F) {
	relFuzzCorpus(f, "FuzzOpenSealed")
	f.Fuzz(func(t *testing.T, data []byte) {
		b := append([]byte(nil), data...)
		relReseal(b)
		relFuzzCatch(t, "FuzzOpenSealed", func() { relFuzzOpen(t, b) })
	})
}
