//go:build darwin || freebsd || netbsd || openbsd

package mmap

import "os"

func allocate(f *os.File, size int64) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if fi.Size() >= size {
		return nil
	}
	return f.Truncate(size)
}

func datasync(f *os.File) error { return f.Sync() }

func startWriteback(f *os.File, off, n int64) error { return nil }

// ask: no page counts as cached here (mapkv's warm-up is for Linux).
func (s *Residency) ask(c int64) uint8 { return chunkNone }
