//go:build !(linux || darwin || freebsd || netbsd || openbsd)

package mmap

import "os"

func mapFile(f *os.File, size int, writable bool) ([]byte, error) { return nil, ErrUnsupported }
func unmapFile(b []byte) error                                    { return ErrUnsupported }
func msync(b []byte) error                                        { return ErrUnsupported }
func advise(b []byte, random bool)                                {}
func tryLock(f *os.File, exclusive bool) (bool, error)            { return false, ErrUnsupported }
func unlock(f *os.File) error                                     { return ErrUnsupported }
func allocate(f *os.File, size int64) error                       { return ErrUnsupported }
func datasync(f *os.File) error                                   { return f.Sync() }
func startWriteback(f *os.File, off, n int64) error               { return nil }

// ask: no page counts as cached here.
func (s *Residency) ask(c int64) uint8 { return chunkNone }
