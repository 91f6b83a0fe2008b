package mapkv

import "github.com/mapkv/mapkv/page"

// readerTable records the txid each open read transaction reads, so that
// the writer never reuses a page one of them may still reach. It is the
// one place reader tracking lives; callers hold DB.stateMu.
type readerTable struct {
	counts map[page.TxID]int
	pages  map[page.TxID]uint64 // the image size, in pages, of each txid read
	n      int
}

func (r *readerTable) add(t page.TxID, pgCount uint64) {
	if r.counts == nil {
		r.counts = map[page.TxID]int{}
		r.pages = map[page.TxID]uint64{}
	}
	r.counts[t]++
	r.pages[t] = pgCount
	r.n++
}

func (r *readerTable) remove(t page.TxID) {
	if c := r.counts[t]; c > 1 {
		r.counts[t] = c - 1
	} else {
		delete(r.counts, t)
		delete(r.pages, t)
	}
	r.n--
}

// maxPages returns the largest image any open reader sees, in pages.
func (r *readerTable) maxPages() uint64 {
	var m uint64
	for _, p := range r.pages {
		m = max(m, p)
	}
	return m
}

// oldest returns the smallest txid being read, or ok=false if none.
func (r *readerTable) oldest() (t page.TxID, ok bool) {
	for k := range r.counts {
		if !ok || k < t {
			t, ok = k, true
		}
	}
	return t, ok
}
