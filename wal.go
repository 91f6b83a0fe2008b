package mapkv

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/cespare/xxhash/v2"

	"github.com/mapkv/mapkv/btree"
	"github.com/mapkv/mapkv/mmap"
	"github.com/mapkv/mapkv/page"
)

// The write-ahead log makes a small commit durable with one contiguous
// write and one flush of a second file, path + "-wal", instead of a flush
// of the data file that writes each of the commit's scattered pages (on
// the disks measured, each scattered page costs the flush tens of
// microseconds more than the same bytes in one run). The commit writes
// its nodes and meta to the log, flushes the log, then writes the same
// bytes to the data file without flushing it: readers, other processes
// and snapshots read the data file (the page cache) as before. The data
// file is flushed at a checkpoint, when the log is full, before a large
// commit (which bypasses the log) and at Close; the log then starts over.
// On Linux the records go around the page cache (O_DIRECT, see
// logDirect): only a replay ever reads them.
//
// A commit that goes through the log does not write the free list: its
// meta says so (page.MetaFreeDeferred) and names none. That leaves the
// record the tree's nodes (a one-key commit's list was a third of them).
// Commits that write the data file directly and forced ones (Shrink's)
// write the whole list, Close writes the last commit's list under its own
// txid (Tx.rewriteMeta), and after a crash Open rebuilds it from the trees
// of the meta it chose (db.rebuildFree).
//
// After a crash, Open replays the log's records over the data file in
// txid order. Replay is exact whatever the kernel wrote back meanwhile: a
// page live in the last logged state was either written by a logged
// commit (the log has its image) or is older than the checkpoint, and a
// page is only reused once freed, so nothing since the checkpoint touched
// it. A leaf changed in place, or a branch that replaces one page with one
// page, whose old page an earlier record of the same generation wrote,
// or that a small commit holds until the log starts over, is logged as
// the puts into that page, which the replay rebuilds it from
// (walputs.go). The format is in page/FORMAT.md.
const (
	walMagic      = 0x4c41574d // "MWAL"
	recMagic      = 0x4345524d // "MREC"
	walVersion    = 5          // 2: node images without their zero tails; 3: leaves as puts; 4: branches as puts too; 5: puts into pages the data file holds (walputs.go)
	walHeaderSize = 64
	recFixed      = 32 + page.MetaSize // record header before its node list
	recNodeSize   = 24                 // id, pages, checksum per node
)

// wal is the writer's handle on the log.
type wal struct {
	f    *os.File
	path string
	size int64 // capacity: the log starts over when a record would pass it
	base int64 // Options.WALSize: the capacity for small commits
	// maxRec is the largest record of this generation: a generation of
	// large records that fills the log doubles its capacity, one of small
	// records only puts it back to base (see walGrowth).
	maxRec int64
	// lastRec is the size of the last record: what the next is likely
	// to take (a generation's first record holds its leaves whole, the
	// later ones mostly as puts; see earlyCheckpoint).
	lastRec int64
	off     int64 // where the next record goes
	// filled is how much of the file has been written (zeros ahead of the
	// records): a record written there overwrites blocks the file system
	// has allocated, while a write past it makes the flush journal the
	// file's new blocks and size as well.
	filled int64
	salt   uint64    // the current generation: records of another are stale
	lastTx page.TxID // txid of the last record of this generation (0: none)
	// syncedTx is lastTx when the data file was last flushed whole (by
	// DB.sync or an early flush that covered it): if they are still
	// equal, nothing written since needs another flush.
	syncedTx page.TxID
	// recOff and prevTx are where the last record began and lastTx
	// before it, for walRevoke.
	recOff int64
	prevTx page.TxID
	pages  int        // data file page size
	kicked int        // kickParts of the capacity filled when writeback last started
	recs   int        // records in this generation
	early  *earlySync // the checkpoint's flush, begun (see earlyCheckpoint)
	// logged holds the first page of every node the generation's
	// records wrote: the pages a later record may log puts into (see
	// walputs.go).
	logged pageSet
	// direct writes records and the zeros ahead of them around the page
	// cache (nil: through it; see logDirect).
	direct *logDirect
}

// earlySync is a flush of the data file begun after a commit, ahead of
// the checkpoint that needs it.
type earlySync struct {
	done chan struct{}
	tx   page.TxID // the last logged commit when it began
	err  error
}

// walPath is the log beside the data file at path.
func walPath(path string) string { return path + "-wal" }

// empty reports whether the log holds no record since it started over.
func (w *wal) empty() bool { return w == nil || w.off == walHeaderSize }

// openWAL creates (or reuses) the writer's log. The directory is flushed
// too: a log the disk has no name for could not be replayed.
func (db *DB) openWAL() error {
	p := walPath(db.path)
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, db.opts.FileMode)
	if err != nil {
		return fmt.Errorf("mapkv: open log: %w", err)
	}
	w := &wal{f: f, path: p, size: db.opts.WALSize, base: db.opts.WALSize, pages: db.pageSize}
	if fi, serr := f.Stat(); serr == nil {
		w.filled = fi.Size()
	}
	if !logBuffered {
		w.direct = openLogDirect(p)
	}
	db.wal = w
	err = w.restart(db, db.state.meta.TxID)
	if err == nil {
		err = syncDir(filepath.Dir(p))
	}
	if err != nil {
		db.wal = nil
		w.dropDirect()
		f.Close()
		return fmt.Errorf("mapkv: create log %s: %w", p, err)
	}
	return nil
}

// syncDir flushes a directory, so that the names of files made in it last.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// restart begins a new generation of the log: a header with a fresh salt
// and the txid the data file is durable at, flushed before any record of
// the generation is written. Records of the previous generation that
// remain in the file no longer match the salt.
func (w *wal) restart(db *DB, base page.TxID) error {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return err
	}
	w.salt = binary.LittleEndian.Uint64(b[:]) | 1
	h := make([]byte, walHeaderSize)
	le := binary.LittleEndian
	le.PutUint32(h[0:], walMagic)
	le.PutUint32(h[4:], walVersion)
	le.PutUint32(h[8:], uint32(w.pages))
	le.PutUint64(h[16:], w.salt)
	le.PutUint64(h[24:], uint64(base))
	le.PutUint64(h[56:], xxhash.Sum64(h[:56]))
	if _, err := w.f.WriteAt(h, 0); err != nil {
		return err
	}
	if w.direct != nil {
		w.direct.restarted(h)
	}
	if err := db.walSync(); err != nil {
		return err
	}
	if w.maxRec <= w.base/4 {
		// Small commits only (or none yet): the log goes back to its
		// size, on disk too (what lies past it is of an older
		// generation). fix(reliability): only once the new header is
		// on disk. Cut before, a power cut in the header's flush could
		// keep the cut and lose the header: the old generation's
		// header over its records cut short, beside a data file
		// flushed past them, which Open cannot tell from a damaged log
		// (RELIABILITY.md, bug 14). The cut itself is not flushed here:
		// until the next record's flush makes it durable, the stale
		// records past it are ignored (another generation's salt).
		w.size = w.base
		if w.filled > w.base {
			if err := w.f.Truncate(w.base); err != nil {
				return err
			}
			w.filled = w.base
		}
	}
	clear(w.logged)
	// The data file is flushed: the pages the generation's puts built on
	// may be reused once readers allow.
	db.free.unhold(db.state.meta.TxID)
	w.maxRec, w.lastRec = 0, 0
	w.off = walHeaderSize
	w.lastTx = 0
	w.syncedTx = 0 // the data file is flushed at base: nothing logged since
	w.kicked = 0
	w.recs = 0
	w.filled = max(w.filled, walHeaderSize)
	return nil
}

// walSync flushes the log.
func (db *DB) walSync() error {
	db.stats.syncN.Add(1)
	real := func() error { return mmap.Datasync(db.wal.f) }
	if hooks.walSync != nil {
		return hooks.walSync(db, real)
	}
	return real()
}

// recordSize is the size of a log record of nodes nodes of n bytes (at
// most: zero tails are not stored).
func recordSize(nodes int, n int64) int64 {
	return recFixed + int64(nodes)*recNodeSize + 8 + n
}

// fits reports whether a commit writing n bytes of nodes fits in the log
// as it is: it must leave room for a few more.
func (w *wal) fits(nodes int, n int64) bool {
	return w != nil && recordSize(nodes, n) <= w.size/4
}

// Past logAlways bytes, a commit whose nodes lie in long runs of pages
// (a sorted load appending leaves) writes the data file directly: its
// flush is a few sequential extents, and a log record would write every
// byte twice. One whose nodes are scattered (at least one run per
// logRunBytes written) still goes through the log, whose one sequential
// write flushes much faster than scattered pages. Measured on a 1M-key
// sorted load of 10,000-key commits (1.2 MB each): 440 ms direct against
// 560-680 ms through the log.
const (
	logAlways   = 256 << 10
	logRunBytes = 64 << 10
)

// walGrowth bounds the log's capacity: at most walGrowth times
// Options.WALSize (512 MiB by default).
//
// A commit of scattered nodes too large for the log as it is makes it
// grow, by doubling, until the commit takes at most a quarter of it; a
// generation of such commits that fills the log doubles it again at the
// checkpoint; one of small commits only puts it back to Options.WALSize,
// and cuts the file to that size.
// Through the log, a large scattered commit is one sequential write and
// flush, and the data file is flushed once per generation, by which time
// later commits have written many of its pages again; written directly,
// every commit flushes each of its scattered pages. Measured on random
// loads of 1M keys (16-byte keys, 100-byte values): 1,000-key commits
// (about 4 MB each) 59k keys/s with the log fixed at 8 MiB (every commit
// direct), 78k with 64 MiB and 92k with 256 MiB; 10,000-key commits
// (about 30 MB each) 125k against 144k with 256 MiB. On the slower VM
// of 2026-12-06, whose disk took about 330 MB/s, such a load wrote 1.86
// GB with a log of at most 256 MiB and 1.35 GB with 512 MiB (a
// generation then holds most of the load: fewer leaves go to the log
// whole, and the data file is flushed twice instead of four times), and
// ran at 147-162k keys/s against 136-142k (the /tmp harness, five
// alternating turns; 1 GiB: no better, 151k); 1,000-key commits 74k
// against 68k. The price is disk space for the log while large commits
// go on (small ones shrink it again, Close removes it), and a longer
// flush at each checkpoint. A replay reads the log through a read-only
// mapping where it can (readLog): its pages come from the page cache,
// which the kernel can take back, not from the heap.
const walGrowth = 64

// limit is the largest the log may grow (see walGrowth).
func (w *wal) limit() int64 { return w.base * walGrowth }

// useLog reports whether a's commit goes through the log, growing the
// log for a large commit of scattered nodes (see walGrowth).
func (w *wal) useLog(a *txAlloc) bool {
	if w == nil {
		return false
	}
	if a.written > logAlways && int64(a.runs())*logRunBytes <= a.written {
		return false // nodes in long runs: the data file directly
	}
	need := recordSize(len(a.bufs), a.written)
	size := w.size
	for need > size/4 && size < w.limit() {
		size = min(2*size, w.limit())
	}
	if need > size/4 {
		return false
	}
	w.size = size
	return true
}

// walAppend writes one commit to the log and flushes it: the meta (as it
// goes in its slot) and every node the commit wrote, with their
// checksums. When the log is full it is checkpointed first.
func (db *DB) walAppend(a *txAlloc, metaBuf []byte, txid page.TxID) error {
	r, err := db.walRecord(a, metaBuf, txid)
	if err != nil {
		return err
	}
	return db.walFinish(r, db.walWrite(r))
}

// walAppendBeside is walAppend for a commit whose nodes are still to be
// written to the data file: if the log can take the record
// asynchronously (logDirect.submit: one direct write that flushes
// itself), write runs while the record is written and flushed, instead
// of before. Otherwise write runs first, then walAppend's write and
// flush. A commit whose write fails after its record was flushed
// revokes the record (walRevoke), as writeBeside does.
func (db *DB) walAppendBeside(a *txAlloc, metaBuf []byte, txid page.TxID, write func() error) error {
	r, err := db.walRecord(a, metaBuf, txid)
	if err != nil {
		return err
	}
	w := db.wal
	if w.direct.canSubmit(w.off, r.size(), w.filled) {
		var err error
		if hooks.walWrite != nil {
			err = hooks.walWrite(db, w.off, int(r.size()))
		}
		if err == nil {
			err = w.direct.submit(r.iov, w.off, r.size())
		}
		if err != errNotSubmitted {
			return db.walAwaitBeside(r, err, write)
		}
	}
	if err := write(); err != nil {
		return err
	}
	return db.walFinish(r, db.walWrite(r))
}

// walAwaitBeside ends walAppendBeside for a record whose submission
// returned err: if it was submitted, write runs, then the record is
// awaited (through hooks.walSync in tests); a failed write revokes the
// record once it is in the log.
func (db *DB) walAwaitBeside(r *logRecord, err error, write func() error) error {
	w := db.wal
	var werr error
	if err == nil {
		db.walAsync++
		werr = write()
		// Wait for the record whatever happened: its staging memory is
		// the device's until then.
		db.stats.syncN.Add(1)
		if hooks.walSync != nil {
			err = hooks.walSync(db, w.direct.await)
			if aerr := w.direct.await(); err == nil {
				err = aerr
			}
		} else {
			err = w.direct.await()
		}
	}
	if err := db.walFinish(r, err); err != nil {
		return err
	}
	if werr != nil {
		db.failed = werr
		if rerr := db.walRevoke(); rerr != nil {
			return errors.Join(werr, fmt.Errorf("mapkv: revoke log record %s: %w", w.path, rerr))
		}
		return werr
	}
	return nil
}

// logRecord is a record walRecord built, ready to be written.
type logRecord struct {
	txid  page.TxID
	iov   [][]byte // header first, then the nodes' stored bytes
	ents  []walEntry
	nodes []idBuf
	hl    int   // header bytes
	n     int64 // node bytes
}

func (r *logRecord) size() int64 { return int64(r.hl) + r.n }

// holdMaxNodes: only commits of at most this many nodes log a leaf as
// puts into a page they must hold (see holdable): on a 1M-key file a
// one-key commit writes five nodes, a commit of 64 scattered keys about
// 100.
const holdMaxNodes = 32

// holdable reports whether the commit txid, which replaced the one-page
// node at base, may hold that page until the log starts over, and so
// log the node that replaces it as puts into it (walputs.go). The page
// must be one the commit replaced (pending for txid: it was live in the
// state before, and no record of the generation wrote it, so the data
// file holds it as the last flush left it) and a node of one page.
func (db *DB) holdable(a *txAlloc, base page.ID, txid page.TxID) bool {
	if !db.free.holds(txid, base) {
		return false
	}
	n, err := a.tx.tree.Node(base)
	return err == nil && len(n) == db.pageSize
}

// walRecord builds a's commit's log record, checkpointing the log first
// if it is full.
func (db *DB) walRecord(a *txAlloc, metaBuf []byte, txid page.TxID) (*logRecord, error) {
	w := db.wal
	nodes := a.sortedNodes()
	// A node's image goes without its zero tail (replay restores it):
	// nodes are cleared past their data, so a node whose end Seal gave
	// is cut there, and only one whose end is not known is looked at
	// (a root or a bucket's leaf holding a few entries is mostly zeros).
	// Reading each node's last bytes again to trim a last value's own
	// zeros cost a cache miss per node, 4% of a random load's commit.
	iov := make([][]byte, 1, len(nodes)+1) // the header goes first
	ents := make([]walEntry, len(nodes))
	// Nodes built as puts into a page an earlier record of this
	// generation wrote go as those puts (see walputs.go), unless the
	// log must start over first: then every node goes whole. So do
	// those of a small commit whose page the data file holds as the
	// last flush left it, if the page can be held (see holdable).
	canHold := len(nodes) <= holdMaxNodes && w.size == w.base
	var holds []page.ID
	build := func(restarted bool) int64 {
		var n int64
		iov = iov[:1]
		holds = holds[:0]
		for i, nd := range nodes {
			b, s := nd.buf, a.fresh[nd.id]
			ents[i] = walEntry{pages: uint32(len(b) / db.pageSize), sum: s.sum}
			if u := int(s.used); u > 0 && u <= len(b) {
				b = b[:u]
			} else {
				b = b[:trimZeros(b)]
			}
			if s.puts != 0 && !restarted {
				if p := putsAt(a.puts, s.puts); len(p) < len(b) {
					base := putsBase(p)
					ok := w.logged.has(base)
					if !ok && canHold && db.holdable(a, base, txid) {
						holds = append(holds, base)
						ok = true
					}
					if ok {
						b = p
						ents[i].pages |= entryPuts
					}
				}
			}
			iov = append(iov, b)
			n += int64(len(b))
		}
		return n
	}
	n := build(false)
	hl := recFixed + len(nodes)*recNodeSize + 8
	// Held pages count against the log's capacity, as the images they
	// save would have: a generation holds no more of the data file than
	// its log takes.
	held := int64(db.free.nheld+uint64(len(holds))) * int64(db.pageSize)
	if w.off+int64(hl)+n+held > w.size {
		// Full. A generation of large commits doubles the log (see
		// walGrowth); restart puts it back to base after small ones.
		grow := w.maxRec > w.base/4
		if err := db.checkpoint(); err != nil {
			return nil, err
		}
		if grow {
			w.size = min(2*w.size, w.limit())
		}
		n = build(true)
	}
	for _, id := range holds {
		db.free.hold(txid, id)
		db.walHolds++
	}
	le := binary.LittleEndian
	h := make([]byte, hl)
	le.PutUint32(h[0:], recMagic)
	le.PutUint32(h[4:], uint32(len(nodes)))
	le.PutUint64(h[8:], w.salt)
	le.PutUint64(h[16:], uint64(txid))
	le.PutUint64(h[24:], uint64(hl)+uint64(n))
	copy(h[32:], metaBuf)
	p := recFixed
	iov[0] = h
	for i, nd := range nodes {
		le.PutUint64(h[p:], uint64(nd.id))
		le.PutUint32(h[p+8:], ents[i].pages)
		le.PutUint32(h[p+12:], uint32(len(iov[i+1])))
		le.PutUint64(h[p+16:], ents[i].sum)
		p += recNodeSize
	}
	le.PutUint64(h[p:], xxhash.Sum64(h[:p]))
	return &logRecord{txid: txid, iov: iov, ents: ents, nodes: nodes, hl: hl, n: n}, nil
}

// walWrite writes record r at the log's end and flushes it.
func (db *DB) walWrite(r *logRecord) error {
	w := db.wal
	var err error
	if hooks.walWrite != nil {
		err = hooks.walWrite(db, w.off, int(r.size()))
	}
	if err == nil {
		err = w.write(r.iov, r.size())
	}
	if end := w.off + r.size(); err == nil && end > w.filled {
		// The record went past what the file had: zeros after it, up
		// to the next megabyte, so that the records that follow
		// overwrite blocks this flush allocates (the record's own
		// blocks need no zeros first).
		w.filled = end
		err = w.fill(min(w.size, roundUp(end, fillStep)))
	}
	if err == nil {
		err = db.walSync()
	}
	return err
}

// walFinish records that r is in the log, or, if err (its write or
// flush failed), fails the DB.
func (db *DB) walFinish(r *logRecord, err error) error {
	w := db.wal
	if err != nil {
		db.failed = err
		return fmt.Errorf("mapkv: write log %s: %w", w.path, err)
	}
	for i, nd := range r.nodes {
		w.logged.add(nd.id)
		if r.ents[i].pages&entryPuts != 0 {
			db.walPuts++
			if page.NodeType(nd.buf) == page.TypeBranch {
				db.walBranchPuts++
			}
		}
	}
	w.recOff, w.prevTx = w.off, w.lastTx
	w.off += r.size()
	w.maxRec = max(w.maxRec, r.size())
	w.lastRec = r.size()
	w.lastTx = r.txid
	w.recs++
	return nil
}

// walEntry is what a record's node list says of a node besides its page
// and its stored length.
type walEntry struct {
	pages uint32
	sum   uint64
}

// kickParts and kickMaxRecs: in a generation of small commits, the data
// file's writeback is started (not awaited) each time the log fills
// another kickParts-th of its capacity, so that the checkpoint's flush
// finds most of the generation's pages already written. Without it, the
// commit that fills the log waits for all of them: 8 MiB of ten-key
// commits (about 160 records) dirty a few thousand scattered pages, 10-11
// ms of flush, and one commit in 160 is the p99 of a writer committing
// ten keys at a time beside readers (bench/, "mixed"). Kicked at every
// sixteenth of the log that p99 was 1.9-3.4 ms (eighths: 2.4-6.3 ms;
// 32nds: 1.6-3.2 ms, but a median 10% higher). The price is where the
// log and the data file share one disk queue: the commit that follows a
// kick waits for its writes behind the kick's (idle I/O priority for the
// kick did not change that). So only short generations are kicked, of
// fewer than kickMaxRecs records by the log's fill so far, where the
// checkpoint's stall is itself more frequent than one commit in
// kickMaxRecs: one-key commits (about 500 records a generation) kicked
// eight times took their p99 from 0.22-0.27 ms to 0.8-1.2 ms. Nor are
// generations of large commits (a log grown past its base size): started
// after each large commit, writeback made random loads 20-25% slower.
const (
	kickParts   = 16
	kickMaxRecs = 300
)

// kickWriteback starts the data file's writeback on another goroutine
// when the commit just logged filled another kickParts-th of the log (see
// kickParts). It runs after the commit's pages are in the data file. One
// writeback at a time; Close waits for it.
func (db *DB) kickWriteback() {
	w := db.wal
	if w == nil || w.size != w.base || db.opts.NoSync {
		return
	}
	part := int(w.off * kickParts / w.size)
	if part <= w.kicked {
		return
	}
	w.kicked = part
	if used := w.off - walHeaderSize; int64(w.recs)*(w.size-walHeaderSize) >= kickMaxRecs*used {
		return // a long generation (see kickMaxRecs)
	}
	if !db.kicking.CompareAndSwap(false, true) {
		return
	}
	db.kicks++
	db.kickWG.Add(1)
	go func() {
		defer db.kickWG.Done()
		defer db.kicking.Store(false)
		// An error here only means the checkpoint's flush writes
		// more; that flush reports its own.
		_ = mmap.StartWriteback(db.file)
	}()
}

// walRevoke takes back the record walAppend wrote last, for a commit that
// failed after it (its nodes could not be written to the data file): the
// record's magic is zeroed and the log flushed, so that a replay stops
// before it and the database reopens at the commit before, as it does
// after any failed commit. A crash before the flush ends may still
// replay the record: the commit was in flight.
func (db *DB) walRevoke() error {
	w := db.wal
	var zero [4]byte
	if _, err := w.f.WriteAt(zero[:], w.recOff); err != nil {
		return err
	}
	if w.direct != nil {
		w.direct.revoked()
	}
	if err := db.walSync(); err != nil {
		return err
	}
	w.off, w.lastTx = w.recOff, w.prevTx
	return nil
}

// trimZeros returns the length of b without its trailing zero bytes,
// looking at 64 bytes at a time, then eight, then one. walAppend uses it
// only for a node whose end Seal did not give, whose whole zero tail it
// finds.
func trimZeros(b []byte) int {
	le := binary.LittleEndian
	n := len(b)
	for n >= 64 {
		w := b[n-64 : n : n]
		if le.Uint64(w[0:])|le.Uint64(w[8:])|le.Uint64(w[16:])|le.Uint64(w[24:])|
			le.Uint64(w[32:])|le.Uint64(w[40:])|le.Uint64(w[48:])|le.Uint64(w[56:]) != 0 {
			break
		}
		n -= 64
	}
	for n >= 8 && le.Uint64(b[n-8:]) == 0 {
		n -= 8
	}
	for n > 0 && b[n-1] == 0 {
		n--
	}
	return n
}

// fillStep is how far ahead of its records the log is written with zeros.
const fillStep = 1 << 20

// fill writes zeros from w.filled up to end.
func (w *wal) fill(end int64) error {
	if end <= w.filled {
		return nil
	}
	if ok, err := w.viaDirect(func(d *logDirect) error { return d.zero(w.filled, end) }); ok {
		if err == nil {
			w.filled = end
		}
		return err
	}
	if err := pwritev(w.f, zeroIOV(nil, end-w.filled), w.filled); err != nil {
		return err
	}
	w.filled = end
	return nil
}

// checkpoint makes the data file durable up to the last commit and starts
// the log over.
func (db *DB) checkpoint() error {
	w := db.wal
	if err := db.awaitEarly(); err != nil || w.empty() {
		return err
	}
	if w.syncedTx != w.lastTx { // no flush since the last logged commit
		if err := db.sync(0, db.fileSize); err != nil {
			return err
		}
	}
	if err := db.wal.restart(db, db.state.meta.TxID); err != nil {
		db.failed = err
		return fmt.Errorf("mapkv: restart log %s: %w", db.wal.path, err)
	}
	return nil
}

// earlyCheckpoint begins the checkpoint's flush of the data file, on
// another goroutine, once a commit has left a grown log without room for
// another record as large as the last: the next commit will most likely
// checkpoint first, and the flush then overlaps its merge (which
// writes nothing to the file) instead of stalling its write. The
// checkpoint waits for it, and flushes again only if a commit was logged
// after it began (awaitEarly). On a random 1M-key load of 10,000-key
// commits (records of about 22 MB, four or five to a generation) the 23
// checkpoints' flushes took 0.52-0.57 s; begun early, the commits still
// waited 0.21-0.24 s of it (the flush shares the two vCPUs with the
// merge), and the load went from 240k to 244k keys/s, medians of twelve
// alternating runs of which nine were won (/tmp harness). The room is
// measured against the last record, not the generation's largest: since
// leaves go as puts, a generation's first record (its leaves whole) is
// several times the size of those after it, and measured against it the
// flush began several commits early and had to be done again.
//
// Only grown logs: the generations of small commits have their writeback
// started along the way instead (kickWriteback), and a flush running
// under them would put their log's flush behind its writes in the disk's
// queue. Tests that model the disk (hooks.sync) get the same flush at
// the same point, on the committing goroutine.
func (db *DB) earlyCheckpoint() {
	w := db.wal
	if w == nil || w.early != nil || db.opts.NoSync || db.opts.WriteMap ||
		w.size == w.base || w.off+w.lastRec <= w.size {
		return
	}
	e := &earlySync{done: make(chan struct{}), tx: w.lastTx}
	w.early = e
	db.earlySyncs++
	db.stats.syncN.Add(1)
	real := func() error { return mmap.Datasync(db.file) }
	if hooks.sync != nil {
		e.err = hooks.sync(db, 0, db.fileSize, real)
		close(e.done)
		return
	}
	go func() {
		defer close(e.done)
		e.err = real()
	}()
}

// awaitEarly waits for the flush earlyCheckpoint began, if any; when it
// covers every logged commit, the log notes so (syncedTx) and the
// checkpoint or Close need not flush again. A failed flush fails the DB
// as the checkpoint's own would (the kernel may have dropped the pages it
// could not write; the log still holds them for a reopen).
func (db *DB) awaitEarly() error {
	if db.wal == nil || db.wal.early == nil {
		return nil
	}
	e := db.wal.early
	<-e.done
	db.wal.early = nil
	if e.err != nil {
		db.failed = e.err
		return fmt.Errorf("mapkv: fdatasync %s: %w", db.path, e.err)
	}
	if e.tx == db.wal.lastTx {
		db.earlyCovered++
		db.wal.syncedTx = e.tx
	}
	return nil
}

// closeWAL checkpoints and removes the log (nothing in it is needed once
// the data file is flushed).
func (db *DB) closeWAL() {
	w := db.wal
	if w == nil {
		return
	}
	db.awaitEarly() // a failure sets db.failed: the log stays
	// The data file may be flushed already: by an early flush after the
	// last commit, or by Close's rewrite of the free list.
	if db.failed == nil && (w.empty() || w.syncedTx == w.lastTx || db.sync(0, db.fileSize) == nil) {
		removeWAL(db.path)
	}
	w.dropDirect()
	w.f.Close()
	db.wal = nil
}

// write writes a record of n bytes, iov, at w.off.
func (w *wal) write(iov [][]byte, n int64) error {
	if w.direct != nil && n >= logCachedMin {
		if err := pwritev(w.f, iov, w.off); err != nil {
			return err
		}
		w.direct.wroteAround(iov, w.off, n)
		return nil
	}
	if ok, err := w.viaDirect(func(d *logDirect) error { return d.write(iov, w.off, n) }); ok {
		return err
	}
	return pwritev(w.f, iov, w.off)
}

// logCachedMin: a record of this many bytes or more goes through the
// page cache even when the log takes direct writes. On the benchmark's
// VM of 2026-12-06 a flushed write of 16 MiB took 47-49 ms through the
// page cache against 60-67 ms direct, in pieces of 1, 4 or 16 MiB alike,
// or 1 MiB pieces from two or four goroutines at once (the /tmp program,
// five rounds of five); random loads of 1M keys in 10,000-key commits,
// whose records are about 10 MB, ran at 93-109k keys/s against 82-92k
// with the whole log through the page cache (three alternating pairs on
// the /tmp harness), and at 83-103k against 80-91k with only these
// records so (five pairs; dropping each from the page cache once
// flushed, with fadvise, was no faster). The records stay cached (clean)
// until the kernel needs the memory, at most the log's size. Records of
// one-key and other small commits stay direct (and asynchronous, see
// logDirect.submit). The bytes after such a record in its last block are
// not zeroed, as a direct write pads them: they are the zeros the writer
// keeps ahead, or bytes of an older generation or of a revoked record,
// which a replay does not take for a record (salt, txid, checksum) any
// more than it would take zeros.
var logCachedMin int64 = 2 << 20

// viaDirect runs op on the log's direct handle. ok is false when the
// caller must write through the page cache instead: there is no handle,
// or the file system refused a direct write (the handle is then dropped
// for good, and op's part is written again in full by the caller).
func (w *wal) viaDirect(op func(*logDirect) error) (ok bool, err error) {
	if w.direct == nil {
		return false, nil
	}
	if err := op(w.direct); err != errDirectUnsupported {
		return true, err
	}
	w.dropDirect()
	return false, nil
}

// dropDirect goes back to writing through the page cache (the file
// system refused a direct write) or closes the log's direct handle.
func (w *wal) dropDirect() {
	if w.direct != nil {
		w.direct.aio.close()
		w.direct.f.Close()
		w.direct = nil
	}
}

// logBuffered makes new logs write through the page cache (tests run
// both ways).
var logBuffered bool

// removeWAL deletes a log whose commits are all in the flushed data file,
// and flushes the directory: a log that came back after a crash would be
// replayed over whatever the data file holds by then.
func removeWAL(path string) {
	if os.Remove(walPath(path)) == nil {
		syncDir(filepath.Dir(path))
	}
}

// walRecord is one commit read back from the log.
type walRecord struct {
	txid    page.TxID
	meta    []byte
	pgCount uint64 // the meta's page count
	nodes   []walNode
}

type walNode struct {
	id   page.ID
	data []byte // the node without its zero tail, or with puts its payload
	size int    // the node's bytes
	// puts: data is puts into an earlier node (see walputs.go): muts
	// into the node at base, which build a node whose checksum is sum.
	puts bool
	sum  uint64
	base page.ID
	muts []btree.Mutation
}

// walLog is what readWAL found: the generation's base txid, the page
// size and the records.
type walLog struct {
	base     page.TxID
	pageSize int
	recs     []walRecord
}

// readWAL returns the records of the log at path that belong to its
// current generation, in order, up to the first that is missing, torn or
// out of sequence. A log that does not exist, or whose header does not
// verify, holds none: the header is flushed before any record of its
// generation is written.
//
// The records' bytes lie in the log's mapping (see readLog): release
// unmaps it, after which none of them may be touched. Decoding runs with
// faults turned into errors (guard), as must whatever reads them after.
func readWAL(path string) (l walLog, release func(), err error) {
	b, release, err := readLog(walPath(path))
	if errors.Is(err, os.ErrNotExist) {
		return l, func() {}, nil
	}
	if err != nil {
		return l, func() {}, fmt.Errorf("mapkv: read log: %w", err)
	}
	err = guard(func() error {
		var err error
		l, err = decodeLog(path, b)
		return err
	})
	if err != nil {
		release()
		return walLog{}, func() {}, err
	}
	return l, release, nil
}

// readLog returns the bytes of the file at path and a function that
// releases them: a read-only mapping of it where the platform has one
// (a log grown to hold a bulk load's commits is replayed from the page
// cache, not copied to the heap), or else the file read whole.
func readLog(path string) ([]byte, func(), error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	if fi.Size() == 0 {
		return nil, func() {}, nil
	}
	if r, err := mmap.Map(f, fi.Size(), false); err == nil {
		return r.Data[:fi.Size()], func() { r.Unmap() }, nil
	}
	b, err := io.ReadAll(f)
	return b, func() {}, err
}

// decodeLog decodes the log image b of the data file at path (readWAL).
func decodeLog(path string, b []byte) (walLog, error) {
	var l walLog
	le := binary.LittleEndian
	if len(b) < walHeaderSize || le.Uint32(b) != walMagic || le.Uint64(b[56:]) != xxhash.Sum64(b[:56]) {
		return l, nil
	}
	if v := le.Uint32(b[4:]); v < 2 || v > walVersion { // 2 to 4 are 5 without some kinds of puts
		// A log of another version may hold commits: never skip it.
		return l, corrupt(path, fmt.Errorf("the log %s has version %d; this mapkv reads versions 2 to %d (replay it with the mapkv that wrote it)", walPath(path), v, walVersion))
	}
	l.pageSize = int(le.Uint32(b[8:]))
	l.base = page.TxID(le.Uint64(b[24:]))
	salt := le.Uint64(b[16:])
	// The first record follows base, or the commits that went straight
	// to the data file after it (durable before the record was written:
	// see DB.checkpoint); the rest follow each other.
	off := walHeaderSize
	for {
		r, n, ok := decodeRecord(b[off:], salt, l.pageSize)
		if !ok || len(l.recs) == 0 && r.txid <= l.base || len(l.recs) > 0 && r.txid != l.recs[len(l.recs)-1].txid+1 {
			return l, nil
		}
		l.recs = append(l.recs, r)
		off += n
	}
}

// decodeRecord decodes and verifies the record at the start of b.
func decodeRecord(b []byte, salt uint64, pageSize int) (walRecord, int, bool) {
	le := binary.LittleEndian
	var r walRecord
	if len(b) < recFixed || le.Uint32(b) != recMagic || le.Uint64(b[8:]) != salt {
		return r, 0, false
	}
	count := int(le.Uint32(b[4:]))
	hl := recFixed + count*recNodeSize + 8
	total := le.Uint64(b[24:])
	if hl > len(b) || total > uint64(len(b)) || total < uint64(hl) ||
		le.Uint64(b[hl-8:]) != xxhash.Sum64(b[:hl-8]) {
		return r, 0, false
	}
	r.txid = page.TxID(le.Uint64(b[16:]))
	r.meta = b[32 : 32+page.MetaSize]
	m, err := page.DecodeMeta(r.meta, page.ID(r.txid%2))
	if err != nil || m.TxID != r.txid || int(m.PageSize) != pageSize {
		return r, 0, false
	}
	r.pgCount = m.PgCount
	data := b[hl:total]
	next := page.ID(2) // nodes lie in page order, apart, inside the commit's file
	for i := range count {
		e := b[recFixed+i*recNodeSize:]
		id := page.ID(le.Uint64(e))
		pages := le.Uint32(e[8:])
		stored := uint64(le.Uint32(e[12:]))
		sum := le.Uint64(e[16:])
		np := uint64(pages &^ entryPuts)
		if id < next || np == 0 || np > maxNodePages(pageSize) || uint64(id)+np > m.PgCount ||
			stored == 0 || stored > uint64(len(data)) {
			return r, 0, false
		}
		next = id + page.ID(np)
		node := data[:stored]
		data = data[stored:]
		if pages&entryPuts != 0 {
			// Puts into an earlier node: checked here, rebuilt by
			// the replay.
			if np != 1 {
				return r, 0, false
			}
			base, muts, ok := decodePuts(node)
			if !ok {
				return r, 0, false
			}
			r.nodes = append(r.nodes, walNode{id: id, data: node, size: pageSize, puts: true, sum: sum, base: base, muts: muts})
			continue
		}
		// An image, without its zero tail: checked without making the
		// whole node (a crafted length would have it allocate
		// gigabytes).
		n := np * uint64(pageSize)
		var head [8]byte
		copy(head[:], node)
		if stored > n || page.VerifyTrimmed(node, int(n), id, r.txid) != nil || le.Uint64(head[:]) != sum {
			return r, 0, false
		}
		r.nodes = append(r.nodes, walNode{id: id, data: node, size: int(n)})
	}
	if len(data) != 0 {
		return r, 0, false
	}
	return r, int(total), true
}

// replayWAL writes the log's records over the data file (before Open
// reads the metas) and flushes it, so that the data file alone holds the
// last logged commit. It reports how many commits it replayed. A log
// that cannot belong to the file (another page size, or a generation
// that does not fit the txids of its metas) is an error: nothing is
// written.
func (db *DB) replayWAL(slots [2]metaSlot, pageSize int) (n int, err error) {
	l, release, err := readWAL(db.path)
	defer release()
	if err != nil || len(l.recs) == 0 {
		return 0, err
	}
	// The records lie in the log's mapping: a fault reading it (the log
	// cut short beneath the replay) is an error, not a crash.
	err = guard(func() error {
		var err error
		n, err = db.replayLog(l, slots, pageSize)
		return err
	})
	return n, err
}

// replayLog is replayWAL for the records l of the log.
func (db *DB) replayLog(l walLog, slots [2]metaSlot, pageSize int) (int, error) {
	// The data file was flushed at base, and no meta is written to it
	// before its record is in the log: its newest meta lies in between.
	var newest page.TxID
	for _, s := range slots {
		if s.err == nil {
			newest = max(newest, s.meta.TxID)
		}
	}
	last := l.recs[len(l.recs)-1].txid
	if l.pageSize != pageSize || newest < l.base || newest > last {
		return 0, corrupt(db.path, fmt.Errorf("the log %s (page size %d, commits after tx %d up to tx %d) does not belong to the data file (page size %d, newest meta tx %d), or is damaged",
			walPath(db.path), l.pageSize, l.base, last, pageSize, newest))
	}
	// A commit's page count runs past the pages its nodes and those
	// before it use only by its free tail, which each commit cuts once
	// it reaches Options.ShrinkThreshold: a record that names more (its
	// checksums would have to be forged) is refused before anything is
	// written, or the replay would stretch the file to what it says.
	used := uint64(2)
	for _, s := range slots {
		if s.err == nil {
			used = max(used, s.meta.PgCount)
		}
	}
	slack := uint64(max(db.opts.ShrinkThreshold, 1<<30) / int64(pageSize))
	for _, r := range l.recs {
		for _, n := range r.nodes {
			used = max(used, uint64(n.id)+uint64(n.size/pageSize))
		}
		if r.pgCount > used+slack {
			return 0, corrupt(db.path, fmt.Errorf("the log %s: the record of tx %d names %d pages, %d more than its commit and those before it use (at most %d may lie free at the end)",
				walPath(db.path), r.txid, r.pgCount, r.pgCount-used, slack))
		}
	}
	ps := int64(pageSize)
	var end int64
	var node []byte
	read := func(b []byte, id page.ID) error {
		if _, err := db.file.ReadAt(b, int64(id)*ps); err != nil {
			return fmt.Errorf("reading page %d: %w", id, err)
		}
		return nil
	}
	for _, r := range l.recs {
		for _, n := range r.nodes {
			data := n.data
			if n.puts {
				if node == nil {
					node = make([]byte, pageSize)
				}
				if err := rebuildPuts(node, n.base, n.muts, n.id, r.txid, n.sum, read); err != nil {
					return 0, corrupt(db.path, fmt.Errorf("the log %s: the record of tx %d: %w", walPath(db.path), r.txid, err))
				}
				data = node
			}
			if err := writePadded(db.file, data, n.size, int64(n.id)*ps); err != nil {
				return 0, fmt.Errorf("mapkv: replay log: %w", err)
			}
		}
		if _, err := db.file.WriteAt(r.meta, int64(r.txid%2)*ps); err != nil {
			return 0, fmt.Errorf("mapkv: replay log: %w", err)
		}
		end = int64(r.pgCount) * ps
	}
	// The last commit's free pages past the last node it wrote may lie
	// past a file end that was never flushed.
	if fi, err := db.file.Stat(); err == nil && fi.Size() < end {
		if err := db.file.Truncate(end); err != nil {
			return 0, fmt.Errorf("mapkv: replay log: %w", err)
		}
	}
	if err := db.openSync(); err != nil {
		return 0, fmt.Errorf("mapkv: replay log: fdatasync %s: %w", db.path, err)
	}
	return len(l.recs), nil
}

// maxNodePages is the most pages a node may take: an overflow node
// holding a value of MaxValueSize bytes.
func maxNodePages(pageSize int) uint64 {
	return uint64(page.Pages(page.HeaderSize+page.MaxValueSize, pageSize))
}

// writePadded writes b at off in f, then zeros up to size bytes.
func writePadded(f *os.File, b []byte, size int, off int64) error {
	// One call, the zeros from zeroBlock (a replay writes each node it
	// replays so).
	var buf [4][]byte
	return pwritev(f, zeroIOV(append(buf[:0], b), int64(size-len(b))), off)
}

// zeroBlock is zeros, for writes of zeros (zeroIOV); nothing writes to
// it. An array, so that it takes no allocation at start-up.
var zeroBlock [64 << 10]byte

// zeroIOV appends to iov pieces of zeroBlock that add up to n bytes (none
// if n <= 0), for pwritev.
func zeroIOV(iov [][]byte, n int64) [][]byte {
	for n > 0 {
		k := min(int64(len(zeroBlock)), n)
		iov = append(iov, zeroBlock[:k])
		n -= k
	}
	return iov
}

// walPending reports whether the log holds commits the data file may not
// have on disk.
func walPending(path string) bool {
	l, release, err := readWAL(path)
	release()
	return err != nil || len(l.recs) > 0
}
