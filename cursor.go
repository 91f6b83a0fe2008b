package mapkv

import (
	"bytes"
	"fmt"
	"iter"

	"github.com/mapkv/mapkv/btree"
	"github.com/mapkv/mapkv/page"
)

// Cursor moves over the keys of a bucket in order. A key that names a
// nested bucket is returned with a nil value. Moves return a nil key at
// either end.
//
// In a read transaction a cursor reads the pages directly and allocates
// nothing. In a write transaction it merges the committed tree with the
// transaction's pending changes, so it sees the transaction's own writes,
// also those made while iterating (Put and Delete during iteration are
// allowed; the cursor continues from the key it is on).
type Cursor struct {
	b  *Bucket
	tc btree.Cursor
	// merged mode (write transactions): the current key and where it came from
	key    []byte
	val    []byte
	flags  uint16
	merged bool
	// A scan's steps within a leaf (read transactions) run on these
	// fields alone: the leaf, the byte where the current element sits in
	// its element array and the byte where that array ends. end is 0
	// when the tree cursor holds the position (see settle and resume).
	leaf   []byte
	e, end int
	closed *bool // the transaction's
}

// Cursor returns a cursor over the bucket.
func (b *Bucket) Cursor() *Cursor {
	c := &Cursor{b: b}
	if b.usable() == nil {
		c.tc.Reset(&b.tx.tree, b.ref.Root)
		c.merged = b.tx.writable
	}
	return c
}

// Bucket returns the bucket the cursor moves over.
func (c *Cursor) Bucket() *Bucket { return c.b }

func (c *Cursor) ok() bool { return c.b.usable() == nil }

// First moves to the first key.
func (c *Cursor) First() (key, value []byte) {
	if !c.ok() {
		return nil, nil
	}
	c.settle()
	c.tc.Reset(&c.b.tx.tree, c.b.ref.Root)
	if !c.merged {
		c.tc.First()
		c.resume()
		return c.here()
	}
	c.tc.First()
	return c.forward(c.pendingFrom(nil, false))
}

// Last moves to the last key.
func (c *Cursor) Last() (key, value []byte) {
	if !c.ok() {
		return nil, nil
	}
	c.settle()
	c.tc.Reset(&c.b.tx.tree, c.b.ref.Root)
	if !c.merged {
		c.tc.Last()
		c.resume()
		return c.here()
	}
	c.tc.Last()
	return c.backward(c.pendingTo(nil, false))
}

// Next moves to the next key.
func (c *Cursor) Next() (key, value []byte) {
	// The step within a leaf of a read transaction, on the cursor's own
	// fields: the checks are page.LeafElemAt's, and an element they
	// leave in doubt (a flagged one, one that does not fit its node)
	// goes the long way. With each step going through the tree cursor's
	// stack (its depth, its frame, the frame's index) a scan of a bucket
	// in the CPU's caches took 15.8 ns a key, 11.0 this way
	// (BenchmarkReadCached/scan); of the 188 MB database of 1M random
	// keys, mapped already, 19.7-20.4 against 14.3-15.6
	// (BenchmarkReadScan/warm).
	if e := c.e + page.LeafElementSize; e < c.end && !*c.closed {
		pos, kend, vend, f := page.LeafElemSpan(c.leaf, e)
		if f == 0 && pos >= page.HeaderSize && vend <= uint64(len(c.leaf)) {
			c.e = e
			return c.leaf[pos:kend:kend], c.leaf[kend:vend:vend]
		}
	}
	return c.next()
}

// next is Next's long way: to the next leaf, past a flagged element, in a
// write transaction, or on a cursor not positioned.
func (c *Cursor) next() (key, value []byte) {
	c.settle()
	if !c.ok() {
		return nil, nil
	}
	if c.merged {
		return c.nextMerged()
	}
	return c.moved(c.tc.NextElem())
}

// moved finishes a read transaction's move of the tree cursor to the
// element (f, k, v) it reached (ok=false: none): it takes the new
// position for Next's steps and returns the key and value.
func (c *Cursor) moved(f uint16, k, v []byte, ok bool) ([]byte, []byte) {
	if !ok {
		return c.failed()
	}
	c.resume()
	if f != 0 || v == nil {
		return k, c.value(f, v)
	}
	return k, v
}

// settle hands the position of a scan's steps back to the tree cursor.
func (c *Cursor) settle() {
	if c.end != 0 {
		c.tc.SetLeafElem(c.e)
		c.end = 0
	}
}

// resume takes the tree cursor's position in its leaf for Next's steps
// (read transactions).
func (c *Cursor) resume() {
	if c.merged {
		return
	}
	if node, e, end, ok := c.tc.LeafSpan(); ok {
		c.leaf, c.e, c.end, c.closed = node, e, end, &c.b.tx.closed
	}
}

// nextMerged is Next in a write transaction.
func (c *Cursor) nextMerged() (key, value []byte) {
	if c.key == nil {
		return nil, nil
	}
	// Reposition the tree cursor after the current key: the pending set
	// may have changed since the last move.
	if c.tc.Seek(c.key) && bytes.Equal(c.tc.Key(), c.key) {
		c.tc.Next()
	}
	return c.forward(c.pendingFrom(c.key, true))
}

// Prev moves to the previous key.
func (c *Cursor) Prev() (key, value []byte) {
	c.settle()
	if !c.ok() {
		return nil, nil
	}
	if !c.merged {
		return c.moved(c.tc.PrevElem())
	}
	if c.key == nil {
		return nil, nil
	}
	c.seekBefore(c.key)
	return c.backward(c.pendingTo(c.key, true))
}

// Seek moves to the first key >= seek.
func (c *Cursor) Seek(seek []byte) (key, value []byte) {
	if !c.ok() {
		return nil, nil
	}
	c.settle()
	c.tc.Reset(&c.b.tx.tree, c.b.ref.Root)
	c.tc.Seek(seek)
	if !c.merged {
		c.resume()
		return c.here()
	}
	return c.forward(c.pendingFrom(seek, false))
}

// Delete removes the key the cursor is on. The cursor stays in place:
// Next moves to the key after the deleted one.
func (c *Cursor) Delete() error {
	if err := c.b.writable(); err != nil {
		return err
	}
	k := c.key
	if !c.merged {
		k = c.tc.Key()
	}
	if k == nil {
		return ErrKeyRequired
	}
	return c.b.Delete(k)
}

// here returns the tree cursor's element (read transactions).
func (c *Cursor) here() ([]byte, []byte) {
	f, k, v, ok := c.tc.Elem()
	if !ok {
		return c.failed()
	}
	if f != 0 || v == nil {
		return k, c.value(f, v)
	}
	return k, v
}

// failed records the tree cursor's error, if it has one, in the
// transaction (the cursor is at an end or met a damaged node).
func (c *Cursor) failed() ([]byte, []byte) {
	if err := c.tc.Err(); err != nil {
		c.b.tx.fail(err)
	}
	return nil, nil
}

func (c *Cursor) value(f uint16, v []byte) []byte {
	if f&page.FlagBucket != 0 {
		return nil
	}
	if f&page.FlagOverflow != 0 {
		var err error
		if v, err = c.b.tx.tree.Value(f, v); err != nil {
			c.b.tx.fail(err)
			return nil
		}
	}
	if v == nil {
		v = empty
	}
	return v
}

// pendingFrom returns the first pending change with key >= from (> from if
// strict); from nil means the first.
func (c *Cursor) pendingFrom(from []byte, strict bool) (change, bool) {
	p := c.b.pending
	if p == nil {
		return change{}, false
	}
	var out change
	found := false
	visit := func(ch change) bool {
		if strict && bytes.Equal(ch.Key, from) {
			return true
		}
		out, found = ch, true
		return false
	}
	if from == nil {
		p.Ascend(visit)
	} else {
		p.AscendGreaterOrEqual(change{Key: from}, visit)
	}
	return out, found
}

// pendingTo returns the last pending change with key <= to (< to if strict).
func (c *Cursor) pendingTo(to []byte, strict bool) (change, bool) {
	p := c.b.pending
	if p == nil {
		return change{}, false
	}
	var out change
	found := false
	visit := func(ch change) bool {
		if strict && bytes.Equal(ch.Key, to) {
			return true
		}
		out, found = ch, true
		return false
	}
	if to == nil {
		p.Descend(visit)
	} else {
		p.DescendLessOrEqual(change{Key: to}, visit)
	}
	return out, found
}

// seekBefore puts the tree cursor on the last key < key.
func (c *Cursor) seekBefore(key []byte) {
	if c.tc.Seek(key) {
		c.tc.Prev()
	} else if c.tc.Err() == nil {
		c.tc.Last()
	}
}

// forward merges the tree cursor (on the first tree key >= the position)
// with pending change p, skipping deletes, and settles on the smaller key.
func (c *Cursor) forward(p change, havePending bool) ([]byte, []byte) {
	for {
		f, tk, tv, treeOK := c.tc.Elem()
		if err := c.tc.Err(); err != nil {
			c.b.tx.fail(err)
			c.key = nil
			return nil, nil
		}
		if !treeOK && !havePending {
			c.key = nil
			return nil, nil
		}
		cmp := -1 // <0: tree first
		if !treeOK {
			cmp = 1
		} else if havePending {
			cmp = bytes.Compare(tk, p.Key)
		}
		if cmp < 0 {
			c.key, c.flags = tk, f
			return tk, c.value(f, tv)
		}
		if cmp == 0 {
			c.tc.Next() // the pending change shadows the tree's element
		}
		if p.Delete {
			p, havePending = c.pendingFrom(p.Key, true)
			continue
		}
		c.key, c.flags = p.Key, p.Flags
		return p.Key, c.pendingValue(p)
	}
}

// backward is forward's mirror for Prev and Last.
func (c *Cursor) backward(p change, havePending bool) ([]byte, []byte) {
	for {
		f, tk, tv, treeOK := c.tc.Elem()
		if err := c.tc.Err(); err != nil {
			c.b.tx.fail(err)
			c.key = nil
			return nil, nil
		}
		if !treeOK && !havePending {
			c.key = nil
			return nil, nil
		}
		cmp := 1 // >0: tree first
		if !treeOK {
			cmp = -1
		} else if havePending {
			cmp = bytes.Compare(tk, p.Key)
		}
		if cmp > 0 {
			c.key, c.flags = tk, f
			return tk, c.value(f, tv)
		}
		if cmp == 0 {
			c.tc.Prev()
		}
		if p.Delete {
			p, havePending = c.pendingTo(p.Key, true)
			continue
		}
		c.key, c.flags = p.Key, p.Flags
		return p.Key, c.pendingValue(p)
	}
}

func (c *Cursor) pendingValue(p change) []byte {
	if p.Flags&page.FlagBucket != 0 {
		return nil
	}
	if p.Value == nil {
		return empty
	}
	return p.Value
}

// ForEach calls fn for every key in order, with a nil value for nested
// buckets, stopping at the first error.
func (b *Bucket) ForEach(fn func(k, v []byte) error) error {
	if err := b.usable(); err != nil {
		return err
	}
	if fn == nil {
		return fmt.Errorf("%w: nil function", ErrInvalidOptions) // fix(reliability): it panicked
	}
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if err := fn(k, v); err != nil {
			return err
		}
	}
	return b.tx.err
}

// All returns an iterator over every key and value in order (nil value for
// nested buckets), for use with range.
func (b *Bucket) All() iter.Seq2[[]byte, []byte] { return b.Range(nil, nil) }

// Range returns an iterator over the keys in [start, end) in order; a nil
// start or end leaves that side open.
func (b *Bucket) Range(start, end []byte) iter.Seq2[[]byte, []byte] {
	return func(yield func([]byte, []byte) bool) {
		if b.usable() != nil {
			return
		}
		c := b.Cursor()
		var k, v []byte
		if start == nil {
			k, v = c.First()
		} else {
			k, v = c.Seek(start)
		}
		for ; k != nil; k, v = c.Next() {
			if end != nil && bytes.Compare(k, end) >= 0 {
				return
			}
			if !yield(k, v) {
				return
			}
		}
	}
}
