package btree

// prefetchLines asks the CPU to load the lines cache lines from p on into
// its caches (PREFETCHT0), without waiting for them: unlike a load, a
// prefetch of a line that misses every cache does not hold up the
// instructions after it. p must point into memory that stays mapped.
//
//go:noescape
func prefetchLines(p *byte, lines int)
