package mapkv

import (
	"sort"

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
//
// Pages are handed out lowest first, so live data drifts toward the start
// of the file and the free tail can be cut off.
type freelist struct {
	free    *gbtree.BTreeG[page.Run]
	pending map[page.TxID][]page.Run
	nfree   uint64 // pages in free
}

func runLess(a, b page.Run) bool { return a.Start < b.Start }

func newFreelist() *freelist {
	return &freelist{free: gbtree.NewG(16, runLess), pending: map[page.TxID][]page.Run{}}
}

// load replaces the free set with runs (from the file); nothing is pending.
func (f *freelist) load(runs []page.Run) {
	f.free.Clear(false)
	f.pending = map[page.TxID][]page.Run{}
	f.nfree = 0
	for _, r := range runs {
		f.add(r)
	}
}

// add puts a run into the free set, merging it with its neighbours.
func (f *freelist) add(r page.Run) {
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
	var got page.Run
	found := false
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
	if got.Len > n {
		f.free.ReplaceOrInsert(page.Run{Start: got.Start + page.ID(n), Len: got.Len - n})
	}
	f.nfree -= n
	return got.Start, true
}

// release makes free every pending run freed by a transaction <= upTo.
func (f *freelist) release(upTo page.TxID) {
	for t, runs := range f.pending {
		if t <= upTo {
			for _, r := range runs {
				f.add(r)
			}
			delete(f.pending, t)
		}
	}
}

// addPending records pages replaced by transaction t.
func (f *freelist) addPending(t page.TxID, r page.Run) {
	rs := f.pending[t]
	if n := len(rs); n > 0 && rs[n-1].End() == r.Start {
		rs[n-1].Len += r.Len
		return
	}
	f.pending[t] = append(rs, r)
}

// pendingCount returns the number of pages waiting for readers.
func (f *freelist) pendingCount() uint64 {
	var n uint64
	for _, rs := range f.pending {
		for _, r := range rs {
			n += r.Len
		}
	}
	return n
}

// runCount bounds the number of runs all() returns.
func (f *freelist) runCount() int {
	n := f.free.Len()
	for _, rs := range f.pending {
		n += len(rs)
	}
	return n
}

// all returns free and pending runs together, sorted and coalesced: what a
// commit records on disk (at the next open, no reader is left, so every
// pending page is free).
func (f *freelist) all() []page.Run {
	runs := make([]page.Run, 0, f.runCount())
	f.free.Ascend(func(r page.Run) bool { runs = append(runs, r); return true })
	for _, rs := range f.pending {
		runs = append(runs, rs...)
	}
	sort.Slice(runs, func(i, j int) bool { return runs[i].Start < runs[j].Start })
	out := runs[:0]
	for _, r := range runs {
		if n := len(out); n > 0 && out[n-1].End() == r.Start {
			out[n-1].Len += r.Len
			continue
		}
		out = append(out, r)
	}
	return out
}

// tail returns the free run that ends at hwm, if any.
func (f *freelist) tail(hwm page.ID) (page.Run, bool) {
	if r, ok := f.free.Max(); ok && r.End() == hwm {
		return r, true
	}
	return page.Run{}, false
}

// remove takes a run out of the free set (a truncated tail).
func (f *freelist) remove(r page.Run) {
	if _, ok := f.free.Delete(r); ok {
		f.nfree -= r.Len
	}
}

// snapshot returns a copy to restore if a commit fails. The free tree is
// cloned copy-on-write, so this is cheap.
func (f *freelist) snapshot() *freelist {
	c := &freelist{free: f.free.Clone(), pending: make(map[page.TxID][]page.Run, len(f.pending)), nfree: f.nfree}
	for t, rs := range f.pending {
		c.pending[t] = append([]page.Run(nil), rs...)
	}
	return c
}
