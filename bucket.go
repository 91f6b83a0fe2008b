package mapkv

import (
	"bytes"
	"fmt"
	"math"
	"slices"

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
	ref      page.Ref           // the bucket's tree and sequence
	pending  *pendingSet        // write tx: changes not yet in the tree
	children map[string]*Bucket // write tx: nested buckets opened
	dirty    bool               // write tx: something below changed
	deleted  bool

	committedRoot page.ID // root of the bucket's tree as committed (freed if the bucket is deleted)
}

// change is a pending put or delete in a write transaction: a
// btree.Mutation, so that the commit hands a bucket's sorted log of
// changes to the writer as it is. OverBucket: a nested bucket at Key was
// deleted earlier in the transaction (its tree is freed apart), so a value
// may replace the bucket's element; set by DeleteBucket and kept by every
// later change to the key. Seq: in a log, the change's position at
// arrival (orders changes to one key).
type change = btree.Mutation

// after returns c, a change to the same key as old that arrives after
// it, keeping old's OverBucket.
func after(c, old change) change {
	c.OverBucket = c.OverBucket || old.OverBucket
	return c
}

func changeLess(a, b change) bool { return bytes.Compare(a.Key, b.Key) < 0 }

// pendingSet is a bucket's pending changes, ordered by key, one per key.
//
// A bulk load puts many keys and reads none of them back, so changes first
// collect in a log, appended as they come: while their keys ascend the log
// is a sorted run that a binary search reads; otherwise it is sorted once,
// when a read or the commit needs it in order (the later of two changes to
// one key wins). A set read again after more unordered writes moves to a
// B-tree (google/btree), so interleaved writes and reads stay O(log n)
// each. Its methods are the B-tree's that Cursor uses.
type pendingSet struct {
	log     []change // tree == nil: the changes; strictly ascending if sorted
	sorted  bool
	settles int  // times an unordered log was sorted
	shared  bool // a savepoint holds log's array: copy it before sorting
	tree    *gbtree.BTreeG[change]
}

func newPendingSet(db *DB) *pendingSet {
	p := &pendingSet{sorted: true}
	if k := len(db.logs); k > 0 {
		p.log = db.logs[k-1]
		db.logs = db.logs[:k-1]
	}
	return p
}

// Log arrays up to keptLogCap changes are kept from one write transaction
// to the next (DB.logs), at most keptLogs of them: a 10,000-key
// transaction's log is over half a megabyte. They are the DB's, not a
// sync.Pool's, because a pool is emptied by the collections that a bulk
// load's own garbage brings about.
const (
	keptLogCap = 1 << 16
	keptLogs   = 4
)

// release hands the log's array to db for the next write transaction. p
// must not be used after.
func (p *pendingSet) release(db *DB) {
	if p.shared || cap(p.log) < 1024 || cap(p.log) > keptLogCap || len(db.logs) >= keptLogs {
		return
	}
	// Drop what the array points at (the finished transaction's keys and
	// values: large values are not in the arena).
	clear(p.log)
	db.logs = append(db.logs, p.log[:0])
	p.log = nil
}

func (p *pendingSet) put(c change) {
	if p.tree != nil {
		treePut(p.tree, c)
		return
	}
	if n := len(p.log); n > 0 && p.sorted {
		switch d := bytes.Compare(c.Key, p.log[n-1].Key); {
		case d == 0 && !p.shared:
			c.Seq = uint32(n - 1)
			p.log[n-1] = after(c, p.log[n-1]) // the same key again: replace in place
			return
		case d <= 0: // out of order, or the same key while a savepoint shares the log
			p.sorted = false
		}
	}
	c.Seq = uint32(len(p.log))
	if uint64(len(p.log)) >= math.MaxUint32 {
		p.toTree()
		treePut(p.tree, c)
		return
	}
	p.log = append(p.log, c)
}

// settle makes the log sorted with one change per key, or moves the set to
// the B-tree if this is not the first time it needs sorting.
func (p *pendingSet) settle() {
	if p.tree != nil || p.sorted {
		return
	}
	if p.settles > 0 {
		p.toTree()
		return
	}
	p.sort()
}

// sort sorts the log, keeping the last change to each key.
func (p *pendingSet) sort() {
	p.settles++
	if p.shared {
		p.log = append([]change(nil), p.log...)
		p.shared = false
	}
	sortChanges(p.log)
	// Keep the last change to each key.
	out := p.log[:0]
	for i, c := range p.log {
		if i+1 < len(p.log) && bytes.Equal(c.Key, p.log[i+1].Key) {
			p.log[i+1] = after(p.log[i+1], c)
			continue
		}
		out = append(out, c)
	}
	clear(p.log[len(out):])
	p.log = out
	for i := range p.log {
		p.log[i].Seq = uint32(i)
	}
	p.sorted = true
}

// toTree moves the set to a B-tree.
func (p *pendingSet) toTree() {
	t := gbtree.NewG(32, changeLess)
	for _, c := range p.log { // in arrival order if unsorted: later wins
		treePut(t, c)
	}
	if !p.shared {
		clear(p.log)
	}
	p.log, p.tree, p.sorted, p.shared = nil, t, true, false
}

// treePut puts c in t, replacing the change to its key (keeping its
// OverBucket).
func treePut(t *gbtree.BTreeG[change], c change) {
	if old, ok := t.ReplaceOrInsert(c); ok && old.OverBucket && !c.OverBucket {
		t.ReplaceOrInsert(after(c, old))
	}
}

// search returns the index of the first change whose key is >= key in a
// settled log.
func (p *pendingSet) search(key []byte) (int, bool) {
	return slices.BinarySearchFunc(p.log, key, func(c change, k []byte) int { return bytes.Compare(c.Key, k) })
}

func (p *pendingSet) get(key []byte) (change, bool) {
	p.settle()
	if p.tree != nil {
		return p.tree.Get(change{Key: key})
	}
	if i, ok := p.search(key); ok {
		return p.log[i], true
	}
	return change{}, false
}

func (p *pendingSet) empty() bool {
	if p.tree != nil {
		return p.tree.Len() == 0
	}
	return len(p.log) == 0
}

// clone returns a copy for a savepoint; the two may then change apart.
func (p *pendingSet) clone() *pendingSet {
	if p.tree != nil {
		return &pendingSet{sorted: true, tree: p.tree.Clone()} // copy-on-write: O(1)
	}
	p.shared = true
	c := *p
	c.log = p.log[:len(p.log):len(p.log)] // its appends reallocate
	return &c
}

// Ascend calls fn for each change in key order until fn returns false.
func (p *pendingSet) Ascend(fn func(change) bool) {
	p.settle()
	if p.tree != nil {
		p.tree.Ascend(fn)
		return
	}
	p.ascendFrom(0, fn)
}

// AscendGreaterOrEqual calls fn for each change with key >= pivot.key, in
// order, until fn returns false.
func (p *pendingSet) AscendGreaterOrEqual(pivot change, fn func(change) bool) {
	p.settle()
	if p.tree != nil {
		p.tree.AscendGreaterOrEqual(pivot, fn)
		return
	}
	i, _ := p.search(pivot.Key)
	p.ascendFrom(i, fn)
}

func (p *pendingSet) ascendFrom(i int, fn func(change) bool) {
	log := p.log // fn may change the set; walk the log as it was
	for ; i < len(log); i++ {
		if !fn(log[i]) {
			return
		}
	}
}

// Descend calls fn for each change in descending key order until fn
// returns false.
func (p *pendingSet) Descend(fn func(change) bool) {
	p.settle()
	if p.tree != nil {
		p.tree.Descend(fn)
		return
	}
	p.descendFrom(len(p.log)-1, fn)
}

// DescendLessOrEqual calls fn for each change with key <= pivot.key, in
// descending order, until fn returns false.
func (p *pendingSet) DescendLessOrEqual(pivot change, fn func(change) bool) {
	p.settle()
	if p.tree != nil {
		p.tree.DescendLessOrEqual(pivot, fn)
		return
	}
	i, found := p.search(pivot.Key)
	if !found {
		i--
	}
	p.descendFrom(i, fn)
}

func (p *pendingSet) descendFrom(i int, fn func(change) bool) {
	log := p.log
	for ; i >= 0; i-- {
		if !fn(log[i]) {
			return
		}
	}
}

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
		if c, ok := b.pending.get(key); ok {
			if c.Delete {
				return 0, nil, false
			}
			return c.Flags, c.Value, true
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
	kv := b.tx.copy2(key, value)
	b.set(change{Key: kv[:len(key):len(key)], Value: kv[len(key):]})
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
	b.set(change{Key: b.tx.copy(key), Delete: true})
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
		b.pending = newPendingSet(b.tx.db)
	}
	b.pending.put(c)
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
		tx.newChunk()
	}
	n := len(tx.arena)
	tx.arena = append(tx.arena, p...)
	return tx.arena[n:len(tx.arena):len(tx.arena)]
}

// arenaChunk is the size of the arena chunks write transactions pass on
// to the next (DB.chunks): the largest a transaction grows to.
const arenaChunk = 64 << 10

// maxKeptChunks bounds the chunks kept between write transactions (4 MiB).
const maxKeptChunks = 64

// newChunk gives the arena another chunk. A write transaction takes the
// full-size chunks the previous ones left (keys and values are valid only
// until their transaction ends) before it allocates any, rather
// than asking the collector for new memory at every commit: a bulk load
// would otherwise allocate its whole data set again as garbage, and on a
// virtual machine that hands freed memory back to its host, each fresh
// page of heap costs a fault on the host as well. New chunks grow with
// use, from 1 KiB, so a lone one-key transaction stays small.
func (tx *Tx) newChunk() {
	size := min(max(2*cap(tx.arena), 1024), arenaChunk)
	if tx.writable {
		if k := len(tx.db.chunks); k > 0 {
			tx.arena = tx.db.chunks[k-1][:0]
			tx.db.chunks = tx.db.chunks[:k-1]
			tx.chunks = append(tx.chunks, tx.arena)
			return
		}
	}
	tx.arena = make([]byte, 0, size)
	if size == arenaChunk && tx.writable {
		tx.chunks = append(tx.chunks, tx.arena)
	}
}

// copy2 puts a copy of a and b, one after the other, in the transaction's
// arena (one copy for a key and its value).
func (tx *Tx) copy2(a, b []byte) []byte {
	n := len(a) + len(b)
	if n == 0 || n > 4096 {
		return append(append(make([]byte, 0, n), a...), b...)
	}
	if cap(tx.arena)-len(tx.arena) < n {
		tx.newChunk()
	}
	s := len(tx.arena)
	tx.arena = append(append(tx.arena, a...), b...)
	return tx.arena[s:len(tx.arena):len(tx.arena)]
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
	b.set(change{Key: c.name, Value: b.tx.copy(c.ref.Encode(buf[:])), Flags: page.FlagBucket})
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
	b.set(change{Key: c.name, Delete: true, OverBucket: true})
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
	// Dirty children in name order, not the map's, so that where a
	// commit puts its nodes follows from the transactions (except in
	// merges large enough to be split over two goroutines, which take
	// free pages as they come): a power-loss test's replay depends on
	// it.
	var dirty []*Bucket
	for _, c := range b.children {
		if c.dirty {
			dirty = append(dirty, c)
		}
	}
	slices.SortFunc(dirty, func(x, y *Bucket) int { return bytes.Compare(x.name, y.name) })
	for _, c := range dirty {
		if err := c.flush(w); err != nil {
			return err
		}
		var buf [page.RefSize]byte
		b.set(change{Key: c.name, Value: b.tx.copy(c.ref.Encode(buf[:])), Flags: page.FlagBucket})
	}
	if p := b.pending; p != nil && !p.empty() {
		if p.tree == nil && !p.sorted {
			p.sort() // the last read of the set: no B-tree for it
		}
		db := b.tx.db
		b.pending = nil
		// A change is a btree.Mutation: a sorted log goes to the writer as
		// it is (on a load in key order, 10,000-key commits, copying it
		// was 6% of the load's CPU, pprof); a B-tree is read out into
		// db.muts.
		muts := p.log
		if p.tree != nil {
			muts = db.muts[:0]
			p.tree.Ascend(func(c change) bool {
				muts = append(muts, c)
				return true
			})
		}
		root, birth, err := w.Apply(b.ref.Root, b.ref.Birth, muts)
		if p.tree != nil {
			clear(muts)
			db.muts = muts[:0]
		}
		p.release(db)
		if err != nil {
			return err
		}
		b.ref.Root, b.ref.Birth = root, birth
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
