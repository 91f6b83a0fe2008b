//go:build linux

package mapkv_test

import (
	"encoding/binary"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/mapkv/mapkv"
)

// warmDB writes a database of 40,001 keys, 40,000 in random order
// (100-byte values), in two top-level buckets and one nested bucket, and returns
// its path and the bytes of its pages in use (Tx.Size).
func warmDB(t *testing.T) (string, int64) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "warm.db")
	db, err := mapkv.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	for c := 0; c < 8; c++ {
		err := db.Update(func(tx *mapkv.Tx) error {
			a, err := tx.CreateBucketIfNotExists([]byte("a"))
			if err != nil {
				return err
			}
			b, err := tx.CreateBucketIfNotExists([]byte("b"))
			if err != nil {
				return err
			}
			nb, err := b.CreateBucketIfNotExists([]byte("nested"))
			if err != nil {
				return err
			}
			k := make([]byte, 16)
			for i := 0; i < 5000; i++ {
				binary.BigEndian.PutUint64(k, r.Uint64())
				binary.BigEndian.PutUint64(k[8:], r.Uint64())
				dst := []*mapkv.Bucket{a, b, nb}[i%3]
				if err := dst.Put(k, make([]byte, 100)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	// A last commit of one key: Open verifies the nodes of the last
	// commit (written with a single flush), and reads little of the file.
	err = db.Update(func(tx *mapkv.Tx) error { return tx.Bucket([]byte("a")).Put([]byte("last"), []byte("1")) })
	if err != nil {
		t.Fatal(err)
	}
	var size int64
	err = db.View(func(tx *mapkv.Tx) error {
		size = tx.Size()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	return path, size
}

// openWarmed opens the database at path and waits for its warm-up; it
// returns how many pages the warm-up read.
func openWarmed(t *testing.T, path string, o *mapkv.Options) (*mapkv.DB, int) {
	t.Helper()
	db, err := mapkv.Open(path, o)
	if err != nil {
		t.Fatal(err)
	}
	warmed, p := mapkv.WarmupForTest(db)
	if p != nil {
		db.Close()
		t.Fatalf("the warm-up panicked: %v", p)
	}
	return db, warmed
}

// scanAll reads every key of the database, nested buckets included.
func scanAll(t *testing.T, db *mapkv.DB) int {
	t.Helper()
	n := 0
	var scan func(b *mapkv.Bucket)
	scan = func(b *mapkv.Bucket) {
		c := b.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if v == nil {
				scan(b.Bucket(k))
				continue
			}
			n++
		}
	}
	err := db.View(func(tx *mapkv.Tx) error {
		scan(tx.Bucket([]byte("a")))
		scan(tx.Bucket([]byte("b")))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// threadFaults returns the page faults the calling thread has taken
// without reading from disk.
func threadFaults(t *testing.T) int64 {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_THREAD, &ru); err != nil {
		t.Fatal(err)
	}
	return int64(ru.Minflt)
}

// cachedPages returns how many pages of the file at path are in the page
// cache, and how many it has.
func cachedPages(t *testing.T, path string) (cached, pages uint64) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var st unix.Cachestat_t
	if err := unix.Cachestat(uint(f.Fd()), &unix.CachestatRange{}, &st, 0); err != nil {
		t.Skipf("cachestat: %v (Linux 6.5 or later counts the page cache)", err)
	}
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	return st.Cache, uint64(fi.Size()+int64(os.Getpagesize())-1) / uint64(os.Getpagesize())
}

// TestWarmupMapsCachedPages: after Open's warm-up, a scan of a database
// whose file is in the page cache takes (almost) no page fault, every
// bucket's, nested ones too, and the warm-up read one page in each 64 KiB
// of the pages in use; without it (Options.NoWarmup) the same scan
// faults.
func TestWarmupMapsCachedPages(t *testing.T) {
	if runtime.GOMAXPROCS(0) < 2 {
		t.Skip("the warm-up needs GOMAXPROCS above 1")
	}
	path, _ := warmDB(t)
	if _, err := os.ReadFile(path); err != nil { // into the page cache
		t.Fatal(err)
	}
	if c, p := cachedPages(t, path); c < p {
		t.Skipf("%d of the file's %d pages in the page cache after reading it: memory is short", c, p)
	}
	scanFaults := func(o *mapkv.Options) (faults int64, warmed int, size int64) {
		db, warmed := openWarmed(t, path, o)
		defer db.Close()
		if err := db.View(func(tx *mapkv.Tx) error { size = tx.Size(); return nil }); err != nil {
			t.Fatal(err)
		}
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		before := threadFaults(t)
		if n := scanAll(t, db); n != 40001 {
			t.Fatalf("scanned %d keys, want 40001", n)
		}
		return threadFaults(t) - before, warmed, size
	}
	for _, ro := range []bool{false, true} {
		cold, warmed, _ := scanFaults(&mapkv.Options{ReadOnly: ro, NoWarmup: true})
		if warmed != 0 {
			t.Fatalf("NoWarmup: the warm-up read %d pages", warmed)
		}
		hot, warmed, size := scanFaults(&mapkv.Options{ReadOnly: ro})
		// The windows of the state the warm-up read: the Close that
		// ended warmDB's writes cut the file's free tail.
		if windows := int((size + mapkv.WarmStep - 1) / mapkv.WarmStep); warmed != windows {
			t.Fatalf("read-only %v: the warm-up read %d pages, one in each 64 KiB of %d bytes makes %d", ro, warmed, size, windows)
		}
		t.Logf("read-only %v: a scan of %d bytes of pages took %d page faults after the warm-up, %d without", ro, size, hot, cold)
		if cold < 16 {
			t.Skipf("without the warm-up the scan took only %d faults: the kernel maps this file in large pieces, nothing to compare", cold)
		}
		if hot*4 > cold {
			t.Fatalf("read-only %v: the scan took %d page faults after the warm-up, %d without it", ro, hot, cold)
		}
	}
}

// TestWarmupReadsNothingFromDisk: the warm-up reads only pages that are
// in the page cache. With the file dropped from it, an Open with the
// warm-up leaves no more of the file cached than one without: Open's own
// reads (the metas, the free list, the last commit's nodes, and what the
// kernel reads around each of them) and nothing else.
func TestWarmupReadsNothingFromDisk(t *testing.T) {
	if runtime.GOMAXPROCS(0) < 2 {
		t.Skip("the warm-up needs GOMAXPROCS above 1")
	}
	path, size := warmDB(t)
	openCold := func(noWarmup bool) (cached, pages uint64, warmed int) {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		// Pages still under writeback stay cached: flush them first.
		err = f.Sync()
		if err == nil {
			err = unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
		}
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		if c, p := cachedPages(t, path); c > p/20 {
			t.Skipf("%d of the file's %d pages still cached after FADV_DONTNEED: the page cache cannot be emptied here", c, p)
		}
		db, warmed := openWarmed(t, path, &mapkv.Options{ReadOnly: true, NoWarmup: noWarmup})
		defer db.Close()
		cached, pages = cachedPages(t, path)
		return cached, pages, warmed
	}
	base, pages, _ := openCold(true)
	cached, _, warmed := openCold(false)
	t.Logf("of the file's %d pages, %d cached after an Open without the warm-up, %d after one with it (which read %d pages of %d bytes in use)", pages, base, cached, warmed, size)
	if cached > base+pages/20 {
		t.Fatalf("of the file's %d pages, %d cached after an Open without the warm-up, %d after one with it", pages, base, cached)
	}
}
