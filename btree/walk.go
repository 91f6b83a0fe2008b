package btree

import (
	"fmt"

	"github.com/mapkv/mapkv/page"
)

// WalkFresh visits every node that transaction tx wrote and that is
// reachable from the root bucket ref: it descends only into children (and
// nested buckets and overflow values) whose recorded birth is tx, which is
// exactly the set a copy-on-write commit wrote. Each node is verified (id,
// birth, checksum) before it is passed to fn or its elements are read.
func (t *Tree) WalkFresh(root page.Ref, tx page.TxID, fn func(id page.ID, node []byte)) error {
	if root.Root == 0 || root.Birth != tx {
		return nil
	}
	return t.walkFresh(root.Root, tx, 0, fn)
}

func (t *Tree) walkFresh(id page.ID, tx page.TxID, depth int, fn func(page.ID, []byte)) error {
	if depth >= 2*page.MaxDepth {
		return fmt.Errorf("%w: nesting deeper than %d levels (a loop?)", page.ErrFormat, 2*page.MaxDepth)
	}
	n, err := t.Node(id)
	if err != nil {
		return err
	}
	if err := page.Verify(n, id, tx); err != nil {
		return err
	}
	typ := page.NodeType(n)
	if typ != page.TypeBranch && typ != page.TypeLeaf {
		return fmt.Errorf("%w: page %d: is %s, expected branch or leaf", page.ErrFormat, id, typ)
	}
	if err := page.CheckNode(n, typ); err != nil {
		return err
	}
	fn(id, n)
	for i := 0; i < page.Count(n); i++ {
		if typ == page.TypeBranch {
			cid, cb := page.BranchChild(n, i)
			if cb == tx {
				if err := t.walkFresh(cid, tx, depth+1, fn); err != nil {
					return err
				}
			}
			continue
		}
		f, _, v, ok := page.LeafElem(n, i)
		if !ok {
			return elemErr(n, i)
		}
		if f&(page.FlagBucket|page.FlagOverflow) == 0 {
			continue
		}
		r, _ := page.DecodeRef(v)
		if r.Birth != tx || r.Root == 0 {
			continue
		}
		if f&page.FlagBucket != 0 {
			if err := t.walkFresh(r.Root, tx, depth+1, fn); err != nil {
				return err
			}
			continue
		}
		on, err := t.Node(r.Root)
		if err != nil {
			return err
		}
		if err := page.Verify(on, r.Root, tx); err != nil {
			return err
		}
		if page.NodeType(on) != page.TypeOverflow {
			return fmt.Errorf("%w: page %d: is %s, expected overflow", page.ErrFormat, r.Root, page.NodeType(on))
		}
		fn(r.Root, on)
	}
	return nil
}
