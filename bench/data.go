package bench

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"slices"
)

// dataset holds the n pairs every workload draws from, packed as fixed-size
// records, in the orders the workloads need. It is built once per run from a
// fixed seed, so every engine sees the same keys in the same order.
type dataset struct {
	n int
	// randKeys and randVals are the pairs in load order (random).
	randKeys, randVals []byte
	// sortedKeys and sortedVals are the same pairs in key order.
	sortedKeys, sortedVals []byte
	// probeKeys holds every key once in another random order, for lookups.
	probeKeys []byte
	seed      uint64
}

// newDataset makes n distinct random 16-byte keys with random 100-byte
// values (incompressible, so compressing engines gain nothing unfair).
func newDataset(n int, seed uint64) *dataset {
	rng := rand.New(rand.NewPCG(seed, 0x6b76626e6368))
	d := &dataset{n: n, seed: seed}
	d.randKeys = make([]byte, n*KeySize)
	d.randVals = make([]byte, n*ValueSize)
	fillRandom(rng, d.randKeys)
	fillRandom(rng, d.randVals)

	// Sort an index, replace the (astronomically unlikely) duplicates, and
	// sort again until the keys are distinct.
	idx := make([]int32, n)
	for {
		for i := range idx {
			idx[i] = int32(i)
		}
		slices.SortFunc(idx, func(a, b int32) int {
			return bytes.Compare(record(d.randKeys, int(a), KeySize), record(d.randKeys, int(b), KeySize))
		})
		dup := false
		for i := 1; i < n; i++ {
			if bytes.Equal(record(d.randKeys, int(idx[i-1]), KeySize), record(d.randKeys, int(idx[i]), KeySize)) {
				fillRandom(rng, record(d.randKeys, int(idx[i]), KeySize))
				dup = true
			}
		}
		if !dup {
			break
		}
	}
	d.sortedKeys = make([]byte, n*KeySize)
	d.sortedVals = make([]byte, n*ValueSize)
	for i, j := range idx {
		copy(record(d.sortedKeys, i, KeySize), record(d.randKeys, int(j), KeySize))
		copy(record(d.sortedVals, i, ValueSize), record(d.randVals, int(j), ValueSize))
	}

	perm := rng.Perm(n)
	d.probeKeys = make([]byte, n*KeySize)
	for i, j := range perm {
		copy(record(d.probeKeys, i, KeySize), record(d.randKeys, j, KeySize))
	}
	return d
}

// freshPairs returns m new random pairs for workloads that write beyond the
// loaded set (commit-sync, batch, mixed). The 128-bit keys collide with the
// loaded ones with negligible probability; a collision would only turn an
// insert into an update.
func (d *dataset) freshPairs(m int, stream uint64) (keys, vals []byte) {
	rng := rand.New(rand.NewPCG(d.seed^0x9e3779b97f4a7c15, stream))
	keys = make([]byte, m*KeySize)
	vals = make([]byte, m*ValueSize)
	fillRandom(rng, keys)
	fillRandom(rng, vals)
	return keys, vals
}

// fillRandom fills b with random bytes from rng.
func fillRandom(rng *rand.Rand, b []byte) {
	var w [8]byte
	for len(b) > 0 {
		binary.LittleEndian.PutUint64(w[:], rng.Uint64())
		b = b[copy(b, w[:]):]
	}
}
