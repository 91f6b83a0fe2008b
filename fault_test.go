package mapkv_test

// Fault injection through the file-layer hooks: ENOSPC when the file
// grows, EIO from msync, a failed mmap when the reservation is outgrown,
// a mapping too large to make at Open, and the file cut short beneath a
// live mapping. Each must return an error, leave the database readable
// and consistent, and, after a failed flush, refuse writes (ErrFailed)
// until the database is reopened.

import (
	"bytes"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mapkv/mapkv"
)

// relFill returns operations that put n keys of vsize bytes into bucket.
func relFill(bucket string, from, n, vsize int) []relOp {
	op := relOp{kind: relBulkPut, path: []string{bucket}}
	for i := from; i < from+n; i++ {
		op.keys = append(op.keys, fmt.Sprintf("f%06d", i))
		op.vals = append(op.vals, strings.Repeat(string(rune('a'+i%26)), vsize))
	}
	return []relOp{op}
}

// relCommit applies ops to db and, if the commit succeeds, to m.
func relCommit(db *mapkv.DB, m *relBucket, ops []relOp) error {
	err := db.Update(func(tx *mapkv.Tx) error { return relApplyDB(tx, ops) })
	if err == nil {
		relApplyModel(m, ops)
	}
	return err
}

// relExpect fails the test unless db holds exactly m and checks clean.
func relExpect(t *testing.T, db *mapkv.DB, m *relBucket, what string) {
	t.Helper()
	got, err := relDumpDB(db)
	if err != nil {
		t.Fatalf("%s: reading: %v", what, err)
	}
	if d := relDiff(got, m, ""); d != "" {
		t.Fatalf("%s: state differs from the model: %s", what, d)
	}
	if err := db.Check(); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// relFaultDB opens a small database with 1 KiB pages and one committed
// bucket, and returns it with its model.
func relFaultDB(t *testing.T, opts *mapkv.Options) (*mapkv.DB, string, *relBucket) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "fault.db")
	o := &mapkv.Options{PageSize: 1024, InitialSize: 4096, GrowStep: 4096}
	if opts != nil {
		o = opts
	}
	db, err := mapkv.Open(path, o)
	if err != nil {
		t.Fatal(err)
	}
	m := newRelBucket()
	if err := relCommit(db, m, relFill("base", 0, 20, 30)); err != nil {
		t.Fatal(err)
	}
	return db, path, m
}

// only returns a hook that applies fail to db and leaves others alone.
func relOnly(db *mapkv.DB, fail func() error) func(*mapkv.DB, int64) error {
	return func(d *mapkv.DB, _ int64) error {
		if d != db {
			return nil
		}
		return fail()
	}
}

func TestFaultGrowENOSPC(t *testing.T) {
	db, path, m := relFaultDB(t, &mapkv.Options{PageSize: 1024, InitialSize: 32 << 10, GrowStep: 4096})
	defer func() { db.Close() }()
	armed := true
	grows := 0
	restore := mapkv.SetFaultHooks(nil, relOnly(db, func() error {
		grows++
		if armed {
			return syscall.ENOSPC
		}
		return nil
	}), nil)
	defer restore()

	reader, err := db.Begin(false)
	if err != nil {
		t.Fatal(err)
	}
	before := m.clone()
	err = relCommit(db, m, relFill("big", 0, 400, 100))
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("commit needing a larger file with ENOSPC: got %v, want an error wrapping ENOSPC", err)
	}
	if grows == 0 {
		t.Fatal("the grow hook never ran")
	}
	// Readers, old and new, see the last commit.
	if got, err := relDump(reader); err != nil || relDiff(got, before, "") != "" {
		t.Fatalf("open reader after the failure: %v %s", err, relDiff(got, before, ""))
	}
	reader.Rollback()
	relExpect(t, db, m, "after ENOSPC")
	if err := mapkv.FailedForTest(db); err != nil {
		t.Fatalf("a failed grow marked the database failed: %v", err)
	}
	// Small commits that fit the file still work; so do large ones once
	// space is back.
	if err := relCommit(db, m, relFill("base", 100, 2, 10)); err != nil {
		t.Fatalf("small commit after ENOSPC: %v", err)
	}
	armed = false
	if err := relCommit(db, m, relFill("big", 0, 400, 100)); err != nil {
		t.Fatalf("commit once space is back: %v", err)
	}
	relExpect(t, db, m, "after recovery")
	db.Close()
	db = relReopen(t, path, nil)
	relExpect(t, db, m, "reopened")
}

func relReopen(t *testing.T, path string, o *mapkv.Options) *mapkv.DB {
	t.Helper()
	db, err := mapkv.Open(path, o)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	return db
}

func TestFaultSyncEIO(t *testing.T) {
	for _, wm := range []bool{false, true} {
		t.Run(map[bool]string{false: "pwrite", true: "writemap"}[wm], func(t *testing.T) { relFaultSyncEIO(t, wm) })
	}
}

func relFaultSyncEIO(t *testing.T, writeMap bool) {
	for _, tc := range []struct {
		name      string
		threshold int64
		failAt    int  // which flush of the commit fails (1-based)
		flushed   bool // the hook flushes, then reports EIO
		committed bool // what a reopen finds: the page cache kept the new meta
	}{
		{"one-sync", 0, 1, false, true},
		{"one-sync/flushed", 0, 1, true, true},
		{"two-sync/data", 1, 1, false, false},
		{"two-sync/meta", 1, 2, false, true},
		{"two-sync/meta-flushed", 1, 2, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The log off: these are the data file's own commit paths
			// (TestFaultLog covers the log's).
			opts := &mapkv.Options{PageSize: 1024, InitialSize: 4096, GrowStep: 4096, SyncThreshold: tc.threshold, WriteMap: writeMap, WALSize: -1}
			db, path, m := relFaultDB(t, opts)
			defer func() { db.Close() }()
			syncs, armed := 0, true
			restore := mapkv.SetFaultHooks(func(d *mapkv.DB, off, n int64, real func() error) error {
				if d != db {
					return real()
				}
				syncs++
				if armed && syncs == tc.failAt {
					if tc.flushed {
						if err := real(); err != nil {
							return err
						}
					}
					return syscall.EIO
				}
				return real()
			}, nil, nil)
			defer restore()

			acked := m.clone()
			ops := relFill("base", 50, 30, 40)
			err := relCommit(db, m, ops)
			if !errors.Is(err, syscall.EIO) {
				t.Fatalf("commit with EIO from msync: got %v, want an error wrapping EIO", err)
			}
			inflight := acked.clone()
			relApplyModel(inflight, ops)
			// Reads go on at the last acknowledged commit.
			relExpect(t, db, acked, "after EIO")
			failed := mapkv.FailedForTest(db)
			if !errors.Is(failed, syscall.EIO) {
				t.Fatalf("failed flush not recorded: %v", failed)
			}
			// Writes are refused, with the reason, and nothing is flushed.
			armed = false
			n := syncs
			err = relCommit(db, m, relFill("base", 200, 1, 1))
			if !errors.Is(err, mapkv.ErrFailed) || !strings.Contains(err.Error(), syscall.EIO.Error()) {
				t.Fatalf("Update after a failed flush: got %v, want ErrFailed saying why", err)
			}
			if _, err := db.Begin(true); !errors.Is(err, mapkv.ErrFailed) {
				t.Fatalf("Begin(true) after a failed flush: got %v, want ErrFailed", err)
			}
			if err := db.Batch(func(tx *mapkv.Tx) error { return nil }); !errors.Is(err, mapkv.ErrFailed) {
				t.Fatalf("Batch after a failed flush: got %v, want ErrFailed", err)
			}
			if syncs != n {
				t.Fatalf("%d flushes attempted after the failed one", syncs-n)
			}
			relExpect(t, db, acked, "refusing writes")
			db.Close()

			db = relReopen(t, path, opts)
			want := acked
			if tc.committed {
				want = inflight
			}
			relExpect(t, db, want, "reopened")
			if err := relCommit(db, want, relFill("base", 300, 5, 5)); err != nil {
				t.Fatalf("commit after reopen: %v", err)
			}
			relExpect(t, db, want, "reopened and written")
		})
	}
}

func TestFaultRemapMmap(t *testing.T) {
	opts := &mapkv.Options{PageSize: 1024, InitialSize: 4096, GrowStep: 4096, MaxSize: 16 << 10}
	db, path, m := relFaultDB(t, opts)
	defer func() { db.Close() }()
	armed, maps := true, 0
	restore := mapkv.SetFaultHooks(nil, nil, relOnly(db, func() error {
		maps++
		if armed {
			return syscall.ENOMEM
		}
		return nil
	}))
	defer restore()

	reader, err := db.Begin(false)
	if err != nil {
		t.Fatal(err)
	}
	err = relCommit(db, m, relFill("big", 0, 300, 100))
	if !errors.Is(err, syscall.ENOMEM) {
		t.Fatalf("commit outgrowing the reservation with a failing mmap: got %v, want an error wrapping ENOMEM", err)
	}
	if maps == 0 {
		t.Fatal("the mmap hook never ran: the commit did not outgrow the reservation")
	}
	relExpect(t, db, m, "after the failed remap")
	if err := reader.Rollback(); err != nil {
		t.Fatal(err)
	}
	armed = false
	if err := relCommit(db, m, relFill("big", 0, 300, 100)); err != nil {
		t.Fatalf("commit once mmap works: %v", err)
	}
	if db.Stats().RemapN == 0 {
		t.Fatal("no remap recorded")
	}
	relExpect(t, db, m, "after the remap")
	db.Close()
	db = relReopen(t, path, opts)
	relExpect(t, db, m, "reopened")
}

func TestFaultOpenMapTooLarge(t *testing.T) {
	path := filepath.Join(t.TempDir(), "huge.db")
	db, err := mapkv.Open(path, &mapkv.Options{MaxSize: 1 << 50}) // beyond the user address space
	if err == nil {
		db.Close()
		t.Skip("the kernel mapped a 1 PiB reservation")
	}
	t.Logf("Open with a 1 PiB reservation: %v", err)
	// The failed Open released the file lock.
	db, err = mapkv.Open(path, nil)
	if err != nil {
		t.Fatalf("Open after a failed Open: %v", err)
	}
	db.Close()
}

// TestFaultTruncatedUnderMapping cuts the file short while a read
// transaction reads it, as another process could: the reads fault, and
// the fault comes back as an error wrapping ErrCorrupt.
func TestFaultTruncatedUnderMapping(t *testing.T) {
	opts := &mapkv.Options{PageSize: 1024}
	path := filepath.Join(t.TempDir(), "trunc.db")
	db, err := mapkv.Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if db != nil {
			db.Close()
		}
	}()
	m := newRelBucket()
	for i := 0; i < 4; i++ {
		if err := relCommit(db, m, relFill(fmt.Sprint("b", i), 0, 500, 200)); err != nil {
			t.Fatal(err)
		}
	}
	err = db.View(func(tx *mapkv.Tx) error {
		if err := os.Truncate(path, 2048); err != nil {
			t.Fatal(err)
		}
		_, err := relDump(tx)
		return err
	})
	if !errors.Is(err, mapkv.ErrCorrupt) {
		t.Fatalf("View reading a truncated file: got %v, want an error wrapping ErrCorrupt", err)
	}
	t.Logf("View: %v", err)
	// io.Discard never reads what it is given, so WriteTo to it may not
	// touch the missing pages; it must not crash either way.
	err = db.View(func(tx *mapkv.Tx) error { _, err := tx.WriteTo(io.Discard); return err })
	t.Logf("WriteTo(io.Discard): %v", err)
	if err := db.View(func(tx *mapkv.Tx) error {
		f, err := os.Create(filepath.Join(t.TempDir(), "snap.db"))
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = tx.WriteTo(f)
		return err
	}); !errors.Is(err, mapkv.ErrCorrupt) {
		t.Fatalf("WriteTo (file) of a truncated file: got %v, want an error wrapping ErrCorrupt", err)
	}
	if err := db.View(func(tx *mapkv.Tx) error {
		var buf bytes.Buffer
		_, err := tx.WriteTo(&buf)
		return err
	}); !errors.Is(err, mapkv.ErrCorrupt) {
		t.Fatalf("WriteTo (buffer) of a truncated file: got %v, want an error wrapping ErrCorrupt", err)
	}
	if err := db.Check(); !errors.Is(err, mapkv.ErrCorrupt) {
		t.Fatalf("Check of a truncated file: got %v, want an error wrapping ErrCorrupt", err)
	}
	if err := db.Update(func(tx *mapkv.Tx) error {
		return tx.Bucket([]byte("b1")).Put([]byte("f000499"), []byte("x"))
	}); err == nil {
		t.Fatal("Update of a truncated file succeeded")
	} else {
		t.Logf("Update: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Logf("Close: %v", err)
	}
	db, err = mapkv.Open(path, opts)
	if err == nil {
		t.Fatalf("Open of the truncated file succeeded; Check says %v", db.Check())
	}
	db = nil
	if !errors.Is(err, mapkv.ErrCorrupt) {
		t.Fatalf("Open of the truncated file: got %v, want an error wrapping ErrCorrupt", err)
	}
}

// TestFaultStorm runs a random workload in which every grow, flush and
// remap may fail, and checks after each failure that readers still see
// the last acknowledged commit, that Check is clean, that a failed flush
// blocks writes until reopen, and that a reopen finds the last
// acknowledged commit or the failed one (its pages may have reached the
// page cache), never anything else.
func TestFaultStorm(t *testing.T) {
	seed := relSeed(t, "MAPKV_FAULT_SEED")
	rng := rand.New(rand.NewPCG(seed, 99))
	commits := relEnvInt("MAPKV_FAULT_ITER", 400)
	t.Logf("seed %d (MAPKV_FAULT_SEED=%d to replay)", seed, seed)
	opts := &mapkv.Options{PageSize: 1024, InitialSize: 4096, GrowStep: 4096, MaxSize: 8 << 10, ShrinkThreshold: 8192, WriteMap: rng.IntN(2) == 0}
	t.Logf("WriteMap %v", opts.WriteMap)
	path := filepath.Join(t.TempDir(), "storm.db")
	db, err := mapkv.Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { db.Close() }()
	var nGrow, nSync, nSyncFlushed, nMmap, mapCalls, nReopen, nFailedCommitSeen, okCommits int
	fail := func() bool { return rng.IntN(12) == 0 }
	restore := mapkv.SetFaultHooks(
		func(d *mapkv.DB, off, n int64, real func() error) error {
			if d != db || !fail() {
				return real()
			}
			if rng.IntN(2) == 0 {
				nSyncFlushed++
				if err := real(); err != nil {
					return err
				}
			}
			nSync++
			return syscall.EIO
		},
		func(d *mapkv.DB, _ int64) error {
			if d != db || !fail() {
				return nil
			}
			nGrow++
			return syscall.ENOSPC
		},
		func(d *mapkv.DB, _ int64) error {
			if d == db {
				mapCalls++
			}
			if d != db || rng.IntN(3) != 0 {
				return nil
			}
			nMmap++
			return syscall.ENOMEM
		})
	defer restore()

	acked := newRelBucket()
	for c := 0; c < commits; c++ {
		ops := relGenCommit(rng, 6<<10)
		if rng.IntN(8) == 0 {
			ops = append(ops, relFill("fill", rng.IntN(1000), 100+rng.IntN(400), rng.IntN(200))...)
		}
		inflight := acked.clone()
		relApplyModel(inflight, ops)
		err := db.Update(func(tx *mapkv.Tx) error { return relApplyDB(tx, ops) })
		if err == nil {
			acked = inflight
			okCommits++
			continue
		}
		if !errors.Is(err, syscall.EIO) && !errors.Is(err, syscall.ENOSPC) && !errors.Is(err, syscall.ENOMEM) {
			t.Fatalf("commit %d: unexpected error %v", c, err)
		}
		relExpect(t, db, acked, fmt.Sprintf("commit %d failed with %v", c, err))
		if mapkv.FailedForTest(db) == nil {
			continue
		}
		if err := db.Update(func(tx *mapkv.Tx) error { return nil }); !errors.Is(err, mapkv.ErrFailed) {
			t.Fatalf("commit %d: Update after a failed flush: got %v, want ErrFailed", c, err)
		}
		db.Close()
		nReopen++
		db = relReopen(t, path, opts)
		got, err := relDumpDB(db)
		if err != nil {
			t.Fatalf("commit %d: reading after reopen: %v", c, err)
		}
		switch {
		case relDiff(got, acked, "") == "":
		case relDiff(got, inflight, "") == "":
			nFailedCommitSeen++
			acked = inflight
		default:
			t.Fatalf("commit %d: after reopen the state is neither the last acknowledged commit (%s) nor the failed one (%s)",
				c, relDiff(got, acked, ""), relDiff(got, inflight, ""))
		}
		if err := db.Check(); err != nil {
			t.Fatalf("commit %d: after reopen: %v", c, err)
		}
	}
	relExpect(t, db, acked, "end of storm")
	t.Logf("%d commits, %d succeeded; faults injected: %d ENOSPC on grow, %d EIO from msync (%d after the flush ran), %d ENOMEM on remap (of %d remaps tried); %d reopens after a failed flush, %d of them found the failed commit durable",
		commits, okCommits, nGrow, nSync, nSyncFlushed, nMmap, mapCalls, nReopen, nFailedCommitSeen)
}

// TestFaultRemapTwiceInOneCommit makes one commit outgrow the reservation
// twice: a large value in the first leaf of a bucket, then a larger one in
// its second leaf. The writer reads the second leaf through the mapping
// the first remap made; the second remap must not unmap it beneath the
// writer.
func TestFaultRemapTwiceInOneCommit(t *testing.T) {
	opts := &mapkv.Options{PageSize: 1024, InitialSize: 4096, GrowStep: 4096, MaxSize: 16 << 10}
	path := filepath.Join(t.TempDir(), "remap.db")
	db, err := mapkv.Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { db.Close() }()
	m := newRelBucket()
	if err := relCommit(db, m, relFill("b", 0, 60, 30)); err != nil { // two leaves under a branch
		t.Fatal(err)
	}
	ops := []relOp{
		{kind: relPut, path: []string{"b"}, key: "f000001x", val: strings.Repeat("1", 20<<10)},
		{kind: relPut, path: []string{"b"}, key: "f000059x", val: strings.Repeat("2", 100<<10)},
	}
	remaps := db.Stats().RemapN
	if err := relCommit(db, m, ops); err != nil {
		t.Fatalf("commit that outgrows the reservation twice: %v", err)
	}
	if n := db.Stats().RemapN - remaps; n < 2 {
		t.Logf("only %d remap(s) in the commit: the test no longer exercises two", n)
	}
	relExpect(t, db, m, "after two remaps in one commit")
	db.Close()
	db = relReopen(t, path, opts)
	relExpect(t, db, m, "reopened")
}

// TestFaultSnapshotDuringShrink streams snapshots without pause while the
// writer fills and empties a bucket, so that commits cut the file short
// again and again. A snapshot must never run past the end of the file
// (it did when the cut came before the new state was published: readers
// that began in between read the old, longer image and faulted).
func TestFaultSnapshotDuringShrink(t *testing.T) {
	path := filepath.Join(t.TempDir(), "shrink.db")
	db, err := mapkv.Open(path, &mapkv.Options{PageSize: 1024, InitialSize: 4096, GrowStep: 4096, ShrinkThreshold: 4096, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var stop atomic.Bool
	var snaps, fails atomic.Int64
	var wg sync.WaitGroup
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				err := db.View(func(tx *mapkv.Tx) error {
					_, err := tx.WriteTo(crc32.NewIEEE()) // a writer that reads every byte
					return err
				})
				snaps.Add(1)
				if err != nil && fails.Add(1) == 1 {
					t.Errorf("WriteTo during shrinking commits: %v", err)
				}
			}
		}()
	}
	m := newRelBucket()
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) && fails.Load() == 0 {
		for _, ops := range [][]relOp{relFill("a", 0, 300, 50), {{kind: relDelBucket, path: []string{"a"}}}, relFill("b", 0, 1, 1), relFill("b", 1, 1, 1)} {
			if err := relCommit(db, m, ops); err != nil {
				t.Fatal(err)
			}
		}
	}
	stop.Store(true)
	wg.Wait()
	t.Logf("%d shrinks, %d snapshots, %d failed", db.Stats().ShrinkN, snaps.Load(), fails.Load())
	if db.Stats().ShrinkN == 0 {
		t.Error("no commit shrank the file")
	}
}
