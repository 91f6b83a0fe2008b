// Package btree is mapkv's B+tree over pages: lookups and cursors that read
// nodes straight out of the mapping, and the commit-time merge that applies
// a transaction's sorted changes to a tree, copy-on-write, in one pass.
//
// It knows keys and pages, not files: the caller hands it the mapped bytes
// (Tree) and, for writes, an allocator (Alloc). Every node it reads is
// bounds-checked before use, so a damaged file yields an error wrapping
// page.ErrFormat, never a panic or a read outside the mapping.
package btree

import (
	"fmt"
	"runtime"

	"github.com/mapkv/mapkv/page"
)

// Tree is a read-only view of the pages of one committed state: the mapped
// bytes and how many pages of them belong to the view.
type Tree struct {
	Data     []byte // the mapping; at least PgCount*PageSize bytes of it are backed by the file
	PageSize int
	PgCount  uint64
	// Fresh holds the nodes a commit has built but not yet written to the
	// file, by first page; Node looks there first. Nil for readers.
	Fresh map[page.ID][]byte
}

// Node returns the node (a run of 1+overflow pages) starting at page id.
// It checks that the run lies inside the view; it does not verify the
// checksum (see page.Verify).
func (t *Tree) Node(id page.ID) ([]byte, error) {
	if id < 2 || uint64(id) >= t.PgCount {
		return nil, fmt.Errorf("%w: page %d outside the file (%d pages)", page.ErrFormat, id, t.PgCount)
	}
	if t.Fresh != nil {
		if n, ok := t.Fresh[id]; ok {
			return n, nil
		}
	}
	off := uint64(id) * uint64(t.PageSize)
	ov := uint64(page.Overflow(t.Data[off : off+page.HeaderSize]))
	if ov >= t.PgCount-uint64(id) {
		return nil, fmt.Errorf("%w: page %d: overflow %d runs past the end of the file", page.ErrFormat, id, ov)
	}
	return t.Data[off : off+(ov+1)*uint64(t.PageSize)], nil
}

func (t *Tree) typed(id page.ID, want page.Type) ([]byte, error) {
	n, err := t.Node(id)
	if err != nil {
		return nil, err
	}
	if page.PageID(n) != id {
		return nil, fmt.Errorf("%w: page %d: header says page %d", page.ErrFormat, id, page.PageID(n))
	}
	if want != 0 {
		if err := page.CheckNode(n, want); err != nil {
			return nil, err
		}
	}
	return n, nil
}

// branchOrLeaf returns the node at id, checked as a branch or leaf.
func (t *Tree) branchOrLeaf(id page.ID) ([]byte, error) {
	n, err := t.Node(id)
	if err != nil {
		return nil, err
	}
	typ := page.NodeType(n)
	if typ != page.TypeBranch && typ != page.TypeLeaf {
		return nil, fmt.Errorf("%w: page %d: is %s, expected branch or leaf", page.ErrFormat, id, typ)
	}
	if page.PageID(n) != id {
		return nil, fmt.Errorf("%w: page %d: header says page %d", page.ErrFormat, id, page.PageID(n))
	}
	if err := page.CheckNode(n, typ); err != nil {
		return nil, err
	}
	return n, nil
}

func elemErr(n []byte, i int) error {
	return fmt.Errorf("%w: page %d: element %d does not fit the node", page.ErrFormat, page.PageID(n), i)
}

// searchBranch returns the index of the child whose range holds key: the
// last element whose key is <= key, or 0.
func searchBranch(n []byte, key []byte) (int, error) {
	i, ok := page.SearchBranch(n, key)
	if !ok {
		return 0, searchErr(n)
	}
	return i, nil
}

// searchLeaf returns the index of the first element whose key is >= key,
// and whether it is equal.
func searchLeaf(n []byte, key []byte) (int, bool, error) {
	i, eq, ok := page.SearchLeaf(n, key)
	if !ok {
		return 0, false, searchErr(n)
	}
	return i, eq, nil
}

// touchSpan is how many bytes at the start of a node readNode loads ahead:
// the header, common prefix and prefix array of a typical node and the
// first elements (9 cache lines). It is below the smallest page size.
const touchSpan = 576

// readNode is branchOrLeaf's fast path for lookups of committed nodes: the
// same checks without the error values. ok is false on any doubt (a node
// of a commit in progress, a failed check); branchOrLeaf then says why.
//
// It first loads one byte of each of the node's first cache lines. A
// search reads them one after another (the header, then a probe of the
// prefix array, then an element): a node read from memory costs as many
// misses in a row. Loaded together, their misses overlap and the search
// finds them in the cache.
func (t *Tree) readNode(id page.ID) ([]byte, bool) {
	if t.Fresh != nil || id < 2 || uint64(id) >= t.PgCount {
		return nil, false
	}
	ps := uint64(t.PageSize)
	off := uint64(id) * ps
	if off > uint64(len(t.Data)) || uint64(len(t.Data))-off < touchSpan {
		return nil, false
	}
	d := t.Data[off:]
	touchLines(d[:touchSpan])
	ov := uint64(page.Overflow(d))
	if ov >= t.PgCount-uint64(id) || (ov+1)*ps > uint64(len(d)) {
		return nil, false
	}
	n := d[:(ov+1)*ps]
	if page.PageID(n) != id || !page.Searchable(n) {
		return nil, false
	}
	return n, true
}

// touch loads ahead the first bytes of the node at id (see readNode) if
// the node lies inside the view; it reads nothing else.
func (t *Tree) touch(id page.ID) {
	if t.Fresh != nil || id < 2 || uint64(id) >= t.PgCount {
		return
	}
	off := uint64(id) * uint64(t.PageSize)
	if off > uint64(len(t.Data)) || uint64(len(t.Data))-off < touchSpan {
		return
	}
	touchLines(t.Data[off : off+touchSpan])
}

// prefetch asks the CPU to bring the page at id into its caches, without
// waiting (touch waits for the lines it loads): the writer calls it for
// the next node it will merge, whose page the merge then verifies and
// copies whole. Its view also holds the nodes its commit built (Fresh):
// for those the page in the mapping is not the node, and a prefetch of it
// is only wasted. On a random load of 10,000-key commits a merge reading
// a node from memory waited for it at every step (half a microsecond a
// node: the node's header, then its checksum).
func (t *Tree) prefetch(id page.ID) {
	off := uint64(id) * uint64(t.PageSize)
	if id < 2 || uint64(id) >= t.PgCount || off > uint64(len(t.Data)) || uint64(len(t.Data))-off < prefetchSpan {
		return
	}
	prefetchLines(&t.Data[off], prefetchSpan/64)
}

// prefetchHead asks the CPU for the first touchSpan bytes of the node at
// id: the header and element array that a node's size (quickSize) reads.
// The writer calls it for the unchanged neighbours of the next child it
// will merge, whose sizes rebalance (and a split's spread) then read: each
// was two cache misses in a row, the header and then the last element. On
// a random load of 10,000-key commits (/tmp harness, 1M keys): user CPU
// 1.84-1.87 s to 1.71-1.75 s (unsynced, three alternating pairs), the
// synced load 379k to 391k keys/s (medians of four alternating pairs, all
// won; an earlier form, without the first changed child's neighbours,
// won six of six in a slow hour of the VM, 318k to 333k).
func (t *Tree) prefetchHead(id page.ID) {
	off := uint64(id) * uint64(t.PageSize)
	if id < 2 || uint64(id) >= t.PgCount || off > uint64(len(t.Data)) || uint64(len(t.Data))-off < touchSpan {
		return
	}
	prefetchLines(&t.Data[off], touchSpan/64)
}

// prefetchSpan is how much of a page prefetch asks for: its first lines
// start the CPU's own prefetcher along the page. Asking for more held up
// the merge (a microbenchmark hashing 4 KiB pages from memory in random
// order: 1,000 ns a page without a prefetch, 760 with 512 B or 1 KiB
// asked for one page ahead, 860 with the whole page).
const prefetchSpan = 1024

// touchLines loads a byte of each cache line of d.
func touchLines(d []byte) {
	_ = d[touchSpan-1]
	x := d[0] ^ d[64] ^ d[128] ^ d[192] ^ d[256] ^ d[320] ^ d[384] ^ d[448] ^ d[512]
	runtime.KeepAlive(x) // keep the loads; nothing waits for them
}

// Get looks key up in the tree rooted at root. It returns the element's
// flags and raw value (for FlagOverflow, the reference; see Value), and
// found=false when the key is absent.
func (t *Tree) Get(root page.ID, key []byte) (flags uint16, value []byte, found bool, err error) {
	if root == 0 {
		return 0, nil, false, nil
	}
	id := root
	for depth := 0; depth < page.MaxDepth; depth++ {
		n, ok := t.readNode(id)
		if !ok {
			if n, err = t.branchOrLeaf(id); err != nil {
				return 0, nil, false, err
			}
		}
		if page.NodeType(n) == page.TypeBranch {
			i, ok := page.SearchBranch(n, key)
			if !ok {
				return 0, nil, false, searchErr(n)
			}
			id, _ = page.BranchChild(n, i)
			continue
		}
		f, v, found, ok := page.LeafGet(n, key)
		if !ok {
			return 0, nil, false, searchErr(n)
		}
		return f, v, found, nil
	}
	return 0, nil, false, fmt.Errorf("%w: tree under page %d deeper than %d levels (a loop?)", page.ErrFormat, root, page.MaxDepth)
}

func searchErr(n []byte) error {
	return fmt.Errorf("%w: page %d: an element does not fit the node", page.ErrFormat, page.PageID(n))
}

// Value resolves a leaf value: for FlagOverflow it returns the bytes of the
// overflow node the reference names; otherwise v itself.
func (t *Tree) Value(flags uint16, v []byte) ([]byte, error) {
	if flags&page.FlagOverflow == 0 {
		return v, nil
	}
	r, ok := page.DecodeRef(v)
	if !ok {
		return nil, fmt.Errorf("%w: bad overflow reference", page.ErrFormat)
	}
	n, err := t.typed(r.Root, 0)
	if err != nil {
		return nil, err
	}
	if page.NodeType(n) != page.TypeOverflow {
		return nil, fmt.Errorf("%w: page %d: is %s, expected overflow", page.ErrFormat, r.Root, page.NodeType(n))
	}
	if r.Seq > uint64(len(n)-page.HeaderSize) {
		return nil, fmt.Errorf("%w: page %d: value of %d bytes overflows its %d-byte node", page.ErrFormat, r.Root, r.Seq, len(n))
	}
	return n[page.HeaderSize : page.HeaderSize+int(r.Seq) : page.HeaderSize+int(r.Seq)], nil
}
