package mapkv_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"runtime"
	"testing"

	"github.com/mapkv/mapkv"
)

// TestArenaReuse checks that a write transaction takes the memory its
// keys and values are copied into from the transactions before it
// instead of asking the collector for it anew: a bulk load of 10,000-key
// commits allocates far less than the bytes it puts. It also checks that
// the reused memory never shows through: every commit's pairs read back
// exactly, in the next write transaction and after reopening. (The
// allocation check is off under the race detector, whose own allocations
// would drown it.)
func TestArenaReuse(t *testing.T) {
	path := t.TempDir() + "/arena.db"
	db := mustOpen(t, path, nil)
	const perTx, txs, valSize = 10_000, 4, 400
	// pair builds the key and value of pair i of commit tx in buffers of
	// its own, so that the test allocates nothing per pair.
	kbuf, vbuf := make([]byte, 8), make([]byte, valSize)
	pair := func(tx, i int) ([]byte, []byte) {
		binary.BigEndian.PutUint64(kbuf, uint64(tx*perTx+i)) // ascending: a bulk load
		for j := range vbuf {
			vbuf[j] = byte(tx*31 + i + j)
		}
		return kbuf, vbuf
	}
	put := func(n int) error {
		return db.Update(func(tx *mapkv.Tx) error {
			b, err := tx.CreateBucketIfNotExists([]byte("b"))
			if err != nil {
				return err
			}
			// What the previous commit wrote must read back while this
			// transaction reuses its memory.
			if n > 0 {
				for i := 0; i < perTx; i += 97 {
					k, v := pair(n-1, i)
					if got := b.Get(k); !bytes.Equal(got, v) {
						return fmt.Errorf("tx %d: key %x of tx %d: got %x", n, k, n-1, got)
					}
				}
			}
			for i := range perTx {
				k, v := pair(n, i)
				if err := b.Put(k, v); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err := put(0); err != nil { // warm: the first commit allocates its memory
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for n := 1; n < txs; n++ {
		if err := put(n); err != nil {
			t.Fatal(err)
		}
	}
	runtime.ReadMemStats(&after)
	alloc := after.TotalAlloc - before.TotalAlloc
	putBytes := uint64((txs - 1) * perTx * (8 + valSize))
	t.Logf("%d commits of %d pairs: %d bytes allocated for %d bytes put (%.2f)", txs-1, perTx, alloc, putBytes, float64(alloc)/float64(putBytes))
	switch {
	case raceEnabled:
		t.Log("allocation not checked: the race detector allocates for itself")
	case alloc > putBytes/2:
		t.Errorf("%d commits allocated %d bytes, over half the %d bytes they put: the arena is not reused", txs-1, alloc, putBytes)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = mustOpen(t, path, nil)
	err := db.View(func(tx *mapkv.Tx) error {
		b := tx.Bucket([]byte("b"))
		for n := range txs {
			for i := range perTx {
				k, v := pair(n, i)
				if got := b.Get(k); !bytes.Equal(got, v) {
					return fmt.Errorf("key %x of tx %d: got %x, want %x", k, n, got, v)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	mustCheck(t, db)
}
