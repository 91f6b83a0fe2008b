package mapkv

import (
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"strconv"
)

// Small commits write their nodes through a writable mapping.
//
// A small logged commit (a one-key commit writes five nodes into a 1M-key
// file) writes its nodes and meta to the data file while its log record
// is written and flushed (walAppendBeside), and the record's flush cannot
// start before they are written: on Linux the direct write's completion
// queues the flush on a kernel worker of the CPU that took the device's
// interrupt, which waits for the committing thread to sleep if it runs
// there. A pwritev into a cached page costs 4-6 µs here (ext4's buffered
// write path, which walks every block of a large folio); a store into a
// page that is mapped writable and dirty already costs under 1 µs, and
// the pages a commit of a few keys takes are mostly the ones the commits
// just before it let go (the branches near the root, the bucket's leaf in
// the root tree), still dirty. Measured on one-key commits into a 1M-key
// file (/tmp harness, 2,000 commits a round, alternated with a bare
// pwrite and fdatasync, leaves held as walputs.go says in both builds):
// the data file's writes went from 14-27 µs to 9-10 µs, the commit from
// 1.54x to 1.50x the bare flush. The checkpoint's flush write-protects
// the pages again; the next store into one of them faults (5-6 µs, about
// a pwritev's cost).
//
// The mapping is a second one, writable, beside the read-only mapping
// that readers and Get's returned slices use: a stray write through a
// value slice still faults. It is made when the log is on (64-bit Linux
// only: mapSmallWrites) and grows with the file as the read-only one does. A
// store the file system cannot back (SIGBUS: a full disk) is an error
// (copyMapped), as a failed pwritev is.

// mapSmallWrites turns the writable mapping on where the log is on:
// Linux, 64-bit (a 32-bit process has no address space to reserve twice).
// Tests run both ways (SetMapWrites).
var mapSmallWrites = runtime.GOOS == "linux" && strconv.IntSize == 64

// mapWriteMax is the most bytes of nodes a commit writes through the
// mapping: larger commits write runs of fresh pages, which pwritev fills
// without a fault per page.
const mapWriteMax = 64 << 10

// copyMapped copies iov into the file at off through the writable
// mapping. A fault is an error.
func (db *DB) copyMapped(off int64, iov [][]byte) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	at := off
	defer func() {
		if r := recover(); r != nil {
			if asFault(r) == nil {
				panic(r)
			}
			err = fmt.Errorf("%w: a store into the mapped file at offset %d faulted (the file system could not back the page: a full disk?)", errMappedWrite, at)
		}
	}()
	d := db.rw.Data
	for _, b := range iov {
		if at < 0 || at+int64(len(b)) > int64(len(d)) {
			// Not reached: the mapping covers the file (remap makes both
			// mappings alike). An error all the same, not a panic.
			return fmt.Errorf("%w: %d bytes at offset %d, past the mapping's %d", errMappedWrite, len(b), at, len(d))
		}
		copy(d[at:at+int64(len(b))], b)
		at += int64(len(b))
	}
	return nil
}

// errMappedWrite: a store through the writable mapping faulted.
var errMappedWrite = errors.New("mapkv: write through the mapping")

// writeMeta writes a logged commit's meta to its slot at off.
func (a *txAlloc) writeMeta(buf []byte, off int64) error {
	if a.mapped {
		return a.tx.db.copyMapped(off, [][]byte{buf})
	}
	_, err := a.tx.db.file.WriteAt(buf, off)
	return err
}
