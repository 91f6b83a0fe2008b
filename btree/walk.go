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
	budget := t.PgCount
	return t.walk(root.Root, tx, tx, 0, &budget, fn)
}

// WalkAll visits every node reachable from the root bucket ref: branches,
// leaves, nested buckets' trees and overflow values, each verified (id,
// birth as its parent records it, checksum) before it is passed to fn or
// its elements are read. It reads the whole tree.
func (t *Tree) WalkAll(root page.Ref, fn func(id page.ID, node []byte)) error {
	if root.Root == 0 {
		return nil
	}
	budget := t.PgCount
	return t.walk(root.Root, root.Birth, 0, 0, &budget, fn)
}

// walk visits the node id, written by birth, and below it the children
// written by only (every child if only is 0). A tree holds fewer nodes
// than the file has pages: past budget visits the walk stops, so that a
// damaged tree whose branches share subtrees is not walked once per path
// (exponentially long).
func (t *Tree) walk(id page.ID, birth, only page.TxID, depth int, budget *uint64, fn func(page.ID, []byte)) error {
	if depth >= 2*page.MaxDepth {
		return fmt.Errorf("%w: nesting deeper than %d levels (a loop?)", page.ErrFormat, 2*page.MaxDepth)
	}
	if *budget == 0 {
		return fmt.Errorf("%w: more nodes than the file has pages (branches sharing subtrees?)", page.ErrFormat)
	}
	*budget--
	if birth == 0 {
		return fmt.Errorf("%w: page %d referenced with birth txid 0", page.ErrFormat, id)
	}
	n, err := t.Node(id)
	if err != nil {
		return err
	}
	if err := page.Verify(n, id, birth); err != nil {
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
			if only == 0 || cb == only {
				if err := t.walk(cid, cb, only, depth+1, budget, fn); err != nil {
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
		if only != 0 && r.Birth != only || r.Root == 0 {
			continue
		}
		if f&page.FlagBucket != 0 {
			if err := t.walk(r.Root, r.Birth, only, depth+1, budget, fn); err != nil {
				return err
			}
			continue
		}
		if r.Birth == 0 {
			return fmt.Errorf("%w: overflow page %d referenced with birth txid 0", page.ErrFormat, r.Root)
		}
		on, err := t.Node(r.Root)
		if err != nil {
			return err
		}
		if err := page.Verify(on, r.Root, r.Birth); err != nil {
			return err
		}
		if page.NodeType(on) != page.TypeOverflow {
			return fmt.Errorf("%w: page %d: is %s, expected overflow", page.ErrFormat, r.Root, page.NodeType(on))
		}
		fn(r.Root, on)
	}
	return nil
}
