package mapkv

import (
	"fmt"
	"sort"

	"github.com/mapkv/mapkv/page"
)

// Stats describes a database at one moment.
type Stats struct {
	PageSize  int    // bytes per page
	TxID      uint64 // last committed transaction
	FileSize  int64  // bytes of the file
	PageCount uint64 // pages up to the high-water mark (the image a snapshot holds)
	FreePageN uint64 // pages ready for reuse
	// PendingPageN counts pages replaced by recent commits that are kept
	// because a reader may still see them; PinnedPageN is the part of them
	// held back by the oldest open reader (OldestReadTxID).
	PendingPageN   uint64
	PinnedPageN    uint64
	OpenReadTxN    int          // read transactions open now
	OldestReadTxID uint64       // txid the oldest open reader reads (0: none)
	Readers        []ReaderStat // open readers by txid, oldest first
	TxN            int64        // read transactions started
	WriteTxN       int64        // write transactions started
	CommitN        int64        // commits that wrote something
	SyncN          int64        // flushes (msync) issued
	RemapN         int64        // times the reservation was outgrown and remapped
	ShrinkN        int64        // times a commit truncated the file
	MappedSize     int64        // bytes of address space reserved
	MetaFallback   string       // why Open used the older meta; empty if it did not
	// FreeListLost says why Open could not rebuild the free list of a
	// commit that deferred it (a damaged node, see Check): no page the
	// trees do not reach is reused until the file is compacted (mapkv
	// compact); empty normally.
	FreeListLost string
	// FreeListDeferred says the state read was committed through the
	// write-ahead log, which leaves the free list out of the file (see
	// Options.WALSize): a read-only handle then does not count free
	// pages (FreePageN and PendingPageN are 0); the writer's are exact.
	FreeListDeferred bool
}

// ReaderStat is the number of open read transactions reading one txid,
// in this process (PID 0) or in the process PID (a slot of the shared
// reader table).
type ReaderStat struct {
	TxID  uint64
	Count int
	PID   int
}

// Stats returns a snapshot of the database's counters.
func (db *DB) Stats() Stats {
	s := Stats{
		PageSize:     db.pageSize,
		TxN:          db.stats.txN.Load(),
		WriteTxN:     db.stats.writeN.Load(),
		CommitN:      db.stats.commitN.Load(),
		SyncN:        db.stats.syncN.Load(),
		RemapN:       db.stats.remapN.Load(),
		ShrinkN:      db.stats.shrinkN.Load(),
		MetaFallback: db.fallback,
		FreeListLost: db.freeLost,
	}
	db.stateMu.Lock()
	defer db.stateMu.Unlock()
	if db.closed || db.state == nil {
		return s
	}
	st := db.state
	s.TxID = uint64(st.meta.TxID)
	s.PageCount = st.meta.PgCount
	s.FreePageN, s.PendingPageN, s.FileSize = st.freeN, st.pendingN, st.fileSize
	s.FreeListDeferred = st.meta.Flags&page.MetaFreeDeferred != 0
	s.MappedSize = int64(len(st.m.region.Data))
	// Readers of this process that hold no slot of the shared table (all
	// of them in the writing process), then every slot of the table, which
	// names readers of every read-only process, this one's included.
	if db.lf == nil || !db.opts.ReadOnly {
		s.OpenReadTxN = db.readers.n
		for t, n := range db.readers.counts {
			s.Readers = append(s.Readers, ReaderStat{TxID: uint64(t), Count: n})
		}
	}
	if db.lf != nil {
		for _, r := range db.lf.slots() {
			s.Readers = append(s.Readers, r)
			s.OpenReadTxN++
		}
	}
	sort.Slice(s.Readers, func(i, j int) bool { return s.Readers[i].TxID < s.Readers[j].TxID })
	if len(s.Readers) > 0 {
		s.OldestReadTxID = s.Readers[0].TxID
		for t, n := range st.pendingBy {
			if t > page.TxID(s.OldestReadTxID) {
				s.PinnedPageN += n
			}
		}
	}
	return s
}

// BucketStats describes a bucket's tree and those of the buckets nested
// in it, as committed (a write transaction's pending changes are not
// counted).
type BucketStats struct {
	KeyN          int   // keys holding values
	BucketN       int   // this bucket and the buckets nested in it
	Depth         int   // levels of this bucket's tree (0: empty)
	BranchPageN   int   // branch nodes
	LeafPageN     int   // leaf nodes
	OverflowPageN int   // pages holding large values
	BranchAlloc   int64 // bytes of pages allocated to branches
	BranchInuse   int64 // bytes of them in use
	LeafAlloc     int64 // bytes of pages allocated to leaves
	LeafInuse     int64 // bytes of them in use
	KeyBytes      int64 // bytes of keys (of values and nested buckets)
	ValueBytes    int64 // bytes of values
}

// Add adds o's counts to s (Depth takes the larger).
func (s *BucketStats) Add(o BucketStats) {
	s.KeyN += o.KeyN
	s.BucketN += o.BucketN
	s.Depth = max(s.Depth, o.Depth)
	s.BranchPageN += o.BranchPageN
	s.LeafPageN += o.LeafPageN
	s.OverflowPageN += o.OverflowPageN
	s.BranchAlloc += o.BranchAlloc
	s.BranchInuse += o.BranchInuse
	s.LeafAlloc += o.LeafAlloc
	s.LeafInuse += o.LeafInuse
	s.KeyBytes += o.KeyBytes
	s.ValueBytes += o.ValueBytes
}

// Stats walks the bucket's committed tree and returns its statistics.
// Damage met on the way is recorded in the transaction (Tx.Err).
func (b *Bucket) Stats() BucketStats {
	var s BucketStats
	if b.usable() != nil {
		return s
	}
	s.BucketN = 1
	b.tx.fail(guard(func() error { return b.stats(b.ref.Root, 1, 0, &s) }))
	return s
}

func (b *Bucket) stats(id page.ID, depth, nesting int, s *BucketStats) error {
	if id == 0 {
		return nil
	}
	if depth > page.MaxDepth || nesting > page.MaxDepth {
		return errTooDeep
	}
	if uint64(s.BranchPageN+s.LeafPageN) >= b.tx.meta.PgCount {
		// fix(reliability): branches sharing a subtree (a damaged file)
		// made this walk exponentially long; a tree has fewer nodes than
		// the file has pages.
		return fmt.Errorf("%w: bucket reaches more nodes than the file has pages (a shared subtree?)", ErrCorrupt)
	}
	t := &b.tx.tree
	n, err := t.Node(id)
	if err != nil {
		return err
	}
	typ := page.NodeType(n)
	if err := page.CheckNode(n, typ); err != nil {
		return err
	}
	if nesting == 0 {
		s.Depth = max(s.Depth, depth)
	}
	cnt := page.Count(n)
	used := int64(page.HeaderSize)
	if typ == page.TypeBranch {
		s.BranchPageN++
		s.BranchAlloc += int64(len(n))
		for i := 0; i < cnt; i++ {
			k, _ := page.BranchKey(n, i)
			used += int64(page.BranchEntrySize(k))
			cid, _ := page.BranchChild(n, i)
			if err := b.stats(cid, depth+1, nesting, s); err != nil {
				return err
			}
		}
		s.BranchInuse += used
		return nil
	}
	s.LeafPageN++
	s.LeafAlloc += int64(len(n))
	for i := 0; i < cnt; i++ {
		f, k, v, ok := page.LeafElem(n, i)
		if !ok {
			return elemErr(id, i)
		}
		used += int64(page.LeafEntrySize(k, v))
		s.KeyBytes += int64(len(k))
		switch {
		case f&page.FlagBucket != 0:
			r, _ := page.DecodeRef(v)
			s.BucketN++
			if err := b.stats(r.Root, 1, nesting+1, s); err != nil {
				return err
			}
		case f&page.FlagOverflow != 0:
			r, _ := page.DecodeRef(v)
			s.KeyN++
			s.ValueBytes += int64(r.Seq)
			s.OverflowPageN += page.Pages(page.HeaderSize+int(r.Seq), t.PageSize)
		default:
			s.KeyN++
			s.ValueBytes += int64(len(v))
		}
	}
	s.LeafInuse += used
	return nil
}
