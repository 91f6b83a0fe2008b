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

func resident(b []byte, pages int, vec *[]byte) bool {
	if cap(*vec) < pages {
		*vec = make([]byte, pages)
	}
	v := (*vec)[:pages]
	// x/sys has no wrapper for mincore(2).
	_, _, e := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), uintptr(unsafe.Pointer(&v[0])))
	if e != 0 {
		return false
	}
	for _, p := range v {
		if p&1 == 0 {
			return false
		}
	}
	return true
}

func datasync(f *os.File) error {
	for {
		err := unix.Fdatasync(int(f.Fd()))
		if err != unix.EINTR {
			return err
		}
	}
}
