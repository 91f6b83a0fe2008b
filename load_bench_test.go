package mapkv

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"
)

// The bulk-load benchmarks mirror bench/ (kvbench's load-random and
// load-sorted): 16-byte random keys, 100-byte random values, 10,000 keys
// per synced transaction, default options. Besides keys/s they split each
// commit's time into
//
//	put-ms   the Update function: Bucket.Put into the pending set
//	apply-ms from the end of the function to the first page write: the
//	         merge into the tree, checksums, the free list
//	write-ms the pwritev calls (and the meta write)
//	sync-ms  fdatasync
//
// summed over the whole load. They also report the CPU time the process
// used (every thread, the kernel's work in system calls included) while
// the function ran (put-cpu-ms), until the first page write
// (apply-cpu-ms) and in the whole commit (commit-cpu-ms), which a busy
// machine disturbs less than the wall-clock times; the bytes of the nodes
// the commits wrote (wrote-MB), the file's size and the bytes of the
// pages in use at the end. LOADN=<pairs> changes the size (default 1M),
// LOADPAGE=<bytes> the page size:
//
//	go test -run '^$' -bench 'Load(Random|Sorted)$' -benchtime 1x -count 5 .
//
// The hooks they time with are package state: do not run them in
// parallel with tests that set hooks.

func loadN() int {
	if s := os.Getenv("LOADN"); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n > 0 {
			return n
		}
	}
	return 1_000_000
}

type loadData struct {
	keys, vals []byte // packed, random order
	sk, sv     []byte // the same pairs in key order
}

var loadCache = map[int]*loadData{}

func loadPairs(n int) *loadData {
	if d := loadCache[n]; d != nil {
		return d
	}
	rng := rand.New(rand.NewPCG(7, 11))
	d := &loadData{keys: make([]byte, 16*n), vals: make([]byte, 100*n)}
	for i := 0; i < len(d.keys); i += 8 {
		v := rng.Uint64()
		for j := 0; j < 8; j++ {
			d.keys[i+j] = byte(v >> (8 * j))
		}
	}
	for i := 0; i+8 <= len(d.vals); i += 8 {
		v := rng.Uint64()
		for j := 0; j < 8; j++ {
			d.vals[i+j] = byte(v >> (8 * j))
		}
	}
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int { return bytes.Compare(d.keys[16*a:16*a+16], d.keys[16*b:16*b+16]) })
	d.sk, d.sv = make([]byte, 16*n), make([]byte, 100*n)
	for i, j := range idx {
		copy(d.sk[16*i:], d.keys[16*j:16*j+16])
		copy(d.sv[100*i:], d.vals[100*j:100*j+100])
	}
	loadCache[n] = d
	return d
}

func benchLoad(b *testing.B, sorted bool, perTx int) {
	n := loadN()
	d := loadPairs(n)
	keys, vals := d.keys, d.vals
	if sorted {
		keys, vals = d.sk, d.sv
	}
	old := hooks
	b.Cleanup(func() { hooks = old })
	for b.Loop() {
		b.StopTimer()
		dir := b.TempDir()
		var opts *Options
		if ps, _ := strconv.Atoi(os.Getenv("LOADPAGE")); ps > 0 {
			opts = &Options{PageSize: ps} // to compare page sizes; the harness uses the default
		}
		db, err := Open(filepath.Join(dir, "data.mapkv"), opts)
		if err != nil {
			b.Fatal(err)
		}
		name := []byte("b")
		if err := db.Update(func(tx *Tx) error {
			_, err := tx.CreateBucketIfNotExists(name)
			return err
		}); err != nil {
			b.Fatal(err)
		}
		var put, apply, write, sync, after time.Duration
		var putCPU, applyCPU, commitCPU time.Duration
		var writeCPU time.Duration
		var wrote int64
		var putEnd, writeStart, syncStart, syncEnd time.Time
		hooks.write = func(db *DB, off int64, n int) error {
			if writeStart.IsZero() {
				writeStart = time.Now()
				writeCPU = cpuTime()
			}
			wrote += int64(n)
			return nil
		}
		hooks.sync = func(db *DB, off, n int64, real func() error) error {
			syncStart = time.Now()
			err := real()
			syncEnd = time.Now()
			return err
		}
		b.StartTimer()
		for i := 0; i < n; i += perTx {
			j := min(i+perTx, n)
			t0 := time.Now()
			c0 := cpuTime()
			var c1 time.Duration
			writeStart = time.Time{}
			err := db.Update(func(tx *Tx) error {
				bk := tx.Bucket(name)
				for k := i; k < j; k++ {
					if err := bk.Put(keys[16*k:16*k+16], vals[100*k:100*k+100]); err != nil {
						return err
					}
				}
				putEnd = time.Now()
				c1 = cpuTime()
				return nil
			})
			end := time.Now()
			c2 := cpuTime()
			putCPU += c1 - c0
			commitCPU += c2 - c1
			if writeCPU > c1 {
				applyCPU += writeCPU - c1
			}
			writeCPU = 0
			if err != nil {
				b.Fatal(err)
			}
			put += putEnd.Sub(t0)
			if writeStart.IsZero() {
				writeStart = syncStart
			}
			apply += writeStart.Sub(putEnd)
			write += syncStart.Sub(writeStart)
			sync += syncEnd.Sub(syncStart)
			after += end.Sub(syncEnd)
		}
		b.StopTimer()
		hooks = old
		fi, err := os.Stat(filepath.Join(dir, "data.mapkv"))
		if err != nil {
			b.Fatal(err)
		}
		st := db.Stats()
		if err := db.Close(); err != nil {
			b.Fatal(err)
		}
		total := put + apply + write + sync + after
		b.ReportMetric(float64(n)/total.Seconds(), "keys/s")
		b.ReportMetric(put.Seconds()*1e3, "put-ms")
		b.ReportMetric(apply.Seconds()*1e3, "apply-ms")
		b.ReportMetric(write.Seconds()*1e3, "write-ms")
		b.ReportMetric(sync.Seconds()*1e3, "sync-ms")
		b.ReportMetric(after.Seconds()*1e3, "after-ms")
		b.ReportMetric(putCPU.Seconds()*1e3, "put-cpu-ms")
		b.ReportMetric(applyCPU.Seconds()*1e3, "apply-cpu-ms")
		b.ReportMetric(commitCPU.Seconds()*1e3, "commit-cpu-ms")
		b.ReportMetric(float64(wrote)/1e6, "wrote-MB")
		b.ReportMetric(float64(fi.Size())/1e6, "file-MB")
		b.ReportMetric(float64(st.PageCount-st.FreePageN-st.PendingPageN)*float64(st.PageSize)/1e6, "used-MB")
		b.StartTimer()
	}
}

func BenchmarkLoadRandom(b *testing.B) { benchLoad(b, false, 10_000) }
func BenchmarkLoadSorted(b *testing.B) { benchLoad(b, true, 10_000) }
