// Package mapkv is an embedded key-value store for Go programs: a
// copy-on-write B+tree in one memory-mapped file.
//
// Four types make the API: a DB is an open file; a Tx is a transaction
// (any number of readers beside one writer, each reader seeing one
// committed state for its whole life); a Bucket is a named, ordered set of
// keys that may nest; a Cursor walks a bucket in order.
//
//	db, err := mapkv.Open("app.db", nil)
//	...
//	err = db.Update(func(tx *mapkv.Tx) error {
//		b, err := tx.CreateBucketIfNotExists([]byte("users"))
//		if err != nil {
//			return err
//		}
//		return b.Put([]byte("alice"), []byte("admin"))
//	})
//	err = db.View(func(tx *mapkv.Tx) error {
//		v := tx.Bucket([]byte("users")).Get([]byte("alice"))
//		fmt.Printf("%s\n", v) // v is valid only inside this function
//		return nil
//	})
//
// # How it works
//
// Reads are pointer reads into a read-only shared mapping of the file: no
// read system calls, no copies, no allocations. A slice returned by Get or
// a cursor points into the mapping; it is valid until its transaction ends
// and must never be written (a write faults).
//
// The first read of a page through a new mapping faults, and the kernel
// maps about 16 pages per fault: the first full scan of a 188 MB database
// after Open spent about 10 ms of its 24 mapping the file's 46,000 cached
// pages. So Open starts a warm-up beside the readers (Options.NoWarmup):
// a goroutine reads, in file order, one byte of every 64 KiB of the file
// that holds a page in the page cache (cachestat(2), mincore(2)); each
// read faults and maps the cached pages around it, on another core. It
// never reads a page from disk, ends within milliseconds per hundred
// megabytes, stops at Close, and runs only on Linux and with GOMAXPROCS
// above 1.
//
// A write transaction collects its changes in memory, in an ordered set
// per bucket. Commit merges them into the tree in key order, building every
// changed node in memory for a free page (never one that a reader or either
// meta can reach), writes them with pwritev, one call per run of adjacent
// pages, and then writes the meta page of the new state. A large merge
// runs on two goroutines: a branch whose children take 512 changes or
// more is split, each half merged with an allocator of its own, and
// joined before the branch is rebuilt (btree.Forker). Every node
// carries its page id, the txid that wrote it and an xxhash64 checksum;
// branch entries carry their child's txid too.
//
// A commit costs one flush (fdatasync). A small commit (or a large one
// whose nodes are scattered over the file) writes its nodes and meta as
// one record to the write-ahead log, path + "-wal", and flushes only the
// log (a leaf that took a few puts, or a branch that replaced a child or
// two, when an earlier record since the last flush of the data file wrote
// the page it replaces, is logged as those puts: tens or hundreds of
// bytes instead of its image, rebuilt by a replay; on Linux a small
// record is one asynchronous direct write with RWF_DSYNC, under way while
// the commit writes its nodes to the data file); it writes the same nodes
// to the data file without flushing it, so
// readers, other processes and snapshots keep reading the data file. It
// leaves the free list out (the meta says so): Close writes it, and after
// a crash a read-write Open rebuilds it from the trees. The data file is
// flushed when the log is full, before a commit that bypasses the log,
// and at Close; after a crash, a read-write Open replays the log into it
// (Options.WALSize; a large commit of scattered nodes makes the log grow,
// up to 64 times that, and a replay reads it through a read-only
// mapping; on Linux its records bypass the page cache, O_DIRECT, where
// the file system allows, but for records of 2 MiB or more, which were
// faster through it on the benchmark's VM). While small commits fill the
// log, the data file's writeback is started (not awaited) at each
// sixteenth of it, so that the commit that fills it does not wait for all
// of the generation's pages; when large commits fill a grown log, its
// flush begins on another goroutine right after the commit that filled
// it, while the next one merges. A
// large commit of nodes in long runs of pages (a sorted load), or one too
// large for the log, writes the data file directly, in pieces of at most
// 64 KiB (small page-cache folios are cheaper to make and to write into
// again); any commit writes each run of 64 KiB or more of sealed nodes
// while its merge goes on and starts that run's writeback at once, so
// that its flush finds the disk already at work: its meta records how many nodes the transaction wrote and a
// hash of their checksums, Open uses the newest meta only if the nodes it names all
// verify, and falls back to the previous meta, whose pages the commit
// never touched, otherwise.
// Very large commits (Options.SyncThreshold) flush data and meta
// separately. Options.WriteMap writes the pages through a writable shared
// mapping and flushes them with msync instead, as LMDB's MDB_WRITEMAP
// does; on the machines mapkv is measured on that flush is several times
// slower, because the kernel must write-protect every mapped page again.
//
// The mapping reserves address space up front (Options.MaxSize); the file
// grows beneath it without remapping, so readers never block the writer
// and the writer never blocks readers. Pages freed by a commit are reused
// once no reader can see them, lowest first, and a large free tail is cut
// off the file; DB.Shrink (and Close, when worthwhile) first moves the
// nodes near the end of the file into free pages below.
//
// A damaged file gives errors wrapping ErrCorrupt, never a panic: from
// Open, from View and Update (a read that meets damage returns nil and
// records the error in the transaction, see Tx.Err), and from Check, which
// verifies everything. A commit verifies the checksum of every node it
// rewrites that was built before the handle opened, and takes the nodes
// its own handle's commits built on trust (damage done to those under the
// running handle is found by Check, or by the next handle's writes). A
// fault on the mapping (another process truncated the file) is turned
// into an error inside View, Update, Batch and Check.
//
// # Platforms
//
// Linux is the platform mapkv is built and tested for. Other Unix systems
// compile and should work (growing uses ftruncate instead of fallocate);
// Windows and other systems compile, but Open returns an error.
package mapkv
