package mapkv

import (
	"errors"
	"fmt"

	"os"
	"sync"
	"sync/atomic"

	"github.com/mapkv/mapkv/btree"
	"github.com/mapkv/mapkv/mmap"
	"github.com/mapkv/mapkv/page"
)

// Limits on keys and values.
const (
	MaxKeySize   = page.MaxKeySize   // longest key, in bytes
	MaxValueSize = page.MaxValueSize // longest value, in bytes
)

// DB is an open database file. It is safe for concurrent use: any number
// of read transactions run beside at most one write transaction, and
// neither waits for the other.
type DB struct {
	path     string
	opts     Options
	file     *os.File
	pageSize int

	// writeMu serializes write transactions; the fields below it belong to
	// the writer.
	writeMu sync.Mutex
	rw      *mmap.Region // read-write mapping (Options.WriteMap, and small logged commits: see mapSmallWrites)
	slabs   [][]byte     // memory for the pages a commit builds, kept for the next
	// Memory write transactions pass on to the next, under writeMu: arena
	// chunks (Tx.newChunk), pending-set log arrays (pendingSet.release)
	// and the mutation slice Bucket.flush hands to Writer.Apply.
	chunks [][]byte
	logs   [][]change
	muts   []btree.Mutation
	// The maps of a commit's nodes (txAlloc.fresh and bufs), emptied
	// after each commit and kept for the next, under writeMu.
	freshIDs  map[page.ID]sealed
	freshBufs map[page.ID][]byte
	// The same for the nodes of the other half of a split merge
	// (txAlloc.Fork), merged into them at Join.
	forkIDs  map[page.ID]sealed
	forkBufs map[page.ID][]byte
	splits   int // merges split so far (for tests)
	// The buffers of the puts that log leaves (txAlloc.puts and
	// forkAlloc.puts), kept from commit to commit.
	putsBuf, forkPuts []byte

	fileSize int64
	free     *freelist
	// trustFrom is the first txid this handle commits: the nodes of its
	// commits were built by its writers, and later commits read them
	// without verifying them again (btree.Writer.TrustFrom).
	trustFrom    page.TxID
	trustedReads int   // nodes the writer read on trust (for tests)
	failed       error // a flush failed: refuse writes until reopened
	wal          *wal  // the write-ahead log (nil: commits flush the data file)
	// A writeback started by kickWriteback is running; Close waits for it.
	kicking atomic.Bool
	kickWG  sync.WaitGroup
	// The warm-up (warm.go) is running; Close stops it and waits.
	warmWG    sync.WaitGroup
	warmStop  atomic.Bool
	warmReads int // pages the warm-up read (for tests)
	warmPanic any // a panic the warm-up recovered from (for tests)
	kicks     int // writebacks started so far (for tests)
	pieces    int // pwritev calls of writePieces (direct commits, streamed runs; for tests)
	// streamedBytes counts node bytes written during merges (stream.go;
	// for tests).
	streamedBytes int64
	// earlyCheckpoint's flushes, and checkpoints they spared a flush
	// (for tests).
	earlySyncs, earlyCovered int
	// walPuts counts the nodes logged as puts (see walputs.go; for
	// tests).
	walPuts int
	// walBranchPuts counts those that were branches.
	walBranchPuts int
	// walHolds counts the pages held for such puts (see holdable), and
	// mappedWrites the commits that wrote through the writable mapping
	// (mapwrite.go; both for tests).
	walHolds, mappedWrites int
	// walAsync counts the records written asynchronously
	// (walAppendBeside).
	walAsync int

	// stateMu guards the published state, mapping reference counts and
	// the reader table. It is held only for a few instructions.
	stateMu sync.Mutex
	state   *state
	readers readerTable
	closed  bool

	batch batcher
	lf    *lockFile // the shared reader table (nil: single-process locking)

	fallback string // why the newest meta was not used, if it was not
	freeLost string // why Open could not rebuild a deferred free list
	stats    counters
}

// mapping is a read-only mapping shared by the transactions that began on
// it. It is unmapped when it is no longer current and its last
// transaction ends, so growing the reservation never waits for readers.
type mapping struct {
	region *mmap.Region
	refs   int // transactions using it, plus one while it is current
}

// state is the latest committed meta and the mapping to read it through.
type state struct {
	meta page.Meta
	m    *mapping
	// figures for Stats, as of this commit
	freeN, pendingN uint64
	pendingBy       map[page.TxID]uint64
	fileSize        int64
}

type counters struct {
	txN, writeN, commitN, syncN, remapN, shrinkN atomic.Int64
}

// Open opens the database at path, creating it if it does not exist
// (unless opts.ReadOnly). A nil opts means defaults.
func Open(path string, opts *Options) (*DB, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	db := &DB{path: path, opts: o}
	flag := os.O_RDWR | os.O_CREATE
	if o.ReadOnly {
		flag = os.O_RDONLY
	}
	if db.file, err = os.OpenFile(path, flag, o.FileMode); err != nil {
		return nil, fmt.Errorf("mapkv: open: %w", err)
	}
	if err := db.lock(); err != nil {
		db.file.Close()
		return nil, err
	}
	if err := guard(db.open); err != nil {
		db.unmapAll()
		db.unlock()
		db.file.Close()
		return nil, err
	}
	if db.lf != nil && !o.ReadOnly {
		db.lf.publish(db.state.meta.TxID)
	}
	db.startWarm()
	return db, nil
}

// lock takes the locks that let processes share the file. On Linux, the
// lock file's table admits one writer process beside any number of reader
// processes (see lockfile_linux.go); elsewhere, and for a read-only opener
// that cannot write the lock file, the data file's own lock is used.
func (db *DB) lock() error {
	o := &db.opts
	if sharedReaders {
		lf, err := openLockFile(db.path+"-lock", o.FileMode, o.MaxReaders)
		switch {
		case err == nil:
			if !o.ReadOnly {
				if err := lf.lockWriter(o.Timeout); err != nil {
					lf.close()
					if err == errLockBusy {
						return fmt.Errorf("%w: %s is open for writing by another process", ErrTimeout, db.path)
					}
					return fmt.Errorf("mapkv: lock: %w", err)
				}
			}
			db.lf = lf
			return nil
		case err == errNoLockFile && o.ReadOnly:
			// A reader the writer cannot see in the table: while it holds
			// this lock, the writer reuses no page.
			if err := lockLegacy(db.file); err != nil {
				return fmt.Errorf("mapkv: lock: %w", err)
			}
			return nil
		default:
			return err
		}
	}
	if err := mmap.Lock(db.file, !o.ReadOnly, o.Timeout); err != nil {
		if errors.Is(err, mmap.ErrLocked) {
			return fmt.Errorf("%w: %s", ErrTimeout, db.path)
		}
		return fmt.Errorf("mapkv: lock: %w", err)
	}
	return nil
}

func (db *DB) unlock() {
	if db.lf != nil {
		db.lf.close()
		db.lf = nil
	}
	mmap.Unlock(db.file)
}

func (db *DB) open() error {
	fi, err := db.file.Stat()
	if err != nil {
		return fmt.Errorf("mapkv: stat: %w", err)
	}
	if fi.Size() == 0 {
		if db.opts.ReadOnly {
			return corrupt(db.path, errors.New("empty file"))
		}
		if err := db.create(); err != nil {
			return err
		}
		if fi, err = db.file.Stat(); err != nil {
			return fmt.Errorf("mapkv: stat: %w", err)
		}
	}
	db.fileSize = fi.Size()
	metas, ps, err := db.readMetas()
	if err != nil {
		return err
	}
	if !db.opts.ReadOnly {
		// Commits the log holds that the data file may have lost go
		// back in before anything reads it.
		if n, err := db.replayWAL(metas, ps); err != nil {
			return err
		} else if n > 0 {
			if fi, err = db.file.Stat(); err != nil {
				return fmt.Errorf("mapkv: stat: %w", err)
			}
			db.fileSize = fi.Size()
			if metas, ps, err = db.readMetas(); err != nil {
				return err
			}
		}
	} else if (db.lf == nil || !db.lf.writerAlive()) && walPending(db.path) {
		// A live writer has every logged commit in the page cache; with
		// none, only replaying the log (which needs write access) makes
		// the data file whole.
		return fmt.Errorf("%w: %s holds commits not yet in %s; open it read-write once to replay them", ErrRecoveryNeeded, walPath(db.path), db.path)
	}
	db.pageSize = ps
	reserve := db.opts.MaxSize
	if min := 2 * db.fileSize; reserve < min {
		reserve = min
	}
	reserve = roundUp(reserve, int64(ps))
	ro, err := mmap.Map(db.file, reserve, false)
	if err != nil {
		return fmt.Errorf("mapkv: %w", err)
	}
	m := &mapping{region: ro, refs: 1}
	db.state = &state{m: m}
	var meta page.Meta
	var free freeState
	if db.lf != nil && db.opts.ReadOnly && db.lf.txid() != 0 {
		// A writer process is (or was) publishing commits: pin the one it
		// published last and read that. Its pages cannot be reused while
		// the slot names it, which verifying the file's newest meta
		// without a pin could not promise.
		s, err := db.lf.acquire()
		if err != nil {
			return err
		}
		meta, err = db.pinLatest(s, page.Meta{})
		db.lf.release(s)
		if err != nil {
			return err
		}
		// Read only for Stats: a damaged free list does not stop a reader.
		free.runs, free.chunks, _ = db.loadFreelist(meta, ro.Data)
	} else if meta, free, err = db.chooseMeta(metas, ro.Data); err != nil {
		return err
	}
	deferred := meta.Flags&page.MetaFreeDeferred != 0
	if deferred && !db.opts.ReadOnly {
		// The last commit left the free list to the log (and the log
		// is replayed by now): every page it cannot reach is free. A
		// damaged node hides which pages its subtree holds, and those
		// may still be salvaged: then no page is taken as free (the file
		// grows instead, and Check lists the damage and the pages left
		// out), as an Open of a file whose list was written would not
		// stop at the damage either.
		if free.runs, err = db.rebuildFree(meta, ro.Data); err != nil {
			free.runs = nil
			db.freeLost = fmt.Sprintf("free list of tx %d not rebuilt, no page is reused: %v", meta.TxID, err)
		}
	}
	db.state.meta = meta
	db.state.fileSize = db.fileSize
	if db.opts.ReadOnly {
		for _, r := range free.runs {
			db.state.freeN += r.Len
		}
		return nil
	}
	if db.opts.WriteMap || (mapSmallWrites && db.logOn()) {
		if db.rw, err = mmap.Map(db.file, reserve, true); err != nil {
			return fmt.Errorf("mapkv: %w", err)
		}
	}
	// The chosen meta may have reached the page cache but not the disk
	// (the process that wrote it crashed before its flush). Make it durable
	// before building on it, or a power cut could leave neither meta valid.
	if err := db.openSync(); err != nil {
		return fmt.Errorf("mapkv: fdatasync %s: %w", db.path, err)
	}
	db.free = newFreelist(db.pageSize)
	db.free.load(free.runs, free.chunks)
	db.trustFrom = meta.TxID + 1
	if deferred {
		db.free.forget(meta.PgCount)
	}
	db.publish(meta)
	if db.logOn() {
		return db.openWAL()
	}
	// Not using the log: one left by an earlier writer (replayed above,
	// or empty) must not outlive commits that bypass it.
	removeWAL(db.path)
	return nil
}

// logOn reports whether small commits go through the write-ahead log
// (wal.go).
func (db *DB) logOn() bool { return !db.opts.NoSync && !db.opts.WriteMap && db.opts.WALSize > 0 }

// openSync flushes the data file for Open (through hooks.openSync in
// tests).
func (db *DB) openSync() error {
	real := func() error { return mmap.Datasync(db.file) }
	if hooks.openSync != nil {
		return hooks.openSync(db, real)
	}
	return real()
}

// create writes the two meta pages of a new, empty database.
func (db *DB) create() error {
	ps := db.opts.PageSize
	buf := make([]byte, 2*ps)
	for slot := 0; slot < 2; slot++ {
		m := page.Meta{PageSize: uint32(ps), PgCount: 2}
		page.PutMeta(buf[slot*ps:], page.ID(slot), &m)
	}
	if _, err := db.file.WriteAt(buf, 0); err != nil {
		return fmt.Errorf("mapkv: init %s: %w", db.path, err)
	}
	size := roundUp(max(db.opts.InitialSize, int64(2*ps)), int64(ps))
	if err := mmap.Grow(db.file, size); err != nil {
		return fmt.Errorf("mapkv: init: %w", err)
	}
	return nil
}

type metaSlot struct {
	meta page.Meta
	err  error
}

// readMetas reads both meta slots with pread (before anything is mapped)
// and returns them with the file's page size.
func (db *DB) readMetas() ([2]metaSlot, int, error) {
	var slots [2]metaSlot
	buf := make([]byte, page.MetaSize)
	if _, err := db.file.ReadAt(buf, 0); err != nil {
		return slots, 0, corrupt(db.path, fmt.Errorf("reading meta 0: %w", err))
	}
	slots[0].meta, slots[0].err = page.DecodeMeta(buf, 0)
	ps := 0
	if slots[0].err == nil {
		ps = int(slots[0].meta.PageSize)
	}
	// The second meta sits one page in; if the first is damaged, try every
	// page size the format allows.
	sizes := []int{ps}
	if ps == 0 {
		for s := page.MinPageSize; s <= page.MaxPageSize; s *= 2 {
			sizes = append(sizes, s)
		}
	}
	slots[1].err = errors.New("meta 1: unreadable")
	for _, s := range sizes {
		if _, err := db.file.ReadAt(buf, int64(s)); err != nil {
			continue
		}
		m, err := page.DecodeMeta(buf, 1)
		if err == nil && int(m.PageSize) == s {
			slots[1] = metaSlot{meta: m}
			ps = s
			break
		}
		if s == ps {
			slots[1].err = err
		}
	}
	if ps == 0 {
		return slots, 0, corrupt(db.path, fmt.Errorf("no valid meta page: %v; %v", slots[0].err, slots[1].err))
	}
	if slots[0].err == nil && slots[1].err == nil && slots[0].meta.PageSize != slots[1].meta.PageSize {
		return slots, 0, corrupt(db.path, errors.New("meta pages disagree on the page size"))
	}
	if db.fileSize < int64(2*ps) {
		return slots, 0, corrupt(db.path, fmt.Errorf("file of %d bytes is shorter than its two meta pages", db.fileSize))
	}
	return slots, ps, nil
}

// chooseMeta picks the newest meta whose commit verifies: its pages lie in
// the file, and every node its transaction wrote carries that
// transaction's id and a valid checksum. A meta failing that is a commit
// whose flush did not complete; the older meta was durable before it
// began, and its pages were not touched (copy-on-write).
//
// It returns the chosen meta's free list too, which verifying it read.
func (db *DB) chooseMeta(slots [2]metaSlot, data []byte) (page.Meta, freeState, error) {
	order := []int{0, 1}
	if slots[1].err == nil && (slots[0].err != nil || slots[1].meta.TxID > slots[0].meta.TxID) {
		order = []int{1, 0}
	}
	// fix(reliability): report a slot that does not decode whichever
	// place it takes in the order; it sorted last, so a torn newest meta
	// made Open use the older one without saying so in Stats.MetaFallback.
	var problems []error
	for _, s := range order {
		if slots[s].err != nil {
			problems = append(problems, slots[s].err)
		}
	}
	for i, s := range order {
		if slots[s].err != nil {
			continue
		}
		free, err := db.verifyMeta(&slots[s].meta, data)
		if err == nil {
			if i > 0 || len(problems) > 0 {
				db.fallback = fmt.Sprintf("using meta %d (tx %d): %v", s, slots[s].meta.TxID, errors.Join(problems...))
			}
			return slots[s].meta, free, nil
		}
		problems = append(problems, fmt.Errorf("meta %d (tx %d): %w", s, slots[s].meta.TxID, err))
	}
	return page.Meta{}, freeState{}, corrupt(db.path, errors.Join(problems...))
}

// freeState is a meta's free list as read from the file.
type freeState struct {
	runs   []page.Run
	chunks []page.FreeChunk
}

// verifyMeta checks that m's pages lie in the file, that its free list
// reads (returning it) and that its commit record verifies.
func (db *DB) verifyMeta(m *page.Meta, data []byte) (freeState, error) {
	// fix(reliability): compare page counts; PgCount*pageSize overflowed
	// for a huge PgCount and let Open accept the meta (Check then
	// panicked in make).
	var free freeState
	if m.PgCount > uint64(db.fileSize/int64(db.pageSize)) {
		return free, fmt.Errorf("%w: meta names %d pages but the file holds %d", page.ErrFormat, m.PgCount, db.fileSize/int64(db.pageSize))
	}
	t := btree.Tree{Data: data, PageSize: db.pageSize, PgCount: m.PgCount}
	var err error
	if free.runs, free.chunks, err = db.loadFreelist(*m, data); err != nil {
		return free, err
	}
	if m.Flags&page.MetaSynced != 0 || m.CommitPages == 0 && m.CommitHash == 0 {
		return free, nil
	}
	var count, hash uint64
	err = t.WalkFresh(m.Root, m.TxID, func(id page.ID, n []byte) {
		count++
		hash = page.CommitMix(hash, id, page.Checksum(n))
	})
	if err != nil {
		return free, err
	}
	if m.FreeTx == m.TxID && m.Freelist != 0 {
		// loadFreelist verified the index and every chunk node.
		n, _ := t.Node(m.Freelist)
		count++
		hash = page.CommitMix(hash, m.Freelist, page.Checksum(n))
		for _, fc := range free.chunks {
			if fc.ID != 0 && fc.Birth == m.TxID {
				cn, _ := t.Node(fc.ID)
				count++
				hash = page.CommitMix(hash, fc.ID, page.Checksum(cn))
			}
		}
	}
	if count != m.CommitPages || hash != m.CommitHash {
		return free, fmt.Errorf("%w: commit record names %d pages, found %d valid ones", page.ErrFormat, m.CommitPages, count)
	}
	return free, nil
}

// rebuildFree returns the free pages of meta m, which names no free list
// (page.MetaFreeDeferred): the pages below its page count that no tree
// reaches, found by walking every tree (each node verified). A page
// reached twice is an error.
func (db *DB) rebuildFree(m page.Meta, data []byte) ([]page.Run, error) {
	t := btree.Tree{Data: data, PageSize: db.pageSize, PgCount: m.PgCount}
	used := make([]uint64, (m.PgCount+63)/64)
	used[0] |= 3 // the metas
	var dup error
	err := t.WalkAll(m.Root, func(id page.ID, n []byte) {
		for p := uint64(id); p < uint64(id)+uint64(len(n)/db.pageSize); p++ {
			if used[p/64]&(1<<(p%64)) != 0 && dup == nil {
				dup = fmt.Errorf("%w: page %d is reachable twice", page.ErrFormat, p)
			}
			used[p/64] |= 1 << (p % 64)
		}
	})
	if err == nil {
		err = dup
	}
	if err != nil {
		return nil, err
	}
	var runs []page.Run
	for p := uint64(2); p < m.PgCount; {
		if used[p/64] == ^uint64(0) && p%64 == 0 {
			p += 64
			continue
		}
		if used[p/64]&(1<<(p%64)) != 0 {
			p++
			continue
		}
		start := p
		for p < m.PgCount && used[p/64]&(1<<(p%64)) == 0 {
			p++
		}
		runs = append(runs, page.Run{Start: page.ID(start), Len: p - start})
	}
	return runs, nil
}

// loadFreelist reads the free-list index and chunk nodes of meta m,
// verifying each, and returns the free runs and the index.
func (db *DB) loadFreelist(m page.Meta, data []byte) ([]page.Run, []page.FreeChunk, error) {
	if m.Freelist == 0 {
		return nil, nil, nil
	}
	t := btree.Tree{Data: data, PageSize: db.pageSize, PgCount: m.PgCount}
	n, err := t.Node(m.Freelist)
	if err != nil {
		return nil, nil, err
	}
	if err := page.Verify(n, m.Freelist, m.FreeTx); err != nil {
		return nil, nil, err
	}
	chunks, err := page.DecodeFreeIndex(n, m.PgCount, db.pageSize)
	if err != nil {
		return nil, nil, err
	}
	var runs []page.Run
	for c, fc := range chunks {
		if fc.ID == 0 {
			continue
		}
		cn, err := t.Node(fc.ID)
		if err != nil {
			return nil, nil, err
		}
		if err := page.Verify(cn, fc.ID, fc.Birth); err != nil {
			return nil, nil, err
		}
		bm, err := page.FreeChunkBitmap(cn, uint64(c), db.pageSize)
		if err != nil {
			return nil, nil, err
		}
		base := page.ID(uint64(c) * page.ChunkBits(db.pageSize))
		if err := page.BitmapRuns(bm, base, m.PgCount, func(r page.Run) { runs = append(runs, r) }); err != nil {
			return nil, nil, err
		}
	}
	return runs, chunks, nil
}

// Path returns the path the database was opened with.
func (db *DB) Path() string { return db.path }

// Close waits for the open write transaction, if any, closes the file and
// unmaps it. Read transactions still open keep their mapping until they
// end. Close is idempotent. On a writable handle with much free space,
// Close first shrinks the file (see Shrink).
func (db *DB) Close() error {
	db.stopWarm()
	db.shrinkOnClose()
	db.writeFreeOnClose()
	db.writeMu.Lock()
	defer db.writeMu.Unlock()
	db.stateMu.Lock()
	if db.closed {
		db.stateMu.Unlock()
		return nil
	}
	db.stateMu.Unlock()
	db.closeWAL()
	db.stateMu.Lock()
	db.closed = true
	st := db.state
	db.stateMu.Unlock()
	if st != nil {
		db.release(st.m)
	}
	var err error
	if db.rw != nil {
		err = db.rw.Unmap()
		db.rw = nil
	}
	db.unlock()
	db.kickWG.Wait()
	if cerr := db.file.Close(); err == nil {
		err = cerr
	}
	return err
}

// unmapAll undoes a half-done open.
func (db *DB) unmapAll() {
	if db.state != nil && db.state.m != nil {
		db.state.m.region.Unmap()
	}
	if db.rw != nil {
		db.rw.Unmap()
	}
}

// release drops one reference to m, unmapping it after the last.
func (db *DB) release(m *mapping) {
	db.stateMu.Lock()
	m.refs--
	last := m.refs == 0
	db.stateMu.Unlock()
	if last {
		m.region.Unmap()
	}
}

// Begin starts a transaction. Any number of read transactions may be open
// at once, beside one write transaction: a second Begin(true) waits for
// the first to end. Every transaction must end with Commit or Rollback; an
// open read transaction keeps the pages it sees from being reused.
func (db *DB) Begin(writable bool) (*Tx, error) {
	if writable {
		return db.beginWrite()
	}
	return db.beginRead()
}

func (db *DB) beginRead() (*Tx, error) {
	if db.lf != nil && db.opts.ReadOnly {
		return db.beginSharedRead()
	}
	db.stateMu.Lock()
	if db.closed {
		db.stateMu.Unlock()
		return nil, ErrDatabaseNotOpen
	}
	st := db.state
	st.m.refs++
	db.readers.add(st.meta.TxID, st.meta.PgCount)
	db.stateMu.Unlock()
	db.stats.txN.Add(1)
	tx := &Tx{db: db, meta: st.meta, m: st.m}
	tx.init()
	return tx, nil
}

// beginSharedRead starts a read transaction in a read-only process beside
// a writer process: it pins the latest published commit in a reader slot
// of the lock file (no system call once the handle owns a slot) and reads
// that commit's meta from the mapping if it is newer than the last seen.
func (db *DB) beginSharedRead() (*Tx, error) {
	db.stateMu.Lock()
	closed := db.closed
	cur := db.state
	db.stateMu.Unlock()
	if closed {
		return nil, ErrDatabaseNotOpen
	}
	s, err := db.lf.acquire()
	if err != nil {
		return nil, err
	}
	var meta page.Meta
	err = guard(func() error {
		var err error
		meta, err = db.pinLatest(s, cur.meta)
		return err
	})
	if err != nil {
		db.lf.release(s)
		return nil, err
	}
	db.stateMu.Lock()
	if db.closed {
		db.stateMu.Unlock()
		db.lf.release(s)
		return nil, ErrDatabaseNotOpen
	}
	st := db.state
	if st.meta.TxID != meta.TxID {
		if int64(meta.PgCount)*int64(db.pageSize) > int64(len(st.m.region.Data)) {
			db.stateMu.Unlock()
			if err := db.remapReader(meta); err != nil {
				db.lf.release(s)
				return nil, err
			}
			db.stateMu.Lock()
		}
		ns := *db.state
		ns.meta = meta
		db.state = &ns
		st = &ns
	}
	st.m.refs++
	db.readers.add(meta.TxID, meta.PgCount)
	db.stateMu.Unlock()
	db.stats.txN.Add(1)
	tx := &Tx{db: db, meta: meta, m: st.m, slot: s + 1}
	tx.init()
	return tx, nil
}

// pinLatest announces in slot s the latest published txid and returns its
// meta, retrying while the writer moves on underneath (the LMDB protocol:
// announce, then check that the published txid did not change).
func (db *DB) pinLatest(s int, cached page.Meta) (page.Meta, error) {
	ps := int64(db.pageSize)
	for try := 0; try < 1000; try++ {
		t := db.lf.txid()
		if t == 0 {
			t = cached.TxID
		}
		db.lf.announce(s, t)
		if now := db.lf.txid(); now != 0 && now != t {
			continue
		}
		if t == cached.TxID {
			return cached, nil
		}
		// Read the meta of t from the mapping: its slot holds t unless
		// the writer has since committed t+2 over it (then retry).
		fi, err := db.file.Stat()
		if err != nil {
			return page.Meta{}, fmt.Errorf("mapkv: stat: %w", err)
		}
		slot := int64(t % 2)
		data := db.stateData()
		if (slot+1)*ps > fi.Size() || (slot+1)*ps > int64(len(data)) {
			return page.Meta{}, corrupt(db.path, errors.New("meta pages beyond the end of the file"))
		}
		m, err := page.DecodeMeta(data[slot*ps:slot*ps+page.MetaSize], page.ID(slot))
		if err != nil || m.TxID != t {
			continue
		}
		if int64(m.PgCount)*ps > fi.Size() {
			return page.Meta{}, corrupt(db.path, fmt.Errorf("commit %d names %d pages, the file holds %d", t, m.PgCount, fi.Size()/ps))
		}
		return m, nil
	}
	return page.Meta{}, fmt.Errorf("mapkv: %s: could not pin a consistent state (writer too fast?)", db.path)
}

func (db *DB) stateData() []byte {
	db.stateMu.Lock()
	defer db.stateMu.Unlock()
	return db.state.m.region.Data
}

// remapReader maps a larger range for a read-only process whose file grew
// past its reservation; transactions on the old mapping keep it.
func (db *DB) remapReader(meta page.Meta) error {
	size := int64(meta.PgCount) * int64(db.pageSize)
	ro, err := mmap.Map(db.file, roundUp(2*size, int64(db.pageSize)), false)
	if err != nil {
		return fmt.Errorf("mapkv: remap: %w", err)
	}
	db.stateMu.Lock()
	old := db.state
	ns := *old
	ns.m = &mapping{region: ro, refs: 1}
	db.state = &ns
	db.stateMu.Unlock()
	db.release(old.m)
	db.stats.remapN.Add(1)
	return nil
}

// oldestReader returns the smallest txid any reader, in this process or
// another, reads; ok is false if there are none. A reader that cannot be
// seen (legacy) makes it return 0.
func (db *DB) oldestReader() (page.TxID, bool) {
	db.stateMu.Lock()
	t, ok := db.readers.oldest()
	db.stateMu.Unlock()
	if db.lf != nil {
		if o, ok2 := db.lf.oldest(); ok2 && (!ok || o < t) {
			t, ok = o, true
		}
		if legacyReader(db.file) {
			return 0, true
		}
	}
	return t, ok
}

func (db *DB) beginWrite() (*Tx, error) { return db.beginWriteTx(false) }

// beginWriteTx starts a write transaction. For a rewrite of the last
// commit (writeFreeOnClose) the pages that commit freed stay pending:
// they are live in the older meta, its fallback, which a rewrite keeps.
func (db *DB) beginWriteTx(rewrite bool) (*Tx, error) {
	if db.opts.ReadOnly {
		return nil, ErrDatabaseReadOnly
	}
	db.writeMu.Lock()
	db.stateMu.Lock()
	if db.closed {
		db.stateMu.Unlock()
		db.writeMu.Unlock()
		return nil, ErrDatabaseNotOpen
	}
	if db.failed != nil {
		db.stateMu.Unlock()
		db.writeMu.Unlock()
		return nil, fmt.Errorf("%w: %v", ErrFailed, db.failed)
	}
	st := db.state
	st.m.refs++
	db.stateMu.Unlock()
	oldest, ok := db.oldestReader()
	if !ok {
		oldest = st.meta.TxID
	}
	// Pages freed by transaction t were live in t-1: free once every
	// reader reads t or later.
	if rewrite {
		oldest = min(oldest, st.meta.TxID-1)
	}
	db.free.release(oldest)
	db.stats.writeN.Add(1)
	tx := &Tx{db: db, meta: st.meta, m: st.m, writable: true}
	tx.init()
	return tx, nil
}

// View runs fn in a read transaction and returns its error. The
// transaction ends when fn returns: slices obtained inside fn must not be
// used after. A fault in the mapping (the file cut short by another
// process) is returned as an error wrapping ErrCorrupt.
func (db *DB) View(fn func(*Tx) error) error {
	if fn == nil {
		// fix(reliability): a nil function panicked (as Batch's does not)
		return fmt.Errorf("%w: nil function", ErrInvalidOptions)
	}
	tx, err := db.Begin(false)
	if err != nil {
		return err
	}
	return tx.run(fn)
}

// Update runs fn in a write transaction and commits it if fn returns nil;
// otherwise it rolls back and returns fn's error. If fn panics, the
// transaction is rolled back and the panic continues.
func (db *DB) Update(fn func(*Tx) error) error {
	if fn == nil {
		// fix(reliability): a nil function panicked (as Batch's does not)
		return fmt.Errorf("%w: nil function", ErrInvalidOptions)
	}
	tx, err := db.Begin(true)
	if err != nil {
		return err
	}
	return tx.run(fn)
}

// grow extends the file to hold at least need bytes, doubling it up to
// GrowStep at a time. Past the reservation it maps a larger range.
// Called by the writer only.
func (db *DB) grow(need int64, tx *Tx) error {
	if need <= db.fileSize {
		return nil
	}
	// Room beyond what is needed, so that a file growing page by page is
	// not extended at every commit; shrink leaves the same room, so a
	// commit never cuts what the one before it added.
	size := roundUp(need+db.headroom(need), int64(db.pageSize))
	if size > db.reserved() {
		if err := db.remap(size, tx); err != nil {
			return err
		}
	}
	if hooks.grow != nil {
		if err := hooks.grow(db, size); err != nil {
			return fmt.Errorf("mapkv: grow %s: %w", db.path, err)
		}
	}
	if err := mmap.Grow(db.file, size); err != nil {
		return fmt.Errorf("mapkv: %w", err)
	}
	db.fileSize = size
	return nil
}

// headroom is the free room the file keeps beyond used bytes while the
// DB is open: an eighth of it, at least Options.InitialSize, at most
// Options.GrowStep.
func (db *DB) headroom(used int64) int64 {
	return min(max(used/8, db.opts.InitialSize), db.opts.GrowStep)
}

// remap reserves a larger range for a file that outgrew its reservation.
// Readers keep the mapping they began with; it is unmapped when the last
// of them ends.
func (db *DB) remap(size int64, tx *Tx) error {
	reserve := roundUp(max(2*db.reserved(), 2*size), int64(db.pageSize))
	if hooks.mmap != nil {
		if err := hooks.mmap(db, reserve); err != nil {
			return fmt.Errorf("mapkv: remap %s: %w", db.path, err)
		}
	}
	ro, err := mmap.Map(db.file, reserve, false)
	if err != nil {
		return fmt.Errorf("mapkv: remap: %w", err)
	}
	var rw *mmap.Region
	if db.rw != nil {
		if rw, err = mmap.Map(db.file, reserve, true); err != nil {
			ro.Unmap()
			return fmt.Errorf("mapkv: remap: %w", err)
		}
	}
	// fix(reliability): the writer reads through the new mapping from
	// now on (Alloc points tx.tree at it), so it holds a reference too;
	// without it a second remap in the same commit unmapped the first
	// one's mapping beneath the writer's node slices (SIGSEGV).
	m := &mapping{region: ro, refs: 2}
	tx.mapped = append(tx.mapped, m)
	db.stateMu.Lock()
	old := db.state
	st := *old
	st.m = m
	db.state = &st
	db.stateMu.Unlock()
	db.release(old.m)
	// The writer's slices into the old writable mapping stay valid until
	// its transaction ends.
	if db.rw != nil {
		tx.retired = append(tx.retired, db.rw)
	}
	db.rw = rw
	db.stats.remapN.Add(1)
	return nil
}

func roundUp(n, to int64) int64 { return (n + to - 1) / to * to }

// reserved returns the address space of the current mapping. Writer only.
func (db *DB) reserved() int64 { return int64(len(db.stateData())) }

// writeFreeOnClose writes the free list the last commit deferred
// (page.MetaFreeDeferred), so that the next Open reads the list instead of
// walking every tree to rebuild it: the same commit, with the same txid,
// its meta rewritten in place (see Tx.rewriteMeta). That is safe only
// while the log holds the commit (a torn meta is then rebuilt from it),
// so a handle whose log does not (it opened on a deferred meta after a
// crash, or on a snapshot, and committed nothing) leaves the file as it
// is: no new txid at Close (a replica's txid must stay the primary's),
// and the next read-write Open walks again. If the rewrite fails the file
// is as after a crash.
func (db *DB) writeFreeOnClose() {
	if db.opts.ReadOnly {
		return
	}
	db.writeMu.Lock()
	db.stateMu.Lock()
	ok := !db.closed && db.failed == nil && db.state != nil && db.state.meta.Flags&page.MetaFreeDeferred != 0
	db.stateMu.Unlock()
	db.writeMu.Unlock()
	if !ok {
		return // the common case: nothing deferred, no transaction
	}
	tx, err := db.beginWriteTx(true)
	if err != nil {
		return
	}
	// Decided again under the writer's lock, on the state the rewrite
	// would rewrite: another goroutine may have committed since. A commit
	// that changes no tree reads none, so it would not notice a file cut
	// short beneath it (by another process) and would write a meta over
	// the hole: leave such a file to the next Open.
	fi, err := db.file.Stat()
	if tx.meta.Flags&page.MetaFreeDeferred == 0 || db.wal == nil || db.wal.lastTx != tx.meta.TxID ||
		err != nil || fi.Size() < db.fileSize {
		tx.Rollback()
		return
	}
	tx.rewrite = true
	tx.Commit() //nolint:errcheck // see above
}

// shrinkOnClose runs Shrink when enough pages are free or pending that
// the file could end much sooner: it moves the nodes near the end of the
// file down (if that cuts at least an eighth of the file) and commits
// twice more, since pages freed by a commit cannot
// be cut off by that commit (the meta before it still names them), only
// by a later one. Errors are ignored: the file just stays longer.
func (db *DB) shrinkOnClose() {
	if db.opts.ReadOnly {
		return
	}
	db.writeMu.Lock()
	ok := !db.closed && db.failed == nil && db.free != nil &&
		int64(db.free.nfree+db.free.pendingCount())*int64(db.pageSize) >= db.opts.ShrinkThreshold
	db.writeMu.Unlock()
	if !ok {
		return
	}
	// Move what lies near the end of the file down, then cut the tail.
	db.moveAndCut(8) //nolint:errcheck // a failed shrink leaves a longer file, nothing worse
}
