//go:build unix

package mapkv_test

import (
	"encoding/binary"
	"math/rand/v2"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mapkv/mapkv"
)

// The read benchmarks mirror bench/'s get-random and scan workloads on the
// same shape of data: 1M random 16-byte keys with 100-byte values, loaded
// in random order 10,000 keys per transaction, probed from one contiguous
// buffer in another random order (not a slice per key: that would add two
// cache misses per lookup that the benchmark, not the store, causes).
//
// They read benchDB's database. MAPKV_READBENCH_DB names a file to keep
// one in instead (built there with random values if missing), so that A/B
// runs of two builds read the same file:
//
//	MAPKV_READBENCH_DB=/tmp/read.db go test -run '^$' -bench Read -count 6 .

const readBenchN = 1_000_000

var (
	readOnce  sync.Once
	readPath  string
	readProbe []byte // every key once, in random order, 16 bytes each
)

func readBenchDB(b *testing.B) (string, []byte) {
	readOnce.Do(func() {
		readPath = os.Getenv("MAPKV_READBENCH_DB")
		if readPath == "" {
			var keys [][]byte
			readPath, keys = benchDB(b)
			readProbe = make([]byte, 0, len(keys)*16)
			for _, j := range rand.New(rand.NewPCG(7, 11)).Perm(len(keys)) {
				readProbe = append(readProbe, keys[j]...)
			}
			return
		}
		rng := rand.New(rand.NewPCG(7, 11))
		keys := make([]byte, readBenchN*16)
		for i := 0; i < readBenchN; i++ {
			binary.BigEndian.PutUint64(keys[i*16:], rng.Uint64())
			binary.BigEndian.PutUint64(keys[i*16+8:], rng.Uint64())
		}
		readProbe = make([]byte, len(keys))
		for i, j := range rng.Perm(readBenchN) {
			copy(readProbe[i*16:(i+1)*16], keys[j*16:(j+1)*16])
		}
		if _, err := os.Stat(readPath); err == nil {
			return
		}
		db, err := mapkv.Open(readPath, &mapkv.Options{NoSync: true})
		if err != nil {
			b.Fatal(err)
		}
		val := make([]byte, 100)
		for i := 0; i < readBenchN; i += 10000 {
			if err := db.Update(func(tx *mapkv.Tx) error {
				bk, err := tx.CreateBucketIfNotExists([]byte("bench"))
				if err != nil {
					return err
				}
				for j := i; j < i+10000; j++ {
					for k := range val {
						val[k] = byte(rng.Uint32())
					}
					if err := bk.Put(keys[j*16:(j+1)*16], val); err != nil {
						return err
					}
				}
				return nil
			}); err != nil {
				b.Fatal(err)
			}
		}
		if err := db.Close(); err != nil {
			b.Fatal(err)
		}
	})
	return readPath, readProbe
}

// cpuTime returns the CPU time the process has used (user and system): on
// a shared machine it counts less of other programs' load than wall time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// faults returns the page faults the process has taken.
func faults() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return int64(ru.Minflt) + int64(ru.Majflt) // int32 on 32-bit Linux
}

// getAll looks up every key of probe in one read transaction, as bench/'s
// mapkv adapter does, and returns how many it found.
func getAll(b *testing.B, db *mapkv.DB, probe []byte) (found int, sum uint64) {
	err := db.View(func(tx *mapkv.Tx) error {
		bk := tx.Bucket([]byte("bench"))
		for i := 0; i+16 <= len(probe); i += 16 {
			if v := bk.Get(probe[i : i+16]); v != nil {
				found++
				sum += uint64(len(v)) + uint64(v[0])
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	return found, sum
}

// coldPasses opens the database at path with o for every op and runs
// pass on it, timed alone, then reports wall and CPU time per item (what
// pass returns it handled) and page faults per pass. CPU time is the
// process's: it counts the warm-up's work on another core too.
func coldPasses(b *testing.B, path string, o *mapkv.Options, unit string, pass func(*mapkv.DB) int) {
	var took, cpu time.Duration
	var flt int64
	items, passes := 0, 0
	for b.Loop() {
		db, err := mapkv.Open(path, o)
		if err != nil {
			b.Fatal(err)
		}
		start, c0, f0 := time.Now(), cpuTime(), faults()
		items += pass(db)
		took += time.Since(start)
		cpu += cpuTime() - c0
		flt += faults() - f0
		passes++
		db.Close()
	}
	b.ReportMetric(float64(took.Nanoseconds())/float64(items), "ns/"+unit)
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(items), "cpu-ns/"+unit)
	b.ReportMetric(float64(flt)/float64(passes), "faults/pass")
}

// BenchmarkReadGet: "cold" reopens the database and looks up every key
// once (the get-random workload; one op is one pass, see ns/get; the
// warm-up runs beside it), "cold-nowarmup" the same without the warm-up;
// "warm" is one Get per op in a transaction whose pages are all mapped.
func BenchmarkReadGet(b *testing.B) {
	path, probe := readBenchDB(b)
	cold := func(b *testing.B, o *mapkv.Options) {
		coldPasses(b, path, o, "get", func(db *mapkv.DB) int {
			if n, _ := getAll(b, db, probe); n != readBenchN {
				b.Fatalf("found %d keys", n)
			}
			return readBenchN
		})
	}
	b.Run("cold", func(b *testing.B) { cold(b, nil) })
	b.Run("cold-nowarmup", func(b *testing.B) { cold(b, &mapkv.Options{NoWarmup: true}) })
	b.Run("warm", func(b *testing.B) {
		db := mustOpen(b, path, nil)
		getAll(b, db, probe)
		tx, err := db.Begin(false)
		if err != nil {
			b.Fatal(err)
		}
		defer tx.Rollback()
		bk := tx.Bucket([]byte("bench"))
		b.ReportAllocs()
		i := 0
		c0 := cpuTime()
		for b.Loop() {
			if i+16 > len(probe) {
				i = 0
			}
			if bk.Get(probe[i:i+16]) == nil {
				b.Fatal("missing key")
			}
			i += 16
		}
		b.ReportMetric(float64((cpuTime()-c0).Nanoseconds())/float64(b.N), "cpu-ns/op")
	})
}

// BenchmarkReadScan walks every key in order in one read transaction;
// "cold" right after reopening (the scan workload: the warm-up maps the
// file beside the scan, and cpu-ns/key counts its work too),
// "cold-nowarmup" the same without it, "warm" on a mapping already read.
// One op is one key.
func BenchmarkReadScan(b *testing.B) {
	path, _ := readBenchDB(b)
	scan := func(b *testing.B, db *mapkv.DB) int {
		n := 0
		var sum uint64
		err := db.View(func(tx *mapkv.Tx) error {
			c := tx.Bucket([]byte("bench")).Cursor()
			for k, v := c.First(); k != nil; k, v = c.Next() {
				n++
				sum += uint64(len(k) + len(v))
			}
			return nil
		})
		if err != nil || n != readBenchN || sum != readBenchN*116 {
			b.Fatalf("scan: %d keys, %v", n, err)
		}
		return n
	}
	cold := func(b *testing.B, o *mapkv.Options) {
		coldPasses(b, path, o, "key", func(db *mapkv.DB) int { return scan(b, db) })
	}
	b.Run("cold", func(b *testing.B) { cold(b, nil) })
	b.Run("cold-nowarmup", func(b *testing.B) { cold(b, &mapkv.Options{NoWarmup: true}) })
	b.Run("warm", func(b *testing.B) {
		db := mustOpen(b, path, nil)
		scan(b, db)
		b.ReportAllocs()
		keys := 0
		c0 := cpuTime()
		for b.Loop() {
			keys += scan(b, db)
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(keys), "ns/key")
		b.ReportMetric(float64((cpuTime()-c0).Nanoseconds())/float64(keys), "cpu-ns/key")
	})
}

// BenchmarkReadCached runs Get and a scan on a database of 5,000 keys
// that stays in the CPU caches: what the read path costs in instructions
// rather than in memory latency. One op is one key.
func BenchmarkReadCached(b *testing.B) {
	const n = 5000
	rng := rand.New(rand.NewPCG(3, 5))
	keys := make([]byte, n*16)
	for i := range keys {
		keys[i] = byte(rng.Uint32())
	}
	db := mustOpen(b, "", &mapkv.Options{NoSync: true})
	val := make([]byte, 100)
	if err := db.Update(func(tx *mapkv.Tx) error {
		bk, err := tx.CreateBucket([]byte("bench"))
		if err != nil {
			return err
		}
		for i := 0; i < n; i++ {
			if err := bk.Put(keys[i*16:(i+1)*16], val); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	tx, err := db.Begin(false)
	if err != nil {
		b.Fatal(err)
	}
	defer tx.Rollback()
	bk := tx.Bucket([]byte("bench"))
	b.Run("get", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		c0 := cpuTime()
		for b.Loop() {
			if i == n {
				i = 0
			}
			if bk.Get(keys[i*16:(i+1)*16]) == nil {
				b.Fatal("missing key")
			}
			i++
		}
		b.ReportMetric(float64((cpuTime()-c0).Nanoseconds())/float64(b.N), "cpu-ns/op")
	})
	b.Run("scan", func(b *testing.B) {
		b.ReportAllocs()
		c := bk.Cursor()
		k, _ := c.First()
		c0 := cpuTime()
		for b.Loop() {
			if k == nil {
				k, _ = c.First()
			}
			k, _ = c.Next()
		}
		b.ReportMetric(float64((cpuTime()-c0).Nanoseconds())/float64(b.N), "cpu-ns/op")
	})
}

// BenchmarkReadRange seeks to a random key of the 1M-key database and
// reads the 20 keys from there (a leaf holds about 22): what a short range
// query costs, loading ahead included. One op is one range.
func BenchmarkReadRange(b *testing.B) {
	path, probe := readBenchDB(b)
	db := mustOpen(b, path, nil)
	getAll(b, db, probe)
	tx, err := db.Begin(false)
	if err != nil {
		b.Fatal(err)
	}
	defer tx.Rollback()
	bk := tx.Bucket([]byte("bench"))
	b.ReportAllocs()
	i := 0
	c0 := cpuTime()
	for b.Loop() {
		if i+16 > len(probe) {
			i = 0
		}
		n := 0
		for range bk.Range(probe[i:i+16], nil) {
			if n++; n == 20 {
				break
			}
		}
		i += 16
	}
	b.ReportMetric(float64((cpuTime()-c0).Nanoseconds())/float64(b.N), "cpu-ns/op")
}
