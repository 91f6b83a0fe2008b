//go:build linux

package mmap

import (
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

func allocate(f *os.File, size int64) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if fi.Size() >= size {
		return nil
	}
	for {
		err = unix.Fallocate(int(f.Fd()), 0, 0, size)
		if err != unix.EINTR {
			break
		}
	}
	if err == unix.EOPNOTSUPP || err == unix.ENOSYS {
		return f.Truncate(size) // file systems without fallocate (tmpfs is fine)
	}
	return err
}

func datasync(f *os.File) error {
	for {
		err := unix.Fdatasync(int(f.Fd()))
		if err != unix.EINTR {
			return err
		}
	}
}

func startWriteback(f *os.File, off, n int64) error {
	for {
		err := unix.SyncFileRange(int(f.Fd()), off, n, unix.SYNC_FILE_RANGE_WRITE)
		if err != unix.EINTR {
			return err
		}
	}
}

// ask finds out how much of chunk c is in the page cache: cachestat(2)
// for the chunk, then, if only part of it is, mincore(2) for its pages.
// An error makes the chunk count as not cached.
func (s *Residency) ask(c int64) uint8 {
	first, count := s.pageRange(c)
	ps := 1 << s.shift
	if !s.noStat {
		var st unix.Cachestat_t
		rng := unix.CachestatRange{Off: uint64(first) * uint64(ps), Len: uint64(count) * uint64(ps)}
		switch err := unix.Cachestat(uint(s.f.Fd()), &rng, &st, 0); {
		case err == unix.ENOSYS || err == unix.EPERM:
			s.noStat = true // before Linux 6.5, or refused by a filter
		case err != nil:
			return chunkNone
		case st.Cache >= uint64(count):
			return chunkAll
		case st.Cache == 0:
			return chunkNone
		}
	}
	if s.vec == nil {
		s.vec = make([]byte, residentChunk>>s.shift)
	}
	b := s.data[first*ps : min(len(s.data), (first+count)*ps)]
	_, _, e := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), uintptr(unsafe.Pointer(&s.vec[0])))
	if e != 0 {
		return chunkNone
	}
	s.markSome(first, count, func(i int) bool { return s.vec[i]&1 != 0 })
	return chunkSome
}
