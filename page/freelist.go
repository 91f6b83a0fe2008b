package page

// Free-list node: the header (count unused), then at FreelistBody a u64
// number of runs, then that many (start u64, length u64) runs in ascending
// order. A run is a set of contiguous free pages.

// FreelistBody is where the run count of a free-list node sits.
const FreelistBody = HeaderSize

// Run is a set of contiguous pages [Start, Start+Len).
type Run struct {
	Start ID
	Len   uint64
}

// End returns the first page after the run.
func (r Run) End() ID { return r.Start + ID(r.Len) }

// FreelistSize returns the bytes of a free-list node holding n runs.
func FreelistSize(n int) int { return FreelistBody + 8 + 16*n }

// PutFreelist writes runs into node (sized with FreelistSize).
func PutFreelist(node []byte, runs []Run) {
	le.PutUint64(node[FreelistBody:], uint64(len(runs)))
	o := FreelistBody + 8
	for _, r := range runs {
		le.PutUint64(node[o:], uint64(r.Start))
		le.PutUint64(node[o+8:], r.Len)
		o += 16
	}
}

// DecodeFreelist reads the runs of a free-list node, checking that they fit
// the node, are ordered, do not overlap, and lie in [2, pgCount).
func DecodeFreelist(node []byte, pgCount uint64) ([]Run, error) {
	if len(node) < FreelistBody+8 || NodeType(node) != TypeFreelist {
		return nil, formatErr("page %d: not a free-list node", PageID(node))
	}
	n := le.Uint64(node[FreelistBody:])
	if n > uint64(len(node)-FreelistBody-8)/16 {
		return nil, formatErr("page %d: free list of %d runs overflows the node", PageID(node), n)
	}
	runs := make([]Run, 0, n)
	o := FreelistBody + 8
	var prev ID = 2
	for i := uint64(0); i < n; i++ {
		r := Run{ID(le.Uint64(node[o:])), le.Uint64(node[o+8:])}
		o += 16
		if r.Len == 0 || r.Start < prev || uint64(r.Start) >= pgCount || r.Len > pgCount-uint64(r.Start) {
			return nil, formatErr("page %d: free run %d+%d out of order or outside the file", PageID(node), r.Start, r.Len)
		}
		prev = r.End()
		runs = append(runs, r)
	}
	return runs, nil
}
