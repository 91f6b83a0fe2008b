package mapkv_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/mapkv/mapkv"
)

// benchKeys returns n random 16-byte keys.
func benchKeys(n int) [][]byte {
	rng := rand.New(rand.NewPCG(1, 2))
	keys := make([][]byte, n)
	for i := range keys {
		k := make([]byte, 16)
		binary.BigEndian.PutUint64(k, rng.Uint64())
		binary.BigEndian.PutUint64(k[8:], rng.Uint64())
		keys[i] = k
	}
	return keys
}

var (
	benchOnce sync.Once
	benchDir  string
	benchK    [][]byte
)

// benchDB returns a database of 1M random keys with 100-byte values, built
// once per test binary run.
func benchDB(b *testing.B) (string, [][]byte) {
	benchOnce.Do(func() {
		dir, err := mkdirTemp()
		if err != nil {
			b.Fatal(err)
		}
		benchDir = dir
		benchK = benchKeys(1_000_000)
		db, err := mapkv.Open(filepath.Join(dir, "bench.db"), &mapkv.Options{NoSync: true})
		if err != nil {
			b.Fatal(err)
		}
		load(b, db, benchK, 10000)
		db.Close()
	})
	return filepath.Join(benchDir, "bench.db"), benchK
}

func load(b testing.TB, db *mapkv.DB, keys [][]byte, perTx int) {
	val := make([]byte, 100)
	for i := 0; i < len(keys); i += perTx {
		end := min(i+perTx, len(keys))
		if err := db.Update(func(tx *mapkv.Tx) error {
			bk, err := tx.CreateBucketIfNotExists([]byte("bench"))
			if err != nil {
				return err
			}
			for _, k := range keys[i:end] {
				if err := bk.Put(k, val); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGet looks up random keys of a 1M-key database in one read
// transaction.
func BenchmarkGet(b *testing.B) {
	path, keys := benchDB(b)
	db := mustOpen(b, path, &mapkv.Options{ReadOnly: true})
	tx, err := db.Begin(false)
	if err != nil {
		b.Fatal(err)
	}
	defer tx.Rollback()
	bk := tx.Bucket([]byte("bench"))
	order := rand.Perm(len(keys))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if bk.Get(keys[order[i%len(order)]]) == nil {
			b.Fatal("missing key")
		}
	}
}

// BenchmarkGetParallel is BenchmarkGet on every core.
func BenchmarkGetParallel(b *testing.B) {
	path, keys := benchDB(b)
	db := mustOpen(b, path, &mapkv.Options{ReadOnly: true})
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		tx, err := db.Begin(false)
		if err != nil {
			b.Error(err)
			return
		}
		defer tx.Rollback()
		bk := tx.Bucket([]byte("bench"))
		rng := rand.New(rand.NewPCG(rand.Uint64(), 1))
		for pb.Next() {
			if bk.Get(keys[rng.IntN(len(keys))]) == nil {
				b.Error("missing key")
				return
			}
		}
	})
}

// BenchmarkCursorScan walks all 1M keys in order; one op is one key.
func BenchmarkCursorScan(b *testing.B) {
	path, _ := benchDB(b)
	db := mustOpen(b, path, &mapkv.Options{ReadOnly: true})
	tx, err := db.Begin(false)
	if err != nil {
		b.Fatal(err)
	}
	defer tx.Rollback()
	c := tx.Bucket([]byte("bench")).Cursor()
	b.ReportAllocs()
	b.ResetTimer()
	k, _ := c.First()
	for i := 0; i < b.N; i++ {
		if k == nil {
			k, _ = c.First()
		}
		k, _ = c.Next()
	}
}

// BenchmarkLoad inserts 1M keys, 10,000 per synced transaction, in random
// and in sorted order; one op is one key.
func BenchmarkLoad(b *testing.B) {
	keys := benchKeys(1_000_000)
	sorted := slices.Clone(keys)
	slices.SortFunc(sorted, bytes.Compare)
	for _, tc := range []struct {
		name string
		keys [][]byte
	}{{"random", keys}, {"sorted", sorted}} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				db := mustOpen(b, filepath.Join(b.TempDir(), "load.db"), nil)
				load(b, db, tc.keys, 10000)
				db.Close()
				n++
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n*len(tc.keys)), "ns/key")
		})
	}
}

// BenchmarkCommitSync commits one key per synced transaction.
func BenchmarkCommitSync(b *testing.B) {
	db := mustOpen(b, "", nil)
	val := make([]byte, 100)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		if err := db.Update(func(tx *mapkv.Tx) error {
			bk, err := tx.CreateBucketIfNotExists([]byte("b"))
			if err != nil {
				return err
			}
			return bk.Put([]byte(fmt.Sprintf("key%012d", i)), val)
		}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkViewGet is one read transaction with one Get: on a handle of
// the writing process (the in-process reader table) and on a read-only
// handle beside it (a slot of the shared reader table in the lock file).
// Both must cost about the same: a slot costs no system call once owned.
func BenchmarkViewGet(b *testing.B) {
	path, keys := benchDB(b)
	rw := mustOpen(b, path, nil)
	ro := mustOpen(b, path, &mapkv.Options{ReadOnly: true})
	for _, tc := range []struct {
		name string
		db   *mapkv.DB
	}{{"writer-process", rw}, {"read-only-process", ro}} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				err := tc.db.View(func(tx *mapkv.Tx) error {
					if tx.Bucket([]byte("bench")).Get(keys[i%len(keys)]) == nil {
						return errors.New("missing key")
					}
					return nil
				})
				if err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}
