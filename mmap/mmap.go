// Package mmap maps a data file into memory, grows and shrinks it beneath
// the mapping, flushes ranges with msync, tells which pages are in the
// page cache (Residency), and takes the file lock. It knows the kernel and
// nothing about what the bytes mean.
//
// A Region reserves address space once (possibly far beyond the file's
// end); the file is then extended beneath it. On 64-bit Linux a shared
// mapping may be longer than its file: pages past the end fault (SIGBUS)
// until the file covers them, and then simply work, so growth needs no
// remap. Callers keep every access below the file size.
package mmap

import (
	"errors"
	"fmt"
	"os"
	"time"
)

// ErrLocked is returned by Lock when the lock is still held by another
// opener after the timeout.
var ErrLocked = errors.New("mmap: file is locked")

// ErrUnsupported is returned on platforms without shared file mappings.
var ErrUnsupported = errors.New("mmap: not supported on this platform")

// Region is a shared mapping of a file. Data covers the whole reservation;
// only the part below the file's size may be touched.
type Region struct {
	Data     []byte
	Writable bool
}

// Map reserves size bytes of address space mapping f from offset 0, shared,
// read-only or read-write. size may exceed the file's length.
func Map(f *os.File, size int64, writable bool) (*Region, error) {
	if size <= 0 || int64(int(size)) != size {
		return nil, fmt.Errorf("mmap: invalid mapping size %d", size)
	}
	b, err := mapFile(f, int(size), writable)
	if err != nil {
		return nil, &os.PathError{Op: "mmap", Path: f.Name(), Err: err}
	}
	return &Region{Data: b, Writable: writable}, nil
}

// Unmap releases the mapping. The Region must not be used afterwards.
func (r *Region) Unmap() error {
	if r == nil || r.Data == nil {
		return nil
	}
	err := unmapFile(r.Data)
	r.Data = nil
	return err
}

// Sync flushes the dirty pages in [off, off+n) of a writable region to
// disk and waits for the write (msync MS_SYNC). The range is widened to
// page boundaries. The kernel writes only pages that are dirty, so a wide
// range costs no I/O for clean pages.
func (r *Region) Sync(off, n int64) error {
	if n <= 0 {
		return nil
	}
	ps := int64(os.Getpagesize())
	start := off &^ (ps - 1)
	end := off + n
	if end > int64(len(r.Data)) {
		end = int64(len(r.Data))
	}
	if start >= end {
		return nil
	}
	return msync(r.Data[start:end])
}

// Advise passes an access-pattern hint for the whole region; errors are
// ignored because a hint is never required for correctness.
func (r *Region) Advise(random bool) { advise(r.Data, random) }

// Lock takes an flock on f, exclusive or shared. It retries until timeout
// passes (0: a single try) and then returns ErrLocked.
func Lock(f *os.File, exclusive bool, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, err := tryLock(f, exclusive)
		if err != nil {
			return &os.PathError{Op: "flock", Path: f.Name(), Err: err}
		}
		if ok {
			return nil
		}
		if timeout <= 0 || time.Now().After(deadline) {
			return ErrLocked
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Unlock releases the flock on f.
func Unlock(f *os.File) error { return unlock(f) }

// Grow makes f at least size bytes long, allocating the blocks where the
// platform can (fallocate) so that a later write through the mapping cannot
// fail for lack of space. It does not flush: the caller's next msync
// (MS_SYNC has fdatasync semantics on Linux: it also makes durable the
// size needed to read the flushed data) covers the new size.
func Grow(f *os.File, size int64) error {
	if err := allocate(f, size); err != nil {
		return &os.PathError{Op: "grow", Path: f.Name(), Err: err}
	}
	return nil
}

// Datasync flushes f's data and the metadata needed to read it.
func Datasync(f *os.File) error { return datasync(f) }

// StartWriteback asks the kernel to start writing f's dirty pages without
// waiting for them to reach the disk (sync_file_range with
// SYNC_FILE_RANGE_WRITE on Linux; it may wait to submit them): a later
// Datasync then has less to write. It promises nothing about durability.
// Elsewhere it does nothing.
func StartWriteback(f *os.File) error { return startWriteback(f, 0, 0) }

// StartWritebackRange is StartWriteback for the n bytes of f at off.
func StartWritebackRange(f *os.File, off, n int64) error { return startWriteback(f, off, n) }
