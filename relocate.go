package mapkv

import (
	"fmt"

	"github.com/mapkv/mapkv/page"
)

// Shrink moves the nodes that sit near the end of the file into free pages
// nearer its start and then cuts the freed tail off the file, so that a
// database that once held much more than it holds now (after deleting
// most keys, or after the copy-on-write churn of a large load) takes about
// the space of its live pages again. It returns the bytes the file lost.
//
// Shrink is a few ordinary write transactions: the first rewrites the
// nodes (and the branches above them) that lie past the point the live
// data can fit under, the next two release the old copies and cut the
// file (a cut is always one commit late, so that the older meta stays a
// valid fallback). It is as crash-safe as any commit and readers keep
// reading meanwhile; a reader still open on an older state keeps the
// pages it sees, and the file is cut only as far as they allow.
//
// Close does the same when the free pages add up to at least
// Options.ShrinkThreshold and moving nodes would cut at least an eighth of
// the file, so most programs never call Shrink; a long-running program can
// call it after deleting much of its data. Finding what to move reads every
// node of the database once. Shrink moves nothing when that would cut less
// than Options.ShrinkThreshold.
func (db *DB) Shrink() (int64, error) { return db.moveAndCut(0) }

// moveAndCut is Shrink; with part > 0 it moves nodes only if that cuts at
// least 1/part of the file (Close's rule: walking the trees to find what
// to move reads every node, which is worth it only for a large gain).
func (db *DB) moveAndCut(part uint64) (int64, error) {
	if db.opts.ReadOnly {
		return 0, ErrDatabaseReadOnly
	}
	before, err := db.fileLen()
	if err != nil {
		return 0, err
	}
	tx, err := db.Begin(true)
	if err != nil {
		return 0, err
	}
	moved, err := tx.relocate(part)
	if err != nil {
		tx.Rollback()
		return 0, err
	}
	tx.force = moved
	if err := tx.Commit(); err != nil {
		return 0, err
	}
	// Two commits: the first releases the old copies and frees the
	// tail; the file is cut only to where the previous commit's pages
	// end (see shrink), so the second makes that the first commit's.
	for range 2 {
		tx, err := db.Begin(true)
		if err != nil {
			return 0, err
		}
		tx.force = true
		if err := tx.Commit(); err != nil {
			return 0, err
		}
	}
	after, err := db.fileLen()
	if err != nil {
		return 0, err
	}
	return before - after, nil
}

// fileLen returns the data file's size as the DB last set it.
func (db *DB) fileLen() (int64, error) {
	db.stateMu.Lock()
	defer db.stateMu.Unlock()
	if db.closed {
		return 0, ErrDatabaseNotOpen
	}
	return db.fileSize, nil
}

// relocate prepares tx to move the nodes lying at or past a cut-off page
// below it: every such node gets a change in its subtree (a value put
// again as it is, or a nested bucket marked dirty), so that the commit
// rewrites it and the allocator, told to take the lowest free pages,
// places the copy low. It reports whether anything was marked.
//
// The cut-off is the lowest page above which the live pages fit into the
// free pages below it, with slack for the branches the commit rewrites on
// the way and for the free-list nodes.
func (tx *Tx) relocate(part uint64) (bool, error) {
	db := tx.db
	hwm := page.ID(tx.meta.PgCount)
	least := uint64(db.opts.ShrinkThreshold / int64(db.pageSize))
	if part > 0 {
		least = max(least, uint64(hwm)/part)
	}
	cut, ok := db.free.cutoff(hwm, least)
	if !ok {
		return false, nil
	}
	r := relocator{tx: tx, cut: cut}
	if _, err := r.bucket(tx.root, false); err != nil {
		return false, err
	}
	if r.marked == 0 {
		return false, nil
	}
	tx.lowFirst = true
	return true, nil
}

// relocator walks the trees of a write transaction marking the nodes at or
// past cut.
type relocator struct {
	tx     *Tx
	cut    page.ID
	marked int
}

// bucket marks what lies past the cut in b's tree and the trees nested in
// it. need says the caller wants one change somewhere in b (its own node
// lies past the cut); the result says whether b got one.
func (r *relocator) bucket(b *Bucket, need bool) (bool, error) {
	if b.ref.Root == 0 {
		return false, nil
	}
	return r.node(b, b.ref.Root, b.ref.Birth, need, 0)
}

// node walks the subtree of b's tree rooted at id (written by birth).
func (r *relocator) node(b *Bucket, id page.ID, birth page.TxID, need bool, depth int) (bool, error) {
	if depth > page.MaxDepth {
		return false, fmt.Errorf("%w: tree deeper than %d levels", ErrCorrupt, page.MaxDepth)
	}
	t := &r.tx.tree
	n, err := t.Node(id)
	if err != nil {
		return false, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if err := page.Verify(n, id, birth); err != nil {
		return false, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	typ := page.NodeType(n)
	if err := page.CheckNode(n, typ); err != nil {
		return false, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	need = need || r.past(id, n)
	touched := false
	switch typ {
	case page.TypeBranch:
		for i := range page.Count(n) {
			cid, cb := page.BranchChild(n, i)
			got, err := r.node(b, cid, cb, need && !touched, depth+1)
			if err != nil {
				return false, err
			}
			touched = touched || got
		}
		return touched, nil
	case page.TypeLeaf:
	default:
		return false, fmt.Errorf("%w: page %d: is %s, expected branch or leaf", ErrCorrupt, id, typ)
	}
	for i := range page.Count(n) {
		f, k, v, ok := page.LeafElem(n, i)
		if !ok {
			return false, fmt.Errorf("%w: page %d: element %d out of bounds", ErrCorrupt, id, i)
		}
		switch {
		case f&page.FlagBucket != 0:
			c := b.Bucket(k)
			if c == nil {
				return false, fmt.Errorf("%w: page %d: bad bucket %q", ErrCorrupt, id, k)
			}
			got, err := r.bucket(c, false)
			if err != nil {
				return false, err
			}
			touched = touched || got
		case f&page.FlagOverflow != 0:
			ref, ok := page.DecodeRef(v)
			if !ok {
				return false, fmt.Errorf("%w: page %d: bad overflow reference", ErrCorrupt, id)
			}
			on, err := t.Node(ref.Root)
			if err != nil {
				return false, fmt.Errorf("%w: %v", ErrCorrupt, err)
			}
			if r.past(ref.Root, on) {
				if err := r.touch(b, f, k, v); err != nil {
					return false, err
				}
				touched = true
			}
		}
	}
	if need && !touched && page.Count(n) > 0 {
		f, k, v, _ := page.LeafElem(n, 0)
		if err := r.touch(b, f, k, v); err != nil {
			return false, err
		}
		touched = true
	}
	return touched, nil
}

// past reports whether the node n at id has a page at or past the cut.
func (r *relocator) past(id page.ID, n []byte) bool {
	return uint64(id)+uint64(page.Overflow(n)) >= uint64(r.cut)
}

// touch puts a change on key k of b (element flags f, stored value v)
// that leaves its value as it is but makes the commit rewrite its leaf:
// a value is put again (an overflow value is copied to new pages), a
// nested bucket is marked dirty (its parent then stores its reference
// again).
func (r *relocator) touch(b *Bucket, f uint16, k, v []byte) error {
	r.marked++
	if f&page.FlagBucket != 0 {
		c := b.Bucket(k)
		if c == nil {
			return fmt.Errorf("%w: bad bucket %q", ErrCorrupt, k)
		}
		c.markDirty()
		return nil
	}
	val, err := r.tx.tree.Value(f, v)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	b.set(change{Key: r.tx.copy(k), Value: r.tx.copy(val)})
	return nil
}
