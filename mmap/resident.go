package mmap

import (
	"fmt"
	"os"
)

// residentChunk is how much of a file one question to the kernel covers:
// a chunk wholly in the page cache (the common case for a database in
// use), or wholly out of it, is settled by one cachestat(2) call; only a
// chunk partly cached is asked about page by page (mincore(2), about 67
// ns a page on the machines mapkv is measured on).
const residentChunk = 2 << 20

// Chunk states of a Residency.
const (
	chunkUnknown uint8 = iota
	chunkAll           // every page was in the page cache
	chunkNone          // no page was, or the kernel would not say
	chunkSome          // see Residency.bits
)

// Residency tells which pages of a mapped file are in the page cache,
// without reading any from disk. It asks the kernel about a chunk of the
// file the first time a page of that chunk is asked about, so a caller
// that looks at a few pages pays for a few chunks. Every answer is a
// snapshot: reads and eviction change the page cache right after. Where
// the kernel cannot tell (before Linux 6.5 for cachestat, which then
// falls back to mincore; other systems), every page counts as not cached.
// A Residency is not safe for concurrent use.
type Residency struct {
	f      *os.File
	data   []byte   // the mapping's first n bytes
	shift  uint     // log2 of the OS page size
	chunks []uint8  // chunkUnknown, chunkAll, ... per residentChunk bytes
	bits   []uint64 // a bit per page of the chunkSome chunks (allocated on first need)
	vec    []byte   // mincore's answer for one chunk
	noStat bool     // cachestat is missing or refused
}

// Resident returns a Residency for the first n bytes of the region, which
// maps f from offset 0; n must not pass f's end.
func (r *Region) Resident(f *os.File, n int64) (*Residency, error) {
	if n < 0 || n > int64(len(r.Data)) {
		return nil, fmt.Errorf("mmap: residency of %d bytes of a %d-byte mapping", n, len(r.Data))
	}
	ps := os.Getpagesize()
	shift := uint(0)
	for 1<<shift < ps {
		shift++
	}
	return &Residency{
		f:      f,
		data:   r.Data[:n],
		shift:  shift,
		chunks: make([]uint8, (n+residentChunk-1)/residentChunk),
	}, nil
}

// Has reports whether the OS page holding byte off of the range was in the
// page cache when its chunk was first asked about; false outside the
// range.
func (s *Residency) Has(off int64) bool {
	if off < 0 || off >= int64(len(s.data)) {
		return false
	}
	c := off / residentChunk
	if s.chunks[c] == chunkUnknown {
		s.chunks[c] = s.ask(c)
	}
	switch s.chunks[c] {
	case chunkAll:
		return true
	case chunkSome:
		p := uint64(off) >> s.shift
		return s.bits[p/64]&(1<<(p%64)) != 0
	}
	return false
}

// pageRange returns the first OS page of chunk c and how many it holds.
func (s *Residency) pageRange(c int64) (first, count int) {
	ps := int64(1) << s.shift
	start := c * residentChunk
	end := min(start+residentChunk, int64(len(s.data)))
	return int(start / ps), int((end - start + ps - 1) / ps)
}

// markSome records the pages of a partly cached chunk: resident(i) tells
// whether page first+i is cached.
func (s *Residency) markSome(first, count int, resident func(i int) bool) {
	if s.bits == nil {
		pages := (int64(len(s.data)) + 1<<s.shift - 1) >> s.shift
		s.bits = make([]uint64, (pages+63)/64)
	}
	for i := 0; i < count; i++ {
		if resident(i) {
			p := first + i
			s.bits[p/64] |= 1 << (p % 64)
		}
	}
}

// Next returns the offset of the first page that was in the page cache
// (as Has tells) among the OS page holding byte off and those after it,
// or ok=false if none is before the end of the range. It passes a chunk
// that holds no cached page with one question.
func (s *Residency) Next(off int64) (next int64, ok bool) {
	ps := int64(1) << s.shift
	off = max(off, 0) &^ (ps - 1)
	for off < int64(len(s.data)) {
		c := off / residentChunk
		if s.chunks[c] == chunkUnknown {
			s.chunks[c] = s.ask(c)
		}
		switch s.chunks[c] {
		case chunkAll:
			return off, true
		case chunkSome:
			end := min((c+1)*residentChunk, int64(len(s.data)))
			for ; off < end; off += ps {
				if s.Has(off) {
					return off, true
				}
			}
			continue
		}
		off = (c + 1) * residentChunk
	}
	return 0, false
}
