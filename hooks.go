package mapkv

// faultHooks is the test seam of the file layer: tests (see
// export_test.go) set these to model the disk beneath the page cache and
// to inject failures. Each is nil in production. They are package state,
// so tests that set them must not run in parallel with each other.
type faultHooks struct {
	// sync runs in place of msync of [off, off+n) of the writable mapping.
	// real does the actual flush.
	sync func(db *DB, off, n int64, real func() error) error
	// grow runs before the file is extended to size; an error aborts it.
	grow func(db *DB, size int64) error
	// mmap runs before a mapping of size bytes is made; an error aborts it.
	mmap func(db *DB, size int64) error
	// write runs before the pages of a commit are written at off (n
	// bytes); an error stands for the write failing.
	write func(db *DB, off int64, n int) error
	// walWrite runs before a record of n bytes is written to the log at
	// off; an error stands for the write failing.
	walWrite func(db *DB, off int64, n int) error
	// walSync runs in place of the flush of the log; real does it.
	walSync func(db *DB, real func() error) error
	// openSync runs in place of the flush Open makes of the file it is
	// about to build on; real does it.
	openSync func(db *DB, real func() error) error
}

var hooks faultHooks
