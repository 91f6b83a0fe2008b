package btree

import (
	"fmt"

	"github.com/mapkv/mapkv/page"
)

type frame struct {
	node []byte
	i    int
}

// Cursor walks the leaves of one tree in key order. It holds a fixed stack
// of the nodes on the path to its position, so moving allocates nothing.
// After an error every move returns false and Err reports it.
type Cursor struct {
	t     *Tree
	root  page.ID
	depth int // frames in use; 0 = unpositioned
	err   error
	stack [page.MaxDepth]frame
}

// Reset points the cursor at a tree and clears its position.
func (c *Cursor) Reset(t *Tree, root page.ID) {
	c.t, c.root, c.depth, c.err = t, root, 0, nil
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
	n, err := c.t.branchOrLeaf(id)
	if err != nil {
		return c.fail(err)
	}
	if i < 0 {
		i = page.Count(n) - 1
	}
	c.stack[c.depth] = frame{n, i}
	c.depth++
	return true
}

// descend goes from the top frame down to a leaf, taking the first (or
// last) child at each level.
func (c *Cursor) descend(last bool) bool {
	for {
		f := &c.stack[c.depth-1]
		if page.NodeType(f.node) == page.TypeLeaf {
			return true
		}
		id, _ := page.BranchChild(f.node, f.i)
		i := 0
		if last {
			i = -1
		}
		if !c.push(id, i) {
			return false
		}
	}
}

// First moves to the first element; false if the tree is empty.
func (c *Cursor) First() bool {
	c.depth = 0
	if c.err != nil || c.root == 0 {
		return false
	}
	return c.push(c.root, 0) && c.descend(false)
}

// Last moves to the last element; false if the tree is empty.
func (c *Cursor) Last() bool {
	c.depth = 0
	if c.err != nil || c.root == 0 {
		return false
	}
	return c.push(c.root, -1) && c.descend(true)
}

// Next moves to the following element; false at the end.
func (c *Cursor) Next() bool {
	if c.depth == 0 {
		return false
	}
	leaf := &c.stack[c.depth-1]
	if leaf.i+1 < page.Count(leaf.node) {
		leaf.i++
		return true
	}
	// climb to the nearest ancestor with a next child
	d := c.depth - 2
	for d >= 0 && c.stack[d].i+1 >= page.Count(c.stack[d].node) {
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
	if c.depth == 0 {
		return false
	}
	leaf := &c.stack[c.depth-1]
	if leaf.i > 0 {
		leaf.i--
		return true
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
	c.depth = 0
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
			id, _ = page.BranchChild(f.node, i)
			continue
		}
		i, _, err := searchLeaf(f.node, key)
		if err != nil {
			return c.fail(err)
		}
		if i < page.Count(f.node) {
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
	flags, key, value, ok = page.LeafElem(f.node, f.i)
	if !ok {
		c.fail(elemErr(f.node, f.i))
	}
	return
}

// Key returns the current key, or nil.
func (c *Cursor) Key() []byte {
	_, k, _, _ := c.Elem()
	return k
}
