package btree

import (
	"fmt"

	"github.com/mapkv/mapkv/page"
)

type frame struct {
	node []byte
	i    int
	n    int // page.Count(node)
	eb   int // where node's element array starts
	// A scan has loaded ahead the children of this branch in
	// (behind, ahead) (see touchAhead).
	ahead, behind int32
}

// Cursor walks the leaves of one tree in key order. It holds a fixed stack
// of the nodes on the path to its position, so moving allocates nothing.
// After an error every move returns false and Err reports it.
type Cursor struct {
	t     *Tree
	root  page.ID
	depth int // frames in use; 0 = unpositioned
	err   error
	ahead int // leaves the next touchAhead loads (0: start over)
	stack [page.MaxDepth]frame
}

// Reset points the cursor at a tree and clears its position.
func (c *Cursor) Reset(t *Tree, root page.ID) {
	c.t, c.root, c.depth, c.err, c.ahead = t, root, 0, nil, 0
}

// Err returns the first error the cursor met.
func (c *Cursor) Err() error { return c.err }

func (c *Cursor) fail(err error) bool {
	if c.err == nil {
		c.err = err
	}
	c.depth = 0
	return false
}

// push adds the node at id to the stack, positioned at i (-1 = last).
func (c *Cursor) push(id page.ID, i int) bool {
	if c.depth >= page.MaxDepth {
		return c.fail(fmt.Errorf("%w: tree under page %d deeper than %d levels (a loop?)", page.ErrFormat, c.root, page.MaxDepth))
	}
	n, ok := c.t.readNode(id)
	if !ok {
		var err error
		if n, err = c.t.branchOrLeaf(id); err != nil {
			return c.fail(err)
		}
	}
	cnt := page.Count(n)
	if i < 0 {
		i = cnt - 1
	}
	c.stack[c.depth] = frame{node: n, i: i, n: cnt, eb: page.ElemBase(n), ahead: int32(i), behind: int32(i)}
	c.depth++
	return true
}

// descend goes from the top frame down to a leaf, taking the first (or
// last) child at each level.
func (c *Cursor) descend(last bool) bool {
	for {
		f := &c.stack[c.depth-1]
		if page.NodeType(f.node) == page.TypeLeaf {
			c.touchAhead(last)
			return true
		}
		id, _ := page.BranchChildAt(f.node, f.eb, f.i)
		i := 0
		if last {
			i = -1
		}
		if !c.push(id, i) {
			return false
		}
	}
}

// A scan loads ahead 2 leaves at its first step to another leaf, then
// twice as many each time, up to maxAhead: a short range wastes little, a
// long scan waits for memory once per maxAhead leaves.
const maxAhead = 16

// touchAhead loads ahead (see Tree.touch) the first bytes of the next
// leaves in the direction of a scan (back: towards the start) that the
// current leaf's parent holds, unless an earlier call did. Every few
// leaves a scan then waits once for the memory of the next ones, whose
// misses overlap, instead of once per leaf.
func (c *Cursor) touchAhead(back bool) {
	if c.depth < 2 {
		return
	}
	p := &c.stack[c.depth-2]
	w := max(2, c.ahead)
	if !back {
		if p.i < int(p.ahead) {
			return
		}
		for i := p.i + 1; i <= p.i+w && i < p.n; i++ {
			id, _ := page.BranchChildAt(p.node, p.eb, i)
			c.t.touch(id)
		}
		p.ahead = int32(p.i + w)
	} else {
		if p.i > int(p.behind) {
			return
		}
		for i := p.i - 1; i >= p.i-w && i >= 0; i-- {
			id, _ := page.BranchChildAt(p.node, p.eb, i)
			c.t.touch(id)
		}
		p.behind = int32(p.i - w)
	}
	c.ahead = min(2*w, maxAhead)
}

// First moves to the first element; false if the tree is empty.
func (c *Cursor) First() bool {
	c.depth, c.ahead = 0, 0
	if c.err != nil || c.root == 0 {
		return false
	}
	return c.push(c.root, 0) && c.descend(false)
}

// Last moves to the last element; false if the tree is empty.
func (c *Cursor) Last() bool {
	c.depth, c.ahead = 0, 0
	if c.err != nil || c.root == 0 {
		return false
	}
	return c.push(c.root, -1) && c.descend(true)
}

// Next moves to the following element; false at the end.
func (c *Cursor) Next() bool {
	if d := uint(c.depth - 1); d < uint(len(c.stack)) {
		if leaf := &c.stack[d]; leaf.i+1 < leaf.n {
			leaf.i++
			return true
		}
	}
	return c.nextLeaf()
}

// nextLeaf moves to the first element of the next leaf.
func (c *Cursor) nextLeaf() bool {
	if c.depth == 0 {
		return false
	}
	// climb to the nearest ancestor with a next child
	d := c.depth - 2
	for d >= 0 && c.stack[d].i+1 >= c.stack[d].n {
		d--
	}
	if d < 0 {
		c.depth = 0
		return false
	}
	c.stack[d].i++
	c.depth = d + 1
	return c.descend(false)
}

// Prev moves to the preceding element; false at the start.
func (c *Cursor) Prev() bool {
	if d := uint(c.depth - 1); d < uint(len(c.stack)) {
		if leaf := &c.stack[d]; leaf.i > 0 {
			leaf.i--
			return true
		}
	}
	return c.prevLeaf()
}

// prevLeaf moves to the last element of the previous leaf.
func (c *Cursor) prevLeaf() bool {
	if c.depth == 0 {
		return false
	}
	d := c.depth - 2
	for d >= 0 && c.stack[d].i == 0 {
		d--
	}
	if d < 0 {
		c.depth = 0
		return false
	}
	c.stack[d].i--
	c.depth = d + 1
	return c.descend(true)
}

// Seek moves to the first element whose key is >= key; false if none.
func (c *Cursor) Seek(key []byte) bool {
	c.depth, c.ahead = 0, 0
	if c.err != nil || c.root == 0 {
		return false
	}
	id := c.root
	for {
		if !c.push(id, 0) {
			return false
		}
		f := &c.stack[c.depth-1]
		if page.NodeType(f.node) == page.TypeBranch {
			i, err := searchBranch(f.node, key)
			if err != nil {
				return c.fail(err)
			}
			f.i = i
			id, _ = page.BranchChildAt(f.node, f.eb, i)
			continue
		}
		i, _, err := searchLeaf(f.node, key)
		if err != nil {
			return c.fail(err)
		}
		if i < f.n {
			f.i = i
			return true
		}
		f.i = i - 1
		return c.Next()
	}
}

// Valid reports whether the cursor is on an element.
func (c *Cursor) Valid() bool { return c.depth > 0 }

// Elem returns the current element's flags, key and raw value. ok is false
// if the cursor is not positioned or the element is damaged (see Err).
func (c *Cursor) Elem() (flags uint16, key, value []byte, ok bool) {
	if c.depth == 0 {
		return 0, nil, nil, false
	}
	f := &c.stack[c.depth-1]
	flags, key, value, ok = page.LeafElemAt(f.node, f.eb, f.i)
	if !ok {
		c.elemFail()
	}
	return
}

// NextElem is Next and then Elem, in one call: the step of a scan.
func (c *Cursor) NextElem() (flags uint16, key, value []byte, ok bool) {
	d := uint(c.depth - 1)
	if d >= uint(len(c.stack)) {
		return 0, nil, nil, false
	}
	f := &c.stack[d]
	i := f.i + 1
	if i >= f.n {
		if !c.nextLeaf() {
			return 0, nil, nil, false
		}
		f = &c.stack[c.depth-1]
		i = f.i
	}
	f.i = i
	// page.LeafElemAt with its decoding inlined (the call cost a scan
	// 6%): the same checks.
	node := f.node
	pos, kend, vend, flags := page.LeafElemSpan(node, f.eb+i*page.LeafElementSize)
	if pos < page.HeaderSize || vend > uint64(len(node)) || flags&(page.FlagBucket|page.FlagOverflow) != 0 && vend-kend != page.RefSize {
		c.elemFail()
		return 0, nil, nil, false
	}
	return flags, node[pos:kend:kend], node[kend:vend:vend], true
}

// LeafSpan returns the leaf the cursor is on, the byte where its current
// element sits in the leaf's element array and the byte where that array
// ends (each element is page.LeafElementSize bytes; see
// page.LeafElemSpan), or ok=false when the cursor is not positioned. It
// lets a caller take a scan's steps within a leaf itself, on a few fields
// of its own instead of the cursor's stack, and hand the position back
// with SetLeafElem before any other move.
func (c *Cursor) LeafSpan() (node []byte, e, end int, ok bool) {
	d := uint(c.depth - 1)
	if d >= uint(len(c.stack)) {
		return nil, 0, 0, false
	}
	f := &c.stack[d]
	return f.node, f.eb + f.i*page.LeafElementSize, f.eb + f.n*page.LeafElementSize, true
}

// SetLeafElem moves the cursor to the element at byte e of its leaf's
// element array, as LeafSpan counts them; e must lie in the range LeafSpan
// returned for this leaf.
func (c *Cursor) SetLeafElem(e int) {
	d := uint(c.depth - 1)
	if d >= uint(len(c.stack)) {
		return
	}
	f := &c.stack[d]
	if i := (e - f.eb) / page.LeafElementSize; e >= f.eb && i < f.n {
		f.i = i
	}
}

// PrevElem is Prev and then Elem, in one call.
func (c *Cursor) PrevElem() (flags uint16, key, value []byte, ok bool) {
	if !c.Prev() {
		return 0, nil, nil, false
	}
	return c.Elem()
}

// elemFail records that the current element does not fit its node.
func (c *Cursor) elemFail() {
	f := &c.stack[c.depth-1]
	c.fail(elemErr(f.node, f.i))
}

// Key returns the current key, or nil.
func (c *Cursor) Key() []byte {
	_, k, _, _ := c.Elem()
	return k
}
