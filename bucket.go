package mapkv

import (
	"bytes"
	"fmt"

	gbtree "github.com/google/btree"

	"github.com/mapkv/mapkv/btree"
	"github.com/mapkv/mapkv/page"
)

// Bucket is a named, ordered collection of keys and values, and of nested
// buckets. Keys are unique byte strings ordered bytewise; a key names
// either a value or a nested bucket, never both.
//
// In a write transaction, changes collect in an in-memory ordered set and
// are merged into the pages in key order at commit, one pass per bucket.
type Bucket struct {
	tx       *Tx
	parent   *Bucket
	name     []byte
	ref      page.Ref               // the bucket's tree and sequence
	pending  *gbtree.BTreeG[change] // write tx: changes not yet in the tree
	children map[string]*Bucket     // write tx: nested buckets opened
	dirty    bool                   // write tx: something below changed
	deleted  bool

	committedRoot page.ID // root of the bucket's tree as committed (freed if the bucket is deleted)
}

// change is a pending put or delete in a write transaction.
type change struct {
	key, value []byte
	flags      uint16
	del        bool
}

func changeLess(a, b change) bool { return bytes.Compare(a.key, b.key) < 0 }

// Tx returns the transaction the bucket belongs to.
func (b *Bucket) Tx() *Tx {
	if b == nil {
		return nil // fix(reliability): tx.Bucket returns nil for a missing bucket; its methods must not panic
	}
	return b.tx
}

// Writable reports whether the bucket can be changed.
func (b *Bucket) Writable() bool { return b != nil && b.tx.writable } // fix(reliability): nil receiver

// Sequence returns the bucket's current sequence number.
func (b *Bucket) Sequence() uint64 {
	if b == nil {
		return 0 // fix(reliability): nil receiver
	}
	return b.ref.Seq
}

// usable reports why the bucket cannot be read now, if it cannot.
func (b *Bucket) usable() error {
	if b == nil {
		return ErrBucketNotFound
	}
	if b.tx.closed {
		return ErrTxClosed
	}
	if b.deleted {
		return ErrBucketNotFound
	}
	return nil
}

func (b *Bucket) writable() error {
	if err := b.usable(); err != nil {
		return err
	}
	if !b.tx.writable {
		return ErrTxNotWritable
	}
	return nil
}

// lookup finds key among pending changes and then in the tree. It returns
// the element's flags and raw value, or found=false.
func (b *Bucket) lookup(key []byte) (flags uint16, value []byte, found bool) {
	if b.pending != nil {
		if c, ok := b.pending.Get(change{key: key}); ok {
			if c.del {
				return 0, nil, false
			}
			return c.flags, c.value, true
		}
	}
	f, v, ok, err := b.tx.tree.Get(b.ref.Root, key)
	if err != nil {
		b.tx.fail(err)
		return 0, nil, false
	}
	return f, v, ok
}

// Get returns the value of key, or nil if it is absent or names a nested
// bucket. The slice points into the read-only mapping (or the
// transaction's memory): valid until the transaction ends, never to be
// written. A damaged page makes Get return nil and the transaction
// record the error (see Tx.Err; View and Update return it).
func (b *Bucket) Get(key []byte) []byte {
	if b.usable() != nil {
		return nil
	}
	f, v, ok := b.lookup(key)
	if !ok || f&page.FlagBucket != 0 {
		return nil
	}
	if f&page.FlagOverflow != 0 {
		var err error
		if v, err = b.tx.tree.Value(f, v); err != nil {
			b.tx.fail(err)
			return nil
		}
	}
	if v == nil {
		v = empty
	}
	return v
}

// empty is the value returned for a key stored with an empty value, so
// that it can be told from a missing key.
var empty = make([]byte, 0)

// Put sets key to value, replacing any previous value. The bytes are
// copied; the caller may reuse them once Put returns.
func (b *Bucket) Put(key, value []byte) error {
	if err := b.writable(); err != nil {
		return err
	}
	if err := checkKey(key); err != nil {
		return err
	}
	if len(value) > MaxValueSize {
		return fmt.Errorf("%w: %d bytes (max %d)", ErrValueTooLarge, len(value), MaxValueSize)
	}
	// A bucket with no nested buckets cannot have one under key: skip
	// the lookup.
	if b.ref.Nested > 0 {
		if f, _, ok := b.lookup(key); ok && f&page.FlagBucket != 0 {
			return fmt.Errorf("%w: key %q names a bucket", ErrIncompatibleValue, key)
		}
	}
	b.set(change{key: b.tx.copy(key), value: b.tx.copy(value)})
	return nil
}

// Delete removes key. Deleting a missing key is not an error; deleting a
// key that names a bucket is ErrIncompatibleValue (use DeleteBucket).
func (b *Bucket) Delete(key []byte) error {
	if err := b.writable(); err != nil {
		return err
	}
	if len(key) == 0 {
		return ErrKeyRequired
	}
	if b.ref.Nested > 0 {
		if f, _, ok := b.lookup(key); ok && f&page.FlagBucket != 0 {
			return fmt.Errorf("%w: key %q names a bucket", ErrIncompatibleValue, key)
		}
	}
	b.set(change{key: b.tx.copy(key), del: true})
	return nil
}

func checkKey(key []byte) error {
	if len(key) == 0 {
		return ErrKeyRequired
	}
	if len(key) > MaxKeySize {
		return fmt.Errorf("%w: %d bytes (max %d)", ErrKeyTooLarge, len(key), MaxKeySize)
	}
	return nil
}

// set records a change and marks the bucket and its ancestors dirty.
func (b *Bucket) set(c change) {
	if b.pending == nil {
		b.pending = gbtree.NewG(32, changeLess)
	}
	b.pending.ReplaceOrInsert(c)
	b.markDirty()
}

func (b *Bucket) markDirty() {
	for p := b; p != nil && !p.dirty; p = p.parent {
		p.dirty = true
	}
}

// copy puts a copy of p in the transaction's arena.
func (tx *Tx) copy(p []byte) []byte {
	if len(p) == 0 {
		return nil
	}
	if len(p) > 4096 {
		return append([]byte(nil), p...)
	}
	if cap(tx.arena)-len(tx.arena) < len(p) {
		// Chunks grow with use, so a one-key transaction stays small.
		tx.arena = make([]byte, 0, min(max(2*cap(tx.arena), 1024), 64<<10))
	}
	n := len(tx.arena)
	tx.arena = append(tx.arena, p...)
	return tx.arena[n:len(tx.arena):len(tx.arena)]
}

// Bucket returns the nested bucket called name, or nil if there is none.
func (b *Bucket) Bucket(name []byte) *Bucket {
	if b.usable() != nil || len(name) == 0 {
		return nil
	}
	if c := b.children[string(name)]; c != nil {
		return c
	}
	f, v, ok := b.lookup(name)
	if !ok || f&page.FlagBucket == 0 {
		return nil
	}
	r, ok := page.DecodeRef(v)
	if !ok {
		b.tx.fail(fmt.Errorf("%w: bucket %q: bad reference", page.ErrFormat, name))
		return nil
	}
	return b.child(name, r)
}

func (b *Bucket) child(name []byte, r page.Ref) *Bucket {
	c := &Bucket{tx: b.tx, parent: b, name: name, ref: r, committedRoot: r.Root}
	if b.tx.writable {
		c.name = b.tx.copy(name)
	}
	if b.tx.writable {
		if b.children == nil {
			b.children = map[string]*Bucket{}
		}
		b.children[string(name)] = c
	}
	return c
}

// CreateBucket creates a nested bucket. It fails with ErrBucketExists if it
// exists, ErrIncompatibleValue if name holds a value.
func (b *Bucket) CreateBucket(name []byte) (*Bucket, error) {
	if err := b.writable(); err != nil {
		return nil, err
	}
	if len(name) == 0 {
		return nil, ErrBucketNameRequired
	}
	if len(name) > MaxKeySize {
		return nil, fmt.Errorf("%w: bucket name of %d bytes", ErrKeyTooLarge, len(name))
	}
	if f, _, ok := b.lookup(name); ok {
		if f&page.FlagBucket != 0 {
			return nil, ErrBucketExists
		}
		return nil, fmt.Errorf("%w: key %q holds a value", ErrIncompatibleValue, name)
	}
	c := b.child(name, page.Ref{})
	b.ref.Nested++
	var buf [page.RefSize]byte
	b.set(change{key: c.name, value: b.tx.copy(c.ref.Encode(buf[:])), flags: page.FlagBucket})
	c.dirty = true
	return c, nil
}

// CreateBucketIfNotExists returns the nested bucket called name, creating
// it if needed.
func (b *Bucket) CreateBucketIfNotExists(name []byte) (*Bucket, error) {
	if err := b.writable(); err != nil {
		return nil, err
	}
	if c := b.Bucket(name); c != nil {
		return c, nil
	}
	if err := b.tx.err; err != nil {
		return nil, err
	}
	return b.CreateBucket(name)
}

// DeleteBucket deletes a nested bucket and everything in it. Handles to it
// (and to buckets inside it) stop working.
func (b *Bucket) DeleteBucket(name []byte) error {
	if err := b.writable(); err != nil {
		return err
	}
	if len(name) == 0 {
		return ErrBucketNameRequired
	}
	c := b.Bucket(name)
	if c == nil {
		if err := b.tx.err; err != nil {
			return err
		}
		if _, _, ok := b.lookup(name); ok {
			return fmt.Errorf("%w: key %q holds a value", ErrIncompatibleValue, name)
		}
		return ErrBucketNotFound
	}
	c.markDeleted()
	delete(b.children, string(name))
	if b.ref.Nested > 0 {
		b.ref.Nested--
	}
	// Trees of buckets deleted earlier inside c are part of c's committed
	// tree, which is freed whole: forget them, or they would be freed twice.
	kept := b.tx.freeRoots[:0]
	for _, fr := range b.tx.freeRoots {
		if !fr.owner.within(c) {
			kept = append(kept, fr)
		}
	}
	b.tx.freeRoots = kept
	if c.committedRoot != 0 {
		b.tx.freeRoots = append(b.tx.freeRoots, freeRoot{root: c.committedRoot, owner: b})
	}
	b.set(change{key: c.name, del: true})
	return nil
}

func (b *Bucket) markDeleted() {
	b.deleted = true
	for _, c := range b.children {
		c.markDeleted()
	}
}

// NextSequence increments and returns the bucket's sequence number, an
// integer stored with the bucket (for generating ids).
func (b *Bucket) NextSequence() (uint64, error) {
	if err := b.writable(); err != nil {
		return 0, err
	}
	if b.parent == nil {
		return 0, ErrIncompatibleValue
	}
	b.ref.Seq++
	b.markDirty()
	return b.ref.Seq, nil
}

// SetSequence sets the bucket's sequence number.
func (b *Bucket) SetSequence(v uint64) error {
	if err := b.writable(); err != nil {
		return err
	}
	if b.parent == nil {
		return ErrIncompatibleValue
	}
	b.ref.Seq = v
	b.markDirty()
	return nil
}

// flush merges the bucket's pending changes, and those of its dirty
// children, into its tree (copy-on-write), leaving b.ref at the new root.
func (b *Bucket) flush(w *btree.Writer) error {
	if !b.dirty {
		return nil
	}
	for name, c := range b.children {
		if !c.dirty {
			continue
		}
		if err := c.flush(w); err != nil {
			return err
		}
		var buf [page.RefSize]byte
		b.set(change{key: c.name, value: b.tx.copy(c.ref.Encode(buf[:])), flags: page.FlagBucket})
		_ = name
	}
	if b.pending != nil && b.pending.Len() > 0 {
		muts := make([]btree.Mutation, 0, b.pending.Len())
		b.pending.Ascend(func(c change) bool {
			muts = append(muts, btree.Mutation{Key: c.key, Value: c.value, Flags: c.flags, Delete: c.del})
			return true
		})
		root, birth, err := w.Apply(b.ref.Root, b.ref.Birth, muts)
		if err != nil {
			return err
		}
		b.ref.Root, b.ref.Birth = root, birth
		b.pending.Clear(false)
	}
	b.dirty = false
	return nil
}

// within reports whether b is anc or nested inside it.
func (b *Bucket) within(anc *Bucket) bool {
	for p := b; p != nil; p = p.parent {
		if p == anc {
			return true
		}
	}
	return false
}

// freeRoot is the committed tree of a bucket deleted in this transaction,
// freed at commit; owner is the bucket it was deleted from.
type freeRoot struct {
	root  page.ID
	owner *Bucket
}
