package btree

import "github.com/mapkv/mapkv/page"

// copyBranches turns off patchBranch (tests compare the nodes built both
// ways).
var copyBranches = false

// patchBranch is applyNode's path for a branch all of whose changes go to
// one child: a commit of a few keys. The slow path (applyKids, rebalance,
// packBranches) lists every child of the branch (about 130 in 4 KiB
// pages), checks their order, rebalances the list and adds every child to
// the new node again; on one-key commits into a 1M-key tree, three such
// branches were 60% of the tree update. Here the child is found by
// search, the merge of its changes and the rebalancing around it run on a
// window of the few children they can touch, the same steps in the same
// order as the slow path would take them, and the new node is the old one
// with that window replaced: runs of elements copied whole
// (page.BranchWriter.CopyFrom), the same bytes packBranches would build.
//
// ok is false, with nothing done, if the changes go to more than one
// child or the branch is not laid out as BranchWriter lays one out
// (page.BranchPacked, which also checks its keys' order; trusted, see
// Writer.TrustFrom, takes that as known). Once the child
// is merged, built says whether the new node is in dst (n is then
// freed); if not, because the new node would not be one page with the
// same common prefix or would be filled as an appending one, out holds
// every child of the branch, merged and rebalanced, for applyNode to pack
// as the slow path does, and appendOnly says whether only the last child
// changed.
func (w *Writer) patchBranch(id page.ID, n []byte, trusted bool, muts []Mutation, depth int, dst, out []child) (_ []child, built bool, _ []child, appendOnly, ok bool, err error) {
	if copyBranches || w.appending || len(muts) == 0 || len(n) != w.T.PageSize {
		return dst, false, out, false, false, nil
	}
	// Two searches first: a large commit's branches take changes under
	// many children, and the walk of BranchPacked would be wasted on them.
	i, ok1 := page.SearchBranch(n, muts[0].Key)
	j, ok2 := page.SearchBranch(n, muts[len(muts)-1].Key)
	if !ok1 || !ok2 || i != j {
		return dst, false, out, false, false, nil
	}
	end, packed := page.BranchEnd(n)
	if !trusted {
		end, packed = page.BranchPacked(n)
	}
	if !packed {
		return dst, false, out, false, false, nil
	}
	cnt := page.Count(n)
	eb := page.ElemBase(n)
	old := func(k int) child {
		key, _ := page.BranchKey(n, k) // BranchPacked checked every element
		cid, cb := page.BranchChildAt(n, eb, k)
		return child{key: key, id: cid, birth: cb}
	}
	// Merge the child, with its left neighbour to spread over (as
	// applyKids passes it: unchanged, since no other child changes).
	win := atDepth(&w.wins, depth)
	var left page.ID
	if i > 0 {
		win = append(win, old(i-1))
		left = win[0].id
	}
	cid, cb := page.BranchChildAt(n, eb, i)
	res, err := w.applyNode(cid, cb, muts, depth+1, win, i > 0)
	if err != nil {
		return dst, false, out, false, true, err
	}
	// The children res replaces: old[a:i+1]. The window starts at the
	// last unchanged child before them (rebalance compares it with the
	// first of them) and ends after the first unchanged child after them
	// that rebalance leaves alone.
	a, repl := i, res
	if i > 0 && (len(res) == 0 || res[0].fresh || res[0].id != left) {
		a = i - 1 // spread over the left neighbour
	} else if i > 0 {
		repl = res[1:]
	}
	lo := a
	merged := atDepth(&w.merged, depth)
	if a > 0 {
		lo = a - 1
		merged = append(merged, old(lo))
	}
	for _, c := range repl {
		if merged, err = w.rebalanceAdd(merged, c); err != nil {
			return dst, false, out, false, true, err
		}
	}
	hi := i + 1
	for hi < cnt && len(merged) > 0 && merged[len(merged)-1].fresh {
		if merged, err = w.rebalanceAdd(merged, old(hi)); err != nil {
			return dst, false, out, false, true, err
		}
		hi++
	}
	w.wins[depth] = res[:0]
	w.merged[depth] = merged[:0]
	appendOnly = i == cnt-1
	// The new node: old[:lo], merged, old[hi:]. One page, one group (not
	// appendOnly: packBranches groups an appending node by another
	// target) and the same common prefix: copied.
	count := cnt - (hi - lo) + len(merged)
	total := cnt*(4+page.BranchElementSize) + end - (eb + cnt*page.BranchElementSize)
	for k := lo; k < hi; k++ {
		key, _ := page.BranchKey(n, k)
		total -= page.BranchEntrySize(key)
	}
	for _, c := range merged {
		total += page.BranchEntrySize(c.key)
	}
	if !appendOnly && count > 0 && count <= page.MaxCount && total <= w.capacity() {
		first, last := edge(n, merged, lo, hi, cnt)
		used := page.HeaderSize + page.PrefixArea(0) + total
		cpl := page.CommonLen(first, last, min((w.T.PageSize-used)&^7, page.MaxCpl))
		if cpl == page.Cpl(n) {
			used += page.PrefixArea(cpl) - page.PrefixArea(0)
			nid, buf, err := w.A.Alloc(1)
			if err != nil {
				return dst, false, out, false, true, err
			}
			page.PutHeader(buf, nid, w.TxID, page.TypeBranch, 0, count)
			bw := page.NewBranchWriter(buf, count, first[:cpl])
			bw.CopyFrom(n, 0, lo)
			for _, c := range merged {
				bw.Add(c.key, c.id, c.birth)
			}
			bw.CopyFrom(n, hi, cnt)
			clear(buf[bw.Used():])
			w.sealBranch(nid, buf, used, id, n, lo, hi, merged)
			w.patched++
			first, _ = page.BranchKey(buf, 0)
			return append(dst, child{key: first, id: nid, birth: w.TxID, size: used, fresh: true}), true, out, false, true, nil
		}
	}
	for k := 0; k < lo; k++ {
		out = append(out, old(k))
	}
	out = append(out, merged...)
	for k := hi; k < cnt; k++ {
		out = append(out, old(k))
	}
	return dst, false, out, appendOnly, true, nil
}

// edge returns the first and last keys of the children old[:lo], merged,
// old[hi:cnt] of branch n.
func edge(n []byte, merged []child, lo, hi, cnt int) (first, last []byte) {
	switch {
	case lo > 0:
		first, _ = page.BranchKey(n, 0)
	case len(merged) > 0:
		first = merged[0].key
	default:
		first, _ = page.BranchKey(n, hi)
	}
	switch {
	case hi < cnt:
		last, _ = page.BranchKey(n, cnt-1)
	case len(merged) > 0:
		last = merged[len(merged)-1].key
	default:
		last, _ = page.BranchKey(n, lo-1)
	}
	return first, last
}

// sealBranch seals the branch patchBranch built at id, telling a
// PutsSealer the puts that make it from base, the branch at baseID whose
// children lo..hi-1 merged replaced.
func (w *Writer) sealBranch(id page.ID, node []byte, used int, baseID page.ID, base []byte, lo, hi int, merged []child) {
	if ps, ok := w.A.(PutsSealer); ok {
		if ops, ok := w.branchPuts(base, lo, hi, merged, used); ok {
			ps.SealPuts(id, node, used, baseID, base, ops)
			w.branchPutsN++
			return
		}
	}
	w.A.Seal(id, node, used)
}

// rebalanceAdd appends c to out as rebalance does: merged with out's last
// node if either is fresh and the two should be one (see merges).
func (w *Writer) rebalanceAdd(out []child, c child) ([]child, error) {
	if len(out) > 0 {
		p := &out[len(out)-1]
		ok, err := w.merges(p, &c)
		if err != nil {
			return nil, err
		}
		if ok {
			var buf [4]child
			m, err := w.repack(buf[:0], *p, c)
			if err != nil {
				return nil, err
			}
			return append(out[:len(out)-1], m...), nil
		}
	}
	return append(out, c), nil
}
