package mapkv

import (
	"slices"

	gbtree "github.com/google/btree"

	"github.com/mapkv/mapkv/page"
)

// freelist is the set of pages no committed state uses.
//
// Invariants:
//   - free holds pages that no open reader and neither of the two metas on
//     disk can reach: a write transaction may overwrite them.
//   - pending[t] holds the pages transaction t replaced. They were live in
//     t-1, so they become free once every reader reads at least t.
//   - runs in free never touch or overlap (they are coalesced).
//   - held holds pages a logged commit replaced whose content its log
//     record builds on (a leaf logged as puts into the page it replaces,
//     see walputs.go): nothing may overwrite them until the data file is
//     flushed and the log starts over (unhold makes them pending again).
//
// Pages are handed out lowest first, so live data drifts toward the start
// of the file and the free tail can be cut off.
type freelist struct {
	free    *gbtree.BTreeG[page.Run]
	pending map[page.TxID][]page.Run
	nfree   uint64 // pages in free
	held    []page.Run
	nheld   uint64 // pages in held

	// On disk the free list is a bitmap in chunks (see page/freelist.go):
	// chunks is the index as last committed, dirty the chunks whose bits
	// changed since (a page allocated, freed or cut off). Pending pages
	// count as free on disk: at the next open no reader is left.
	bits   uint64
	chunks []page.FreeChunk
	dirty  map[uint64]struct{}
	// lastDirty is 1 + the chunk put in dirty last (0: none since dirty
	// was emptied), so that the run of marks a commit makes in one chunk
	// costs one map write (see markChunk).
	lastDirty uint64

	scratch []page.Run // release's runs, kept between commits

	// ver counts the changes to free and pending; prep is the free set
	// that releasing one transaction's pending pages makes, built ahead
	// (see prepare), valid while ver is prep.ver.
	ver      uint64
	prep     *prepared
	prepUsed int // releases that took prep (for tests)
}

// prepared is a release built ahead: the free set once the pages pending
// for transaction t are in it, n of them.
type prepared struct {
	ver  uint64
	t    page.TxID
	free *gbtree.BTreeG[page.Run]
	n    uint64
}

// freeDegree is the degree of the free set's B-tree.
const freeDegree = 16

func runLess(a, b page.Run) bool { return a.Start < b.Start }

func newFreelist(pageSize int) *freelist {
	return &freelist{
		free:    gbtree.NewG(freeDegree, runLess),
		pending: map[page.TxID][]page.Run{},
		bits:    page.ChunkBits(pageSize),
		dirty:   map[uint64]struct{}{},
	}
}

// load replaces the free set with runs (from the file); nothing is pending.
func (f *freelist) load(runs []page.Run, chunks []page.FreeChunk) {
	f.ver++
	f.free.Clear(false)
	f.pending = map[page.TxID][]page.Run{}
	f.nfree = 0
	f.held, f.nheld = nil, 0
	for _, r := range runs {
		f.add(r)
	}
	f.chunks = chunks
	f.clean()
}

// forget drops the on-disk index (the meta names no free list: see
// page.MetaFreeDeferred) and marks every chunk of a file of pgCount pages
// dirty, so that the next free list written writes them all.
func (f *freelist) forget(pgCount uint64) {
	f.chunks = nil
	for c := range (pgCount + f.bits - 1) / f.bits {
		f.markChunk(c)
	}
}

// mark records that the on-disk bits of the pages of r changed.
func (f *freelist) mark(r page.Run) {
	if r.Len == 0 {
		return
	}
	for c := uint64(r.Start) / f.bits; c <= (uint64(r.End())-1)/f.bits; c++ {
		f.markChunk(c)
	}
}

// markChunk records that chunk c's on-disk bits changed. Every page a
// commit allocates or frees marks its chunk, and a chunk holds tens of
// thousands of pages: most marks repeat the one before.
func (f *freelist) markChunk(c uint64) {
	if f.lastDirty == c+1 {
		return
	}
	f.dirty[c] = struct{}{}
	f.lastDirty = c + 1
}

// clean empties the set of dirty chunks (the free list was written).
func (f *freelist) clean() {
	clear(f.dirty)
	f.lastDirty = 0
}

// freeNow returns pages to the free set at once (pages no one else saw).
func (f *freelist) freeNow(r page.Run) {
	f.add(r)
	f.mark(r)
}

// bitmap sets in bm the bits of the free and pending pages in [lo, hi).
func (f *freelist) bitmap(bm []byte, lo, hi page.ID) {
	set := func(r page.Run) {
		from, to := max(r.Start, lo), min(r.End(), hi)
		if from < to {
			page.SetBits(bm, lo, from, to)
		}
	}
	if r, ok := f.before(lo); ok {
		set(r)
	}
	f.free.AscendGreaterOrEqual(page.Run{Start: lo}, func(r page.Run) bool {
		if r.Start >= hi {
			return false
		}
		set(r)
		return true
	})
	for _, rs := range f.pending {
		for _, r := range rs {
			set(r)
		}
	}
	for _, r := range f.held {
		set(r)
	}
}

// add puts a run into the free set, merging it with its neighbours.
func (f *freelist) add(r page.Run) {
	f.ver++
	f.nfree += r.Len
	if prev, ok := f.before(r.Start); ok && prev.End() == r.Start {
		f.free.Delete(prev)
		r = page.Run{Start: prev.Start, Len: prev.Len + r.Len}
	}
	if next, ok := f.free.Get(page.Run{Start: r.End()}); ok {
		f.free.Delete(next)
		r.Len += next.Len
	}
	f.free.ReplaceOrInsert(r)
}

// before returns the run starting below id, if any.
func (f *freelist) before(id page.ID) (page.Run, bool) {
	var out page.Run
	found := false
	f.free.DescendLessOrEqual(page.Run{Start: id - 1}, func(r page.Run) bool {
		out, found = r, true
		return false
	})
	return out, found && id > 0
}

// alloc takes n contiguous free pages, lowest first. ok is false when no
// run is long enough.
func (f *freelist) alloc(n uint64) (page.ID, bool) {
	f.ver++
	// The lowest run is the one a fragmented set (a random load's) almost
	// always gives: take it directly, in one descent, without a walk.
	got, found := f.free.DeleteMin()
	if !found {
		return 0, false
	}
	if got.Len < n {
		f.free.ReplaceOrInsert(got) // too short: put it back and walk
		found = false
		f.free.Ascend(func(r page.Run) bool {
			if r.Len >= n {
				got, found = r, true
				return false
			}
			return true
		})
		if !found {
			return 0, false
		}
		f.free.Delete(got)
	}
	if got.Len > n {
		f.free.ReplaceOrInsert(page.Run{Start: got.Start + page.ID(n), Len: got.Len - n})
	}
	f.nfree -= n
	f.mark(page.Run{Start: got.Start, Len: n})
	return got.Start, true
}

// allocRun takes a run of contiguous free pages for a commit's small
// nodes: looking at no more than 64 runs from hint on (then from the
// start), the first of at least want pages, else the first of at least
// least. It takes want pages of a longer run, all of a shorter one. The
// bounded look keeps a fragmented free set from costing a scan per node.
func (f *freelist) allocRun(least, want uint64, hint page.ID) (page.Run, bool) {
	f.ver++
	// Start at the run holding hint: a run released and merged with its
	// neighbours may now begin below it.
	if r, ok := f.before(hint + 1); ok && r.End() > hint {
		hint = r.Start
	}
	var best page.Run
	seen := 0
	visit := func(r page.Run) bool {
		seen++
		if r.Len >= want {
			best = r
			return false
		}
		if r.Len >= least && best.Len == 0 {
			best = r
		}
		return seen < 64
	}
	f.free.AscendGreaterOrEqual(page.Run{Start: hint}, visit)
	if best.Len < want && seen < 64 && hint > 0 {
		f.free.AscendLessThan(page.Run{Start: hint}, visit)
	}
	if best.Len == 0 {
		return page.Run{}, false
	}
	take := min(best.Len, want)
	f.free.Delete(best)
	if best.Len > take {
		f.free.ReplaceOrInsert(page.Run{Start: best.Start + page.ID(take), Len: best.Len - take})
	}
	f.nfree -= take
	r := page.Run{Start: best.Start, Len: take}
	f.mark(r)
	return r, true
}

// release makes free every pending run freed by a transaction <= upTo.
//
// The runs go in in order, coalesced. When they are at least as many as
// the free set's runs (a bulk load frees about as many pages per commit
// as it takes, so the set it finds is nearly empty) the set is rebuilt
// from both, in ascending order; otherwise each run is added with its
// neighbours looked up. A random load of 10,000-key commits releases
// about 7,000 scattered runs before each: added one by one (three
// descents each) they cost 2 ms of the commit's serial path, rebuilt
// about 1 ms. When the last commit prepared the result (prepare) and
// nothing changed since, release takes it instead.
func (f *freelist) release(upTo page.TxID) {
	if p := f.prep; p != nil {
		f.prep = nil
		if p.ver == f.ver && p.t <= upTo && f.onlyPending(p.t) {
			f.free, f.nfree = p.free, f.nfree+p.n
			delete(f.pending, p.t)
			f.ver++
			f.prepUsed++
			return
		}
	}
	rs := f.scratch[:0]
	for t, runs := range f.pending {
		if t <= upTo {
			rs = append(rs, runs...)
			delete(f.pending, t)
		}
	}
	if len(rs) == 0 {
		return
	}
	f.ver++
	sortRuns(rs)
	rs = coalesce(rs)
	if len(rs) < f.free.Len() {
		for _, r := range rs {
			f.add(r)
		}
	} else {
		f.rebuild(rs)
	}
	f.scratch = rs[:0]
}

// onlyPending reports whether t's are the only pending pages.
func (f *freelist) onlyPending(t page.TxID) bool {
	_, ok := f.pending[t]
	return ok && len(f.pending) == 1
}

// prepare builds, ahead of the next write transaction, the free set that
// releasing transaction t's pending pages will make, if they are the only
// ones pending: release takes it if nothing changed the free list in
// between (a published commit's shrink, a failed commit's restore). The
// committing goroutine calls it while the data file's writes go on
// beside it (txAlloc.writeBeside), its time otherwise spent waiting for
// the file's lock: a random load's release (sorting 7,000 runs and
// rebuilding the set) took about 1 ms at the start of each transaction,
// 3% of the load.
func (f *freelist) prepare(t page.TxID) {
	f.prep = nil
	if !f.onlyPending(t) {
		return
	}
	rs := slices.Clone(f.pending[t])
	sortRuns(rs)
	free, n := f.union(coalesce(rs))
	f.prep = &prepared{ver: f.ver, t: t, free: free, n: n}
}

// mergeRuns returns the runs of a and b (each sorted by start, disjoint)
// in one sorted slice.
func mergeRuns(a, b []page.Run) []page.Run {
	out := make([]page.Run, len(a)+len(b))
	i, j := 0, 0
	for k := range out {
		if j == len(b) || (i < len(a) && a[i].Start < b[j].Start) {
			out[k] = a[i]
			i++
		} else {
			out[k] = b[j]
			j++
		}
	}
	return out
}

// sortRuns sorts runs (disjoint) by start.
func sortRuns(rs []page.Run) { sortBy(rs, func(r page.Run) uint64 { return uint64(r.Start) }) }

// coalesce merges the touching runs of rs, sorted by start, in place.
func coalesce(rs []page.Run) []page.Run {
	out := rs[:0]
	for _, r := range rs {
		if n := len(out); n > 0 && out[n-1].End() == r.Start {
			out[n-1].Len += r.Len
			continue
		}
		out = append(out, r)
	}
	return out
}

// rebuild replaces the free set by its union with rs (sorted, coalesced,
// disjoint from it).
func (f *freelist) rebuild(rs []page.Run) {
	f.ver++
	free, n := f.union(rs)
	f.free, f.nfree = free, f.nfree+n
}

// union returns a new free set holding the free set's runs and rs
// (sorted, coalesced, disjoint from it), built in ascending order, and
// how many pages rs holds.
func (f *freelist) union(rs []page.Run) (*gbtree.BTreeG[page.Run], uint64) {
	all := rs
	if n := f.free.Len(); n > 0 {
		all = make([]page.Run, 0, n)
		f.free.Ascend(func(r page.Run) bool {
			all = append(all, r)
			return true
		})
		all = coalesce(mergeRuns(all, rs))
	}
	t := gbtree.NewG(freeDegree, runLess)
	for _, r := range all {
		t.ReplaceOrInsert(r)
	}
	var pages uint64
	for _, r := range rs {
		pages += r.Len
	}
	return t, pages
}

// addPending records pages replaced by transaction t.
func (f *freelist) addPending(t page.TxID, r page.Run) {
	f.ver++
	f.mark(r)
	rs := f.pending[t]
	if n := len(rs); n > 0 && rs[n-1].End() == r.Start {
		rs[n-1].Len += r.Len
		return
	}
	f.pending[t] = append(rs, r)
}

// pendingCount returns the number of pages waiting for readers or for
// the log (held).
func (f *freelist) pendingCount() uint64 {
	n := f.nheld
	for _, rs := range f.pending {
		for _, r := range rs {
			n += r.Len
		}
	}
	return n
}

// pendingAt returns the index in pending[t] of the run that holds page
// id, or -1 if none does.
func (f *freelist) pendingAt(t page.TxID, id page.ID) int {
	for i, r := range f.pending[t] {
		if r.Start <= id && id < r.End() {
			return i
		}
	}
	return -1
}

// holds reports whether the single page id is pending for transaction t
// (t replaced it): hold may take it.
func (f *freelist) holds(t page.TxID, id page.ID) bool { return f.pendingAt(t, id) >= 0 }

// hold moves the page id, pending for transaction t (see holds), to
// held.
func (f *freelist) hold(t page.TxID, id page.ID) {
	i := f.pendingAt(t, id)
	if i < 0 {
		return
	}
	f.ver++
	rs, r := f.pending[t], f.pending[t][i]
	lo := page.Run{Start: r.Start, Len: uint64(id - r.Start)}
	hi := page.Run{Start: id + 1, Len: uint64(r.End() - id - 1)}
	switch {
	case lo.Len == 0 && hi.Len == 0:
		rs = slices.Delete(rs, i, i+1)
	case lo.Len == 0:
		rs[i] = hi
	case hi.Len == 0:
		rs[i] = lo
	default:
		rs[i] = lo
		rs = slices.Insert(rs, i+1, hi)
	}
	if len(rs) == 0 {
		delete(f.pending, t)
	} else {
		f.pending[t] = rs
	}
	f.held = append(f.held, page.Run{Start: id, Len: 1})
	f.nheld++
}

// unhold makes the held pages pending for transaction t: the log no
// longer needs them (its generation ended with the data file flushed),
// and they wait for readers as t's would.
func (f *freelist) unhold(t page.TxID) {
	if len(f.held) == 0 {
		return
	}
	f.ver++
	f.pending[t] = append(f.pending[t], f.held...)
	// A new slice: a snapshot may share the old one's array (held only
	// ever appends to it).
	f.held, f.nheld = nil, 0
}

// tail returns the free run that ends at hwm, if any.
func (f *freelist) tail(hwm page.ID) (page.Run, bool) {
	if r, ok := f.free.Max(); ok && r.End() == hwm {
		return r, true
	}
	return page.Run{}, false
}

// cutoff returns the lowest page x such that the pages in use at or past
// x fit, with slack, into the free pages below x: moving them there would
// free everything from x to hwm. ok is false unless that frees at least
// min pages beyond the free tail the file already has (which a commit
// cuts anyway).
func (f *freelist) cutoff(hwm page.ID, min uint64) (x page.ID, ok bool) {
	tailFree := uint64(0)
	if r, ok := f.tail(hwm); ok {
		tailFree = r.Len
	}
	end := hwm - page.ID(tailFree) // the used part ends here
	var below uint64               // free pages below the run being looked at
	x = end
	f.free.Ascend(func(r page.Run) bool {
		if r.Start >= end {
			return false
		}
		used := uint64(end-r.Start) - (f.nfree - tailFree - below)
		// Slack: the commit also rewrites the branches above the moved
		// nodes and the free-list chunks, and what it frees stays
		// pending until it ends.
		if below >= used+used/8+64 {
			x = r.Start
			return false
		}
		below += r.Len
		return true
	})
	return x, uint64(end-x) >= min && x < end
}

// remove takes a run out of the free set (a truncated tail).
func (f *freelist) remove(r page.Run) {
	f.ver++
	if _, ok := f.free.Delete(r); ok {
		f.nfree -= r.Len
		f.mark(r)
	}
}

// snapshot returns a copy to restore if a commit fails. The free tree is
// cloned copy-on-write, so this is cheap.
func (f *freelist) snapshot() *freelist {
	c := &freelist{
		free:    f.free.Clone(),
		pending: make(map[page.TxID][]page.Run, len(f.pending)),
		nfree:   f.nfree,
		held:    f.held[:len(f.held):len(f.held)], // see hold and unhold
		nheld:   f.nheld,
		bits:    f.bits,
		chunks:  f.chunks, // never modified in place: a commit builds a new slice
		dirty:   make(map[uint64]struct{}, len(f.dirty)),
	}
	c.lastDirty = f.lastDirty // dirty is copied whole below
	for t, rs := range f.pending {
		c.pending[t] = append([]page.Run(nil), rs...)
	}
	for k := range f.dirty {
		c.dirty[k] = struct{}{}
	}
	return c
}
