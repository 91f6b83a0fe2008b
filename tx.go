package mapkv

import (
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/mapkv/mapkv/btree"
	"github.com/mapkv/mapkv/mmap"
	"github.com/mapkv/mapkv/page"
)

// ErrManagedTx is returned by Commit or Rollback called inside the
// function given to View, Update or Batch, which end the transaction
// themselves.
var ErrManagedTx = errors.New("mapkv: Commit or Rollback inside View, Update or Batch")

// Tx is a transaction: a consistent view of the database as of one
// commit, and for a writable Tx, the changes that its Commit applies.
//
// Slices returned by a Tx (keys and values) point into the read-only
// mapping of the file or into the transaction's own memory. They are valid
// only until the transaction ends, and must not be written to: a write
// into the mapping faults.
//
// A Tx is not safe for concurrent use by several goroutines.
type Tx struct {
	db       *DB
	meta     page.Meta // the committed state this transaction reads
	m        *mapping  // the mapping it reads through (pinned)
	tree     btree.Tree
	root     *Bucket
	writable bool
	managed  bool
	closed   bool
	err      error // first corruption met by a read; returned by View/Update
	slot     int   // reader slot in the lock file + 1 (0: none)
	force    bool  // commit even without changes, and cut the file's free tail to the page (Shrink)
	lowFirst bool  // allocate the lowest free pages, never runs (Shrink)
	rewrite  bool  // write the free list the last commit deferred, under its txid (Close)

	// write transactions only
	freeRoots []freeRoot     // trees of buckets deleted in this tx
	retired   []*mmap.Region // writable mappings replaced by a remap
	mapped    []*mapping     // read-only mappings made by a remap in this tx (one reference each)
	arena     []byte         // copies of keys and values put
	chunks    [][]byte       // full-size arena chunks, returned to DB.chunks at close
	alloc     *txAlloc       // set during commit
	saved     *freelist      // free set before the commit, to restore on failure
}

func (tx *Tx) init() {
	tx.tree = btree.Tree{Data: tx.m.region.Data, PageSize: tx.db.pageSize, PgCount: tx.meta.PgCount}
	tx.root = &Bucket{tx: tx, ref: tx.meta.Root}
}

// ID returns the txid of the state this transaction reads; for a writable
// transaction, the txid its commit will have.
func (tx *Tx) ID() uint64 {
	if tx.writable {
		return uint64(tx.meta.TxID) + 1
	}
	return uint64(tx.meta.TxID)
}

// Size returns the size in bytes of the database image this transaction
// sees: what WriteTo writes.
func (tx *Tx) Size() int64 { return int64(tx.meta.PgCount) * int64(tx.db.pageSize) }

// Writable reports whether the transaction can change the database.
func (tx *Tx) Writable() bool { return tx.writable }

// DB returns the database the transaction belongs to.
func (tx *Tx) DB() *DB { return tx.db }

// Bucket returns the top-level bucket called name, or nil if there is none.
func (tx *Tx) Bucket(name []byte) *Bucket {
	if tx.closed {
		return nil
	}
	return tx.root.Bucket(name)
}

// CreateBucket creates a top-level bucket. It fails with ErrBucketExists if
// it exists, ErrBucketNameRequired for an empty name.
func (tx *Tx) CreateBucket(name []byte) (*Bucket, error) {
	if tx.closed {
		return nil, ErrTxClosed
	}
	return tx.root.CreateBucket(name)
}

// CreateBucketIfNotExists returns the top-level bucket called name,
// creating it if needed.
func (tx *Tx) CreateBucketIfNotExists(name []byte) (*Bucket, error) {
	if tx.closed {
		return nil, ErrTxClosed
	}
	return tx.root.CreateBucketIfNotExists(name)
}

// DeleteBucket deletes a top-level bucket and everything in it.
func (tx *Tx) DeleteBucket(name []byte) error {
	if tx.closed {
		return ErrTxClosed
	}
	return tx.root.DeleteBucket(name)
}

// ForEachBucket calls fn for each top-level bucket in name order, stopping
// at the first error.
func (tx *Tx) ForEachBucket(fn func(name []byte, b *Bucket) error) error {
	if tx.closed {
		return ErrTxClosed
	}
	if fn == nil {
		return fmt.Errorf("%w: nil function", ErrInvalidOptions) // fix(reliability): it panicked
	}
	return tx.root.ForEach(func(k, v []byte) error {
		if v != nil {
			return nil
		}
		return fn(k, tx.root.Bucket(k))
	})
}

// Cursor returns a cursor over the top-level bucket names (values nil).
func (tx *Tx) Cursor() *Cursor { return tx.root.Cursor() }

// Rollback ends the transaction, discarding its changes. It returns
// ErrTxClosed if the transaction has already ended, so that a deferred
// Rollback after Commit is harmless.
func (tx *Tx) Rollback() error {
	if tx.closed {
		return ErrTxClosed
	}
	if tx.managed {
		return ErrManagedTx
	}
	tx.close()
	return nil
}

func (tx *Tx) close() {
	if tx.closed {
		return
	}
	tx.closed = true
	db := tx.db
	if tx.writable {
		for _, r := range tx.retired {
			r.Unmap()
		}
		tx.retired = nil
		for _, m := range tx.mapped {
			db.release(m)
		}
		tx.mapped = nil
		db.release(tx.m)
		if n := min(len(tx.chunks), maxKeptChunks-len(db.chunks)); n > 0 {
			db.chunks = append(db.chunks, tx.chunks[:n]...)
		}
		tx.chunks = nil
		db.writeMu.Unlock()
	} else {
		db.stateMu.Lock()
		db.readers.remove(tx.meta.TxID)
		db.stateMu.Unlock()
		if tx.slot > 0 {
			db.lf.release(tx.slot - 1)
		}
		db.release(tx.m)
	}
	tx.root = nil
	tx.arena = nil
}

// fail records the first corruption a read met; the read itself returns
// nothing, and View or Update return the error.
func (tx *Tx) fail(err error) {
	if tx.err == nil && err != nil {
		tx.err = corrupt(tx.db.path, err)
	}
}

// Err returns the first corruption error a read in this transaction met
// (Get and cursor moves return nil on damage and record it here).
func (tx *Tx) Err() error { return tx.err }

// run is View and Update: fn in a managed transaction, with faults on the
// mapping turned into errors.
func (tx *Tx) run(fn func(*Tx) error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			tx.managed = false
			tx.close()
			if fe := asFault(r); fe != nil {
				err = fe
				return
			}
			panic(r)
		}
	}()
	tx.managed = true
	err = fn(tx)
	tx.managed = false
	if err == nil {
		err = tx.err
	}
	if err != nil || !tx.writable {
		tx.close()
		return err
	}
	return tx.Commit()
}

// Commit writes the transaction's changes and makes them durable (unless
// Options.NoSync) with one flush: the new meta carries a record of the
// pages the commit wrote, and Open trusts it only if they all verify.
func (tx *Tx) Commit() error {
	if tx.closed {
		return ErrTxClosed
	}
	if tx.managed {
		return ErrManagedTx
	}
	if !tx.writable {
		return ErrTxNotWritable
	}
	defer tx.close()
	if tx.err != nil {
		return tx.err
	}
	if tx.db.failed != nil {
		return fmt.Errorf("%w: %v", ErrFailed, tx.db.failed)
	}
	if !tx.root.dirty && len(tx.freeRoots) == 0 && !tx.force && !tx.rewrite {
		return nil
	}
	tx.saved = tx.db.free.snapshot()
	err := guard(tx.commit)
	if err != nil {
		// Nothing the failed commit wrote is reachable from a meta on
		// disk; forget its allocations.
		tx.db.free = tx.saved
		if errors.Is(err, page.ErrFormat) {
			err = corrupt(tx.db.path, err)
		}
		return err
	}
	tx.db.stats.commitN.Add(1)
	return nil
}

func (tx *Tx) commit() error {
	db := tx.db
	txid := tx.meta.TxID + 1
	if tx.rewrite {
		txid = tx.meta.TxID
	}
	// The maps of the commit's nodes are the DB's, emptied and kept for
	// the next commit (a 10,000-key commit of random keys writes 7,000
	// nodes: growing them anew each time was a third of a random load's
	// allocations).
	if db.freshIDs == nil {
		db.freshIDs, db.freshBufs = map[page.ID]sealed{}, map[page.ID][]byte{}
	}
	a := &txAlloc{tx: tx, fresh: db.freshIDs, hwm: page.ID(tx.meta.PgCount), noRuns: tx.lowFirst, puts: db.putsBuf[:0]}
	tx.alloc = a
	defer clear(a.fresh)
	defer func() { db.putsBuf = keepScratch(a.puts) }()
	if !db.opts.WriteMap {
		a.bufs = db.freshBufs
		a.streamer = &streamer{}
		tx.tree.Fresh = a.bufs
		defer func() {
			tx.tree.Fresh = nil
			clear(a.bufs)
			// Keep the slabs for the next commit, as many as this one
			// used (16 at least, 64 at most); the rest go to the GC.
			// A bulk load then builds every commit in the same memory.
			db.slabs = append(db.slabs, a.slabs...)
			keep := min(len(db.slabs), max(len(a.slabs), 16), 64)
			clear(db.slabs[keep:])
			db.slabs = db.slabs[:keep]
		}()
	}
	// A bucket's pending set hands Apply its changes strictly ascending:
	// kept in order as they arrive, or sorted with one change per key
	// (pendingSet), of keys copied at Put.
	w := &btree.Writer{T: &tx.tree, A: a, TxID: txid, Ordered: true, TrustFrom: db.trustFrom}
	if runtime.GOMAXPROCS(0) > 1 {
		w.Parallel = parallelMerge
	}
	for _, r := range tx.freeRoots {
		if err := w.FreeTree(r.root); err != nil {
			return err
		}
	}
	err := tx.root.flush(w)
	db.trustedReads += w.Trusted()
	if err != nil {
		return err
	}
	if err := a.streamErr(); err != nil {
		db.failed = err
		return err
	}
	// Cut a large free tail off the file.
	if r, ok := db.free.tail(a.hwm); ok && int64(r.Len)*int64(db.pageSize) >= db.opts.ShrinkThreshold {
		db.free.remove(r)
		a.hwm = r.Start
	}
	// A commit small enough for the log leaves the free list out: the log
	// makes it durable with fewer bytes to flush, and Open rebuilds the
	// list from the trees after a crash (see page.MetaFreeDeferred).
	// Commits that write the data file directly, and forced ones (Close,
	// Shrink), write it.
	logged := db.wal.useLog(a) // decided before the free list adds nodes
	deferFree := logged && !tx.force && !tx.rewrite
	var flID page.ID
	freeTx := txid
	if deferFree {
		if err := tx.dropFreelist(a); err != nil {
			return err
		}
		freeTx = 0
	} else if flID, err = tx.writeFreelist(a, txid); err != nil {
		return err
	}
	hwm := a.hwm
	meta := page.Meta{
		PageSize: uint32(db.pageSize),
		Root:     tx.root.ref,
		Freelist: flID,
		FreeTx:   freeTx,
		PgCount:  uint64(hwm),
		TxID:     txid,
	}
	if deferFree {
		meta.Flags |= page.MetaFreeDeferred
	}
	if tx.rewrite {
		// The same commit, now with its free list: its record names the
		// trees' nodes it wrote and the free-list nodes.
		meta.CommitPages, meta.CommitHash = tx.meta.CommitPages, tx.meta.CommitHash
	}
	for id, s := range a.fresh {
		meta.CommitPages++
		meta.CommitHash = page.CommitMix(meta.CommitHash, id, s.sum)
	}
	ps := int64(db.pageSize)
	slot := int64(txid % 2)
	if tx.rewrite {
		return tx.rewriteMeta(a, meta)
	}
	if logged && db.wal.fits(len(a.bufs), a.written) {
		// Durable once in the log; the data file is written but not
		// flushed (see wal.go).
		buf := make([]byte, page.MetaSize)
		page.PutMeta(buf, page.ID(slot), &meta)
		a.mapped = db.rw != nil && a.written <= mapWriteMax
		if a.written >= overlapBytes {
			// Once the record is flushed, the committing goroutine
			// builds the free set the next transaction will start from
			// (freelist.prepare) while the data file's writes finish.
			logThenPrepare := func() error {
				if err := db.walAppend(a, buf, txid); err != nil {
					return err
				}
				db.free.prepare(txid)
				return nil
			}
			if err := a.writeBeside(logThenPrepare); err != nil {
				return err
			}
		} else if err := db.walAppendBeside(a, buf, txid, a.writeFresh); err != nil {
			// The nodes go to free pages no meta names while the record
			// is written (or first, if the log cannot take it
			// asynchronously): if that write fails, nothing is
			// committed.
			return err
		}
		if err := a.writeMeta(buf, slot*ps); err != nil {
			db.failed = err
			return fmt.Errorf("mapkv: write meta %s: %w", db.path, err)
		}
		db.kickWriteback()
		if err := tx.published(meta, hwm); err != nil {
			return err
		}
		db.earlyCheckpoint()
		return nil
	}
	// A commit too large for the log writes the data file directly; what
	// the log holds must be in the data file for good first, or replaying
	// it after a crash would write over this commit's pages.
	if err := db.checkpoint(); err != nil {
		return err
	}
	a.pieces = true
	if err := a.writeFresh(); err != nil {
		return err
	}
	if !db.opts.NoSync && a.written > db.opts.SyncThreshold {
		// A huge commit: flush the data first so that Open need not
		// re-verify it all (two syncs).
		if err := db.sync(0, a.dirtyHi); err != nil {
			return err
		}
		meta.Flags |= page.MetaSynced
	}
	if db.opts.WriteMap {
		page.PutMeta(db.rw.Data[slot*ps:(slot+1)*ps], page.ID(slot), &meta)
	} else {
		buf := make([]byte, page.MetaSize)
		page.PutMeta(buf, page.ID(slot), &meta)
		if _, err := db.file.WriteAt(buf, slot*ps); err != nil {
			db.failed = err
			return fmt.Errorf("mapkv: write meta %s: %w", db.path, err)
		}
	}
	if !db.opts.NoSync {
		end := max(a.dirtyHi, 2*ps)
		if meta.Flags&page.MetaSynced != 0 {
			end = 2 * ps
		}
		if err := db.sync(0, end); err != nil {
			return err
		}
	}
	return tx.published(meta, hwm)
}

// rewriteMeta finishes a rewrite (DB.writeFreeOnClose): the free-list
// nodes go to pages free in both metas on disk, the meta over its own
// slot, and the data file is flushed. The log still holds the commit as it
// was, so a crash before the flush ends replays it (deferred again);
// after the flush the meta is whole. Nothing goes to the log: its records
// must follow each other.
func (tx *Tx) rewriteMeta(a *txAlloc, meta page.Meta) error {
	db := tx.db
	ps := int64(db.pageSize)
	slot := int64(meta.TxID % 2)
	if err := a.writeFresh(); err != nil {
		db.failed = err
		return err
	}
	buf := make([]byte, page.MetaSize)
	page.PutMeta(buf, page.ID(slot), &meta)
	if _, err := db.file.WriteAt(buf, slot*ps); err != nil {
		db.failed = err
		return fmt.Errorf("mapkv: write meta %s: %w", db.path, err)
	}
	if err := db.sync(0, max(a.dirtyHi, 2*ps)); err != nil {
		return err
	}
	return tx.published(meta, a.hwm)
}

// published makes the committed meta the one new transactions see, then
// cuts the file's free tail.
func (tx *Tx) published(meta page.Meta, hwm page.ID) error {
	db := tx.db
	db.publish(meta)
	if db.lf != nil {
		db.lf.publish(meta.TxID)
	}
	// fix(reliability): cut the file only once the new state is
	// published. Cut before, readers that began in between (all those
	// that waited for stateMu while shrink held it) read the old state,
	// whose image runs past the new end: their WriteTo faulted with
	// "file truncated by another process".
	db.shrink(max(hwm, page.ID(tx.meta.PgCount)), meta.TxID, tx.force)
	return nil
}

// sync flushes a range of the writable mapping. A failed flush leaves the
// file's durable state unknown (the kernel may have dropped the dirty
// pages), so the DB refuses further writes until it is reopened.
func (db *DB) sync(off, end int64) error {
	db.stats.syncN.Add(1)
	real := func() error { return db.rw.Sync(off, end-off) }
	if !db.opts.WriteMap {
		// fdatasync flushes the whole file, whatever the range.
		off, end = 0, db.fileSize
		real = func() error { return mmap.Datasync(db.file) }
	}
	var err error
	if hooks.sync != nil {
		err = hooks.sync(db, off, end-off, real)
	} else {
		err = real()
	}
	if err != nil {
		db.failed = err
		return fmt.Errorf("mapkv: msync %s: %w", db.path, err)
	}
	if db.wal != nil && !db.opts.WriteMap {
		db.wal.syncedTx = db.wal.lastTx // the whole file was flushed
	}
	return nil
}

// shrink truncates the file when its tail beyond the last used page is
// large. The caller passes the larger of the new and the previous commit's
// page counts, so that the previous meta, the fallback if the newest is
// ever found damaged, still names pages inside the file: the file ends up
// short one commit later. An ordinary commit leaves the same room past the
// last used page that grow adds (see headroom); exact (Shrink's commits)
// cuts to the page. Failure is harmless (the file stays longer), so it is
// ignored.
func (db *DB) shrink(hwm page.ID, txid page.TxID, exact bool) {
	used := int64(hwm) * int64(db.pageSize)
	keep := used
	if !exact {
		keep = roundUp(used+db.headroom(used), int64(db.pageSize))
	}
	keep = max(keep, roundUp(db.opts.InitialSize, int64(db.pageSize)))
	if db.fileSize-keep < db.opts.ShrinkThreshold {
		return // the common case: nothing to cut, no reader to ask
	}
	// A reader of an older state may stream its whole image (WriteTo),
	// free pages included: never cut the file beneath one. Readers in this
	// process say how large their image is; of another process's we only
	// know the txid, so any older one stops the cut.
	if db.lf != nil {
		if oldest, ok := db.lf.oldest(); ok && oldest < txid || legacyReader(db.file) {
			return
		}
	}
	db.stateMu.Lock()
	defer db.stateMu.Unlock()
	keep = max(keep, int64(db.readers.maxPages())*int64(db.pageSize))
	if db.fileSize-keep < db.opts.ShrinkThreshold {
		return
	}
	if err := db.file.Truncate(keep); err == nil {
		db.fileSize = keep
		db.stats.shrinkN.Add(1)
		if db.state != nil { // fix(reliability): publish ran first; keep Stats.FileSize true
			st := *db.state
			st.fileSize = keep
			db.state = &st
		}
	}
}

// txAlloc is the commit's page allocator: free pages first, lowest first,
// then the end of the file.
type txAlloc struct {
	tx      *Tx
	fresh   map[page.ID]sealed // nodes written by this commit and still used
	bufs    map[page.ID][]byte // their bytes, until written (not with WriteMap)
	order   []idBuf            // bufs in page order, once sortedNodes ran
	run     page.Run           // reserved contiguous free pages (see fromRun)
	hint    page.ID            // where to look for the next run
	noRuns  bool               // no run was found: take single pages
	slabs   [][]byte           // memory the bufs are carved from
	cur     []byte             // the rest of the current slab
	hwm     page.ID
	dirtyHi int64
	written int64

	// While a fork is out (see Fork), mu guards what both goroutines
	// allocate from: the free set, the run, hwm and the file's growth,
	// the slabs, and the counts above.
	mu     sync.Mutex
	forked bool

	pieces bool // write in pieces of at most smallFolio (a direct commit)
	mapped bool // write through the writable mapping (see mapSmallWrites)
	// Runs of nodes written while the merge goes on (see stream.go).
	streamer *streamer
	streamed map[page.ID]struct{} // nodes in the data file already
	rest     []idBuf              // order less streamed, once toWrite ran
	piece    [][]byte             // scratch for writePieces
	// puts holds the payloads of the nodes that may be logged as puts
	// (sealed.puts; see walputs.go).
	puts []byte
}

func (a *txAlloc) Alloc(n int) (page.ID, []byte, error) {
	if a.forked {
		a.mu.Lock()
	}
	id, buf, err := a.take(n, &a.tx.tree)
	if a.forked {
		a.mu.Unlock()
	}
	if err != nil {
		return 0, nil, err
	}
	a.fresh[id] = sealed{}
	if !a.tx.db.opts.WriteMap {
		a.bufs[id] = buf
	}
	a.order, a.rest = nil, nil
	return id, buf, nil
}

// take finds n pages for a node and the memory to build it in, and makes
// view (the caller's) cover them. The part of Alloc that a fork shares
// (under a.mu while there is one).
func (a *txAlloc) take(n int, view *btree.Tree) (page.ID, []byte, error) {
	db := a.tx.db
	id, ok := a.freePages(uint64(n))
	if !ok {
		id = a.hwm
		ps := int64(db.pageSize)
		if err := db.grow((int64(id)+int64(n))*ps, a.tx); err != nil {
			return 0, nil, err
		}
		a.hwm += page.ID(n)
	}
	a.cover(view)
	ps := int64(db.pageSize)
	lo, hi := int64(id)*ps, (int64(id)+int64(n))*ps
	a.dirtyHi = max(a.dirtyHi, hi)
	a.written += hi - lo
	if db.opts.WriteMap {
		return id, db.rw.Data[lo:hi:hi], nil
	}
	return id, a.mem(int(hi - lo)), nil
}

// freePages takes n free pages for a node, by the commit's policy: from
// its reserved run (fromRun), else the lowest free run long enough.
// ok=false: none is free, and the node goes at the end of the file.
func (a *txAlloc) freePages(n uint64) (page.ID, bool) {
	if id, ok := a.fromRun(n); ok {
		return id, true
	}
	return a.tx.db.free.alloc(n)
}

// parallelMerge is Writer.Parallel for commits: a branch whose children
// take this many changes may be merged by two goroutines (see
// txAlloc.Fork). Tests lower it to split small commits too.
var parallelMerge = 512

// Fork lets a second goroutine build nodes for the commit (the other half
// of a split merge: btree.Forker): it allocates through a.take under
// a.mu, and keeps the nodes it builds in maps of its own, the view it
// reads through included, until Join hands them to a. Nodes of the
// committed tree it lets go are freed at Join, by a's goroutine. Not with
// WriteMap (nodes are built in the shared mapping).
func (a *txAlloc) Fork() (btree.Alloc, *btree.Tree) {
	db := a.tx.db
	if a.bufs == nil || a.forked {
		return nil, nil
	}
	if db.forkIDs == nil {
		db.forkIDs, db.forkBufs = map[page.ID]sealed{}, map[page.ID][]byte{}
	}
	f := &forkAlloc{a: a, view: a.tx.tree, fresh: db.forkIDs, bufs: db.forkBufs, puts: db.forkPuts[:0]}
	f.view.Fresh = f.bufs
	a.forked = true
	db.splits++
	return f, &f.view
}

// Join takes back the nodes of a fork whose goroutine is done.
func (a *txAlloc) Join(fa btree.Alloc) error {
	f := fa.(*forkAlloc)
	a.forked = false
	a.order, a.rest = nil, nil
	f.unstash()
	shift, keep := a.joinPuts(f)
	for id, s := range f.fresh {
		if s.puts != 0 {
			if keep {
				s.puts += shift
			} else {
				s.puts = 0
			}
		}
		a.fresh[id] = s
		a.bufs[id] = f.bufs[id]
	}
	clear(f.fresh)
	clear(f.bufs)
	a.tx.db.forkPuts = keepScratch(f.puts)
	for _, r := range f.freed {
		a.Free(r.Start, int(r.Len))
	}
	a.cover(&a.tx.tree)
	return nil
}

// cover makes view reach the commit's high-water mark, through the
// current mapping, if the file grew past what it covers.
func (a *txAlloc) cover(view *btree.Tree) {
	if view.PgCount < uint64(a.hwm) {
		view.Data = a.tx.db.state.m.region.Data
		view.PgCount = uint64(a.hwm)
	}
}

// forkAlloc is the allocator of the second goroutine of a split merge
// (see txAlloc.Fork).
type forkAlloc struct {
	a     *txAlloc
	view  btree.Tree
	fresh map[page.ID]sealed
	bufs  map[page.ID][]byte
	freed []page.Run // older nodes let go, freed at Join
	puts  []byte     // the puts of its nodes, until Join (see txAlloc.puts)
	// stash[next:] are free pages reserved for one-page nodes, lowest
	// first, and mem the memory to build them in, a page each (see
	// forkStash).
	stash []page.ID
	next  int
	mem   []byte
	dry   bool // a refill found no free page: the rest go through take
}

// forkStash is how many free pages a fork reserves at a time for its
// one-page nodes. Taking a.mu for each node, the two goroutines of a
// random load's merge contended for it at every node: 4% of the
// commit's CPU was spent spinning on the lock.
const forkStash = 32

// stashBytes bounds the memory a stash reserves: what a.mem carves from
// its slabs without a separate allocation.
const stashBytes = 128 << 10

func (f *forkAlloc) Alloc(n int) (page.ID, []byte, error) {
	if n == 1 && f.next == len(f.stash) && !f.dry {
		f.refill()
		// Once a refill finds the free set empty, one per node would
		// take the lock for nothing before take takes it again (the
		// set grows during a merge only by a node the commit built and
		// let go, which take still finds).
		f.dry = len(f.stash) == 0
	}
	var id page.ID
	var buf []byte
	if n == 1 && f.next < len(f.stash) {
		ps := f.a.tx.db.pageSize
		id, buf = f.stash[f.next], f.mem[:ps:ps]
		f.next, f.mem = f.next+1, f.mem[ps:]
	} else {
		var err error
		f.a.mu.Lock()
		id, buf, err = f.a.take(n, &f.view)
		f.a.mu.Unlock()
		if err != nil {
			return 0, nil, err
		}
	}
	f.fresh[id] = sealed{}
	f.bufs[id] = buf
	return id, buf, nil
}

// refill reserves up to forkStash free pages, and their memory, under one
// lock. It never grows the file: with no free page left, nodes take the
// end of the file through take.
func (f *forkAlloc) refill() {
	a := f.a
	ps := a.tx.db.pageSize
	want := max(2, min(forkStash, stashBytes/ps)) // large pages: fewer
	a.mu.Lock()
	defer a.mu.Unlock()
	f.stash, f.next = f.stash[:0], 0
	for len(f.stash) < want {
		id, ok := a.freePages(1)
		if !ok {
			break
		}
		f.stash = append(f.stash, id)
		a.dirtyHi = max(a.dirtyHi, (int64(id)+1)*int64(ps))
	}
	a.written += int64(len(f.stash) * ps)
	f.mem = a.mem(len(f.stash) * ps)
	a.cover(&f.view)
}

// unstash gives the pages the fork reserved and did not use back to the
// free set. Join calls it, after the fork's goroutine is done.
func (f *forkAlloc) unstash() {
	left := f.stash[f.next:]
	for _, id := range left {
		f.a.tx.db.free.freeNow(page.Run{Start: id, Len: 1})
	}
	f.a.written -= int64(len(left) * f.a.tx.db.pageSize)
	f.stash, f.next, f.mem = nil, 0, nil
}

func (f *forkAlloc) Seal(id page.ID, node []byte, used int) { f.fresh[id] = seal(node, used) }

func (f *forkAlloc) Free(id page.ID, n int) {
	r := page.Run{Start: id, Len: uint64(n)}
	if _, ok := f.fresh[id]; ok {
		delete(f.fresh, id)
		delete(f.bufs, id)
		f.a.mu.Lock()
		f.a.tx.db.free.freeNow(r)
		f.a.mu.Unlock()
		return
	}
	// Not one of its own: a node of the committed tree (or, if the
	// halves ever shared one, the other half's), for a's goroutine.
	f.freed = append(f.freed, r)
}

// runPages is how many contiguous free pages a commit reserves at a time
// for its small nodes.
const runPages = 16

// fromRun takes n pages from the run of contiguous free pages the commit
// has reserved, reserving one if it has none. Nodes of one commit then
// sit side by side, so the flush writes a few long extents instead of one
// page here and one there: on the disks measured, each scattered page
// costs the flush tens of microseconds. When no run that long is free,
// nodes take single free pages, lowest first.
func (a *txAlloc) fromRun(n uint64) (page.ID, bool) {
	if n > runPages/4 {
		return 0, false
	}
	if a.run.Len < n {
		a.releaseRun()
		// Never new pages at the end of the file just for contiguity:
		// blocks written before flush faster than fresh ones (no extent
		// to convert or allocate).
		if a.noRuns {
			return 0, false
		}
		r, ok := a.tx.db.free.allocRun(max(n, 4), runPages, a.hint)
		if !ok {
			a.noRuns = true // the free set is scattered: stop looking
			return 0, false
		}
		a.run = r
		a.hint = r.End()
	}
	id := a.run.Start
	a.run.Start += page.ID(n)
	a.run.Len -= n
	return id, true
}

// releaseRun returns the unused part of the reserved run to the free set.
func (a *txAlloc) releaseRun() {
	if a.run.Len > 0 {
		a.tx.db.free.freeNow(a.run)
	}
	a.run = page.Run{}
}

// mem returns n bytes for a node being built, carved from large slabs
// that the DB keeps from one commit to the next.
func (a *txAlloc) mem(n int) []byte {
	const slab = 1 << 20
	if n > slab/4 {
		return make([]byte, n)
	}
	if len(a.cur) < n {
		db := a.tx.db
		if k := len(db.slabs); k > 0 {
			a.cur = db.slabs[k-1]
			db.slabs = db.slabs[:k-1]
		} else {
			a.cur = make([]byte, slab)
		}
		a.slabs = append(a.slabs, a.cur)
	}
	b := a.cur[:n:n]
	a.cur = a.cur[n:]
	return b
}

// runs returns how many runs of contiguous pages the nodes in a.bufs
// make.
func (a *txAlloc) runs() int {
	n := 0
	var next page.ID
	for _, nd := range a.sortedNodes() {
		if n == 0 || nd.id != next {
			n++
		}
		next = nd.id + page.ID(len(nd.buf)/a.tx.db.pageSize)
	}
	return n
}

// sortedNodes returns the nodes in a.bufs, first page and bytes, in page
// order, sorting them once (useLog, writeFresh and the log's
// record all want them, and the writes would otherwise look each node up
// in a.bufs again: 1.5% of a random load's CPU, on the data side's
// serial path); Alloc and Free forget the order if the commit's nodes
// change after (the free list's own nodes).
func (a *txAlloc) sortedNodes() []idBuf {
	if a.order == nil {
		a.order = make([]idBuf, 0, len(a.bufs))
		for id, b := range a.bufs {
			a.order = append(a.order, idBuf{id, b})
		}
		sortNodes(a.order)
	}
	return a.order
}

// writeFresh writes the nodes the commit built to the file with pwritev,
// one call per run of contiguous pages. A failed write leaves the file in
// an unknown state, as a failed flush does.
func (a *txAlloc) writeFresh() error {
	err := a.writeIDs(a.toWrite())
	if err != nil {
		a.tx.db.failed = err
	}
	return err
}

// overlapBytes is the size of a logged commit from which its nodes go to
// the data file on another goroutine while the log record is written and
// flushed. Below it, the goroutine's wake-up costs more than it saves.
// Measured on random loads of 1M keys: 10,000-key commits (30 MB, 7,500
// scattered nodes, about as many pwritev calls) went from 125-140k to
// 181-183k keys/s, 1,000-key commits from 80k to 100k.
const overlapBytes = 512 << 10

// writeBeside writes the commit's nodes to the data file on another
// goroutine while log runs (walAppend: the log record's write and flush),
// then helps with what is left, and returns when all is done. The order
// does not matter for a crash: nothing names the nodes until the meta is
// written after both, and the log record holds them all. If the data
// write fails after the record was flushed, the record is revoked
// (walRevoke), so the commit fails as it would have with the nodes
// written first; either way the DB then refuses writes (ErrFailed) until
// reopened.
func (a *txAlloc) writeBeside(log func() error) error {
	db := a.tx.db
	a.toWrite() // shared by both sides: built before either starts
	var next atomic.Int64
	done := make(chan error, 1)
	go func() { done <- a.writeShare(&next) }()
	lerr := log()
	var merr error
	if lerr == nil {
		merr = a.writeShare(&next)
	}
	werr := <-done
	if werr == nil {
		werr = merr
	}
	switch {
	case werr == nil:
		return lerr
	case lerr != nil:
		return lerr // walAppend has set db.failed
	}
	db.failed = werr
	if rerr := db.walRevoke(); rerr != nil {
		return errors.Join(werr, fmt.Errorf("mapkv: revoke log record %s: %w", db.wal.path, rerr))
	}
	return werr
}

// shareNodes is how many nodes writeShare claims at a time.
const shareNodes = 64

// writeShare writes the nodes left to write (a.rest) in slices of shareNodes
// claimed from next, until none is left: the goroutines that call it
// share the work.
func (a *txAlloc) writeShare(next *atomic.Int64) error {
	for {
		lo := int(next.Add(shareNodes)) - shareNodes
		if lo >= len(a.rest) {
			return nil
		}
		if err := a.writeIDs(a.rest[lo:min(lo+shareNodes, len(a.rest))]); err != nil {
			return err
		}
	}
}

// writeIDs writes nodes (in page order), one pwritev per run of
// contiguous pages. It touches nothing but the file, so several
// goroutines may call it on different nodes (writeShare).
func (a *txAlloc) writeIDs(nodes []idBuf) error {
	db := a.tx.db
	ps := int64(db.pageSize)
	var iov [][]byte
	var start page.ID
	var next page.ID
	flush := func() error {
		if len(iov) == 0 {
			return nil
		}
		err := a.writeAt(start, iov, a.pieces)
		iov = iov[:0]
		return err
	}
	for _, nd := range nodes {
		id, b := nd.id, nd.buf
		if len(iov) > 0 && id != next {
			if err := flush(); err != nil {
				return err
			}
		}
		if len(iov) == 0 {
			start = id
		}
		iov = append(iov, b)
		next = id + page.ID(int64(len(b))/ps)
	}
	return flush()
}

// writeAt writes iov to the file at page start with pwritev (through
// hooks.write in tests), in pieces of at most smallFolio if pieces (a
// direct commit's nodes, a streamed run).
func (a *txAlloc) writeAt(start page.ID, iov [][]byte, pieces bool) error {
	db := a.tx.db
	off := int64(start) * int64(db.pageSize)
	var err error
	if hooks.write != nil {
		n := 0
		for _, b := range iov {
			n += len(b)
		}
		err = hooks.write(db, off, n)
	}
	if err == nil && a.mapped {
		db.mappedWrites++
		err = db.copyMapped(off, iov)
	} else if err == nil && pieces {
		err = writePieces(iov, off, &a.piece, func(v [][]byte, o int64) error {
			db.pieces++
			return pwritev(db.file, v, o)
		})
	} else if err == nil {
		err = pwritev(db.file, iov, off)
	}
	if err != nil {
		return fmt.Errorf("mapkv: write %s: %w", db.path, err)
	}
	return nil
}

// smallFolio: a commit that writes the data file directly (a large one
// whose nodes lie in long runs: a load in key order) writes each run in
// pieces of at most smallFolio bytes, cut at multiples of smallFolio in
// the file. The kernel sizes the page-cache folio it allocates for new
// pages by the write that fills them: one pwritev of a 1 MiB run makes
// one large folio, pieces of 64 KiB make folios of at most 64 KiB.
//
// Small folios are cheaper to make and to write into again. To make: on
// the benchmark's VM (free page reporting, kernel 6.18) large folios come
// from memory the host has taken back and faults in again; a 1M-key load
// in key order took 195-250 ms in 64 KiB pieces against 265-540 ms
// (mostly ~480) in whole runs on the /tmp harness, and 32 KiB pieces were
// no faster than 64 while 128 KiB ones were as slow as whole runs in most
// runs. In the full benchmark, where the other engines' workloads have
// just freed (and the VM reported) their memory, the load gains nothing.
// To write into: ext4 walks every block of a folio for each write into
// it, so the one-page writes of later small commits cost less: one-key
// commits into such a file took 110-137 µs (median) against 120-147 µs,
// run against run. The price is a cold scan (the first one after Open,
// which faults the pages into the mapping): 17.7-19.6 ms per 1M keys in
// key order against 8.8-10.2 ms, since a fault maps at most one small
// folio (with 128 KiB pieces: 12.9-14.3 ms). Commits through the log
// (scattered nodes: random loads) keep whole runs: there the load gained
// about 10% and the cold scan lost 10-15%, which the scan target cannot
// spare.
const smallFolio = 64 << 10

// writePieces writes iov at off with write, in pieces that do not cross a
// multiple of smallFolio; scratch is reused for the pieces' vectors.
func writePieces(iov [][]byte, off int64, scratch *[][]byte, write func(iov [][]byte, off int64) error) error {
	cur := (*scratch)[:0]
	start := off
	for _, b := range iov {
		for len(b) > 0 {
			lim := (off/smallFolio + 1) * smallFolio
			n := min(int64(len(b)), lim-off)
			cur = append(cur, b[:n])
			b, off = b[n:], off+n
			if off == lim {
				if err := write(cur, start); err != nil {
					return err
				}
				cur, start = cur[:0], off
			}
		}
	}
	*scratch = cur[:0]
	if len(cur) == 0 {
		return nil
	}
	return write(cur, start)
}

func (a *txAlloc) Free(id page.ID, n int) {
	r := page.Run{Start: id, Len: uint64(n)}
	if a.forked {
		a.mu.Lock()
		defer a.mu.Unlock()
	}
	if _, ok := a.fresh[id]; ok {
		// Written by this commit and never visible to anyone: reuse now.
		delete(a.fresh, id)
		delete(a.bufs, id)
		a.order, a.rest = nil, nil
		a.unstream(id)
		a.tx.db.free.freeNow(r)
		return
	}
	a.tx.db.free.addPending(a.tx.meta.TxID+1, r)
}

// Seal seals a finished node and records its checksum (the commit
// record) and how much of it the log stores.
func (a *txAlloc) Seal(id page.ID, node []byte, used int) {
	a.fresh[id] = seal(node, used)
	a.stream(id, node)
}

// sealed is what a commit knows of a node it wrote: its checksum, and
// the bytes before its zero tail (0 until sealed).
type sealed struct {
	sum  uint64
	used uint32
	// puts, if not 0, is where in the allocator's puts buffer (plus one)
	// the payload lies that logs the node as puts (see walputs.go).
	puts uint32
}

// seal seals node (page.Seal) and returns what the commit keeps of it.
func seal(node []byte, used int) sealed { return sealed{sum: page.Seal(node), used: uint32(used)} }

// publish makes meta the state new transactions read. Called by the writer.
func (db *DB) publish(meta page.Meta) {
	st := &state{meta: meta, fileSize: db.fileSize, pendingBy: map[page.TxID]uint64{}}
	if db.free != nil {
		st.freeN = db.free.nfree
		st.pendingN = db.free.nheld
		for t, rs := range db.free.pending {
			for _, r := range rs {
				st.pendingBy[t] += r.Len
				st.pendingN += r.Len
			}
		}
	}
	db.stateMu.Lock()
	st.m = db.state.m
	db.state = st
	db.stateMu.Unlock()
}

// dropFreelist is writeFreelist for a commit that defers its free list:
// the free-list nodes the previous meta names are released (nothing will
// name them), the in-memory list forgets them, and the rest of the
// commit's reserved run goes back to the free set.
func (tx *Tx) dropFreelist(a *txAlloc) error {
	fl := tx.db.free
	if id := tx.meta.Freelist; id != 0 {
		n, err := tx.tree.Node(id)
		if err != nil {
			return err
		}
		a.Free(id, len(n)/tx.db.pageSize)
		for _, fc := range fl.chunks {
			if fc.ID != 0 {
				a.Free(fc.ID, 1)
			}
		}
		// Pages a later commit frees or allocates mark their chunks;
		// the others' bits are nowhere on disk now.
		fl.forget(max(uint64(a.hwm), tx.meta.PgCount))
	}
	a.releaseRun()
	return nil
}

// writeFreelist writes the free-list chunks whose bits changed and a new
// index, and returns the index node's id. Writing them allocates and frees
// pages, which changes more bits: it repeats until no chunk is left
// unwritten (each chunk is written once, so it ends).
func (tx *Tx) writeFreelist(a *txAlloc, txid page.TxID) (page.ID, error) {
	db := tx.db
	fl := db.free
	ps := db.pageSize
	if tx.meta.Freelist != 0 {
		n, err := tx.tree.Node(tx.meta.Freelist)
		if err != nil {
			return 0, err
		}
		a.Free(tx.meta.Freelist, len(n)/ps)
	}
	// A chunk node whose bits do not change is not rewritten, so one that
	// sits high in a file that is now mostly free would pin the file's
	// tail for ever: move it (down, lowest free page first).
	if free := fl.nfree + fl.pendingCount(); int64(free)*int64(ps) >= db.opts.ShrinkThreshold && free <= uint64(a.hwm) {
		live := uint64(a.hwm) - free
		for c, fc := range fl.chunks {
			if fc.ID != 0 && uint64(fc.ID) > 2*live {
				fl.markChunk(uint64(c))
			}
		}
	}
	nchunks := func() uint64 { return page.Chunks(uint64(a.hwm), ps) }
	written := map[uint64]page.FreeChunk{}
	bufs := map[uint64][]byte{}
	var idxID page.ID
	var idxBuf []byte
	idxPages := 0
	for {
		progress := false
		var todo []uint64
		for c := range fl.dirty {
			if _, ok := written[c]; !ok && c < nchunks() {
				todo = append(todo, c)
			}
		}
		slices.Sort(todo)
		for _, c := range todo {
			if c < uint64(len(fl.chunks)) && fl.chunks[c].ID != 0 {
				a.Free(fl.chunks[c].ID, 1)
			}
			id, buf, err := a.Alloc(1)
			if err != nil {
				return 0, err
			}
			written[c] = page.FreeChunk{ID: id, Birth: txid}
			bufs[c] = buf
			progress = true
		}
		// The rest of the reserved run is free again: that changes bits
		// too, so it happens inside the loop.
		if a.run.Len > 0 {
			a.releaseRun()
			progress = true
		}
		if need := page.Pages(page.FreeIndexSize(int(nchunks())), ps); need != idxPages {
			if idxPages > 0 {
				a.Free(idxID, idxPages)
			}
			id, buf, err := a.Alloc(need)
			if err != nil {
				return 0, err
			}
			idxID, idxBuf, idxPages = id, buf, need
			progress = true
		}
		if !progress {
			break
		}
	}
	// Chunks past the end (the file was cut): their nodes are no longer
	// named by the index.
	n := nchunks()
	for c := n; c < uint64(len(fl.chunks)); c++ {
		if fl.chunks[c].ID != 0 {
			a.Free(fl.chunks[c].ID, 1)
		}
	}
	index := make([]page.FreeChunk, n)
	copy(index, fl.chunks)
	bits := page.ChunkBits(ps)
	for c, fc := range written {
		buf := bufs[c]
		page.PutHeader(buf, fc.ID, txid, page.TypeFreeChunk, 0, 0)
		bm := page.PutFreeChunk(buf, c, ps)
		lo := page.ID(c * bits)
		fl.bitmap(bm, lo, min(lo+page.ID(bits), a.hwm))
		used := page.FreeBody + 8 + len(bm)
		clear(buf[used:])
		a.Seal(fc.ID, buf, used)
		index[c] = fc
	}
	page.PutHeader(idxBuf, idxID, txid, page.TypeFreelist, uint32(idxPages-1), 0)
	page.PutFreeIndex(idxBuf, ps, index)
	used := page.FreeIndexSize(len(index))
	clear(idxBuf[used:])
	a.Seal(idxID, idxBuf, used)
	fl.chunks = index
	fl.clean()
	return idxID, nil
}
