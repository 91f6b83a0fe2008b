package mapkv_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/cespare/xxhash/v2"

	"github.com/mapkv/mapkv"
)

// logOpts are small-page options with the write-ahead log on.
func logOpts() *mapkv.Options {
	return &mapkv.Options{PageSize: 1024, InitialSize: 4096, GrowStep: 4096, WALSize: 64 << 10}
}

// copyFiles copies the data file and its log as they are now (the page
// cache: what a process crash leaves) to a new path.
func copyFiles(t *testing.T, path string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "copy.db")
	for _, suffix := range []string{"", "-wal"} {
		b, err := os.ReadFile(path + suffix)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst+suffix, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// TestLogOneFlush: a small commit flushes the log once and the data file
// not at all; a commit too large for the log, however far it grows,
// flushes the data file.
func TestLogOneFlush(t *testing.T) {
	db, _, m := relFaultDB(t, logOpts())
	defer db.Close()
	var dataSyncs, logSyncs int
	restore := mapkv.SetFaultHooks(func(d *mapkv.DB, off, n int64, real func() error) error {
		dataSyncs++
		return real()
	}, nil, nil)
	defer restore()
	restoreLog := mapkv.SetLogHooks(nil, func(d *mapkv.DB, real func() error) error {
		logSyncs++
		return real()
	})
	defer restoreLog()
	for i := range 5 {
		if err := relCommit(db, m, relFill("small", i*3, 3, 20)); err != nil {
			t.Fatal(err)
		}
	}
	if dataSyncs != 0 || logSyncs != 5 {
		t.Fatalf("5 small commits: %d flushes of the data file, %d of the log; want 0 and 5", dataSyncs, logSyncs)
	}
	// 600 KB of values: more than a quarter of the 64 KiB log even grown
	// to its largest (2 MiB). The log is checkpointed first (a data flush and a restart), then the
	// commit flushes the data file.
	if err := relCommit(db, m, relFill("big", 0, 600, 1000)); err != nil {
		t.Fatal(err)
	}
	if dataSyncs < 2 || logSyncs != 6 {
		t.Fatalf("a large commit: %d flushes of the data file, %d of the log; want at least 2 and 6", dataSyncs, logSyncs)
	}
	relExpect(t, db, m, "after the large commit")
}

// TestCloseFlushesOnce: closing after logged commits writes their free
// list (Close's rewrite, which flushes the data file) and removes the log
// without flushing the data file a second time; what the log held is
// still there after reopening.
func TestCloseFlushesOnce(t *testing.T) {
	db, path, m := relFaultDB(t, logOpts())
	for i := range 5 {
		if err := relCommit(db, m, relFill("small", i*3, 3, 20)); err != nil {
			t.Fatal(err)
		}
	}
	syncs := 0
	restore := mapkv.SetFaultHooks(func(d *mapkv.DB, off, n int64, real func() error) error {
		syncs++
		return real()
	}, nil, nil)
	defer restore()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if syncs != 1 {
		t.Fatalf("Close flushed the data file %d times, want once (the free list's rewrite)", syncs)
	}
	if _, err := os.Stat(path + "-wal"); !os.IsNotExist(err) {
		t.Fatalf("the log is still there after Close (%v)", err)
	}
	c := relReopen(t, path, nil)
	defer c.Close()
	relExpect(t, c, m, "after Close")
}

// TestLogReplay: commits that reached only the log (the data file was
// never flushed after them) are back after reopening, in every
// combination of log fullness, checkpoints and large commits.
func TestLogReplay(t *testing.T) {
	db, path, m := relFaultDB(t, logOpts())
	defer db.Close()
	for i := range 60 {
		ops := relFill("a", i*7, 7, 40+i)
		if i%17 == 16 {
			ops = relFill("big", i, 30, 1000) // straight to the data file
		}
		if err := relCommit(db, m, ops); err != nil {
			t.Fatal(err)
		}
		if i%5 != 4 {
			continue
		}
		cp := copyFiles(t, path)
		ro, err := mapkv.Open(cp, &mapkv.Options{ReadOnly: true})
		if err == nil {
			// Only when the last commit went to the data file.
			ro.Close()
		} else if !errors.Is(err, mapkv.ErrRecoveryNeeded) {
			t.Fatalf("commit %d: read-only open of a crashed copy: %v, want ErrRecoveryNeeded", i, err)
		}
		c := relReopen(t, cp, logOpts())
		relExpect(t, c, m, "replayed copy")
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(cp + "-wal"); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("Close left the log behind: %v", err)
		}
		ro, err = mapkv.Open(cp, &mapkv.Options{ReadOnly: true})
		if err != nil {
			t.Fatalf("read-only open after recovery: %v", err)
		}
		relExpect(t, ro, m, "read-only after recovery")
		ro.Close()
	}
}

// TestLogTornTail: a power cut inside the flush of a record leaves it
// torn, with the data file as it was before (nothing is written to the
// data file's meta before its record is flushed). Open ignores the torn
// record and replays those before it.
func TestLogTornTail(t *testing.T) {
	db, path, m := relFaultDB(t, logOpts())
	defer db.Close()
	if err := relCommit(db, m, relFill("a", 0, 5, 50)); err != nil {
		t.Fatal(err)
	}
	before := m.clone()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lg, err := os.ReadFile(path + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	if err := relCommit(db, m, relFill("a", 100, 5, 50)); err != nil {
		t.Fatal(err)
	}
	lg2, err := os.ReadFile(path + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	start := 64 // where the new record begins: the first byte that changed
	for start < len(lg2) && lg[start] == lg2[start] {
		start++
	}
	// The record's length is at offset 24 of its header; cut inside it:
	// the header, the node list, the first image, the middle, the last
	// byte.
	end := start + int(binary.LittleEndian.Uint64(lg2[start+24:]))
	if end <= start+200 || end > len(lg2) {
		t.Fatalf("record at %d: length field says it ends at %d (log %d bytes)", start, end, len(lg2))
	}
	for _, cut := range []int{start, start + 1, start + 100, (start + end) / 2, end - 1} {
		cp := filepath.Join(t.TempDir(), "torn.db")
		torn := append([]byte(nil), lg2...)
		for i := cut; i < min(cut+512, end); i++ {
			torn[i] ^= 0x5a // garbage, where the record held zeros too
		}
		if err := os.WriteFile(cp, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(cp+"-wal", torn, 0o600); err != nil {
			t.Fatal(err)
		}
		c := relReopen(t, cp, logOpts())
		relExpect(t, c, before, fmt.Sprintf("record torn at %d (begins at %d, log %d bytes)", cut, start, len(lg2)))
		c.Close()
	}
	// With the record whole, the same files open at the second commit.
	cp := filepath.Join(t.TempDir(), "whole.db")
	os.WriteFile(cp, data, 0o600)
	os.WriteFile(cp+"-wal", lg2, 0o600)
	c := relReopen(t, cp, logOpts())
	relExpect(t, c, m, "whole record")
	c.Close()
}

// TestLogVersion: a log of another version (1, which stored whole
// images, or 6, newer than this mapkv) is refused, not skipped (it may
// hold commits), and nothing is written.
func TestLogVersion(t *testing.T) {
	for _, v := range []uint32{1, 6} {
		db, path, m := relFaultDB(t, logOpts())
		if err := relCommit(db, m, relFill("a", 0, 5, 50)); err != nil {
			t.Fatal(err)
		}
		cp := copyFiles(t, path) // a crashed copy: the log holds the commit
		db.Close()
		lg, err := os.ReadFile(cp + "-wal")
		if err != nil {
			t.Fatal(err)
		}
		binary.LittleEndian.PutUint32(lg[4:], v)
		binary.LittleEndian.PutUint64(lg[56:], xxhash.Sum64(lg[:56]))
		if err := os.WriteFile(cp+"-wal", lg, 0o600); err != nil {
			t.Fatal(err)
		}
		before, _ := os.ReadFile(cp)
		_, err = mapkv.Open(cp, logOpts())
		if !errors.Is(err, mapkv.ErrCorrupt) || !strings.Contains(err.Error(), fmt.Sprintf("version %d", v)) {
			t.Fatalf("Open with a version %d log: %v, want ErrCorrupt naming the version", v, err)
		}
		if after, _ := os.ReadFile(cp); string(after) != string(before) {
			t.Fatal("Open changed the data file")
		}
	}
}

// TestLogForeign: a log that cannot belong to the data file stops Open
// with ErrCorrupt and changes nothing.
func TestLogForeign(t *testing.T) {
	a, pathA, _ := relFaultDB(t, logOpts())
	defer a.Close()
	b, pathB, mb := relFaultDB(t, logOpts())
	for i := range 30 {
		if err := relCommit(b, mb, relFill("b", i, 1, 10)); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	cp := copyFiles(t, pathA) // a's log holds a's first commit
	if err := os.Rename(cp+"-wal", pathB+"-wal"); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(pathB)
	_, err := mapkv.Open(pathB, logOpts())
	if !errors.Is(err, mapkv.ErrCorrupt) || !strings.Contains(err.Error(), "does not belong") {
		t.Fatalf("Open with another database's log: %v, want ErrCorrupt", err)
	}
	if after, _ := os.ReadFile(pathB); string(after) != string(before) {
		t.Fatal("Open changed the data file")
	}
	os.Remove(pathB + "-wal")
	db := relReopen(t, pathB, logOpts())
	relExpect(t, db, mb, "without the foreign log")
	db.Close()
}

// TestFaultLog: a failed write or flush of the log fails the commit with
// the error, leaves reads at the last acknowledged commit and refuses
// writes; reopening finds the last acknowledged commit or, when the
// record reached the log file, the failed one.
func TestFaultLog(t *testing.T) {
	for _, tc := range []struct {
		name      string
		write     bool // the write fails (else the flush)
		flushed   bool // the flush happens, then reports EIO
		committed bool
	}{
		{"write", true, false, false},
		{"flush", false, false, true},
		{"flush/flushed", false, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db, path, m := relFaultDB(t, logOpts())
			defer func() { db.Close() }()
			armed := true
			fail := func(*mapkv.DB, int64, int) error {
				if armed {
					return syscall.EIO
				}
				return nil
			}
			sync := func(_ *mapkv.DB, real func() error) error {
				if !armed {
					return real()
				}
				if tc.flushed {
					if err := real(); err != nil {
						return err
					}
				}
				return syscall.EIO
			}
			var restore func()
			if tc.write {
				restore = mapkv.SetLogHooks(fail, nil)
			} else {
				restore = mapkv.SetLogHooks(nil, sync)
			}
			defer restore()
			acked := m.clone()
			ops := relFill("base", 50, 3, 40)
			if err := relCommit(db, m, ops); !errors.Is(err, syscall.EIO) {
				t.Fatalf("commit with a failing log: %v, want EIO", err)
			}
			inflight := acked.clone()
			relApplyModel(inflight, ops)
			relExpect(t, db, acked, "after EIO")
			armed = false
			if err := relCommit(db, m, relFill("base", 200, 1, 1)); !errors.Is(err, mapkv.ErrFailed) {
				t.Fatalf("commit after a failed log write: %v, want ErrFailed", err)
			}
			// Close must not remove a log that may hold the commit.
			db.Close()
			db = relReopen(t, path, logOpts())
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

// TestLogThenNoLog: a crashed database reopened without the log (NoSync)
// is replayed, takes commits that bypass the log, and reopens with the
// log again at those commits: the old log is gone, not replayed over
// them.
func TestLogThenNoLog(t *testing.T) {
	db, path, m := relFaultDB(t, logOpts())
	defer db.Close()
	if err := relCommit(db, m, relFill("a", 0, 5, 50)); err != nil {
		t.Fatal(err)
	}
	cp := copyFiles(t, path)
	nolog := logOpts()
	nolog.NoSync = true
	c := relReopen(t, cp, nolog)
	relExpect(t, c, m, "replayed without the log")
	for i := range 5 {
		if err := relCommit(c, m, relFill("b", i, 1, 10)); err != nil {
			t.Fatal(err)
		}
	}
	// A crash: no Close.
	cp2 := filepath.Join(t.TempDir(), "again.db")
	b, _ := os.ReadFile(cp)
	os.WriteFile(cp2, b, 0o600)
	if _, err := os.Stat(cp + "-wal"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the replayed log is still there: %v", err)
	}
	c.Close()
	d := relReopen(t, cp2, logOpts())
	relExpect(t, d, m, "reopened with the log")
	d.Close()
}

// stepPut returns a function that commits, in one transaction, key i
// (eight digits) with the value step (60 digits) for every i in [0, to)
// divisible by step, in bucket "b" of db.
func stepPut(db *mapkv.DB) func(to, step int) error {
	return func(to, step int) error {
		return db.Update(func(tx *mapkv.Tx) error {
			b, err := tx.CreateBucketIfNotExists([]byte("b"))
			if err != nil {
				return err
			}
			for i := 0; i < to; i += step {
				if err := b.Put([]byte(fmt.Sprintf("%08d", i)), []byte(fmt.Sprintf("%060d", step))); err != nil {
					return err
				}
			}
			return nil
		})
	}
}

// scatter loads 40,000 keys in order into db (1 KiB pages), then rewrites
// every other leaf: the pages freed alternate with live ones, so the
// next commit's nodes land scattered, and a large commit of scattered
// nodes goes through the log (one of contiguous nodes would write the
// data file directly). put(18000, 12) is then such a commit, about 1,500
// leaves, 1.5 MB.
func scatter(t *testing.T, db *mapkv.DB) (put func(to, step int) error) {
	t.Helper()
	put = stepPut(db)
	if err := put(40000, 1); err != nil {
		t.Fatal(err)
	}
	if err := put(40000, 24); err != nil {
		t.Fatal(err)
	}
	return put
}

// smallScatter commits 40 keys of bucket "b" (made by scatter) spread
// over its 40,000, with values of commit i: about 100 KB of nodes.
func smallScatter(db *mapkv.DB, i int) error {
	return db.Update(func(tx *mapkv.Tx) error {
		b := tx.Bucket([]byte("b"))
		for j := 0; j < 80; j++ {
			if err := b.Put([]byte(fmt.Sprintf("%08d", (i*977+j*4001)%40000)), []byte(fmt.Sprintf("%060d", i))); err != nil {
				return err
			}
		}
		return nil
	})
}

// TestLogGrows: a large commit of scattered nodes (about 1,500 of them,
// more than one pwritev call takes: IOV_MAX is 1024) goes through the
// default log as one record, and a copy taken before any checkpoint
// replays it. With a smaller WALSize, of which it is more than a quarter,
// it grows the log and goes through it all the same, and small commits
// later bring the log file back to WALSize; with a log too small to grow
// that far (walGrowth times WALSize), it writes the data file directly.
func TestLogGrows(t *testing.T) {
	for _, tc := range []struct {
		walSize       int64
		viaLog, grows bool
	}{
		{0, true, false},         // the default 8 MiB log takes the ~1.5 MB commit as it is
		{1 << 20, true, true},    // the log grows to 8 MiB for it
		{64 << 10, false, false}, // at most 2 MiB: too small for it
	} {
		t.Run(fmt.Sprintf("WALSize=%d", tc.walSize), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "grow.db")
			db := mustOpen(t, path, &mapkv.Options{PageSize: 1024, WALSize: tc.walSize})
			defer db.Close()
			put := scatter(t, db)
			var logSyncs int
			restore := mapkv.SetLogHooks(nil, func(_ *mapkv.DB, real func() error) error {
				logSyncs++
				return real()
			})
			defer restore()
			if err := put(18000, 12); err != nil {
				t.Fatalf("a commit of ~1.5 MB: %v", err)
			}
			want := 0
			if tc.viaLog {
				want = 1
			}
			if logSyncs != want {
				t.Fatalf("the commit flushed the log %d times, want %d", logSyncs, want)
			}
			cp := copyFiles(t, path)
			c := relReopen(t, cp, nil)
			defer c.Close()
			if err := c.View(func(tx *mapkv.Tx) error {
				if got := string(tx.Bucket([]byte("b")).Get([]byte("00017988"))); got != fmt.Sprintf("%060d", 12) {
					return fmt.Errorf("copy: value %q", got)
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			mustCheck(t, c)
			if !tc.grows {
				return
			}
			// Commits of ~100 KB (under a quarter of WALSize) fill the
			// grown log twice: the generation that held the large
			// record doubles it at its checkpoint, the next one, of
			// small records only, puts it back to WALSize, file and
			// all.
			walPath := path + "-wal"
			fi, err := os.Stat(walPath)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Size() <= tc.walSize {
				t.Fatalf("after the large commit the log is %d bytes, want more than WALSize %d", fi.Size(), tc.walSize)
			}
			for i := 0; i < 2000; i++ {
				if err := smallScatter(db, i); err != nil {
					t.Fatal(err)
				}
				if fi, err = os.Stat(walPath); err != nil {
					t.Fatal(err)
				}
				if fi.Size() <= tc.walSize {
					t.Logf("the log is back to %d bytes after %d small commits", fi.Size(), i+1)
					return
				}
			}
			t.Fatalf("after 2000 small commits the log is still %d bytes, want at most WALSize %d", fi.Size(), tc.walSize)
		})
	}
}

// TestLogKicks: in a short generation of the log (its records fill it in
// fewer than 300 commits) the data file's writeback is started ahead of
// the checkpoint; in a long one it is not (the commit after a kick waits
// for its writes, more often than a checkpoint would stall one), nor with
// NoSync. What was committed reads back after reopening either way.
func TestLogKicks(t *testing.T) {
	for _, tc := range []struct {
		name    string
		opts    *mapkv.Options
		commits int
		keys    int
		kicks   bool
	}{
		// Records of about 8 KiB: a 64 KiB log holds eight of them.
		{"short", logOpts(), 60, 8, true},
		// Records of 1-2 KiB: a 4 MiB log holds thousands; 600 commits
		// fill more than a sixteenth of it.
		{"long", &mapkv.Options{PageSize: 1024, WALSize: 4 << 20}, 600, 1, false},
		{"nosync", &mapkv.Options{PageSize: 1024, InitialSize: 4096, GrowStep: 4096, WALSize: 64 << 10, NoSync: true}, 60, 8, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db, path, m := relFaultDB(t, tc.opts)
			defer db.Close()
			for i := range tc.commits {
				if err := relCommit(db, m, relFill("k", i*tc.keys, tc.keys, 200)); err != nil {
					t.Fatal(err)
				}
			}
			n := mapkv.KicksForTest(db)
			if tc.kicks && n == 0 || !tc.kicks && n != 0 {
				t.Fatalf("%d commits of %d keys: %d writebacks started (want any: %v)", tc.commits, tc.keys, n, tc.kicks)
			}
			t.Logf("%d writebacks started", n)
			relExpect(t, db, m, "after the commits")
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			c := relReopen(t, path, nil)
			defer c.Close()
			relExpect(t, c, m, "reopened")
		})
	}
}

// TestDirectPieces: a large commit of keys in order bypasses the log and
// writes its long runs of pages in pieces of at most 64 KiB (see
// smallFolio in tx.go): 2.5 MB make at least 38 of them. A small commit
// through the log makes none.
func TestDirectPieces(t *testing.T) {
	defer mapkv.SetStreamRuns(64<<10, 256<<10)() // the real run lengths: the test counts writes
	path := filepath.Join(t.TempDir(), "pieces.db")
	db := mustOpen(t, path, nil)
	defer db.Close()
	put := func(from, n int) error {
		return db.Update(func(tx *mapkv.Tx) error {
			b, err := tx.CreateBucketIfNotExists([]byte("b"))
			if err != nil {
				return err
			}
			for i := from; i < from+n; i++ {
				if err := b.Put([]byte(fmt.Sprintf("%016d", i)), []byte(fmt.Sprintf("%0100d", i))); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err := put(0, 20000); err != nil {
		t.Fatal(err)
	}
	n := mapkv.PiecesForTest(db)
	if n < 38 {
		t.Fatalf("a 2.5 MB commit in key order wrote the data file in %d pieces, want at least 38", n)
	}
	if err := put(20000, 1); err != nil {
		t.Fatal(err)
	}
	if m := mapkv.PiecesForTest(db); m != n {
		t.Fatalf("a one-key commit wrote %d pieces, want none (it goes through the log)", m-n)
	}
	if err := db.View(func(tx *mapkv.Tx) error {
		for _, i := range []int{0, 12345, 19999, 20000} {
			if got := string(tx.Bucket([]byte("b")).Get([]byte(fmt.Sprintf("%016d", i)))); got != fmt.Sprintf("%0100d", i) {
				return fmt.Errorf("key %d: %q", i, got)
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	mustCheck(t, db)
}

// TestEarlyCheckpoint: commits of scattered nodes that grow the log and
// fill it begin the checkpoint's flush of the data file after the commit
// that leaves no room for another like them, and the checkpoint of the
// next commit uses it instead of flushing again. If that flush fails, the
// commit that began it stays acknowledged (it is in the log), the next
// checkpoint fails with the flush's error and the DB refuses writes even
// though a second flush would succeed (the kernel may have dropped the
// pages it could not write); a reopen replays the log and loses nothing.
func TestEarlyCheckpoint(t *testing.T) {
	open := func(t *testing.T) (*mapkv.DB, string, func(to, step int) error) {
		path := filepath.Join(t.TempDir(), "early.db")
		db := mustOpen(t, path, &mapkv.Options{PageSize: 1024, WALSize: 64 << 10})
		return db, path, scatter(t, db)
	}
	// Key 0 holds the step of the last commit that reached it.
	expect := func(t *testing.T, db *mapkv.DB, step int) {
		t.Helper()
		if err := db.View(func(tx *mapkv.Tx) error {
			if got, want := string(tx.Bucket([]byte("b")).Get([]byte("00000000"))), fmt.Sprintf("%060d", step); got != want {
				return fmt.Errorf("key 0 holds %q, want %q", got, want)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		mustCheck(t, db)
	}

	t.Run("used", func(t *testing.T) {
		db, path, put := open(t)
		defer db.Close()
		// About 330 scattered leaves a commit (330 KB): the log grows
		// to 2 MiB. A generation's first record holds them whole, the
		// next ones as puts (about 40 KB), so that it takes a few dozen
		// commits to fill.
		i, began, covered := 0, 0, 0
		for ; i < 400 && (began < 2 || covered == 0); i++ {
			if err := put(4000, 11+i%3); err != nil {
				t.Fatal(err)
			}
			began, covered = mapkv.EarlySyncsForTest(db)
		}
		t.Logf("%d commits: %d flushes begun ahead of a checkpoint, %d used by one", i, began, covered)
		if began == 0 || covered == 0 {
			t.Fatalf("%d flushes begun early, %d used by a checkpoint: want some of each", began, covered)
		}
		last := 11 + (i-1)%3
		expect(t, db, last)
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		c := relReopen(t, path, nil)
		defer c.Close()
		expect(t, c, last)
	})

	t.Run("failed", func(t *testing.T) {
		db, path, put := open(t)
		defer db.Close()
		eio := syscall.EIO
		syncs, failedIn := 0, -1
		commit := 0
		restore := mapkv.SetFaultHooks(func(_ *mapkv.DB, _, _ int64, real func() error) error {
			syncs++
			if syncs == 1 {
				failedIn = commit
				return eio // the first flush fails, later ones succeed
			}
			return real()
		}, nil, nil)
		defer restore()
		acked := -1
		for commit = 0; commit < 400; commit++ {
			if err := put(4000, 11+commit%3); err != nil {
				if !errors.Is(err, eio) {
					t.Fatalf("commit %d: %v, want the flush's EIO", commit, err)
				}
				break
			}
			acked = commit
		}
		switch {
		case failedIn < 0:
			t.Fatal("no flush of the data file in 400 commits")
		case failedIn != acked:
			t.Fatalf("the flush failed in commit %d, the last acknowledged is %d: want a flush begun early by an acknowledged commit", failedIn, acked)
		case commit != acked+1:
			t.Fatalf("commit %d failed, want the one after the early flush (%d)", commit, acked+1)
		}
		if err := mapkv.FailedForTest(db); err == nil {
			t.Fatal("the DB takes writes after its flush failed")
		}
		if err := put(10, 1); err == nil {
			t.Fatal("a commit succeeded after the flush failed")
		}
		restore()
		db.Close()
		c := relReopen(t, path, nil)
		defer c.Close()
		expect(t, c, 11+acked%3)
	})
}

// TestLogRestartCut: a power cut inside the flush of a new generation's
// header, in which the header's sector is lost and everything else the
// log's file went through reaches the disk. The data file was flushed by
// the checkpoint just before, so the database must open at the last
// commit. A log that went back to WALSize in the same step (cut before
// its header was on disk) failed this: the old header over its records
// cut short reads as a log damaged mid-way, and Open refused the file.
func TestLogRestartCut(t *testing.T) {
	const walSize = 1 << 20
	dir := t.TempDir()
	path := filepath.Join(dir, "cut.db")
	db := mustOpen(t, path, &mapkv.Options{PageSize: 1024, WALSize: walSize})
	defer db.Close()
	put := scatter(t, db)
	var durable []byte // the log as of its last flush
	var images []string
	restarts, cutBack := 0, 0
	restore := mapkv.SetLogHooks(nil, func(_ *mapkv.DB, real func() error) error {
		live, err := os.ReadFile(path + "-wal")
		if err != nil {
			return err
		}
		if durable != nil && len(live) >= 64 && len(durable) >= 64 && string(live[:64]) != string(durable[:64]) {
			// A new generation's header is being flushed: the disk
			// after a cut that loses its sector only.
			restarts++
			if len(live) < len(durable) {
				cutBack++
			}
			img := slices.Clone(live)
			copy(img, durable[:min(512, len(durable))])
			dst := filepath.Join(dir, fmt.Sprintf("img%d.db", len(images)))
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			if err := os.WriteFile(dst, data, 0o600); err != nil {
				return err
			}
			if err := os.WriteFile(dst+"-wal", img, 0o600); err != nil {
				return err
			}
			images = append(images, dst)
		}
		if err := real(); err != nil {
			return err
		}
		durable, err = os.ReadFile(path + "-wal")
		return err
	})
	defer restore()
	// One large commit grows the log; small ones fill it and take it
	// back to WALSize (see TestLogGrows).
	if err := put(18000, 12); err != nil {
		t.Fatal(err)
	}
	shrunk := false
	for i := 0; i < 2000 && !shrunk; i++ {
		if err := smallScatter(db, i); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(path + "-wal")
		if err != nil {
			t.Fatal(err)
		}
		shrunk = fi.Size() <= walSize
	}
	restore()
	if !shrunk || restarts < 2 {
		t.Fatalf("the log went back to WALSize: %v, restarts: %d; the test no longer reaches the case", shrunk, restarts)
	}
	t.Logf("%d restarts, %d of them with the log already cut back", restarts, cutBack)
	for _, img := range images {
		c, err := mapkv.Open(img, &mapkv.Options{PageSize: 1024, WALSize: walSize})
		if err != nil {
			t.Fatalf("%s: %v", filepath.Base(img), err)
		}
		mustCheck(t, c)
		c.Close()
	}
}

// TestPreparedFreeSet: a large logged commit builds the free set the next
// transaction starts from while its data writes finish (freelist.prepare).
// Large scattered commits follow each other, some with a reader open
// across two of them (whose pages the set prepared by the first must then
// not free), one with a small commit after it (which changes the free
// list). Every
// value is the last one written, after each commit and after a reopen,
// and the prepared set was taken.
func TestPreparedFreeSet(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pf.db")
	opts := &mapkv.Options{PageSize: 1024}
	db, err := mapkv.Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	put := scatter(t, db)
	want := make([]int, 40000) // the step of the last commit to write each key
	for i := range want {
		want[i] = 1
		if i%24 == 0 {
			want[i] = 24
		}
	}
	check := func(db *mapkv.DB, when string) {
		t.Helper()
		if err := db.View(func(tx *mapkv.Tx) error {
			b := tx.Bucket([]byte("b"))
			for i, step := range want {
				got := b.Get([]byte(fmt.Sprintf("%08d", i)))
				if w := fmt.Sprintf("%060d", step); string(got) != w {
					return fmt.Errorf("%s: key %08d is %q, want %q", when, i, got, w)
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	var reader *mapkv.Tx
	var before []int
	for i, step := range []int{12, 13, 11, 14, 12, 13, 11, 12, 13, 14} {
		if i == 1 || i == 6 { // a reader across this commit and the next
			if reader, err = db.Begin(false); err != nil {
				t.Fatal(err)
			}
			before = slices.Clone(want)
		}
		if err := put(18000, step); err != nil {
			t.Fatalf("commit %d: %v", i, err)
		}
		for k := 0; k < 18000; k += step {
			want[k] = step
		}
		if i == 3 {
			if err := put(100, 7); err != nil {
				t.Fatal(err)
			}
			for k := 0; k < 100; k += 7 {
				want[k] = 7
			}
		}
		check(db, fmt.Sprintf("after commit %d", i))
		if reader != nil && (i == 2 || i == 7) {
			b := reader.Bucket([]byte("b"))
			for k := 0; k < 18000; k++ {
				if got, w := b.Get([]byte(fmt.Sprintf("%08d", k))), fmt.Sprintf("%060d", before[k]); string(got) != w {
					t.Fatalf("commit %d: the reader begun two commits before reads %q at %08d, want %q", i, got, k, w)
				}
			}
			reader.Rollback()
			reader = nil
		}
	}
	if n := mapkv.PreparedReleasesForTest(db); n < 3 {
		t.Fatalf("%d transactions began with a prepared free set, want at least 3", n)
	}
	mustCheck(t, db)
	db.Close()
	if db, err = mapkv.Open(path, opts); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	check(db, "reopened")
	mustCheck(t, db)
}

// scatteredPuts returns a commit of five new keys, each just after one
// of the 300 keys relFill("a", 0, 300, ...) put, spread over the leaves:
// most go into their leaf in place.
func scatteredPuts(j int) []relOp {
	op := relOp{kind: relBulkPut, path: []string{"a"}}
	for c := range 5 {
		k := (j*7 + c*61) % 300
		op.keys = append(op.keys, fmt.Sprintf("f%06d-%d", k, j))
		op.vals = append(op.vals, strings.Repeat("v", 10+j%7))
	}
	return []relOp{op}
}

// putsDB opens a database with a small log (logOpts) and puts 300 keys
// into bucket "a" (relFill), for scatteredPuts.
func putsDB(t *testing.T) (*mapkv.DB, string, *relBucket) {
	t.Helper()
	db, path, m := relFaultDB(t, logOpts())
	if err := relCommit(db, m, relFill("a", 0, 300, 20)); err != nil {
		t.Fatal(err)
	}
	return db, path, m
}

// TestLogPuts: leaves changed in place, when an earlier record of the
// log's generation wrote the pages they replace, are logged as puts, and
// crashed copies replay them to the committed state, across the
// checkpoints of a small log; a new handle's first commit logs whole
// nodes (its log starts a generation) but those whose pages it holds
// (TestLogHolds), the next puts again.
func TestLogPuts(t *testing.T) {
	db, path, m := putsDB(t)
	defer db.Close()
	commitReplaying(t, db, path, m, 40, 8, scatteredPuts)
	if n := mapkv.WalPutsForTest(db); n < 40 {
		t.Fatalf("40 commits of scattered puts logged %d nodes as puts, want most of their leaves", n)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	c := relReopen(t, path, logOpts())
	defer c.Close()
	if err := relCommit(c, m, scatteredPuts(100)); err != nil {
		t.Fatal(err)
	}
	if n, held := mapkv.WalPutsForTest(c), first(mapkv.HoldsForTest(c)); n != held {
		t.Fatalf("the first commit of a new log logged %d nodes as puts and held %d pages: no earlier record wrote their pages", n, held)
	}
	if err := relCommit(c, m, scatteredPuts(100)); err != nil { // the same keys again, new values
		t.Fatal(err)
	}
	if n := mapkv.WalPutsForTest(c); n == 0 {
		t.Fatal("the second commit into the same leaves logged none as puts")
	}
	relExpect(t, c, m, "reopened")
}

// commitReplaying commits ops(j) to db (whose files are at path, its
// pairs modelled by m) for j from 0 to n-1, and after every every-th
// commit checks that a copy of the files, opened as after a crash,
// replays to the committed state.
func commitReplaying(t *testing.T, db *mapkv.DB, path string, m *relBucket, n, every int, ops func(j int) []relOp) {
	t.Helper()
	for j := range n {
		if err := relCommit(db, m, ops(j)); err != nil {
			t.Fatal(err)
		}
		if j%every == every-1 {
			c := relReopen(t, copyFiles(t, path), logOpts())
			relExpect(t, c, m, fmt.Sprintf("crashed copy after commit %d", j))
			c.Close()
		}
	}
}

// TestLogBranchPuts: one-key commits into a tree of three levels rewrite
// the branches on their path, which are logged as the puts of child
// references into the branches they replace (the record before wrote
// them), and crashed copies replay them to the committed state, across
// the checkpoints of a small log.
func TestLogBranchPuts(t *testing.T) {
	for _, sync := range []bool{false, true} {
		t.Run(fmt.Sprintf("sync=%v", sync), func(t *testing.T) {
			defer mapkv.SetLogSync(sync)()
			db, path, m := relFaultDB(t, logOpts())
			defer db.Close()
			if err := relCommit(db, m, relFill("a", 0, 3000, 20)); err != nil {
				t.Fatal(err)
			}
			_, ready := mapkv.LogAsyncForTest(db)
			commitReplaying(t, db, path, m, 60, 10, func(j int) []relOp {
				return []relOp{{kind: relBulkPut, path: []string{"a"}, keys: []string{fmt.Sprintf("f%06d-b", (j*1987)%3000)}, vals: []string{strings.Repeat("w", 10+j%30)}}}
			})
			if n := mapkv.WalBranchPutsForTest(db); n < 60 {
				t.Fatalf("60 one-key commits into a 3-level tree logged %d branches as puts, want at least one a commit", n)
			}
			// A log that takes asynchronous writes (Linux with AIO and
			// direct I/O) sends nearly every one-key record so: those
			// that end past the zeros written ahead of the records go
			// the old way.
			async, _ := mapkv.LogAsyncForTest(db)
			switch {
			case sync && async != 0:
				t.Fatalf("SetLogSync(true): %d records written asynchronously", async)
			case !sync && ready && async < 40:
				t.Fatalf("%d of 60 one-key records written asynchronously, want most", async)
			case !sync && !ready:
				t.Logf("this log takes no asynchronous writes (no AIO or no direct I/O here): only the synchronous path ran")
			}
			t.Logf("%d nodes logged as puts, %d of them branches; %d records asynchronous", mapkv.WalPutsForTest(db), mapkv.WalBranchPutsForTest(db), async)
		})
	}
}

// logRecords walks the records of log image lg and calls f with each
// one's offset, node count and txid.
func logRecords(lg []byte, f func(off, n int, txid uint64)) {
	le := binary.LittleEndian
	for off := 64; off+160 <= len(lg) && le.Uint32(lg[off:]) == 0x4345524d; {
		total := int(le.Uint64(lg[off+24:]))
		if total <= 0 || off+total > len(lg) {
			return
		}
		f(off, int(le.Uint32(lg[off+4:])), le.Uint64(lg[off+16:]))
		off += total
	}
}

// TestLogPutsDamaged: a record whose puts were torn or damaged ends the
// log there (it was never acknowledged: its flush did not end); one whose
// puts are whole but do not build the node its list names stops Open
// with ErrCorrupt instead of dropping the commit.
func TestLogPutsDamaged(t *testing.T) {
	db, path, m := putsDB(t)
	defer db.Close()
	// Leaves filled in key order are full: the first commits split them.
	for j := range 10 {
		if err := relCommit(db, m, scatteredPuts(j)); err != nil {
			t.Fatal(err)
		}
	}
	before := m.clone()
	// The data file as the last commit found it: a power cut in its log
	// record's flush leaves it so (its meta is written after the flush).
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := relCommit(db, m, scatteredPuts(5)); err != nil { // the leaves commit 5 wrote
		t.Fatal(err)
	}
	cp := copyFiles(t, path)
	lg, err := os.ReadFile(cp + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	// The last record's first node logged as puts: where its entry and
	// its payload are.
	le := binary.LittleEndian
	entry, payload, hl := -1, -1, 0
	logRecords(lg, func(off, n int, _ uint64) {
		entry, payload = -1, -1
		hl = 160 + 24*n + 8
		data := off + hl
		for i := range n {
			e := off + 160 + 24*i
			if le.Uint32(lg[e+8:])&(1<<31) != 0 && entry < 0 {
				entry, payload = e, data
			}
			data += int(le.Uint32(lg[e+12:]))
		}
		if entry >= 0 {
			hl = off // now the record's offset
		}
	})
	if entry < 0 {
		t.Fatal("the last record logged no node as puts")
	}
	recOff := hl
	try := func(name string, damage func(lg []byte)) error {
		l := slices.Clone(lg)
		damage(l)
		c, err := mapkv.Open(writeCrashed(t, data, l), logOpts())
		if err == nil {
			defer c.Close()
			relExpect(t, c, before, name)
		}
		return err
	}
	// Undamaged, the same files open at the last commit.
	c := relReopen(t, writeCrashed(t, data, lg), logOpts())
	relExpect(t, c, m, "whole log")
	c.Close()
	if err := try("torn puts", func(l []byte) { l[payload+10] ^= 0x5a }); err != nil {
		t.Fatalf("torn puts: %v, want the commit before", err)
	}
	err = try("wrong checksum", func(l []byte) {
		le.PutUint64(l[entry+16:], le.Uint64(l[entry+16:])^1)
		n := int(le.Uint32(l[recOff+4:]))
		h := l[recOff : recOff+160+24*n+8]
		le.PutUint64(h[len(h)-8:], xxhash.Sum64(h[:len(h)-8]))
	})
	if !errors.Is(err, mapkv.ErrCorrupt) || !strings.Contains(err.Error(), "checksum") {
		t.Fatalf("puts that build another node: %v, want ErrCorrupt naming the checksum", err)
	}
}

// TestReplayMapsLog: Open replays a crashed copy's log through a
// read-only mapping of it (readLog), not a copy on the heap: a log grown
// to hold bulk commits (512 MiB at most by default) would need that much
// memory to recover. Replaying a log of node images (39 commits of about
// 160 KB) allocates far less than the log holds, the copy comes back at
// the last commit, and no mapping of a log outlives Open.
func TestReplayMapsLog(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("counts on package mmap mapping the log, as it does on Linux")
	}
	opts := &mapkv.Options{WALSize: 64 << 20}
	path := filepath.Join(t.TempDir(), "replay.db")
	db := mustOpen(t, path, opts)
	empty := copyFiles(t, path) // a crashed copy whose log holds no record
	val := bytes.Repeat([]byte("v"), 1000)
	commit := func(j int) {
		t.Helper()
		if err := db.Update(func(tx *mapkv.Tx) error {
			b, err := tx.CreateBucketIfNotExists([]byte("b"))
			if err != nil {
				return err
			}
			for i := range 120 {
				if err := b.Put(fmt.Appendf(nil, "%03d-%05d", j, i), val); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	commit(0)
	// The data file as a crash could leave it: none of what follows
	// written back.
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for j := 1; j < 40; j++ {
		commit(j)
	}
	lg, err := os.ReadFile(path + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	recs := 0
	logRecords(lg, func(int, int, uint64) { recs++ })
	if recs < 39 {
		t.Fatalf("the log holds %d records, want the 39 commits'", recs)
	}
	cp := writeCrashed(t, data, lg)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	c, err := mapkv.Open(cp, opts)
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	alloc := int64(after.TotalAlloc - before.TotalAlloc)
	if alloc > int64(len(lg))/4 {
		t.Fatalf("Open allocated %d bytes replaying a log of %d: the log was copied to the heap", alloc, len(lg))
	}
	t.Logf("replaying a log of %d bytes allocated %d", len(lg), alloc)
	// Nor does the mapping outlive the replay, of a log with records or
	// without.
	e, err := mapkv.Open(empty, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{cp, empty} {
		if bytes.Contains(maps, []byte(p+"-wal")) {
			t.Fatalf("%s-wal is still mapped after Open", p)
		}
	}
	if err := c.View(func(tx *mapkv.Tx) error {
		b := tx.Bucket([]byte("b"))
		if n := b.Stats().KeyN; n != 40*120 {
			return fmt.Errorf("the replayed copy holds %d keys, want %d", n, 40*120)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// TestLogHolds: a one-key commit whose leaf replaces a page the data file
// holds as the last checkpoint left it (no record of the log's generation
// wrote it) logs the leaf as puts into that page and holds the page until
// the log starts over: crashed copies taken from the page cache (every
// page the kernel could have written back, written) replay to the
// committed state, which they could not if a later commit of the
// generation had reused a held page. Across the checkpoints of a small
// log the held pages go back to the free list: the file stops growing.
// Both ways of writing the data file run (the writable mapping and
// pwritev).
func TestLogHolds(t *testing.T) {
	for _, mapped := range []bool{true, false} {
		t.Run(fmt.Sprintf("mapped=%v", mapped), func(t *testing.T) {
			defer mapkv.SetMapWrites(mapped)()
			db, path, m := relFaultDB(t, logOpts())
			if err := relCommit(db, m, relFill("a", 0, 3000, 20)); err != nil {
				t.Fatal(err)
			}
			// That commit grew the log; a grown log holds nothing
			// (its capacity is for large commits). Start afresh.
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			db = relReopen(t, path, logOpts())
			defer db.Close()
			one := func(j int) []relOp {
				// A new value for a key: the leaf changes in place.
				return []relOp{{kind: relBulkPut, path: []string{"a"}, keys: []string{fmt.Sprintf("f%06d", (j*1987)%3000)}, vals: []string{fmt.Sprintf("%020d", j)}}}
			}
			commitReplaying(t, db, path, m, 60, 6, one)
			holds, writes := mapkv.HoldsForTest(db)
			t.Logf("after 60: %d held, %d puts", holds, mapkv.WalPutsForTest(db))
			if holds < 30 {
				t.Fatalf("60 one-key commits into a 3-level tree held %d pages, want most of their leaves", holds)
			}
			if mapped && mapkv.MapWritesOn() && writes == 0 {
				t.Fatal("no commit wrote through the writable mapping")
			}
			if !mapped && writes != 0 {
				t.Fatalf("SetMapWrites(false): %d writes through the mapping", writes)
			}
			// Many generations of the 64 KiB log: the held pages are
			// reused after each, so the file settles.
			for j := 60; j < 600; j++ {
				if err := relCommit(db, m, one(j)); err != nil {
					t.Fatal(err)
				}
			}
			size := db.Stats().FileSize
			before, _ := mapkv.HoldsForTest(db)
			for j := 600; j < 1200; j++ {
				if err := relCommit(db, m, one(j)); err != nil {
					t.Fatal(err)
				}
			}
			if grown := db.Stats().FileSize - size; grown > 64<<10 {
				t.Fatalf("600 more one-key commits grew the file by %d bytes: held pages are not reused", grown)
			}
			if after, _ := mapkv.HoldsForTest(db); after-before < 300 {
				t.Fatalf("600 more one-key commits held %d pages: the log no longer lets go of them when it starts over", after-before)
			}
			relExpect(t, db, m, "after 1200 commits")
			c := relReopen(t, copyFiles(t, path), logOpts())
			relExpect(t, c, m, "crashed copy after 1200 commits")
			c.Close()
			holds, writes = mapkv.HoldsForTest(db)
			t.Logf("%d pages held, %d writes through the mapping, file %d bytes", holds, writes, db.Stats().FileSize)
		})
	}
}

// first returns the first of two ints.
func first(a, _ int) int { return a }
