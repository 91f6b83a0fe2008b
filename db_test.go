package mapkv_test

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/mapkv/mapkv"
)

func mustOpen(t testing.TB, path string, opts *mapkv.Options) *mapkv.DB {
	t.Helper()
	if path == "" {
		path = filepath.Join(t.TempDir(), "test.db")
	}
	db, err := mapkv.Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func mustCheck(t testing.TB, db *mapkv.DB) {
	t.Helper()
	if err := db.Check(); err != nil {
		t.Fatalf("check: %v", err)
	}
}

// model is the in-memory reference a bucket is compared against.
type model struct {
	vals    map[string]string
	buckets map[string]*model
	seq     uint64
}

func newModel() *model { return &model{vals: map[string]string{}, buckets: map[string]*model{}} }

func (m *model) clone() *model {
	c := &model{vals: make(map[string]string, len(m.vals)), buckets: make(map[string]*model, len(m.buckets)), seq: m.seq}
	for k, v := range m.vals {
		c.vals[k] = v
	}
	for k, b := range m.buckets {
		c.buckets[k] = b.clone()
	}
	return c
}

// keys returns all keys (values and buckets) in order.
func (m *model) keys() []string {
	ks := make([]string, 0, len(m.vals)+len(m.buckets))
	for k := range m.vals {
		ks = append(ks, k)
	}
	for k := range m.buckets {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// compare checks bucket b against m completely: every key and value, in
// order in both directions, Get of each key, Seek, and nested buckets.
func compare(t *testing.T, b *mapkv.Bucket, m *model, path string) {
	t.Helper()
	want := m.keys()
	var got []string
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		got = append(got, string(k))
		if _, isB := m.buckets[string(k)]; isB != (v == nil) {
			t.Fatalf("%s: key %q: bucket=%v but value nil=%v", path, k, isB, v == nil)
		}
		if wv, ok := m.vals[string(k)]; ok && string(v) != wv {
			t.Fatalf("%s: key %q: cursor value %q, want %q", path, k, trunc(v), trunc([]byte(wv)))
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("%s: forward keys differ:\n got %d %q\nwant %d %q", path, len(got), truncList(got), len(want), truncList(want))
	}
	got = got[:0]
	for k, _ := c.Last(); k != nil; k, _ = c.Prev() {
		got = append(got, string(k))
	}
	slices.Reverse(got)
	if !slices.Equal(got, want) {
		t.Fatalf("%s: backward keys differ: got %d want %d", path, len(got), len(want))
	}
	for k, v := range m.vals {
		if g := b.Get([]byte(k)); g == nil || string(g) != v {
			t.Fatalf("%s: Get(%q) = %q, want %q", path, k, trunc(g), trunc([]byte(v)))
		}
	}
	for k, sub := range m.buckets {
		if b.Get([]byte(k)) != nil {
			t.Fatalf("%s: Get of bucket key %q not nil", path, k)
		}
		nb := b.Bucket([]byte(k))
		if nb == nil {
			t.Fatalf("%s: bucket %q missing", path, k)
		}
		if nb.Sequence() != sub.seq {
			t.Fatalf("%s/%s: sequence %d, want %d", path, k, nb.Sequence(), sub.seq)
		}
		compare(t, nb, sub, path+"/"+k)
	}
	// Seek to a few probes.
	for i := 0; i < 3 && len(want) > 0; i++ {
		probe := want[rand.IntN(len(want))] + "\x00"
		k, _ := c.Seek([]byte(probe))
		j := sort.SearchStrings(want, probe)
		if j == len(want) {
			if k != nil {
				t.Fatalf("%s: Seek(%q) = %q, want end", path, probe, k)
			}
		} else if string(k) != want[j] {
			t.Fatalf("%s: Seek(%q) = %q, want %q", path, probe, k, want[j])
		}
	}
}

func trunc(b []byte) string {
	if len(b) > 20 {
		return fmt.Sprintf("%q...(%d bytes)", b[:20], len(b))
	}
	return fmt.Sprintf("%q", b)
}

func truncList(s []string) []string {
	if len(s) > 10 {
		return append(slices.Clone(s[:10]), "...")
	}
	return s
}

// TestModel runs long random sequences of operations against the engine
// and an in-memory reference, comparing them after every step.
// MAPKV_MODEL_STEPS and MAPKV_MODEL_SEEDS make it longer.
func TestModel(t *testing.T) {
	for _, ps := range []int{1024, 4096, 65536} {
		for _, maxVal := range []int{16, 3000, 70000} {
			t.Run(fmt.Sprintf("page%d/val%d", ps, maxVal), func(t *testing.T) {
				t.Parallel()
				steps, seeds := 1500, 1
				if n, err := strconv.Atoi(os.Getenv("MAPKV_MODEL_STEPS")); err == nil {
					steps = n
				}
				if n, err := strconv.Atoi(os.Getenv("MAPKV_MODEL_SEEDS")); err == nil {
					seeds = n
				}
				for s := 0; s < seeds; s++ {
					runModel(t, ps, maxVal, steps, uint64(ps*31+maxVal+s*1000003), modelNoSync)
				}
			})
		}
	}
}

// TestModelWriteMap runs the model test with commits written through the
// writable mapping (Options.WriteMap) instead of pwritev.
func TestModelWriteMap(t *testing.T) {
	runModel(t, 4096, 3000, 1500, 99, modelWriteMap)
	runModel(t, 1024, 70000, 800, 98, modelWriteMap)
}

// TestModelLog runs the model test with synced commits and a small
// write-ahead log: small commits go through it and defer their free lists
// (Close writes them, reopens rebuild or read them), large ones write the
// data file and the whole list, and the log fills and is checkpointed.
// MAPKV_MODEL_STEPS makes it longer.
func TestModelLog(t *testing.T) {
	steps := 1500
	if n, err := strconv.Atoi(os.Getenv("MAPKV_MODEL_STEPS")); err == nil {
		steps = n
	}
	runModel(t, 1024, 3000, steps, 97, modelLog)
	runModel(t, 4096, 70000, steps/2, 96, modelLog)
}

// How runModel commits.
const (
	modelNoSync   = iota // NoSync: no flush, no log
	modelWriteMap        // NoSync through the writable mapping
	modelLog             // synced, through a 64 KiB write-ahead log
)

func runModel(t *testing.T, pageSize, maxVal, steps int, seed uint64, mode int) {
	rng := rand.New(rand.NewPCG(seed, 7))
	path := filepath.Join(t.TempDir(), "model.db")
	opts := &mapkv.Options{PageSize: pageSize, NoSync: true, InitialSize: 64 << 10, ShrinkThreshold: int64(8 * pageSize)}
	switch mode {
	case modelWriteMap:
		opts.WriteMap = true
	case modelLog:
		opts.NoSync, opts.WALSize = false, 64<<10
	}
	db, err := mapkv.Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { db.Close() }()
	committed := newModel()
	key := func() string {
		switch rng.IntN(4) {
		case 0:
			return fmt.Sprintf("k%05d", rng.IntN(3000))
		case 1:
			return string(randBytes(rng, 1+rng.IntN(40)))
		case 2:
			return fmt.Sprintf("seq%08d", rng.IntN(100000))
		}
		return fmt.Sprintf("k%05d", rng.IntN(200))
	}
	val := func() string {
		n := rng.IntN(64)
		if rng.IntN(8) == 0 {
			n = rng.IntN(maxVal + 1)
		}
		return string(randBytes(rng, n))
	}
	bucketNames := []string{"a", "b", "c", "nested", "\x00bin"}
	for step := 0; step < steps; {
		switch rng.IntN(20) {
		case 0: // reopen
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			if db, err = mapkv.Open(path, opts); err != nil {
				t.Fatalf("step %d: reopen: %v", step, err)
			}
			mustCheck(t, db)
			continue
		case 1: // move the tail down and cut it, as Close does
			if _, err := db.Shrink(); err != nil {
				t.Fatalf("step %d: shrink: %v", step, err)
			}
			if err := db.View(func(tx *mapkv.Tx) error { compareTx(t, tx, committed); return nil }); err != nil {
				t.Fatal(err)
			}
			mustCheck(t, db)
			continue
		}
		tx, err := db.Begin(true)
		if err != nil {
			t.Fatal(err)
		}
		work := committed.clone()
		nops := 1 + rng.IntN(60)
		if rng.IntN(10) == 0 {
			nops = 500 + rng.IntN(1500)
		}
		for i := 0; i < nops; i++ {
			step++
			// pick a bucket: top-level, or nested one level down
			name := bucketNames[rng.IntN(len(bucketNames))]
			bm, ok := work.buckets[name]
			b := tx.Bucket([]byte(name))
			if ok != (b != nil) {
				t.Fatalf("step %d: bucket %q exists=%v in db, %v in model", step, name, b != nil, ok)
			}
			if !ok {
				if b, err = tx.CreateBucket([]byte(name)); err != nil {
					t.Fatal(err)
				}
				bm = newModel()
				work.buckets[name] = bm
			}
			if rng.IntN(4) == 0 {
				sub := bucketNames[rng.IntN(len(bucketNames))]
				if sm, ok := bm.buckets[sub]; ok {
					b, bm = b.Bucket([]byte(sub)), sm
				} else if _, isVal := bm.vals[sub]; !isVal {
					nb, err := b.CreateBucket([]byte(sub))
					if err != nil {
						t.Fatalf("step %d: create nested: %v", step, err)
					}
					sm := newModel()
					bm.buckets[sub] = sm
					b, bm = nb, sm
				}
			}
			switch r := rng.IntN(100); {
			case r < 55:
				k, v := key(), val()
				err := b.Put([]byte(k), []byte(v))
				if _, isB := bm.buckets[k]; isB {
					if !errors.Is(err, mapkv.ErrIncompatibleValue) {
						t.Fatalf("step %d: put over bucket: %v", step, err)
					}
				} else if err != nil {
					t.Fatalf("step %d: put: %v", step, err)
				} else {
					bm.vals[k] = v
				}
			case r < 80:
				ks := bm.keys()
				k := key()
				if len(ks) > 0 && rng.IntN(2) == 0 {
					k = ks[rng.IntN(len(ks))]
				}
				err := b.Delete([]byte(k))
				if _, isB := bm.buckets[k]; isB {
					if !errors.Is(err, mapkv.ErrIncompatibleValue) {
						t.Fatalf("step %d: delete of bucket key: %v", step, err)
					}
				} else if err != nil {
					t.Fatal(err)
				} else {
					delete(bm.vals, k)
				}
			case r < 85: // delete through a cursor while walking
				c := b.Cursor()
				n := 0
				for k, v := c.First(); k != nil && n < 5; k, v = c.Next() {
					if v != nil && rng.IntN(3) == 0 {
						if err := c.Delete(); err != nil {
							t.Fatal(err)
						}
						delete(bm.vals, string(k))
						n++
					}
				}
			case r < 88:
				sq, err := b.NextSequence()
				if err != nil {
					t.Fatal(err)
				}
				bm.seq++
				if sq != bm.seq {
					t.Fatalf("sequence %d want %d", sq, bm.seq)
				}
			case r < 91: // delete a nested bucket
				for sub := range bm.buckets {
					if err := b.DeleteBucket([]byte(sub)); err != nil {
						t.Fatalf("step %d: delete bucket: %v", step, err)
					}
					delete(bm.buckets, sub)
					break
				}
			case r < 92: // delete a top-level bucket
				if err := tx.DeleteBucket([]byte(name)); err != nil {
					t.Fatalf("step %d: delete top bucket: %v", step, err)
				}
				delete(work.buckets, name)
			default:
				compareTx(t, tx, work)
			}
		}
		compareTx(t, tx, work)
		if rng.IntN(6) == 0 {
			if err := tx.Rollback(); err != nil {
				t.Fatal(err)
			}
		} else {
			if err := tx.Commit(); err != nil {
				t.Fatalf("step %d: commit: %v", step, err)
			}
			committed = work
		}
		if err := db.View(func(tx *mapkv.Tx) error { compareTx(t, tx, committed); return nil }); err != nil {
			t.Fatal(err)
		}
		if rng.IntN(10) == 0 {
			mustCheck(t, db)
		}
	}
	mustCheck(t, db)
}

func compareTx(t *testing.T, tx *mapkv.Tx, m *model) {
	t.Helper()
	var names []string
	if err := tx.ForEachBucket(func(name []byte, b *mapkv.Bucket) error {
		names = append(names, string(name))
		sub := m.buckets[string(name)]
		if sub == nil {
			t.Fatalf("unexpected bucket %q", name)
		}
		compare(t, b, sub, string(name))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(names) != len(m.buckets) {
		t.Fatalf("buckets %q, model has %d", names, len(m.buckets))
	}
	if err := tx.Err(); err != nil {
		t.Fatal(err)
	}
}

func randBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// TestSnapshotIsolation runs readers beside a writer: each reader must see
// exactly one committed state for its whole transaction.
func TestSnapshotIsolation(t *testing.T) {
	db := mustOpen(t, "", &mapkv.Options{NoSync: true, PageSize: 1024})
	const keys = 200
	// Every commit writes the same generation number under every key; a
	// reader must see one generation throughout.
	write := func(gen int) error {
		return db.Update(func(tx *mapkv.Tx) error {
			b, err := tx.CreateBucketIfNotExists([]byte("b"))
			if err != nil {
				return err
			}
			for i := 0; i < keys; i++ {
				v := fmt.Sprintf("%08d-%s", gen, bytes.Repeat([]byte{'x'}, i%50))
				if err := b.Put([]byte(fmt.Sprintf("key%04d", i)), []byte(v)); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err := write(0); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	errc := make(chan error, 8)
	for r := 0; r < 4; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				err := db.View(func(tx *mapkv.Tx) error {
					b := tx.Bucket([]byte("b"))
					var gen string
					n := 0
					for k, v := range b.All() {
						if gen == "" {
							gen = string(v[:8])
						} else if string(v[:8]) != gen {
							return fmt.Errorf("key %s: generation %s, earlier keys had %s", k, v[:8], gen)
						}
						n++
					}
					if n != keys {
						return fmt.Errorf("saw %d keys", n)
					}
					return nil
				})
				if err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	for gen := 1; gen <= 300; gen++ {
		if err := write(gen); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	select {
	case err := <-errc:
		t.Fatal(err)
	default:
	}
	mustCheck(t, db)
}

// TestShrink fills a database, empties it, and expects the file to shrink.
func TestShrink(t *testing.T) {
	path := filepath.Join(t.TempDir(), "shrink.db")
	db := mustOpen(t, path, &mapkv.Options{NoSync: true})
	val := make([]byte, 100)
	for tx := 0; tx < 20; tx++ {
		if err := db.Update(func(tx0 *mapkv.Tx) error {
			b, _ := tx0.CreateBucketIfNotExists([]byte("b"))
			for i := 0; i < 5000; i++ {
				if err := b.Put([]byte(fmt.Sprintf("%04d-%06d", tx, i)), val); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	full := fileSize(t, path)
	// The delete, a commit that releases its pages and moves the free
	// list down, one that cuts the file to the previous commit's end,
	// and one more for the cut to reach the last commit's.
	for i := 0; i < 4; i++ {
		if err := db.Update(func(tx *mapkv.Tx) error {
			if tx.Bucket([]byte("b")) != nil {
				return tx.DeleteBucket([]byte("b"))
			}
			c, err := tx.CreateBucketIfNotExists([]byte("c"))
			if err != nil {
				return err
			}
			return c.Put([]byte("k"), []byte("v"))
		}); err != nil {
			t.Fatal(err)
		}
	}
	empty := fileSize(t, path)
	t.Logf("full %d bytes, after emptying %d bytes", full, empty)
	if empty > full/4 {
		t.Fatalf("file did not shrink: full %d, emptied %d", full, empty)
	}
	mustCheck(t, db)
}

func fileSize(t testing.TB, path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// shrinkFixture fills a database with values, overflow values and a nested
// bucket, then deletes most of it, so that much of the file is free and
// live nodes remain near its end. It returns what is left.
func shrinkFixture(t *testing.T, db *mapkv.DB) map[string]string {
	t.Helper()
	rng := rand.New(rand.NewPCG(5, 5))
	want := map[string]string{}
	err := db.Update(func(tx *mapkv.Tx) error {
		a, err := tx.CreateBucket([]byte("a"))
		if err != nil {
			return err
		}
		n, err := a.CreateBucket([]byte("nested"))
		if err != nil {
			return err
		}
		b, err := tx.CreateBucket([]byte("b"))
		if err != nil {
			return err
		}
		for i := range 20000 {
			k, v := fmt.Sprintf("k%06d", rng.IntN(1e6)), string(randBytes(rng, 100))
			want["a/"+k] = v
			if err := a.Put([]byte(k), []byte(v)); err != nil {
				return err
			}
			if i%10 == 0 {
				want["a/nested/"+k] = v
				if err := n.Put([]byte(k), []byte(v)); err != nil {
					return err
				}
			}
			if i%400 == 0 {
				v := string(randBytes(rng, 10000))
				want["b/"+k] = v
				if err := b.Put([]byte(k), []byte(v)); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Delete in several commits, as an application would.
	keys := slices.Sorted(maps.Keys(want))
	rng.Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
	del := keys[:len(keys)*9/10]
	for len(del) > 0 {
		chunk := del[:min(len(del), 3000)]
		del = del[len(chunk):]
		err := db.Update(func(tx *mapkv.Tx) error {
			for _, p := range chunk {
				parts := strings.Split(p, "/")
				b := tx.Bucket([]byte(parts[0]))
				for _, name := range parts[1 : len(parts)-1] {
					b = b.Bucket([]byte(name))
				}
				if err := b.Delete([]byte(parts[len(parts)-1])); err != nil {
					return err
				}
				delete(want, p)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return want
}

// dumpAll returns every value in db by bucket path and key.
func dumpAll(t *testing.T, db *mapkv.DB) map[string]string {
	t.Helper()
	got := map[string]string{}
	var walk func(prefix string, b *mapkv.Bucket) error
	walk = func(prefix string, b *mapkv.Bucket) error {
		return b.ForEach(func(k, v []byte) error {
			if v == nil {
				return walk(prefix+string(k)+"/", b.Bucket(k))
			}
			got[prefix+string(k)] = string(v)
			return nil
		})
	}
	err := db.View(func(tx *mapkv.Tx) error {
		return tx.ForEachBucket(func(name []byte, b *mapkv.Bucket) error { return walk(string(name)+"/", b) })
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestShrinkMovesTheTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "shrink.db")
	opts := &mapkv.Options{NoSync: true, ShrinkThreshold: 64 << 10}
	db := mustOpen(t, path, opts)
	want := shrinkFixture(t, db)
	full := fileSize(t, path)

	// A reader open across Shrink keeps its state, and the file is not
	// cut beneath it.
	rtx, err := db.Begin(false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Shrink(); err != nil {
		t.Fatal(err)
	}
	if got := fileSize(t, path); got < rtx.Size() {
		t.Fatalf("file cut to %d bytes beneath a reader of a %d-byte image", got, rtx.Size())
	}
	var buf bytes.Buffer
	if _, err := rtx.WriteTo(&buf); err != nil {
		t.Fatalf("reader's snapshot after Shrink: %v", err)
	}
	rtx.Rollback()

	cut, err := db.Shrink()
	if err != nil {
		t.Fatal(err)
	}
	small := fileSize(t, path)
	if cut <= 0 || small > full/3 {
		t.Fatalf("Shrink cut %d bytes: file %d -> %d bytes, want at most a third", cut, full, small)
	}
	mustCheck(t, db)
	if got := dumpAll(t, db); !maps.Equal(got, want) {
		t.Fatalf("after Shrink: %d entries, want %d", len(got), len(want))
	}
	// Little more to gain: a second Shrink cuts at most a little.
	if cut2, err := db.Shrink(); err != nil || cut2 > cut/10 {
		t.Fatalf("second Shrink: cut %d after %d, %v", cut2, cut, err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = mustOpen(t, path, opts)
	defer db.Close()
	mustCheck(t, db)
	if got := dumpAll(t, db); !maps.Equal(got, want) {
		t.Fatalf("after reopening: %d entries, want %d", len(got), len(want))
	}
}

func TestCloseShrinks(t *testing.T) {
	path := filepath.Join(t.TempDir(), "close.db")
	opts := &mapkv.Options{NoSync: true, ShrinkThreshold: 64 << 10}
	db := mustOpen(t, path, opts)
	want := shrinkFixture(t, db)
	full := fileSize(t, path)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if got := fileSize(t, path); got > full/3 {
		t.Fatalf("Close left %d bytes of %d, want at most a third", got, full)
	}
	db = mustOpen(t, path, opts)
	defer db.Close()
	mustCheck(t, db)
	if got := dumpAll(t, db); !maps.Equal(got, want) {
		t.Fatalf("after Close: %d entries, want %d", len(got), len(want))
	}
	ro := mustOpen(t, path, &mapkv.Options{ReadOnly: true})
	defer ro.Close()
	if _, err := ro.Shrink(); !errors.Is(err, mapkv.ErrDatabaseReadOnly) {
		t.Fatalf("Shrink on a read-only handle: %v", err)
	}
}

// TestDeleteBucketThenPut deletes a nested bucket and puts a value under
// its name in the same transaction: the commit must succeed (it failed
// with a false ErrCorrupt: the writer saw a value replace a bucket
// element). The pending changes take three paths: in order, out of order
// (sorted at commit) and in the B-tree an unordered set moves to after
// being read twice.
func TestDeleteBucketThenPut(t *testing.T) {
	for _, tc := range []struct {
		name   string
		before func(b *mapkv.Bucket)
	}{
		{"in-order", func(*mapkv.Bucket) {}},
		{"unordered", func(b *mapkv.Bucket) { b.Put([]byte("z"), []byte("1")); b.Put([]byte("a"), []byte("1")) }},
		{"tree", func(b *mapkv.Bucket) {
			b.Put([]byte("z"), []byte("1"))
			b.Put([]byte("a"), []byte("1"))
			b.Get([]byte("a")) // sorts the set
			b.Put([]byte("c"), []byte("1"))
			b.Put([]byte("b"), []byte("1"))
			b.Get([]byte("b")) // unordered again: moves it to a B-tree
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "db")
			db := mustOpen(t, path, nil)
			if err := db.Update(func(tx *mapkv.Tx) error {
				b, err := tx.CreateBucket([]byte("top"))
				if err != nil {
					return err
				}
				x, err := b.CreateBucket([]byte("x"))
				if err != nil {
					return err
				}
				return x.Put([]byte("inner"), []byte("v"))
			}); err != nil {
				t.Fatal(err)
			}
			if err := db.Update(func(tx *mapkv.Tx) error {
				b := tx.Bucket([]byte("top"))
				tc.before(b)
				if err := b.DeleteBucket([]byte("x")); err != nil {
					return err
				}
				return b.Put([]byte("x"), []byte("value"))
			}); err != nil {
				t.Fatalf("delete a bucket, then put a value under its name: %v", err)
			}
			check := func(db *mapkv.DB) {
				t.Helper()
				if err := db.View(func(tx *mapkv.Tx) error {
					b := tx.Bucket([]byte("top"))
					if got := string(b.Get([]byte("x"))); got != "value" || b.Bucket([]byte("x")) != nil {
						return fmt.Errorf("x = %q, bucket %v; want the value", got, b.Bucket([]byte("x")) != nil)
					}
					return nil
				}); err != nil {
					t.Fatal(err)
				}
				mustCheck(t, db)
			}
			check(db)
			db.Close()
			db = mustOpen(t, path, nil)
			defer db.Close()
			check(db)
		})
	}
}

// TestScanFlaggedElements: a read transaction's cursor steps within a
// leaf on a fast path of its own (Cursor.Next); keys that name nested
// buckets (nil value) and values kept in overflow nodes (the whole value,
// not the reference the leaf holds) must come back as they do from Get
// and from the general path, in both directions, wherever they sit in a
// leaf.
func TestScanFlaggedElements(t *testing.T) {
	db := mustOpen(t, filepath.Join(t.TempDir(), "flagged.db"), &mapkv.Options{PageSize: 1024})
	defer db.Close()
	big := func(i int) []byte { return bytes.Repeat([]byte{byte('A' + i%26)}, 700+i) }
	const n = 300
	if err := db.Update(func(tx *mapkv.Tx) error {
		b, err := tx.CreateBucket([]byte("b"))
		if err != nil {
			return err
		}
		for i := range n {
			k := fmt.Appendf(nil, "k%04d", i)
			switch i % 7 {
			case 3:
				if _, err := b.CreateBucket(k); err != nil {
					return err
				}
			case 5:
				err = b.Put(k, big(i))
			default:
				err = b.Put(k, fmt.Appendf(nil, "v%d", i))
			}
			if err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	want := func(i int) []byte {
		switch i % 7 {
		case 3:
			return nil
		case 5:
			return big(i)
		}
		return fmt.Appendf(nil, "v%d", i)
	}
	if err := db.View(func(tx *mapkv.Tx) error {
		b := tx.Bucket([]byte("b"))
		i := 0
		c := b.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if string(k) != fmt.Sprintf("k%04d", i) || !bytes.Equal(v, want(i)) || (v == nil) != (i%7 == 3) {
				return fmt.Errorf("forward step %d: key %q, value of %d bytes (%.8q); want k%04d, %d bytes", i, k, len(v), v, i, len(want(i)))
			}
			if g := b.Get(k); !bytes.Equal(g, v) {
				return fmt.Errorf("key %q: Next gave %d bytes, Get %d", k, len(v), len(g))
			}
			i++
		}
		if i != n {
			return fmt.Errorf("forward scan saw %d keys, want %d", i, n)
		}
		for k, v := c.Last(); k != nil; k, v = c.Prev() {
			i--
			if string(k) != fmt.Sprintf("k%04d", i) || !bytes.Equal(v, want(i)) {
				return fmt.Errorf("backward step at %d: key %q, value of %d bytes", i, k, len(v))
			}
		}
		return tx.Err()
	}); err != nil {
		t.Fatal(err)
	}
}

// TestCursorMovesModel: random runs of First, Last, Next, Prev, Seek
// and Delete on one cursor, over a bucket of many leaves holding nested
// buckets and overflow values, land where a sorted list of the keys says,
// in read transactions (where Next steps within a leaf on its own fields
// and hands the position back to the tree cursor before any other move)
// and in write transactions; a read cursor whose transaction has ended
// returns nil.
func TestCursorMovesModel(t *testing.T) {
	db := mustOpen(t, filepath.Join(t.TempDir(), "moves.db"), &mapkv.Options{PageSize: 1024})
	r := rand.New(rand.NewPCG(7, 7))
	val := func(i int) []byte {
		if i%11 == 5 {
			return bytes.Repeat([]byte{byte(i)}, 900) // an overflow value
		}
		return fmt.Appendf(nil, "v%d", i)
	}
	var keys []string
	if err := db.Update(func(tx *mapkv.Tx) error {
		b, err := tx.CreateBucket([]byte("b"))
		if err != nil {
			return err
		}
		for i := range 2000 {
			k := fmt.Sprintf("k%05d", i*3)
			keys = append(keys, k)
			if i%13 == 4 {
				_, err = b.CreateBucket([]byte(k))
			} else {
				err = b.Put([]byte(k), val(i))
			}
			if err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	index := func(k string) int { return sort.SearchStrings(keys, k) }
	check := func(what string, pos int, k, v []byte) error {
		if pos < 0 || pos >= len(keys) {
			if k != nil {
				return fmt.Errorf("%s: got key %q, want the end", what, k)
			}
			return nil
		}
		var i int
		fmt.Sscanf(keys[pos], "k%05d", &i)
		i /= 3
		want := val(i)
		if i%13 == 4 {
			want = nil
		}
		if string(k) != keys[pos] || !bytes.Equal(v, want) {
			return fmt.Errorf("%s: got %q (%d bytes), want %q (%d bytes)", what, k, len(v), keys[pos], len(want))
		}
		return nil
	}
	isBucket := func(k string) bool {
		var n int
		fmt.Sscanf(k, "k%05d", &n)
		return (n/3)%13 == 4
	}
	moves := func(tx *mapkv.Tx, steps int) error {
		c := tx.Bucket([]byte("b")).Cursor()
		pos, valid := 0, false
		for step := range steps {
			var k, v []byte
			var what string
			switch op := r.IntN(20); {
			case op == 0:
				what, pos = "First", 0
				k, v = c.First()
			case op == 1:
				what, pos = "Last", len(keys)-1
				k, v = c.Last()
			case op == 2:
				s := fmt.Sprintf("k%05d", r.IntN(6100))
				what, pos = "Seek "+s, index(s)
				k, v = c.Seek([]byte(s))
			case op == 3 && tx.Writable() && valid && !isBucket(keys[pos]):
				if err := c.Delete(); err != nil {
					return fmt.Errorf("step %d: Delete at %q: %v", step, keys[pos], err)
				}
				keys = slices.Delete(keys, pos, pos+1)
				what = "Next after Delete" // the key after the deleted one
				k, v = c.Next()
			case op < 12:
				if !valid {
					continue
				}
				what = "Next"
				pos++
				k, v = c.Next()
			default:
				if !valid {
					continue
				}
				what = "Prev"
				pos--
				k, v = c.Prev()
			}
			if err := check(fmt.Sprintf("step %d: %s", step, what), pos, k, v); err != nil {
				return err
			}
			valid = k != nil
		}
		return tx.Err()
	}
	for round := range 4 {
		if err := db.View(func(tx *mapkv.Tx) error { return moves(tx, 20000) }); err != nil {
			t.Fatalf("read transaction, round %d: %v", round, err)
		}
	}
	if err := db.Update(func(tx *mapkv.Tx) error { return moves(tx, 5000) }); err != nil {
		t.Fatalf("write transaction: %v", err)
	}
	if err := db.View(func(tx *mapkv.Tx) error { return moves(tx, 20000) }); err != nil {
		t.Fatalf("read transaction after the deletes: %v", err)
	}

	// A cursor kept past its transaction: every move returns nil.
	var c *mapkv.Cursor
	if err := db.View(func(tx *mapkv.Tx) error {
		c = tx.Bucket([]byte("b")).Cursor()
		c.First()
		c.Next()
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if k, _ := c.Next(); k != nil {
		t.Fatalf("Next after the transaction ended returned %q", k)
	}
	if k, _ := c.Prev(); k != nil {
		t.Fatalf("Prev after the transaction ended returned %q", k)
	}
}

// TestLayoutFollowsTransactions: the same transactions, over nested
// buckets, build byte-identical files. A commit merged its dirty nested
// buckets in Go's map order, so where their nodes went changed from run
// to run (and with it which flush a power-loss test's cut landed in).
func TestLayoutFollowsTransactions(t *testing.T) {
	build := func(path string) []byte {
		db := mustOpen(t, path, &mapkv.Options{PageSize: 1024})
		for i := 0; i < 20; i++ {
			if err := db.Update(func(tx *mapkv.Tx) error {
				top, err := tx.CreateBucketIfNotExists([]byte("top"))
				if err != nil {
					return err
				}
				for b := 0; b < 12; b++ {
					nb, err := top.CreateBucketIfNotExists([]byte(fmt.Sprintf("nested-%02d", b)))
					if err != nil {
						return err
					}
					for k := 0; k < 5; k++ {
						if err := nb.Put([]byte(fmt.Sprintf("k%03d-%d", i, k)), []byte(fmt.Sprintf("v%d-%d-%d", i, b, k))); err != nil {
							return err
						}
					}
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	dir := t.TempDir()
	first := build(filepath.Join(dir, "a.db"))
	for run := 0; run < 3; run++ {
		if !bytes.Equal(build(filepath.Join(dir, fmt.Sprintf("b%d.db", run))), first) {
			t.Fatalf("run %d: the same transactions built a different file", run+1)
		}
	}
}
