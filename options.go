package mapkv

import (
	"fmt"
	"math/bits"
	"os"
	"time"

	"github.com/mapkv/mapkv/page"
)

// Options configure Open. The zero value (or a nil *Options) means
// defaults; Open works on a copy, so an Options value may be reused.
type Options struct {
	// ReadOnly opens the file with a shared lock and refuses writes.
	ReadOnly bool
	// NoSync makes commits skip the flush: fast, and safe against a crash
	// of the process (the kernel still writes the pages), but not against
	// a power cut or a crash of the machine: the disk may then hold some
	// pages of several commits and not others, and the file may not open
	// (RELIABILITY.md has the figures). Use it for data you can rebuild.
	NoSync bool
	// PageSize is the page size of a new file: a power of two from 1 KiB
	// to 64 KiB. Default: the OS page size. An existing file keeps its own.
	PageSize int
	// MaxSize is the address space reserved for the mapping, in bytes.
	// The file grows beneath it without remapping; past it, mapkv maps a
	// larger range and retires the old one once no reader uses it.
	// Default: 256 GiB on 64-bit systems, 128 MiB on 32-bit ones.
	MaxSize int64
	// Timeout is how long Open waits for the file lock; 0 fails at once
	// with ErrTimeout.
	Timeout time.Duration
	// InitialSize is the size a new file starts with. Default 1 MiB.
	InitialSize int64
	// GrowStep caps the free room the file keeps past its last used page:
	// when it must grow, it grows by an eighth of what it needs (at least
	// InitialSize, at most GrowStep), and commits cut the file only when
	// more than that room and ShrinkThreshold lie free at its end.
	// Default 1 GiB.
	GrowStep int64
	// FileMode is the permission of a new file. Default 0o600.
	FileMode os.FileMode
	// MaxBatchSize is the most calls one Batch transaction takes. Default 1000.
	MaxBatchSize int
	// MaxBatchDelay is how long a Batch waits for more callers before it
	// commits. Default 0: a batch commits as soon as the writer is free,
	// gathering whoever arrived while the previous commit ran.
	MaxBatchDelay time.Duration
	// SyncThreshold is the size of a transaction's written pages, in bytes,
	// above which a commit flushes data and meta separately (two syncs)
	// so that Open need not re-verify a huge commit. Default 64 MiB.
	SyncThreshold int64
	// WALSize is the size of the write-ahead log, path + "-wal", in bytes.
	// A commit that writes up to a quarter of it is made durable by one
	// write and one flush of the log instead of a flush of its scattered
	// pages in the data file; the data file is flushed when the log is
	// full and at Close, which removes the log. Larger commits of
	// scattered pages (random writes in bulk) make the log grow, up to 64
	// times WALSize, and it goes back to WALSize (on disk too) after a
	// run of small commits fills it; large commits of pages in long runs
	// (sorted loads) write the data file directly. Such a commit does not
	// write the free list either (page.MetaFreeDeferred): Close writes
	// it, and after a crash (or on a snapshot taken meanwhile) a
	// read-write Open rebuilds it by walking every tree, which reads the
	// whole file once. While small commits fill it, pages they
	// replaced may be kept from reuse until it starts over (their log
	// records build on them), at most WALSize of them: the data file may
	// grow by that much meanwhile. Default 8 MiB; -1 turns the log off
	// (every commit flushes the data file and writes the free list). The
	// log is not used with NoSync or WriteMap.
	WALSize int64
	// ShrinkThreshold is the free space at the end of the file, in bytes,
	// above which a commit truncates the file, and the free space in the
	// whole file above which Close moves nodes down to cut it (see
	// DB.Shrink). Default 4 MiB.
	ShrinkThreshold int64
	// WriteMap makes commits write pages through a writable shared mapping
	// of the file and flush them with msync, as LMDB's MDB_WRITEMAP does.
	// By default they build pages in memory, write them with pwritev and
	// flush with one fdatasync: on the Linux machines mapkv is measured on,
	// the kernel flushes pages dirtied through a mapping several times
	// slower than pages written with pwrite (write-protecting each mapped
	// page again costs a TLB shootdown), so small commits are 2-10x faster
	// without the mapping. Readers read through the mapping either way.
	WriteMap bool
	// MaxReaders is the number of reader slots of the lock file shared by
	// the processes that open the database (Linux), fixed when the lock
	// file is created. Each open read transaction of a read-only process
	// beside a writer process uses one. Default 1024.
	MaxReaders int
	// NoWarmup turns off the warm-up: by default, Open starts a goroutine
	// that reads, through the new mapping and in file order, one byte of
	// every 64 KiB of the database that holds a page in the page cache, so
	// that the kernel maps those pages (a fault maps the cached pages of
	// the 64 KiB around it) before the readers reach them (a first read of
	// a page faults: mapping the 46,000 pages of a 188 MB database took a
	// scan about 10 ms of its 24). It reads nothing from disk, runs only
	// when GOMAXPROCS is above 1, and stops at Close; its work is an idle
	// core's for some milliseconds per hundred megabytes cached. Linux
	// only (elsewhere it finds no page cached and stops at once).
	NoWarmup bool
}

const defaultMaxSize64 = 256 << 30

// defaultMaxSize32 is MaxSize on 32-bit systems: a writer maps its file
// twice (read-only and writable), and a process has 3-4 GiB of address
// space in all, so a larger reservation leaves no room for a second
// database or a remap.
const defaultMaxSize32 = 128 << 20

// withDefaults returns a copy of o with every unset field filled in.
func (o *Options) withDefaults() (Options, error) {
	var r Options
	if o != nil {
		r = *o
	}
	if r.PageSize == 0 {
		r.PageSize = os.Getpagesize()
		if !page.ValidPageSize(r.PageSize) {
			r.PageSize = 4096
		}
	}
	if !page.ValidPageSize(r.PageSize) {
		return r, fmt.Errorf("%w: page size %d (want a power of two from %d to %d)", ErrInvalidOptions, r.PageSize, page.MinPageSize, page.MaxPageSize)
	}
	if r.MaxSize == 0 {
		r.MaxSize = defaultMaxSize64
		if bits.UintSize == 32 {
			r.MaxSize = defaultMaxSize32
		}
	}
	if r.MaxSize < 0 || r.InitialSize < 0 || r.GrowStep < 0 || r.Timeout < 0 || r.MaxBatchSize < 0 || r.MaxBatchDelay < 0 || r.SyncThreshold < 0 || r.ShrinkThreshold < 0 {
		return r, fmt.Errorf("%w: negative size or duration", ErrInvalidOptions)
	}
	if r.InitialSize == 0 {
		r.InitialSize = 1 << 20
	}
	if r.GrowStep == 0 {
		r.GrowStep = 1 << 30
	}
	if r.FileMode == 0 {
		r.FileMode = 0o600
	}
	if r.MaxBatchSize == 0 {
		r.MaxBatchSize = 1000
	}
	if r.SyncThreshold == 0 {
		r.SyncThreshold = 64 << 20
	}
	if r.MaxReaders < 0 || r.MaxReaders > 1<<20 {
		return r, fmt.Errorf("%w: MaxReaders %d", ErrInvalidOptions, r.MaxReaders)
	}
	if r.MaxReaders == 0 {
		r.MaxReaders = 1024
	}
	switch {
	case r.WALSize == 0:
		r.WALSize = 8 << 20
	case r.WALSize == -1:
		r.WALSize = 0
	case r.WALSize < 64<<10:
		return r, fmt.Errorf("%w: WALSize %d (at least 64 KiB, or -1 for none)", ErrInvalidOptions, r.WALSize)
	}
	if r.ShrinkThreshold == 0 {
		r.ShrinkThreshold = 4 << 20
	}
	return r, nil
}
