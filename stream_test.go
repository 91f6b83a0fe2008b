package mapkv_test

import (
	"errors"
	"fmt"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/mapkv/mapkv"
)

// sortedPut commits keys [from, to) in key order, step keys per commit,
// with values whose size varies with the key (so that leaves end at
// varied places and a commit's last leaf is sometimes small enough to be
// merged with the one before it, both built by the same commit).
func sortedPut(db *mapkv.DB, from, to, step int) error {
	for i := from; i < to; i += step {
		err := db.Update(func(tx *mapkv.Tx) error {
			b, err := tx.CreateBucketIfNotExists([]byte("s"))
			if err != nil {
				return err
			}
			for j := i; j < min(i+step, to); j++ {
				if err := b.Put(sortedKey(j), sortedVal(j)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

func sortedKey(i int) []byte { return []byte(fmt.Sprintf("k%09d", i)) }

func sortedVal(i int) []byte {
	v := make([]byte, 20+i*7919%400)
	for k := range v {
		v[k] = byte(i + k)
	}
	return v
}

// checkSorted checks that db holds exactly keys [0, n) with their values.
func checkSorted(t *testing.T, db *mapkv.DB, n int, when string) {
	t.Helper()
	err := db.View(func(tx *mapkv.Tx) error {
		b := tx.Bucket([]byte("s"))
		if b == nil {
			return errors.New("no bucket")
		}
		c := b.Cursor()
		i := 0
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if string(k) != string(sortedKey(i)) || string(v) != string(sortedVal(i)) {
				return fmt.Errorf("pair %d: %q (%d bytes), want %q (%d bytes)", i, k, len(v), sortedKey(i), len(sortedVal(i)))
			}
			i++
		}
		if i != n {
			return fmt.Errorf("%d pairs, want %d", i, n)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("%s: %v", when, err)
	}
	mustCheck(t, db)
}

// TestStreamedAppend loads keys in order, in commits whose nodes are
// written while their merges go on (the streamer), with page sizes that
// make runs of different lengths, and checks every pair before and after
// reopening.
func TestStreamedAppend(t *testing.T) {
	defer mapkv.SetStreamRuns(64<<10, 256<<10)()
	for _, ps := range []int{1024, 4096, 16384} {
		for _, step := range []int{700, 3000, 9000} {
			t.Run(fmt.Sprintf("page %d, %d keys a commit", ps, step), func(t *testing.T) {
				path := filepath.Join(t.TempDir(), "s.db")
				opts := &mapkv.Options{PageSize: ps}
				db, err := mapkv.Open(path, opts)
				if err != nil {
					t.Fatal(err)
				}
				const n = 30000
				if err := sortedPut(db, 0, n, step); err != nil {
					t.Fatal(err)
				}
				// 700 keys (about 160 KB) mostly fill no run of
				// streamChunk: their commits write their nodes after the
				// merge, as before.
				if step > 700 && mapkv.StreamedForTest(db) == 0 {
					t.Fatal("no node was written during a merge: the test does not test the streamer")
				}
				checkSorted(t, db, n, "after the load")
				if err := db.Close(); err != nil {
					t.Fatal(err)
				}
				db, err = mapkv.Open(path, opts)
				if err != nil {
					t.Fatal(err)
				}
				defer db.Close()
				checkSorted(t, db, n, "reopened")
			})
		}
	}
}

// TestFaultStreamedWrite makes the first data write of a commit in key
// order fail, a streamed run's (its merge writes before the commit
// does): the commit fails with the error even though the rest of its
// writes would succeed, the DB refuses writes, and it reopens at the
// commit before, which is whole.
func TestFaultStreamedWrite(t *testing.T) {
	defer mapkv.SetStreamRuns(64<<10, 256<<10)()
	path := filepath.Join(t.TempDir(), "f.db")
	opts := &mapkv.Options{PageSize: 4096}
	db, err := mapkv.Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := sortedPut(db, 0, 20000, 5000); err != nil {
		t.Fatal(err)
	}
	before := mapkv.StreamedForTest(db)
	failed := false
	restore := mapkv.SetWriteHook(func(*mapkv.DB, int64, int) error {
		if failed {
			return nil
		}
		failed = true
		return syscall.EIO
	})
	err = sortedPut(db, 20000, 25000, 5000)
	restore()
	if !errors.Is(err, syscall.EIO) {
		t.Fatalf("commit whose writes fail: %v, want EIO", err)
	}
	if got := mapkv.StreamedForTest(db); got != before {
		t.Fatalf("streamed bytes went from %d to %d through failing writes", before, got)
	}
	if err := sortedPut(db, 20000, 20001, 1); !errors.Is(err, mapkv.ErrFailed) {
		t.Fatalf("write after the failed commit: %v, want ErrFailed", err)
	}
	checkSorted(t, db, 20000, "after the failed commit")
	db.Close()
	db, err = mapkv.Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	checkSorted(t, db, 20000, "reopened")
	if err := sortedPut(db, 20000, 25000, 5000); err != nil {
		t.Fatalf("the same commit after reopening: %v", err)
	}
	checkSorted(t, db, 25000, "after the commit again")
}
