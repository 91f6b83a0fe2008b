package mapkv

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"math"
	"slices"

	"github.com/mapkv/mapkv/page"
)

// Three sorts lie on a commit's serial path: a bucket's changes by key
// (sortChanges), the commit's nodes by page (sortNodes) and the pages
// released to the free set by start (sortRuns, in freelist.go). Each sorts
// small keys that stand for the items, by a radix sort when there are
// many, and then moves the items into place once.

// sortKey stands for an item in a sort: a uint64 that orders it (a page
// ID, or the first eight bytes of a key) and its index.
type sortKey struct {
	prefix uint64
	i      uint32
}

// radixMin is the length below which slices.SortFunc is used instead of
// radixSort.
const radixMin = 256

// radixSort sorts keys stably by prefix: a byte at a time, from the
// lowest, over only the bytes in which the prefixes differ (two passes
// for page IDs in a file of up to 65,536 pages, three up to 64 GiB of
// 4 KiB pages; eight for random keys).
func radixSort(keys []sortKey) {
	if len(keys) < 2 {
		return
	}
	var or, and uint64 = 0, math.MaxUint64
	for _, k := range keys {
		or |= k.prefix
		and &= k.prefix
	}
	diff := or &^ and // the bits that differ somewhere
	src, dst := keys, make([]sortKey, len(keys))
	for shift := uint(0); shift < 64 && diff>>shift != 0; shift += 8 {
		if (diff>>shift)&0xff == 0 {
			continue
		}
		var count [256]int
		for _, k := range src {
			count[(k.prefix>>shift)&0xff]++
		}
		pos := 0
		for b, c := range count {
			count[b] = pos
			pos += c
		}
		for _, k := range src {
			b := (k.prefix >> shift) & 0xff
			dst[count[b]] = k
			count[b]++
		}
		src, dst = dst, src
	}
	if &src[0] != &keys[0] {
		copy(keys, src)
	}
}

// permute puts s[keys[j].i] at j for every j, in place, one cycle of the
// permutation at a time. It overwrites keys' indexes.
func permute[T any](s []T, keys []sortKey) {
	const placed = math.MaxUint32
	for j := range keys {
		if keys[j].i == placed {
			continue
		}
		first := s[j]
		for k := j; ; {
			from := keys[k].i
			keys[k].i = placed
			if int(from) == j {
				s[k] = first
				break
			}
			s[k] = s[from]
			k = int(from)
		}
	}
}

// sortChanges sorts log by key, then by arrival (seq). It sorts keys that
// carry the changes' first eight key bytes, then moves the changes:
// sorting the changes themselves compared keys through pointers into
// memory all over the heap, and moved 56-byte structs. For 10,000 random
// 16-byte keys (a load's commit, BenchmarkSortChanges): 1.6 ms sorting
// the changes, 0.81-0.83 ms with slices.SortFunc over the small keys,
// 0.23-0.26 ms with radixSort (2026-12-05: a 1M-key random load spent
// 107 ms of its serial path in the slower one).
func sortChanges(log []change) {
	keys := make([]sortKey, len(log))
	for i, c := range log {
		var b [8]byte
		copy(b[:], c.Key)
		keys[i] = sortKey{prefix: binary.BigEndian.Uint64(b[:]), i: uint32(i)}
	}
	full := func(a, b sortKey) int {
		if a.prefix != b.prefix {
			return cmp.Compare(a.prefix, b.prefix)
		}
		ca, cb := &log[a.i], &log[b.i]
		if c := bytes.Compare(ca.Key, cb.Key); c != 0 {
			return c
		}
		return cmp.Compare(ca.Seq, cb.Seq)
	}
	if len(keys) < radixMin {
		slices.SortFunc(keys, full)
	} else {
		radixSort(keys)
		// Changes whose keys share their first eight bytes are ordered
		// by the rest of their keys, then by arrival.
		for lo := 0; lo < len(keys); {
			hi := lo + 1
			for hi < len(keys) && keys[hi].prefix == keys[lo].prefix {
				hi++
			}
			if hi-lo > 1 {
				slices.SortFunc(keys[lo:hi], full)
			}
			lo = hi
		}
	}
	permute(log, keys)
}

// idBuf is a node of the commit: its first page and its bytes.
type idBuf struct {
	id  page.ID
	buf []byte
}

// sortNodes sorts ns by page. A 10,000-key random commit sorts about
// 7,500 scattered nodes on its serial path (BenchmarkSortNodes): about
// 100 µs, against about 300 µs for slices.Sort of their IDs alone and
// 50-90 µs for a radix sort moving the nodes themselves at each pass
// (which sortChanges cannot use: its keys need their tie-break), on
// 2026-12-05.
func sortNodes(ns []idBuf) { sortBy(ns, func(n idBuf) uint64 { return uint64(n.id) }) }

// sortBy sorts s by key, which no two items share: a radix sort of their
// keys and indexes, then a move into place, or slices.SortFunc when s is
// short.
func sortBy[T any](s []T, key func(T) uint64) {
	if len(s) < radixMin {
		slices.SortFunc(s, func(a, b T) int { return cmp.Compare(key(a), key(b)) })
		return
	}
	keys := make([]sortKey, len(s))
	for i, x := range s {
		keys[i] = sortKey{prefix: key(x), i: uint32(i)}
	}
	radixSort(keys)
	permute(s, keys)
}
