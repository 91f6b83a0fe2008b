package mapkv_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"

	"github.com/mapkv/mapkv"
)

// TestFill checks the space promises: sequential inserts fill leaves to
// 15/16, leaving room for an insert so that a random insert after a bulk
// load does not split the leaf; random inserts keep the file under 1.7x
// the raw bytes.
func TestFill(t *testing.T) {
	const n = 200_000
	keys := make([][]byte, n)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range keys {
		keys[i] = binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(nil, rng.Uint64()), rng.Uint64())
	}
	raw := int64(n * (16 + 100))
	sorted := slices.Clone(keys)
	slices.SortFunc(sorted, bytes.Compare)
	for _, tc := range []struct {
		name string
		keys [][]byte
	}{{"sorted", sorted}, {"random", keys}} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "fill.db")
			db := mustOpen(t, path, &mapkv.Options{NoSync: true})
			load(t, db, tc.keys, 10000)
			var st mapkv.BucketStats
			db.View(func(tx *mapkv.Tx) error { st = tx.Bucket([]byte("bench")).Stats(); return nil })
			fill := float64(st.LeafInuse) / float64(st.LeafAlloc)
			// Space used by the data: its pages. The file also holds the
			// pages the last commits replaced, which the next ones reuse.
			used := st.LeafAlloc + st.BranchAlloc
			t.Logf("%s: leaf fill %.1f%%, data pages %.2fx the %d raw bytes; high-water mark %d pages", tc.name, 100*fill, float64(used)/float64(raw), raw, db.Stats().PageCount)
			if tc.name == "sorted" && (fill < 0.90 || fill > 0.96) {
				t.Errorf("sorted inserts fill leaves to %.1f%%, want 90%% to 96%%", 100*fill)
			}
			if r := float64(used) / float64(raw); r > 1.7 {
				t.Errorf("data pages are %.2fx the raw bytes, want <= 1.7", r)
			}
			mustCheck(t, db)
		})
	}
}

// TestLargeKeysAndValues stores the largest key at the smallest page size
// and a 256 MiB value (16 MiB with -short), and reads them back after
// reopening.
func TestLargeKeysAndValues(t *testing.T) {
	path := filepath.Join(t.TempDir(), "large.db")
	db, err := mapkv.Open(path, &mapkv.Options{PageSize: 1024, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	bigKey := bytes.Repeat([]byte("k"), mapkv.MaxKeySize)
	size := 256 << 20
	if testing.Short() || bits.UintSize == 32 {
		size = 16 << 20 // a 32-bit process has no room for several copies of 256 MiB
	}
	bigVal := make([]byte, size)
	for i := range bigVal {
		bigVal[i] = byte(i * 7)
	}
	err = db.Update(func(tx *mapkv.Tx) error {
		b, err := tx.CreateBucket([]byte("b"))
		if err != nil {
			return err
		}
		for i := 0; i < 20; i++ {
			k := append(slices.Clone(bigKey[:mapkv.MaxKeySize-2]), byte('a'+i/10), byte('0'+i%10))
			if err := b.Put(k, []byte(fmt.Sprint(i))); err != nil {
				return err
			}
		}
		if err := b.Put(bigKey, []byte("max key")); err != nil {
			return err
		}
		if err := b.Put(append(bigKey, 'x'), nil); !errors.Is(err, mapkv.ErrKeyTooLarge) {
			return fmt.Errorf("oversized key: %v", err)
		}
		return b.Put([]byte("big"), bigVal)
	})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	db = mustOpen(t, path, nil)
	err = db.View(func(tx *mapkv.Tx) error {
		b := tx.Bucket([]byte("b"))
		if string(b.Get(bigKey)) != "max key" {
			return errors.New("max-size key lost")
		}
		if v := b.Get([]byte("big")); !bytes.Equal(v, bigVal) {
			return fmt.Errorf("big value: got %d bytes", len(v))
		}
		n := 0
		for range b.All() {
			n++
		}
		if n != 22 {
			return fmt.Errorf("%d keys, want 22", n)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	mustCheck(t, db)
	// Deleting the big value frees its pages: a new value of the same size
	// reuses them instead of growing the file.
	before := fileSize(t, path)
	if err := db.Update(func(tx *mapkv.Tx) error { return tx.Bucket([]byte("b")).Delete([]byte("big")) }); err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *mapkv.Tx) error { return tx.Bucket([]byte("b")).Put([]byte("big2"), bigVal) }); err != nil {
		t.Fatal(err)
	}
	mustCheck(t, db)
	if after := fileSize(t, path); after > before+int64(size)/4 {
		t.Errorf("file grew from %d to %d bytes: the freed pages were not reused", before, after)
	}
}

// TestRemapUnderReaders makes the file outgrow a small reservation many
// times while a reader holds an old state: the reader's view stays intact
// and new readers see everything.
func TestRemapUnderReaders(t *testing.T) {
	db := mustOpen(t, "", &mapkv.Options{NoSync: true, MaxSize: 64 << 10, InitialSize: 16 << 10})
	if err := writeGeneration(db, 0); err != nil {
		t.Fatal(err)
	}
	old, err := db.Begin(false)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Rollback()
	for g := 1; g <= 30; g++ {
		if err := db.Update(func(tx *mapkv.Tx) error {
			b, err := tx.CreateBucketIfNotExists([]byte("grow"))
			if err != nil {
				return err
			}
			return b.Put([]byte(fmt.Sprint(g)), make([]byte, 20000))
		}); err != nil {
			t.Fatal(err)
		}
	}
	if db.Stats().RemapN == 0 {
		t.Fatal("the reservation was never outgrown")
	}
	if gen, err := readGeneration(old); err != nil || gen != "00000000" {
		t.Fatalf("old reader after remaps: %q, %v", gen, err)
	}
	mustCheck(t, db)
	t.Logf("%d remaps", db.Stats().RemapN)
}

// TestValueIsReadOnly writes into a value Get returned: the read-only
// mapping faults, and View returns the fault as an error instead of the
// process dying or the database changing.
func TestValueIsReadOnly(t *testing.T) {
	db := mustOpen(t, "", nil)
	if err := db.Update(func(tx *mapkv.Tx) error {
		b, err := tx.CreateBucket([]byte("b"))
		if err != nil {
			return err
		}
		return b.Put([]byte("k"), []byte("value"))
	}); err != nil {
		t.Fatal(err)
	}
	err := db.View(func(tx *mapkv.Tx) error {
		v := tx.Bucket([]byte("b")).Get([]byte("k"))
		v[0] = 'X' // must fault
		return nil
	})
	if !errors.Is(err, mapkv.ErrCorrupt) {
		t.Fatalf("writing into a returned value: %v, want a fault error", err)
	}
	if err := db.View(func(tx *mapkv.Tx) error {
		if v := tx.Bucket([]byte("b")).Get([]byte("k")); string(v) != "value" {
			return fmt.Errorf("value now %q", v)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}
