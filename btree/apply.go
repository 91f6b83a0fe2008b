package btree

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"runtime"
	"runtime/debug"
	"slices"
	"sync"

	"github.com/mapkv/mapkv/page"
)

// Alloc hands out pages for the nodes a commit writes and takes back the
// nodes it replaces. The root package implements it over the free set.
type Alloc interface {
	// Alloc returns n contiguous pages as a writable slice of n*PageSize
	// bytes. The view the Writer reads through must cover them afterwards.
	Alloc(n int) (page.ID, []byte, error)
	// Free releases the node of n pages at id. A node written by this
	// transaction may be reused at once; an older one only once no reader
	// can see it.
	Free(id page.ID, n int)
	// Seal is called once the node at id is complete: the allocator
	// seals it (page.Seal) and records its checksum (the commit record).
	// It may seal it later, but before the node is written or read as
	// sealed: the Writer reads the nodes it built without checking them
	// (Tree.Fresh), and never changes them after. Every byte of node
	// from used on is zero (the log stores nodes without that tail).
	Seal(id page.ID, node []byte, used int)
}

// Mutation is one change to a tree: a put of Value (with Flags) under Key,
// or a delete of Key. A commit applies a batch sorted by Key with no
// duplicates.
type Mutation struct {
	Key    []byte
	Value  []byte
	Flags  uint16
	Delete bool
	// OverBucket: the caller deleted a nested bucket at Key (and frees its
	// tree itself), so a value may replace a bucket element there.
	OverBucket bool
	// Seq is the caller's: Apply ignores it. (The root package keeps a
	// change's place in the order of arrival there, and hands its log of
	// pending changes to Apply as it is.)
	Seq uint32
}

// Writer applies sorted mutations to trees, writing new nodes copy-on-write
// through A and reading old ones through T.
type Writer struct {
	T    *Tree
	A    Alloc
	TxID page.TxID
	// Ordered says the caller has checked that the mutations it passes
	// are in strictly ascending key order; otherwise Apply checks.
	Ordered bool
	// TrustFrom, when nonzero, is the first txid whose nodes this
	// process built: the caller promises that every node written with a
	// txid at or above it (and named by a reference carrying that txid)
	// came from a Writer, untouched since. Such nodes are read without
	// verifying their checksums, and the in-place paths copy them without
	// checking their layout (page.LeafPacked, page.BranchPacked): the
	// writer lays every node out that way. A DB sets it to the txid after
	// the one it opened at. On one-key commits into a 1M-key file (the
	// /tmp harness, 8 rounds of 2,000) the CPU of a commit went from
	// 120-138 µs to 111-130 µs; see TestTrustedNodes for what it skips.
	TrustFrom page.TxID
	// Parallel, when positive and A is a Forker, lets a branch whose
	// children take at least Parallel changes be merged by two
	// goroutines, one half of its children each (one split at a time).
	Parallel int

	scratch
	inPlace     int // leaves insertInPlace built (for tests)
	branchPutsN int // branches sealed with puts (for tests)
	patched     int // branches patchBranch built (for tests)
	appended    int // leaves packAppended rewrote (for tests)
	trusted     int // nodes read on trust (see Trusted)
	// appending: every mutation of this Apply sorts after the tree's last
	// key (a load in key order). Nodes are filled to capacity along the
	// right edge, without spreading over or merging with neighbours.
	appending bool
	// forking: another goroutine is merging the other half of a branch.
	forking bool
}

// Forker is an Alloc that can serve a second goroutine, for Apply to
// split a large merge in two (see Writer.Parallel).
type Forker interface {
	// Fork returns an allocator that another goroutine may use while
	// this one goes on being used, and the view that goroutine reads
	// through: it finds the nodes built through the new allocator. A nil
	// Alloc: no fork now.
	Fork() (Alloc, *Tree)
	// Join ends a fork, once its goroutine is done: the nodes it built
	// become this allocator's, as if built through it. An error fails
	// the commit.
	Join(Alloc) error
}

// scratch is space reused from node to node, and through scratchPool from
// one Apply to the next: entries of the leaf being merged (and of a
// neighbour it is spread over), sizes and groups of the items being
// packed, and outs[d], the children of the branch being rewritten at
// depth d. What a pooled scratch still points at (keys and values of a
// finished commit) is only kept from the collector until it is reused or
// the pool is emptied at the next collection.
type scratch struct {
	entries []entry
	spread  []entry
	sizes   []int
	groups  [][2]int
	outs    [][]child
	spans   [][]span   // the changed children of the branch at depth d
	wins    [][]child  // the children a patched branch's changed child became, at depth d
	merged  [][]child  // those and their neighbours, rebalanced (patchBranch)
	ops     []Mutation // a branch's puts (branchPuts)
	opVals  []byte     // their values
	opKids  []int      // the children they come from
}

var scratchPool sync.Pool

func (w *Writer) getScratch() {
	if s, ok := scratchPool.Get().(*scratch); ok && w.entries == nil && w.outs == nil {
		w.scratch = *s
	}
}

func (w *Writer) putScratch() {
	s := w.scratch
	w.scratch = scratch{}
	if cap(s.entries) > 1<<16 || cap(s.spread) > 1<<16 {
		return // a huge transaction's: let it go
	}
	scratchPool.Put(&s)
}

type entry struct {
	key, val []byte
	flags    uint16
}

type child struct {
	key   []byte
	id    page.ID
	birth page.TxID
	size  int  // bytes the node uses, header included; 0 = not known yet
	fresh bool // written by this transaction
}

// Apply merges muts (sorted, unique keys) into the tree at root and returns
// the new root and its birth txid. An empty result has root 0.
func (w *Writer) Apply(root page.ID, birth page.TxID, muts []Mutation) (_ page.ID, _ page.TxID, err error) {
	if len(muts) == 0 {
		return root, birth, nil
	}
	defer func() {
		if r := recover(); r != nil {
			err = w.trustedFault(r)
		}
	}()
	for i := 1; i < len(muts) && !w.Ordered; i++ {
		if bytes.Compare(muts[i-1].Key, muts[i].Key) >= 0 {
			return 0, 0, fmt.Errorf("btree: mutations not sorted at %d", i)
		}
	}
	w.getScratch()
	defer w.putScratch()
	var kids []child
	if root == 0 {
		var es []entry
		es, err = w.mergeLeaf(nil, muts)
		if err == nil {
			kids, err = w.packLeaves(nil, es, true)
		}
	} else {
		w.appending = w.beyondLast(root, muts[0].Key)
		kids, err = w.applyNode(root, birth, muts, 0, nil, false)
		w.appending = false
	}
	if err != nil {
		return 0, 0, err
	}
	for len(kids) > 1 {
		if kids, err = w.packBranches(nil, kids, false, nil); err != nil {
			return 0, 0, err
		}
	}
	if len(kids) == 0 {
		return 0, 0, nil
	}
	top := kids[0]
	// A root branch with a single child is replaced by that child.
	for {
		n, err := w.read(top.id, top.birth)
		if err != nil {
			return 0, 0, err
		}
		if page.NodeType(n) != page.TypeBranch || page.Count(n) != 1 {
			break
		}
		id, b := page.BranchChild(n, 0)
		w.freeNode(top.id, n)
		top = child{id: id, birth: b}
	}
	return top.id, top.birth, nil
}

// beyondLast reports whether key sorts after every key of the tree at
// root, following the right edge. It only decides how to fill nodes: the
// nodes are read again, verified, when rewritten, and damage here just
// answers false.
func (w *Writer) beyondLast(root page.ID, key []byte) bool {
	id := root
	for depth := 0; depth < page.MaxDepth; depth++ {
		n, err := w.T.branchOrLeaf(id)
		if err != nil {
			return false
		}
		last := page.Count(n) - 1
		if page.NodeType(n) == page.TypeLeaf {
			k, ok := page.LeafKey(n, last)
			return ok && bytes.Compare(key, k) > 0
		}
		k, ok := page.BranchKey(n, last)
		if !ok || bytes.Compare(key, k) < 0 {
			return false
		}
		id, _ = page.BranchChild(n, last)
	}
	return false
}

// capacity is the room a one-page node has for entries: the page less
// the header and the 8 bytes reserved to align the element array.
func (w *Writer) capacity() int { return capacityOf(w.T.PageSize) }

// capacityOf is the room for a node's entries in a page of ps bytes.
func capacityOf(ps int) int { return ps - page.HeaderSize - 8 }

// applyNode merges muts into the subtree at id and appends the nodes that
// replace it to dst. With spread, dst's last element is the subtree's
// left sibling, unchanged by this commit: if the subtree splits, its
// entries may be spread over that sibling too (as a B*-tree does), which
// then leaves dst.
func (w *Writer) applyNode(id page.ID, birth page.TxID, muts []Mutation, depth int, dst []child, spread bool) ([]child, error) {
	if depth >= page.MaxDepth {
		return nil, fmt.Errorf("%w: tree deeper than %d levels (a loop?)", page.ErrFormat, page.MaxDepth)
	}
	n, err := w.read(id, birth)
	if err != nil {
		return nil, err
	}
	trusted := w.trusts(n, birth)
	if page.NodeType(n) == page.TypeLeaf {
		return w.applyLeaf(id, n, trusted, muts, dst, spread)
	}
	cnt := page.Count(n)
	out := atDepth(&w.outs, depth)
	var appendOnly bool
	h, j := w.splitAt(n, muts)
	built, patched := false, false
	if h == 0 {
		dst, built, out, appendOnly, patched, err = w.patchBranch(id, n, trusted, muts, depth, dst, out)
		if err != nil {
			return nil, err
		}
		if built {
			w.freeNode(id, n)
			return dst, nil
		}
	}
	switch {
	case patched: // out is merged and rebalanced
	case h > 0:
		out, appendOnly, err = w.applySplit(n, h, muts, j, depth, out)
	default:
		out, appendOnly, err = w.applyKids(n, 0, cnt, muts, depth, out)
	}
	if err != nil {
		return nil, err
	}
	if !w.appending && !patched {
		if out, err = w.rebalance(out); err != nil {
			return nil, err
		}
	}
	base := len(dst)
	if len(out) > 0 {
		if dst, err = w.packBranches(dst, out, appendOnly, &baseNode{id, n}); err != nil {
			return nil, err
		}
	}
	w.outs[depth] = out[:0]
	w.freeNode(id, n)
	if spread && base > 0 && len(dst)-base > 1 {
		// The branch split. If its unchanged left sibling has room for
		// the surplus, spread the children over it too and save a node.
		ok, err := w.saves(&dst[base-1], dst[base:])
		if err != nil {
			return nil, err
		}
		if ok {
			cs := append([]child(nil), dst[base-1:]...)
			dst = dst[:base-1]
			if dst, err = w.repack(dst, cs...); err != nil {
				return nil, err
			}
		}
	}
	return dst, nil
}

// applyKids merges muts into the children [lo, hi) of branch n (muts
// hold changes for those children only) and appends what replaces them
// to out, unchanged children included. appendOnly says whether only the
// last child of n changed.
func (w *Writer) applyKids(n []byte, lo, hi int, muts []Mutation, depth int, out []child) (_ []child, appendOnly bool, err error) {
	cnt := page.Count(n)
	// First find the children that take changes, and which: merging each
	// then loads the next one's node ahead (a random load's merge waited
	// for memory at every node it read).
	spans := atDepth(&w.spans, depth)
	j := 0
	key, ok := page.BranchKey(n, lo)
	if !ok {
		return nil, false, elemErr(n, lo)
	}
	for i := lo; i < hi; i++ {
		end := len(muts)
		var next []byte
		if i+1 < cnt {
			if next, ok = page.BranchKey(n, i+1); !ok {
				return nil, false, elemErr(n, i+1)
			}
			if bytes.Compare(key, next) >= 0 {
				return nil, false, orderErr(n)
			}
			if i+1 < hi {
				end = j + before(muts[j:], next)
			}
		}
		if end > j {
			spans = append(spans, span{kid: i, lo: j, hi: end})
			j = end
		}
		key = next
	}
	w.spans[depth] = spans // deeper merges use w.spans[depth+1:]
	appendOnly = true
	s := 0
	if len(spans) > 0 {
		w.prefetchKid(n, spans, 0, lo, hi)
	}
	for i := lo; i < hi; i++ {
		key, _ := page.BranchKey(n, i) // checked above
		cid, cb := page.BranchChild(n, i)
		if s == len(spans) || spans[s].kid != i {
			out = append(out, child{key: key, id: cid, birth: cb})
			continue
		}
		sp := spans[s]
		s++
		if s < len(spans) {
			w.prefetchKid(n, spans, s, lo, hi)
		}
		if i+1 < cnt {
			appendOnly = false
		}
		spread := len(out) > 0 && !out[len(out)-1].fresh && !w.appending
		if out, err = w.applyNode(cid, cb, muts[sp.lo:sp.hi], depth+1, out, spread); err != nil {
			return nil, false, err
		}
	}
	return out, appendOnly, nil
}

// prefetchKid asks the CPU for the node of spans[s]'s child of branch n,
// which the merge reads next, and for the heads of its unchanged
// neighbours among children lo..hi-1, whose sizes rebalance reads after.
func (w *Writer) prefetchKid(n []byte, spans []span, s, lo, hi int) {
	k := spans[s].kid
	id, _ := page.BranchChild(n, k)
	w.T.prefetch(id)
	if k-1 >= lo && (s == 0 || spans[s-1].kid != k-1) {
		id, _ := page.BranchChild(n, k-1)
		w.T.prefetchHead(id)
	}
	if k+1 < hi && (s+1 == len(spans) || spans[s+1].kid != k+1) {
		id, _ := page.BranchChild(n, k+1)
		w.T.prefetchHead(id)
	}
}

// span is a child of a branch being merged and the changes it takes,
// muts[lo:hi].
type span struct{ kid, lo, hi int }

// splitAt decides whether the children of branch n are merged by two
// goroutines (see Writer.Parallel): it returns the first child of the
// second half and the first of muts that goes there, or 0 to merge them
// in this goroutine. The halves take about as many changes each; when
// no split of n's children comes close (a root of three children), the
// children themselves may split.
func (w *Writer) splitAt(n []byte, muts []Mutation) (h, j int) {
	if w.Parallel <= 0 || len(muts) < w.Parallel || w.forking || w.appending {
		return 0, 0
	}
	if _, ok := w.A.(Forker); !ok {
		return 0, 0
	}
	cnt := page.Count(n)
	if cnt < 2 {
		return 0, 0
	}
	h, ok := page.SearchBranch(n, muts[len(muts)/2].Key)
	if !ok {
		return 0, 0
	}
	// The child holding the middle change goes to whichever side it
	// balances better.
	if h == 0 {
		h = 1
	}
	k, ok := page.BranchKey(n, h)
	if !ok {
		return 0, 0
	}
	j = before(muts, k)
	if h+1 < cnt && j < len(muts)/2 {
		if k2, ok := page.BranchKey(n, h+1); ok {
			if j2 := before(muts, k2); j2-len(muts)/2 < len(muts)/2-j {
				h, j = h+1, j2
			}
		}
	}
	if small := min(j, len(muts)-j); 8*small < 3*len(muts) {
		return 0, 0 // lopsided: let the children split
	}
	return h, j
}

// applySplit is applyKids over all of n's children, the first h merged
// here (with muts[:j]) while another goroutine merges the rest, with a
// Writer and an allocator of its own (Forker.Fork).
func (w *Writer) applySplit(n []byte, h int, muts []Mutation, j, depth int, out []child) ([]child, bool, error) {
	f := w.A.(Forker)
	fa, ft := f.Fork()
	if fa == nil {
		return w.applyKids(n, 0, page.Count(n), muts, depth, out)
	}
	fw := &Writer{T: ft, A: fa, TxID: w.TxID, Ordered: true, TrustFrom: w.TrustFrom}
	var (
		right   []child
		rAppend bool
		rErr    error
		rPanic  any
		done    = make(chan struct{})
	)
	// A fault reading the mapping panics in the goroutine that reads, if
	// it asked to (the caller's recover turns it into an error): the
	// other goroutine asks as this one did, and its panic is raised
	// again here.
	onFault := debug.SetPanicOnFault(false)
	debug.SetPanicOnFault(onFault)
	go func() {
		defer close(done)
		defer func() { rPanic = recover() }()
		debug.SetPanicOnFault(onFault)
		fw.getScratch()
		right, rAppend, rErr = fw.applyKids(n, h, page.Count(n), muts[j:], depth, nil)
	}()
	var (
		lAppend bool
		lPanic  any
		err     error
	)
	func() {
		// Even if this half panics, the other must end and be joined
		// before the caller goes on: it writes through the same
		// allocator.
		defer func() { lPanic = recover() }()
		w.forking = true
		defer func() { w.forking = false }()
		out, lAppend, err = w.applyKids(n, 0, h, muts[:j], depth, out)
	}()
	<-done
	if err == nil && rErr == nil && lPanic == nil && rPanic == nil {
		out = append(out, right...) // before fw's scratch is pooled
	}
	fw.putScratch()
	w.trusted += fw.trusted
	jerr := f.Join(fa)
	if lPanic != nil {
		panic(lPanic)
	}
	if rPanic != nil {
		panic(rPanic)
	}
	for _, e := range []error{err, rErr, jerr} {
		if e != nil {
			return nil, false, e
		}
	}
	return out, lAppend && rAppend, nil
}

// before returns how many of muts (sorted) have keys below key: often
// none, so the first is tried alone before a galloping search.
func before(muts []Mutation, key []byte) int {
	if len(muts) == 0 || bytes.Compare(muts[0].Key, key) >= 0 {
		return 0
	}
	lo, hi := 0, 1 // muts[lo] < key
	for hi < len(muts) && bytes.Compare(muts[hi].Key, key) < 0 {
		lo, hi = hi, 2*hi
	}
	hi = min(hi, len(muts))
	for lo+1 < hi { // muts[lo] < key, muts[hi] >= key (or hi = len)
		m := int(uint(lo+hi) >> 1)
		if bytes.Compare(muts[m].Key, key) < 0 {
			lo = m
		} else {
			hi = m
		}
	}
	return hi
}

// applyLeaf merges muts into leaf n at id and appends its replacements to
// dst (see applyNode for spread).
func (w *Writer) applyLeaf(id page.ID, n []byte, trusted bool, muts []Mutation, dst []child, spread bool) ([]child, error) {
	if out, ok, err := w.insertInPlace(id, n, trusted, muts, dst); ok {
		return out, err
	}
	if !copyLeaves {
		if out, ok, err := w.packAppended(id, n, muts, dst, spread); ok {
			return out, err
		}
	}
	es, err := w.mergeLeaf(n, muts)
	if err != nil {
		return nil, err
	}
	appendOnly := false
	if last, ok := page.LeafKey(n, page.Count(n)-1); ok {
		appendOnly = bytes.Compare(muts[0].Key, last) > 0
	}
	sizes := w.sizeOf(es)
	groups := w.group(sizes, appendOnly, 1)
	if spread && len(groups) > 1 && len(dst) > 0 {
		// The leaf splits. If its unchanged left neighbour has room for
		// the surplus, spread the entries over it too (as a B*-tree
		// does): one node fewer for the same number written. Decided
		// before anything is built.
		prev := &dst[len(dst)-1]
		ps, err := w.size(prev)
		if err != nil {
			return nil, err
		}
		if ps <= w.T.PageSize {
			total := ps - page.HeaderSize - 8
			for _, s := range sizes {
				total += s
			}
			if (total+w.capacity()-1)/w.capacity() < 1+len(groups) {
				pn, err := w.read(prev.id, prev.birth)
				if err != nil {
					return nil, err
				}
				if page.NodeType(pn) != page.TypeLeaf {
					return nil, fmt.Errorf("%w: pages %d and %d are siblings of different types", page.ErrFormat, prev.id, id)
				}
				all := w.spread[:0]
				if all, err = appendLeaf(all, pn); err != nil {
					return nil, err
				}
				if len(all) > 0 && len(es) > 0 && bytes.Compare(all[len(all)-1].key, es[0].key) >= 0 {
					return nil, orderErr(pn)
				}
				all = append(all, es...)
				prevID := prev.id
				dst = dst[:len(dst)-1]
				dst, err = w.packLeaves(dst, all, false)
				w.spread = all[:0]
				if err != nil {
					return nil, err
				}
				w.freeNode(prevID, pn)
				w.freeNode(id, n)
				return dst, nil
			}
		}
	}
	if dst, err = w.packGroups(dst, es, sizes, groups); err != nil {
		return nil, err
	}
	w.freeNode(id, n)
	return dst, nil
}

// copyLeaves turns off insertInPlace and packAppended (tests compare the
// nodes built both ways; see also copyBranches).
var copyLeaves = false

// insertInPlace is applyLeaf's path for the common change to a leaf:
// values put under keys inside its range (from its first key to its last),
// none of which replaces a bucket or an overflow value or moves out to
// an overflow node, into a leaf that LeafWriter laid out (page.LeafPacked)
// and that still fits one page with the same common prefix. It builds the
// node packGroups would build, byte for byte, copying the runs of
// elements between the changes whole instead of decoding, sizing and
// adding each (on a random load of 10,000-key commits, most leaves take
// one or two keys). On the /tmp harness (1M random keys, 10,000 a
// commit) the load's user CPU went from 2.01-2.02 s to 1.81-1.88 s
// (unsynced, three pairs) and the synced load from 367k to 379k keys/s
// (medians of ten alternating pairs, nine won). ok is false, and nothing
// is built, if the change is not of that kind: applyLeaf then merges the
// slow way.
//
// An allocator that is a PutsSealer learns how the node was built (the
// old node and the puts), so that a log can store the puts instead of the
// node; RebuildInPlace builds the same node again from them.
func (w *Writer) insertInPlace(id page.ID, n []byte, trusted bool, muts []Mutation, dst []child) (_ []child, ok bool, err error) {
	if copyLeaves || len(muts) == 0 {
		return nil, false, nil
	}
	at := w.sizeBuf(len(muts)) // where each change goes among n's elements; -1-i: replaces i
	p, ok := planInPlace(n, trusted, muts, at, w.T.PageSize)
	if !ok {
		return nil, false, nil
	}
	nid, buf, err := w.A.Alloc(1)
	if err != nil {
		return nil, true, err
	}
	p.build(buf, n, nid, w.TxID, muts, at)
	if ps, ok := w.A.(PutsSealer); ok {
		ps.SealPuts(nid, buf, p.used, id, n, muts)
	} else {
		w.A.Seal(nid, buf, p.used)
	}
	sep, _ := page.LeafKey(buf, 0)
	w.freeNode(id, n)
	w.inPlace++
	return append(dst, child{key: sep, id: nid, birth: w.TxID, size: p.used, fresh: true}), true, nil
}

// PutsSealer is an Alloc that is told how a leaf built on the in-place
// path came to be: SealPuts replaces Seal for such a node, and says
// which node it replaces (base, whose bytes are old) and the puts
// (muts, all plain puts of keys inside old's range) that made it from
// old. RebuildInPlace(node, old, id, txid, muts) builds node again. The
// slices are the Writer's: copy what must outlive the call.
type PutsSealer interface {
	Alloc
	SealPuts(id page.ID, node []byte, used int, base page.ID, old []byte, muts []Mutation)
}

// inPlace is what planInPlace found: the new node's element count, its
// common prefix's length and the bytes it uses as layout counts them.
type inPlace struct {
	count, cpl, used int
}

// planInPlace checks that muts can go into leaf n on the in-place path
// (see insertInPlace), and fills at (one slot per change) with where
// each goes among n's elements: i to go before element i, -1-i to
// replace it. ps is the page size. A trusted n (see Writer.TrustFrom) is
// taken as laid out by LeafWriter without walking it.
func planInPlace(n []byte, trusted bool, muts []Mutation, at []int, ps int) (inPlace, bool) {
	var p inPlace
	if len(n) != ps || len(muts) == 0 || len(at) != len(muts) {
		return p, false
	}
	end, packed := page.LeafEnd(n)
	if !trusted {
		end, packed = page.LeafPacked(n)
	}
	if !packed {
		return p, false
	}
	capacity := capacityOf(ps)
	cnt := page.Count(n)
	first, _ := page.LeafKey(n, 0)
	last, _ := page.LeafKey(n, cnt-1)
	if bytes.Compare(muts[0].Key, first) < 0 || bytes.Compare(muts[len(muts)-1].Key, last) > 0 {
		return p, false // the node's range, and so its common prefix, would change
	}
	cpl := page.Cpl(n)
	eb := page.ElemBase(n)
	data := eb + cnt*page.LeafElementSize
	// The entries' sizes, as sizeOf adds them: what mergeLeaf's entries
	// would add up to once the changes are in.
	total := cnt*(4+page.LeafElementSize) + end - data
	count := cnt
	for k := range muts {
		m := &muts[k]
		size := page.LeafEntrySize(m.Key, m.Value)
		if m.Delete || m.Flags != 0 || m.OverBucket || len(m.Value) > page.RefSize && size > capacity/2 {
			return p, false
		}
		i, eq, ok := page.SearchLeaf(n, m.Key)
		if !ok {
			return p, false
		}
		if eq {
			f, okey, oval, ok := page.LeafElem(n, i)
			if !ok || f != 0 {
				return p, false
			}
			total -= page.LeafEntrySize(okey, oval)
			at[k] = -1 - i
		} else {
			count++
			at[k] = i
		}
		total += size
	}
	if total > capacity || count > page.MaxCount {
		return p, false // it splits
	}
	used := page.HeaderSize + page.PrefixArea(0) + total
	if page.CommonLen(first, last, min((ps-used)&^7, page.MaxCpl)) != cpl {
		return p, false // layout would choose another common prefix
	}
	used += page.PrefixArea(cpl) - page.PrefixArea(0) // as layout counts it
	return inPlace{count: count, cpl: cpl, used: used}, true
}

// build writes into buf (one page) the node planInPlace planned: n's
// elements with muts put at the places at says, under id and txid.
func (p inPlace) build(buf, n []byte, id page.ID, txid page.TxID, muts []Mutation, at []int) {
	first, _ := page.LeafKey(n, 0)
	page.PutHeader(buf, id, txid, page.TypeLeaf, 0, p.count)
	lw := page.NewLeafWriter(buf, p.count, first[:p.cpl])
	from := 0
	for k := range muts {
		i := at[k]
		if i < 0 {
			i = -1 - i
		}
		lw.CopyFrom(n, from, i)
		lw.Add(0, muts[k].Key, muts[k].Value)
		from = i
		if at[k] < 0 {
			from++
		}
	}
	lw.CopyFrom(n, from, page.Count(n))
	clear(buf[lw.Used():])
}

// RebuildInPlace builds in dst (one page) the leaf that putting muts into
// leaf old built on the in-place path, under id and txid, unsealed, and
// returns the bytes it uses as layout counts them (what SealPuts was
// given as used). It fails, leaving dst unspecified, if old is not a
// well-formed leaf (page.CheckNode; its checksum is the caller's to
// check) or that path would not take muts into old: a replay of a log that stored puts (see
// PutsSealer) rebuilds its nodes with it, then checks their checksums.
func RebuildInPlace(dst, old []byte, id page.ID, txid page.TxID, muts []Mutation) (int, error) {
	if len(dst) != len(old) {
		return 0, fmt.Errorf("btree: rebuild node %d: %d-byte page for a %d-byte node", id, len(dst), len(old))
	}
	if err := page.CheckNode(old, page.TypeLeaf); err != nil {
		return 0, fmt.Errorf("btree: rebuild node %d: the old node: %w", id, err)
	}
	for k := 1; k < len(muts); k++ {
		if bytes.Compare(muts[k-1].Key, muts[k].Key) >= 0 {
			return 0, fmt.Errorf("btree: rebuild node %d: puts not in ascending key order", id)
		}
	}
	at := make([]int, len(muts))
	p, ok := planInPlace(old, false, muts, at, len(old))
	if !ok {
		return 0, fmt.Errorf("btree: rebuild node %d: its %d puts do not go into the old node in place", id, len(muts))
	}
	p.build(dst, old, id, txid, muts, at)
	return p.used, nil
}

// appendLeaf appends the entries of leaf n to es, checking their order.
func appendLeaf(es []entry, n []byte) ([]entry, error) {
	for i := 0; i < page.Count(n); i++ {
		f, k, v, ok := page.LeafElem(n, i)
		if !ok {
			return es, elemErr(n, i)
		}
		if len(es) > 0 && bytes.Compare(es[len(es)-1].key, k) >= 0 {
			return es, orderErr(n)
		}
		es = append(es, entry{k, v, f})
	}
	return es, nil
}

// appendBranch appends the children of branch n to kids, checking their
// keys' order (as appendLeaf does for a leaf's entries).
func appendBranch(kids []child, n []byte) ([]child, error) {
	for i := 0; i < page.Count(n); i++ {
		k, ok := page.BranchKey(n, i)
		if !ok {
			return kids, elemErr(n, i)
		}
		if len(kids) > 0 && bytes.Compare(kids[len(kids)-1].key, k) >= 0 {
			return kids, orderErr(n)
		}
		id, bt := page.BranchChild(n, i)
		kids = append(kids, child{key: k, id: id, birth: bt})
	}
	return kids, nil
}

// atDepth returns (*s)[depth], emptied, growing *s to reach it: the
// scratch of the node being rewritten at that depth of the tree.
func atDepth[T any](s *[][]T, depth int) []T {
	for len(*s) <= depth {
		*s = append(*s, nil)
	}
	return (*s)[depth][:0]
}

// rebalance merges each node written by this transaction with its left
// neighbour when the two fit in one page or either is under a quarter
// full, so deletes do not leave a trail of near-empty nodes. It works in
// place in kids.
func (w *Writer) rebalance(kids []child) ([]child, error) {
	out := kids[:0]
	inPlace := true
	for i := 0; i < len(kids); i++ {
		c := kids[i]
		if len(out) > 0 {
			p := &out[len(out)-1]
			ok, err := w.merges(p, &c)
			if err != nil {
				return nil, err
			}
			if ok {
				var buf [4]child
				merged, err := w.repack(buf[:0], *p, c)
				if err != nil {
					return nil, err
				}
				at := len(out) - 1
				if inPlace && at+len(merged) > i+1 {
					// More nodes came out than went in: writing them in
					// place would overwrite kids not read yet.
					out = append(make([]child, 0, len(kids)+len(merged)), out[:at]...)
					inPlace = false
				} else {
					out = out[:at]
				}
				out = append(out, merged...)
				continue
			}
		}
		out = append(out, c)
	}
	return out, nil
}

// merges reports whether rebalance merges neighbours p and c: when either
// was written by this transaction and the two fit in one page, or either
// is under a quarter full.
func (w *Writer) merges(p, c *child) (bool, error) {
	if !p.fresh && !c.fresh {
		return false, nil
	}
	ps, err := w.size(p)
	if err != nil {
		return false, err
	}
	cs, err := w.size(c)
	if err != nil {
		return false, err
	}
	pg := w.T.PageSize
	return (ps+cs-page.HeaderSize <= pg || ps < pg/4 || cs < pg/4) && ps <= pg && cs <= pg, nil
}

// saves reports whether prev and kids, repacked together, need fewer
// single-page nodes than they take now.
func (w *Writer) saves(prev *child, kids []child) (bool, error) {
	total, err := w.size(prev)
	if err != nil || total > w.T.PageSize {
		return false, err
	}
	for i := range kids {
		s, err := w.size(&kids[i])
		if err != nil || s > w.T.PageSize {
			return false, err
		}
		total += s - page.HeaderSize - 8
	}
	nodes := (total - page.HeaderSize - 8 + w.capacity() - 1) / w.capacity()
	return nodes < 1+len(kids), nil
}

// size returns the bytes c's node uses, reading it if not known. The size
// only steers packing decisions, so the node is not verified here: one
// that is rewritten is read again, verified (repack).
func (w *Writer) size(c *child) (int, error) {
	if c.size > 0 {
		return c.size, nil
	}
	n, err := w.T.branchOrLeaf(c.id)
	if err != nil {
		return 0, err
	}
	if s, ok := quickSize(n); ok {
		c.size = s
		return s, nil
	}
	s := page.HeaderSize + page.PrefixArea(page.Cpl(n))
	cnt := page.Count(n)
	if page.NodeType(n) == page.TypeLeaf {
		for i := 0; i < cnt; i++ {
			_, k, v, ok := page.LeafElem(n, i)
			if !ok {
				return 0, elemErr(n, i)
			}
			s += page.LeafEntrySize(k, v)
		}
	} else {
		for i := 0; i < cnt; i++ {
			k, ok := page.BranchKey(n, i)
			if !ok {
				return 0, elemErr(n, i)
			}
			s += page.BranchEntrySize(k)
		}
	}
	c.size = s
	return s, nil
}

// quickSize is size for a node (checked with page.CheckNode) laid out as
// page.LeafWriter and page.BranchWriter lay nodes out: the keys (and
// values) follow the element array in element order, so the last
// element's data ends the node's. It reads the header and the last
// element, not every element: a neighbour whose size decides whether it
// is merged is often cold in the cache. ok is false if the last element
// does not end the data plausibly; the caller then adds up every entry.
func quickSize(n []byte) (int, bool) {
	cnt := page.Count(n)
	cpl := page.Cpl(n)
	esz, leaf := page.BranchElementSize, page.NodeType(n) == page.TypeLeaf
	if leaf {
		esz = page.LeafElementSize
	}
	eb := (page.HeaderSize + page.PrefixArea(cpl) - 8 + 4*cnt + 7) &^ 7 // see FORMAT.md
	data := eb + cnt*esz
	e := data - esz // the last element
	if cnt == 0 || e < page.HeaderSize || data > len(n) {
		return 0, false
	}
	var end int
	if leaf {
		end = int(le.Uint32(n[e:])) + int(le.Uint16(n[e+4:])) + int(le.Uint32(n[e+8:]))
	} else {
		end = int(le.Uint32(n[e+16:])) + int(le.Uint32(n[e+20:]))
	}
	if end < data || end > len(n) {
		return 0, false
	}
	return page.HeaderSize + page.PrefixArea(cpl) + cnt*(4+esz) + end - data, true
}

var le = binary.LittleEndian

// repack rewrites adjacent nodes of one level as evenly filled new nodes,
// appended to dst.
func (w *Writer) repack(dst []child, cs ...child) ([]child, error) {
	var nodesBuf [4][]byte
	nodes := nodesBuf[:0]
	total := 0
	for i, c := range cs {
		n, err := w.read(c.id, c.birth)
		if err != nil {
			return nil, err
		}
		if i > 0 && page.NodeType(n) != page.NodeType(nodes[0]) {
			return nil, fmt.Errorf("%w: pages %d and %d are siblings of different types", page.ErrFormat, cs[0].id, c.id)
		}
		nodes = append(nodes, n)
		total += page.Count(n)
	}
	var err error
	if page.NodeType(nodes[0]) == page.TypeLeaf {
		es := w.spread[:0]
		for _, n := range nodes {
			if es, err = appendLeaf(es, n); err != nil {
				return nil, err
			}
		}
		dst, err = w.packLeaves(dst, es, false)
		w.spread = es[:0]
	} else {
		kids := make([]child, 0, total)
		for _, n := range nodes {
			if kids, err = appendBranch(kids, n); err != nil {
				return nil, err
			}
		}
		dst, err = w.packBranches(dst, kids, false, nil)
	}
	if err != nil {
		return nil, err
	}
	for i, c := range cs {
		w.freeNode(c.id, nodes[i])
	}
	return dst, nil
}

func (w *Writer) freeNode(id page.ID, n []byte) {
	w.A.Free(id, len(n)/w.T.PageSize)
}

// mergeLeaf merges the elements of leaf n (nil: an empty tree) with muts.
func (w *Writer) mergeLeaf(n []byte, muts []Mutation) ([]entry, error) {
	cnt := 0
	if n != nil {
		cnt = page.Count(n)
	}
	out := slices.Grow(w.entries[:0], cnt+len(muts))
	defer func() { w.entries = out[:0] }()
	i, j := 0, 0
	for i < cnt || j < len(muts) {
		var f uint16
		var k, v []byte
		if i < cnt {
			var ok bool
			if f, k, v, ok = page.LeafElem(n, i); !ok {
				return nil, elemErr(n, i)
			}
		}
		c := -1
		if i < cnt && j < len(muts) {
			c = bytes.Compare(k, muts[j].Key)
		} else if i < cnt {
			c = -1
		} else {
			c = 1
		}
		switch {
		case c < 0:
			if len(out) > 0 && bytes.Compare(out[len(out)-1].key, k) >= 0 {
				return nil, orderErr(n)
			}
			out = append(out, entry{k, v, f})
			i++
		case c == 0:
			if f&page.FlagBucket != 0 && !muts[j].Delete && muts[j].Flags&page.FlagBucket == 0 && !muts[j].OverBucket {
				// The root package never puts a value over a bucket; a
				// wrong nested-bucket count in a damaged file could.
				return nil, fmt.Errorf("%w: page %d: key %d names a bucket that a value would replace (bad nested-bucket count)", page.ErrFormat, page.PageID(n), i)
			}
			if err := w.dropValue(f, v); err != nil {
				return nil, err
			}
			i++
			fallthrough
		default:
			m := &muts[j]
			j++
			if m.Delete {
				continue
			}
			e, err := w.entryFor(m)
			if err != nil {
				return nil, err
			}
			out = append(out, e)
		}
	}
	return out, nil
}

// entryFor turns a put into a leaf entry, moving a large value to its own
// overflow node so that leaves stay dense.
func (w *Writer) entryFor(m *Mutation) (entry, error) {
	if w.inline(m, page.LeafEntrySize(m.Key, m.Value)) {
		return entry{m.Key, m.Value, m.Flags}, nil
	}
	size := page.HeaderSize + len(m.Value)
	pages := page.Pages(size, w.T.PageSize)
	id, buf, err := w.A.Alloc(pages)
	if err != nil {
		return entry{}, err
	}
	page.PutHeader(buf, id, w.TxID, page.TypeOverflow, uint32(pages-1), 0)
	copy(buf[page.HeaderSize:], m.Value)
	clear(buf[size:])
	w.A.Seal(id, buf, size)
	ref := page.Ref{Root: id, Birth: w.TxID, Seq: uint64(len(m.Value))}
	return entry{m.Key, ref.Encode(make([]byte, page.RefSize)), page.FlagOverflow}, nil
}

// inline reports whether put m, whose leaf entry takes size bytes, stays
// in its leaf rather than moving its value to an overflow node.
func (w *Writer) inline(m *Mutation, size int) bool {
	return m.Flags != 0 || len(m.Value) <= page.RefSize || size <= w.capacity()/2
}

// dropValue frees the overflow node of a value being replaced or deleted.
func (w *Writer) dropValue(flags uint16, v []byte) error {
	if flags&page.FlagOverflow == 0 {
		return nil
	}
	r, ok := page.DecodeRef(v)
	if !ok {
		return fmt.Errorf("%w: bad overflow reference", page.ErrFormat)
	}
	n, err := w.readAny(r.Root, r.Birth)
	if err != nil {
		return err
	}
	w.freeNode(r.Root, n)
	return nil
}

// appendSlack: nodes filled by appending (sequential inserts, bulk loads)
// keep 1/appendSlack of their room free, as InnoDB and PostgreSQL leave
// room in the pages of a sorted build. Filled to the brim, every node of
// a freshly loaded tree splits at its first random insert: the commit
// then writes two leaves and often two branches instead of one of each.
const appendSlack = 16

// group splits items of the given sizes into nodes. appendOnly fills each
// node to capacity (sequential inserts); otherwise items are spread evenly
// over the fewest nodes. Each node takes at least minCount items when
// there are that many left, so branches always fan out. The result is
// valid until the next call.
func (w *Writer) group(sizes []int, appendOnly bool, minCount int) [][2]int {
	capacity := w.capacity()
	total := 0
	for _, s := range sizes {
		total += s
	}
	target := capacity
	if appendOnly {
		target -= capacity / appendSlack
	} else if total > capacity {
		nodes := (total + capacity - 1) / capacity
		target = (total + nodes - 1) / nodes
	}
	out := w.groups[:0]
	start, cur := 0, 0
	for i, s := range sizes {
		n := i - start
		if n >= minCount && (cur+s > capacity || cur >= target || n >= page.MaxCount) {
			out = append(out, [2]int{start, i})
			start, cur = i, 0
		}
		cur += s
	}
	if start < len(sizes) {
		out = append(out, [2]int{start, len(sizes)})
	}
	w.groups = out
	return out
}

// sizeOf returns the sizes of leaf entries es (valid until the next call).
func (w *Writer) sizeOf(es []entry) []int {
	sizes := w.sizeBuf(len(es))
	for i, e := range es {
		sizes[i] = page.LeafEntrySize(e.key, e.val)
	}
	return sizes
}

// packLeaves writes es as new leaves and appends them to dst.
func (w *Writer) packLeaves(dst []child, es []entry, appendOnly bool) ([]child, error) {
	if len(es) == 0 {
		return dst, nil
	}
	sizes := w.sizeOf(es)
	return w.packGroups(dst, es, sizes, w.group(sizes, appendOnly, 1))
}

// packGroups writes es as new leaves, one per group, and appends them to
// dst.
func (w *Writer) packGroups(dst []child, es []entry, sizes []int, groups [][2]int) ([]child, error) {
	return w.packSource(dst, entrySource{head: es}, sizes, groups)
}

// entrySource is the items a run of new leaves takes: head's entries,
// then tail's puts (packAppended's, which packs a leaf's entries and the
// puts after them without copying the puts into entries first).
type entrySource struct {
	head []entry
	tail []Mutation
}

// at returns item i's flags, key and value.
func (s *entrySource) at(i int) (uint16, []byte, []byte) {
	if i < len(s.head) {
		e := &s.head[i]
		return e.flags, e.key, e.val
	}
	m := &s.tail[i-len(s.head)]
	return m.Flags, m.Key, m.Value
}

// packSource writes the items of src as new leaves, one per group, and
// appends them to dst.
func (w *Writer) packSource(dst []child, src entrySource, sizes []int, groups [][2]int) ([]child, error) {
	for _, g := range groups {
		_, first, _ := src.at(g[0])
		_, last, _ := src.at(g[1] - 1)
		used, pages, cp := w.layout(sizes[g[0]:g[1]], first, last)
		id, buf, err := w.A.Alloc(pages)
		if err != nil {
			return nil, err
		}
		cnt := g[1] - g[0]
		page.PutHeader(buf, id, w.TxID, page.TypeLeaf, uint32(pages-1), cnt)
		lw := page.NewLeafWriter(buf, cnt, cp)
		for i := g[0]; i < g[1]; i++ {
			lw.Add(src.at(i))
		}
		clear(buf[lw.Used():]) // used (layout's) may count padding the prefix array did not need
		w.A.Seal(id, buf, used)
		sep, _ := page.LeafKey(buf, 0)
		if g[0] > 0 {
			// The parent needs only a key above everything in the previous
			// leaf and at most this leaf's first key: the shortest prefix
			// of the first key that passes the previous leaf's last.
			_, prev, _ := src.at(g[0] - 1)
			sep = sep[:separator(prev, sep)]
		}
		dst = append(dst, child{key: sep, id: id, birth: w.TxID, size: used, fresh: true})
	}
	return dst, nil
}

// packAppended is applyLeaf's path for puts that all go after leaf n's last
// key (a load in key order), none of which moves out to an overflow node,
// when the leaf is not to be spread over its neighbour: it packs n's
// entries and the puts into appended leaves straight from muts, where
// mergeLeaf would first copy each put into an entry. ok is false, and
// nothing done, if the puts do not qualify.
func (w *Writer) packAppended(id page.ID, n []byte, muts []Mutation, dst []child, spread bool) (out []child, ok bool, err error) {
	cnt := page.Count(n)
	last, ok := page.LeafKey(n, cnt-1)
	if !ok || len(muts) < 2 || bytes.Compare(muts[0].Key, last) <= 0 {
		return nil, false, nil
	}
	sizes := w.sizeBuf(cnt + len(muts))[:cnt]
	for i := range muts {
		m := &muts[i]
		if m.Delete {
			return nil, false, nil
		}
		s := page.LeafEntrySize(m.Key, m.Value)
		if !w.inline(m, s) {
			return nil, false, nil // entryFor would move it to an overflow node
		}
		sizes = append(sizes, s)
	}
	head, err := appendLeaf(w.entries[:0], n)
	w.entries = head[:0]
	if err != nil {
		return nil, true, err
	}
	for i, e := range head {
		sizes[i] = page.LeafEntrySize(e.key, e.val)
	}
	groups := w.group(sizes, true, 1)
	if spread && len(groups) > 1 && len(dst) > 0 {
		return nil, false, nil // applyLeaf may spread them
	}
	if dst, err = w.packSource(dst, entrySource{head: head, tail: muts}, sizes, groups); err != nil {
		return nil, true, err
	}
	w.freeNode(id, n)
	w.appended++
	return dst, true, nil
}

// packBranches writes cs as new branches and appends them to dst. base
// is the branch cs replace (nil: none, or several): when cs make one
// single-page node and the allocator is a PutsSealer, the node is
// sealed with the puts that make it from base (see branchPuts).
func (w *Writer) packBranches(dst []child, cs []child, appendOnly bool, base *baseNode) ([]child, error) {
	sizes := w.sizeBuf(len(cs))
	for i, c := range cs {
		sizes[i] = page.BranchEntrySize(c.key)
	}
	groups := w.group(sizes, appendOnly, 2)
	for _, g := range groups {
		group := cs[g[0]:g[1]]
		used, pages, cp := layoutOf(w.T.PageSize, sizes[g[0]:g[1]], group[0].key, group[len(group)-1].key)
		id, buf, err := w.A.Alloc(pages)
		if err != nil {
			return nil, err
		}
		buildBranch(buf, id, w.TxID, pages, group, cp)
		if ps, ok := w.A.(PutsSealer); ok && base != nil && len(groups) == 1 && pages == 1 {
			if ops, ok := w.branchPuts(base.node, 0, page.Count(base.node), group, used); ok {
				ps.SealPuts(id, buf, used, base.id, base.node, ops)
				w.branchPutsN++
			} else {
				w.A.Seal(id, buf, used)
			}
		} else {
			w.A.Seal(id, buf, used)
		}
		first, _ := page.BranchKey(buf, 0)
		dst = append(dst, child{key: first, id: id, birth: w.TxID, size: used, fresh: true})
	}
	return dst, nil
}

// baseNode is a node being replaced: its page and bytes.
type baseNode struct {
	id   page.ID
	node []byte
}

// buildBranch writes the branch node of kids (its entries' common prefix
// cp, as layout chose it) into buf under id and txid, unsealed. Every
// byte past the last key is zero, so that the node is a function of kids
// alone (RebuildBranch builds it again from a log).
func buildBranch(buf []byte, id page.ID, txid page.TxID, pages int, kids []child, cp []byte) {
	page.PutHeader(buf, id, txid, page.TypeBranch, uint32(pages-1), len(kids))
	bw := page.NewBranchWriter(buf, len(kids), cp)
	for _, c := range kids {
		bw.Add(c.key, c.id, c.birth)
	}
	clear(buf[bw.Used():])
}

// FreeTree releases every node of the tree at root, including overflow
// values and nested buckets' trees (a bucket being deleted).
func (w *Writer) FreeTree(root page.ID) error {
	// fix(reliability): a damaged tree whose branches share a subtree is
	// walked once per path, exponentially long; a tree holds fewer nodes
	// than the file has pages, so stop there.
	budget := w.T.PgCount
	return w.freeTree(root, 0, 0, &budget)
}

func (w *Writer) freeTree(id page.ID, birth page.TxID, depth int, budget *uint64) error {
	if id == 0 {
		return nil
	}
	if depth >= 2*page.MaxDepth {
		return fmt.Errorf("%w: nesting deeper than %d levels (a loop?)", page.ErrFormat, 2*page.MaxDepth)
	}
	if *budget == 0 {
		return fmt.Errorf("%w: tree under page %d reaches more nodes than the file has pages (a shared subtree?)", page.ErrFormat, id)
	}
	*budget--
	n, err := w.read(id, birth)
	if err != nil {
		return err
	}
	for i := 0; i < page.Count(n); i++ {
		if page.NodeType(n) == page.TypeBranch {
			cid, cb := page.BranchChild(n, i)
			if err := w.freeTree(cid, cb, depth+1, budget); err != nil {
				return err
			}
			continue
		}
		f, _, v, ok := page.LeafElem(n, i)
		if !ok {
			return elemErr(n, i)
		}
		if f&page.FlagBucket != 0 {
			r, _ := page.DecodeRef(v)
			if err := w.freeTree(r.Root, r.Birth, depth+1, budget); err != nil {
				return err
			}
		} else if err := w.dropValue(f, v); err != nil {
			return err
		}
	}
	w.freeNode(id, n)
	return nil
}

func (w *Writer) sizeBuf(n int) []int {
	if cap(w.sizes) < n {
		w.sizes = make([]int, n)
	}
	return w.sizes[:n]
}

// layout sizes a node holding entries of the given sizes whose keys run
// from first to last: the bytes used, the pages needed, and the common
// prefix to record. The prefix only uses room the last page has spare, so
// it never costs a page.
func (w *Writer) layout(sizes []int, first, last []byte) (used, pages int, cp []byte) {
	return layoutOf(w.T.PageSize, sizes, first, last)
}

// layoutOf is layout for pages of ps bytes.
func layoutOf(ps int, sizes []int, first, last []byte) (used, pages int, cp []byte) {
	used = page.HeaderSize + page.PrefixArea(0)
	for _, s := range sizes {
		used += s
	}
	pages = page.Pages(used, ps)
	spare := (pages*ps - used) &^ 7
	cpl := page.CommonLen(first, last, min(spare, page.MaxCpl))
	return used + page.PrefixArea(cpl) - page.PrefixArea(0), pages, first[:cpl]
}

// separator returns the length of the shortest prefix of b that sorts
// after a (a < b).
func separator(a, b []byte) int {
	return min(page.CommonLen(a, b, len(b))+1, len(b))
}

// read returns the branch or leaf node at id, verified: a commit copies
// what it reads into new nodes with fresh checksums, so reading a damaged
// node unverified would launder the damage (and could feed the writer keys
// out of order). Nodes this commit built are trusted, and so are those
// that birth, the txid the reference to the node carries (0 if not
// known), shows this process built (see Writer.TrustFrom).
func (w *Writer) read(id page.ID, birth page.TxID) ([]byte, error) {
	n, err := w.T.branchOrLeaf(id)
	if err != nil {
		return nil, err
	}
	return n, w.verify(id, n, birth)
}

// readAny is read for a node of any type (an overflow value).
func (w *Writer) readAny(id page.ID, birth page.TxID) ([]byte, error) {
	n, err := w.T.typed(id, 0)
	if err != nil {
		return nil, err
	}
	return n, w.verify(id, n, birth)
}

func (w *Writer) verify(id page.ID, n []byte, birth page.TxID) error {
	if _, fresh := w.T.Fresh[id]; fresh {
		return nil
	}
	if w.trusts(n, birth) {
		w.trusted++
		if CheckTrusted {
			return checkTrusted(id, n)
		}
		return nil
	}
	return page.Verify(n, id, 0)
}

// Trusted returns how many nodes w has read on trust so far (see
// TrustFrom), without verifying them.
func (w *Writer) Trusted() int { return w.trusted }

// trusts reports whether node n, named by a reference carrying birth,
// was built by this process (see Writer.TrustFrom).
func (w *Writer) trusts(n []byte, birth page.TxID) bool {
	return w.TrustFrom != 0 && birth >= w.TrustFrom && page.Birth(n) == birth
}

// trustedFault is the error for a panic r out of an Apply of a Writer
// that trusts nodes (see TrustFrom) without checking them: a runtime
// error there (an index out of range) is taken to come from a node this
// process wrote and something else changed since (another process
// writing the file, or the disk returning other bytes after the page
// was evicted): the commit fails with ErrFormat and no panic leaves the
// library. Memory faults go on to the caller's guard, and any panic of a
// Writer that trusts nothing, or checks what it trusts, goes on as it
// is.
func (w *Writer) trustedFault(r any) error {
	re, ok := r.(runtime.Error)
	if _, fault := r.(interface{ Addr() uintptr }); !ok || fault || w.TrustFrom == 0 || CheckTrusted {
		panic(r)
	}
	return fmt.Errorf("%w: a node this process wrote no longer decodes (changed since it was written?): %v", page.ErrFormat, re)
}

// CheckTrusted makes a Writer check the nodes it trusts (see
// Writer.TrustFrom) as it checks the others, and fail the commit if one
// does not pass: for tests, which set it so that a node a writer built
// some other way would show.
var CheckTrusted bool

// checkTrusted is what a Writer with CheckTrusted set does with a
// trusted node: every check that trust skips.
func checkTrusted(id page.ID, n []byte) error {
	if err := page.Verify(n, id, 0); err != nil {
		return fmt.Errorf("btree: trusted node: %w", err)
	}
	packed, end := page.LeafPacked, page.LeafEnd
	if page.NodeType(n) == page.TypeBranch {
		packed, end = page.BranchPacked, page.BranchEnd
	}
	e1, ok1 := packed(n)
	e2, ok2 := end(n)
	if !ok1 || !ok2 || e1 != e2 {
		return fmt.Errorf("btree: trusted node %d is not laid out as the writer lays out nodes", id)
	}
	return nil
}

// orderErr is the error for a node whose keys are not in order: it would
// make the writer build nodes whose searches fail.
func orderErr(n []byte) error {
	return fmt.Errorf("%w: page %d: keys out of order", page.ErrFormat, page.PageID(n))
}
