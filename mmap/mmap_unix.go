//go:build linux || darwin || freebsd || netbsd || openbsd

package mmap

import (
	"os"

	"golang.org/x/sys/unix"
)

func mapFile(f *os.File, size int, writable bool) ([]byte, error) {
	prot := unix.PROT_READ
	if writable {
		prot |= unix.PROT_WRITE
	}
	return unix.Mmap(int(f.Fd()), 0, size, prot, unix.MAP_SHARED)
}

func unmapFile(b []byte) error { return unix.Munmap(b) }

func msync(b []byte) error { return unix.Msync(b, unix.MS_SYNC) }

func advise(b []byte, random bool) {
	a := unix.MADV_NORMAL
	if random {
		a = unix.MADV_RANDOM
	}
	_ = unix.Madvise(b, a)
}

func tryLock(f *os.File, exclusive bool) (bool, error) {
	how := unix.LOCK_SH
	if exclusive {
		how = unix.LOCK_EX
	}
	for {
		err := unix.Flock(int(f.Fd()), how|unix.LOCK_NB)
		switch err {
		case nil:
			return true, nil
		case unix.EWOULDBLOCK:
			return false, nil
		case unix.EINTR:
			continue
		}
		return false, err
	}
}

func unlock(f *os.File) error { return unix.Flock(int(f.Fd()), unix.LOCK_UN) }
