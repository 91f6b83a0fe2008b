package mapkv_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/mapkv/mapkv"
)

// TestFaultWrite makes the write of a commit's pages fail: the commit
// returns the error, the database stays readable at the previous commit,
// refuses further writes until reopened, and reopens at that commit.
func TestFaultWrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w.db")
	db, err := mapkv.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	put := func(k string) error {
		return db.Update(func(tx *mapkv.Tx) error {
			b, err := tx.CreateBucketIfNotExists([]byte("b"))
			if err != nil {
				return err
			}
			return b.Put([]byte(k), []byte("v"))
		})
	}
	if err := put("before"); err != nil {
		t.Fatal(err)
	}
	restore := mapkv.SetWriteHook(func(*mapkv.DB, int64, int) error { return syscall.EIO })
	err = put("during")
	restore()
	if !errors.Is(err, syscall.EIO) {
		t.Fatalf("commit with a failing write: %v, want EIO", err)
	}
	if err := put("after"); !errors.Is(err, mapkv.ErrFailed) {
		t.Fatalf("write after a failed write: %v, want ErrFailed", err)
	}
	check := func(db *mapkv.DB) {
		t.Helper()
		if err := db.View(func(tx *mapkv.Tx) error {
			b := tx.Bucket([]byte("b"))
			if b.Get([]byte("before")) == nil || b.Get([]byte("during")) != nil {
				return errors.New("state is not the last acknowledged commit")
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		mustCheck(t, db)
	}
	check(db)
	db.Close()
	db, err = mapkv.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	check(db)
	if err := put("after"); err != nil {
		t.Fatalf("write after reopening: %v", err)
	}
}

// TestFaultWriteBesideLog: a large commit of scattered nodes writes them
// to the data file while its log record is written and flushed; when
// that data write fails, the commit returns the error, the record is
// taken back, and the database reopens at the commit before (not at the
// failed one, which the log would otherwise replay). A log hook checks
// that the record was flushed before the failure (the case that needs
// taking back).
func TestFaultWriteBesideLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "wb.db")
	db, err := mapkv.Open(path, &mapkv.Options{PageSize: 1024})
	if err != nil {
		t.Fatal(err)
	}
	put := scatter(t, db)
	logFlushed := make(chan struct{})
	var once sync.Once
	restoreLog := mapkv.SetLogHooks(nil, func(_ *mapkv.DB, real func() error) error {
		err := real()
		once.Do(func() { close(logFlushed) })
		return err
	})
	// The data writes fail, each only once the record is flushed.
	restore := mapkv.SetWriteHook(func(*mapkv.DB, int64, int) error {
		<-logFlushed
		return syscall.EIO
	})
	err = put(18000, 12) // about 1.5 MB of scattered nodes
	restore()
	restoreLog()
	if !errors.Is(err, syscall.EIO) {
		t.Fatalf("large commit with a failing data write: %v, want EIO", err)
	}
	if err := put(1, 1); !errors.Is(err, mapkv.ErrFailed) {
		t.Fatalf("write after the failed commit: %v, want ErrFailed", err)
	}
	want := fmt.Sprintf("%060d", 24)
	check := func(db *mapkv.DB, when string) {
		t.Helper()
		if err := db.View(func(tx *mapkv.Tx) error {
			if got := string(tx.Bucket([]byte("b")).Get([]byte("00000024"))); got != want {
				return fmt.Errorf("%s: value %q, want the commit before the failed one (%q)", when, got, want)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		mustCheck(t, db)
	}
	check(db, "after the failed commit")
	db.Close()
	db, err = mapkv.Open(path, &mapkv.Options{PageSize: 1024})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	check(db, "reopened")
	put = stepPut(db)
	if err := put(18000, 12); err != nil {
		t.Fatalf("the same commit after reopening: %v", err)
	}
}

// TestFaultOpenSync makes Open's flush fail: Open returns the error and
// nothing is lost; the next Open works.
func TestFaultOpenSync(t *testing.T) {
	path := filepath.Join(t.TempDir(), "o.db")
	db := mustOpen(t, path, nil)
	writeGeneration(db, 7)
	db.Close()
	restore := mapkv.SetOpenSyncHook(func(*mapkv.DB, func() error) error { return syscall.EIO })
	_, err := mapkv.Open(path, nil)
	restore()
	if !errors.Is(err, syscall.EIO) {
		t.Fatalf("Open with a failing flush: %v, want EIO", err)
	}
	db = mustOpen(t, path, nil)
	if err := db.View(func(tx *mapkv.Tx) error {
		gen, err := readGeneration(tx)
		if err == nil && gen != "00000007" {
			err = errors.New("wrong generation " + gen)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
}

// TestLargeCommits: a large commit whose nodes land on contiguous pages
// (a sorted load) writes the data file directly, not the log, and the
// state after a reopen is the model's; a large commit of deletes and puts
// (nodes merged again within the commit that built them) leaves a commit
// record the reopen accepts. A large write that fails fails the commit:
// EIO, ErrFailed after it, and a reopen at the commit before.
func TestLargeCommits(t *testing.T) {
	defer mapkv.SetStreamRuns(64<<10, 256<<10)() // the real run lengths: the test counts writes
	db, path, m := relFaultDB(t, &mapkv.Options{PageSize: 4096})
	records := 0
	restore := mapkv.SetLogHooks(func(*mapkv.DB, int64, int) error {
		records++
		return nil
	}, nil)
	// About 1.4 MB of leaves: the log (8 MiB) would take it, but its
	// pages are contiguous.
	if err := relCommit(db, m, relFill("sorted", 0, 10000, 100)); err != nil {
		t.Fatal(err)
	}
	restore()
	if records != 0 {
		t.Fatalf("a sorted commit of about 1.4 MB wrote %d log records, want none (it writes the data file)", records)
	}
	db.Close()
	db = relReopen(t, path, nil)
	relExpect(t, db, m, "after a streamed commit")
	mustCheck(t, db)

	// A large commit that deletes most keys of a range and puts others:
	// its new leaves are merged again as it goes (rebalance frees nodes
	// the same commit built and handed on), and its commit record must
	// count exactly the nodes left: the reopen uses its meta.
	var ops []relOp
	for i := 0; i < 10000; i++ {
		if i%8 != 0 {
			ops = append(ops, relOp{kind: relDel, path: []string{"sorted"}, key: fmt.Sprintf("f%06d", i)})
		}
	}
	ops = append(ops, relFill("more", 0, 5000, 100)...)
	if err := relCommit(db, m, ops); err != nil {
		t.Fatal(err)
	}
	db.Close()
	db = relReopen(t, path, nil)
	if fb := db.Stats().MetaFallback; fb != "" {
		t.Fatalf("reopen after a large commit of deletes used the older meta: %s", fb)
	}
	relExpect(t, db, m, "after a large commit of deletes")
	mustCheck(t, db)

	// The large write fails.
	restore = mapkv.SetWriteHook(func(_ *mapkv.DB, _ int64, size int) error {
		if size >= 256<<10 {
			return syscall.EIO
		}
		return nil
	})
	err := relCommit(db, m, relFill("sorted2", 0, 30000, 100))
	restore()
	if !errors.Is(err, syscall.EIO) {
		t.Fatalf("a commit whose large write fails: %v, want EIO", err)
	}
	if err := relCommit(db, m, relFill("after", 0, 1, 1)); !errors.Is(err, mapkv.ErrFailed) {
		t.Fatalf("a commit after the failed write: %v, want ErrFailed", err)
	}
	relExpect(t, db, m, "after the failed commit")
	db.Close()
	db = relReopen(t, path, nil)
	defer db.Close()
	relExpect(t, db, m, "reopened after the failed commit")
	mustCheck(t, db)
}

// TestLargeCommitRecord: large commits of random puts and deletes (1 KiB
// pages: many branch levels, nodes merged again within the commit that
// built them) must leave a commit record that counts exactly the nodes the
// meta reaches: every reopen uses the newest meta, and the state is the
// model's.
func TestLargeCommitRecord(t *testing.T) {
	db, path, m := relFaultDB(t, &mapkv.Options{PageSize: 1024, InitialSize: 4096, GrowStep: 1 << 20})
	rng := rand.New(rand.NewPCG(5, 6))
	rounds := 12
	if testing.Short() {
		rounds = 6
	}
	for r := range rounds {
		var ops []relOp
		for range 3000 {
			k := fmt.Sprintf("k%06d", rng.IntN(20000))
			if rng.IntN(5) < 3 {
				ops = append(ops, relOp{kind: relPut, path: []string{"r"}, key: k, val: strings.Repeat("x", rng.IntN(120))})
			} else {
				ops = append(ops, relOp{kind: relDel, path: []string{"r"}, key: k})
			}
		}
		if err := relCommit(db, m, ops); err != nil {
			t.Fatal(err)
		}
		db.Close()
		db = relReopen(t, path, nil)
		if fb := db.Stats().MetaFallback; fb != "" {
			t.Fatalf("round %d: the reopen used the older meta: %s", r, fb)
		}
		relExpect(t, db, m, fmt.Sprintf("round %d", r))
	}
	mustCheck(t, db)
	db.Close()
}
