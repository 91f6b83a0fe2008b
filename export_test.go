package mapkv

// White-box access for the reliability tests in package mapkv_test
// (powerloss_test.go, fault_test.go, crash_test.go). Nothing here is part
// of the API: it is compiled only into the test binary.

import "github.com/mapkv/mapkv/btree"

func init() {
	// Every test splits the merge of any commit of 16 changes or more
	// between two goroutines (see txAlloc.Fork): the model, power-loss
	// and crash tests run the split, and -race watches it. TestSplitMerge
	// checks that it happens.
	parallelMerge = 16
	// And writes every run of 4 KiB or more of its nodes while it merges,
	// 16 KiB at a time (see stream.go): the model, power-loss and crash
	// tests write nodes both during and after their merges.
	// Tests that count or size the data file's writes (TestDirectPieces,
	// TestLargeCommits, stream_test.go) use the real sizes.
	streamMin, streamChunk = 4<<10, 16<<10
	// And checks every node a commit reads without verifying it because
	// an earlier commit of the same handle built it (DB.trustFrom): a
	// node built otherwise than the writer lays nodes out fails the
	// commit (btree.CheckTrusted).
	btree.CheckTrusted = true
	// And writes the log's records of 64 KiB or more through the page
	// cache, the rest direct (see logCachedMin): the model, power-loss
	// and crash tests write both kinds, one after the other.
	logCachedMin = 64 << 10
}

// SetStreamRuns sets the run lengths the streamer writes (stream.go) and
// returns a function that restores them.
func SetStreamRuns(min, chunk int) (restore func()) {
	om, oc := streamMin, streamChunk
	streamMin, streamChunk = min, chunk
	return func() { streamMin, streamChunk = om, oc }
}

// SplitsForTest returns how many merges of db's commits were split
// between two goroutines.
func SplitsForTest(db *DB) int {
	db.writeMu.Lock()
	defer db.writeMu.Unlock()
	return db.splits
}

// EarlySyncsForTest returns how many flushes of the data file db began
// ahead of a checkpoint (see earlyCheckpoint), and how many checkpoints
// found every logged commit covered by one and did not flush again.
func EarlySyncsForTest(db *DB) (began, covered int) {
	db.writeMu.Lock()
	defer db.writeMu.Unlock()
	return db.earlySyncs, db.earlyCovered
}

// WalPutsForTest returns how many nodes db's log records stored as puts
// into an earlier node (see walputs.go).
func WalPutsForTest(db *DB) int {
	db.writeMu.Lock()
	defer db.writeMu.Unlock()
	return db.walPuts
}

// WalBranchPutsForTest returns how many of those were branches.
func WalBranchPutsForTest(db *DB) int {
	db.writeMu.Lock()
	defer db.writeMu.Unlock()
	return db.walBranchPuts
}

// LogAsyncForTest returns how many of db's log records went out as
// asynchronous writes (logDirect.submit), and whether its log takes them
// now (a direct log with an AIO context).
func LogAsyncForTest(db *DB) (records int, ready bool) {
	db.writeMu.Lock()
	defer db.writeMu.Unlock()
	if db.wal == nil {
		return db.walAsync, false
	}
	return db.walAsync, db.wal.direct.canSubmit(0, 0, 0)
}

// SetLogSync turns the log's asynchronous record writes off for logs
// opened from now on (on: write and flush each record in turn, as where
// the kernel has no AIO). It returns a function restoring the setting.
func SetLogSync(on bool) (restore func()) {
	old := logSync
	logSync = on
	return func() { logSync = old }
}

// KicksForTest returns how many times db started the data file's
// writeback ahead of a checkpoint (see kickWriteback).
func KicksForTest(db *DB) int {
	db.writeMu.Lock()
	defer db.writeMu.Unlock()
	return db.kicks
}

// PiecesForTest returns how many pwritev calls db's commits that bypassed
// the log made (they write in pieces: see smallFolio).
func PiecesForTest(db *DB) int {
	db.writeMu.Lock()
	defer db.writeMu.Unlock()
	return db.pieces
}

// StreamedForTest returns how many node bytes db's commits wrote while
// their merges went on (stream.go).
func StreamedForTest(db *DB) int64 {
	db.writeMu.Lock()
	defer db.writeMu.Unlock()
	return db.streamedBytes
}

// SyncHook replaces the msync of a range of the writable mapping; real
// performs the actual flush. See faultHooks.sync.
type SyncHook = func(db *DB, off, n int64, real func() error) error

// GrowHook runs before the file is extended to size; an error aborts the
// growth. See faultHooks.grow.
type GrowHook = func(db *DB, size int64) error

// MmapHook runs before a larger mapping of size bytes is made; an error
// aborts the remap. See faultHooks.mmap.
type MmapHook = func(db *DB, size int64) error

// SetFaultHooks installs the three file-layer hooks (nil = none) and
// returns a function that restores the previous ones. The hooks are
// package state: tests that set them must not run in parallel with other
// tests that open databases in this package's test binary.
func SetFaultHooks(sync SyncHook, grow GrowHook, mmap MmapHook) (restore func()) {
	old := hooks
	hooks = faultHooks{sync: sync, grow: grow, mmap: mmap}
	return func() { hooks = old }
}

// FailedForTest returns the flush error that made db refuse writes, or nil.
func FailedForTest(db *DB) error {
	db.writeMu.Lock()
	defer db.writeMu.Unlock()
	return db.failed
}

// SetWriteHook installs a hook that runs before each write of a commit's
// pages (off, bytes); an error stands for the write failing. It returns a
// function restoring the previous hook.
func SetWriteHook(h func(db *DB, off int64, n int) error) (restore func()) {
	old := hooks.write
	hooks.write = h
	return func() { hooks.write = old }
}

// SetOpenSyncHook installs a hook run in place of Open's flush.
func SetOpenSyncHook(h func(db *DB, real func() error) error) (restore func()) {
	old := hooks.openSync
	hooks.openSync = h
	return func() { hooks.openSync = old }
}

// SetLogHooks installs hooks on the write-ahead log: write runs before a
// record is written (an error stands for the write failing), sync in
// place of the log's flush. Nil means none.
func SetLogHooks(write func(db *DB, off int64, n int) error, sync func(db *DB, real func() error) error) (restore func()) {
	ow, os := hooks.walWrite, hooks.walSync
	hooks.walWrite, hooks.walSync = write, sync
	return func() { hooks.walWrite, hooks.walSync = ow, os }
}

// SetLogBuffered makes logs opened from now on write through the page
// cache instead of around it (see logDirect), as where the file system
// takes no direct I/O.
func SetLogBuffered(on bool) (restore func()) {
	old := logBuffered
	logBuffered = on
	return func() { logBuffered = old }
}

// PreparedReleasesForTest returns how many transactions began with a free
// set built ahead (freelist.prepare).
func PreparedReleasesForTest(db *DB) int {
	db.writeMu.Lock()
	defer db.writeMu.Unlock()
	return db.free.prepUsed
}

// TrustedReadsForTest returns how many nodes db's commits read without
// verifying them, because an earlier commit of db built them
// (btree.Writer.TrustFrom).
func TrustedReadsForTest(db *DB) int {
	db.writeMu.Lock()
	defer db.writeMu.Unlock()
	return db.trustedReads
}

// WarmupForTest waits for db's warm-up (warm.go) and returns how many
// pages it read (one per 64 KiB that holds a cached page) and the panic
// it recovered from, if any.
func WarmupForTest(db *DB) (reads int, panicked any) {
	db.warmWG.Wait()
	return db.warmReads, db.warmPanic
}

// WarmStep is warmStep.
const WarmStep = warmStep

// SetMapWrites turns the writable mapping for small commits on or off
// for databases opened from now on (see mapSmallWrites). It returns a
// function restoring the setting.
func SetMapWrites(on bool) (restore func()) {
	old := mapSmallWrites
	mapSmallWrites = on
	return func() { mapSmallWrites = old }
}

// HoldsForTest returns how many pages db held for leaves logged as puts
// into them (see holdable), and how many writes of nodes went through
// the writable mapping.
func HoldsForTest(db *DB) (holds, mapped int) { return db.walHolds, db.mappedWrites }

// MapWritesOn reports whether databases opened now get the writable
// mapping for small commits where the log is on.
func MapWritesOn() bool { return mapSmallWrites }
