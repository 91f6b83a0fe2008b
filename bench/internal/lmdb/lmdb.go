// Package lmdb is a minimal cgo binding to the system LMDB library
// (Debian's liblmdb-dev), shaped for kvbench and nothing else.
//
// Two choices give LMDB its best case:
//
//   - Every operation is one whole transaction inside one C call (see
//     shim.c): a Put of 10,000 pairs or a Get of a million keys crosses from
//     Go into C once, and the per-key loop runs in C. Reads therefore pay no
//     cgo cost per key.
//   - Write transactions run on a single goroutine locked to one OS thread
//     (runtime.LockOSThread), as LMDB requires a write transaction to stay on
//     the thread that began it, and LMDB allows one writer at a time anyway.
//
// Read transactions may start on any thread because the environment is
// opened with MDB_NOTLS.
package lmdb

/*
#cgo LDFLAGS: -llmdb
#include <stdlib.h>
#include "shim.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"unsafe"
)

// Env is an open LMDB environment with its main database. Its methods are
// safe for concurrent use.
type Env struct {
	env *C.MDB_env
	dbi C.MDB_dbi

	writes    chan func()
	closeOnce sync.Once
	done      chan struct{}
}

// Version reports the LMDB library version string, e.g. "LMDB 0.9.24: ...".
func Version() string {
	return C.GoString(C.mdb_version(nil, nil, nil))
}

// Open opens (creating if needed) the environment in directory dir with the
// given map size in bytes. Sync flags are LMDB's defaults: every commit is
// durable.
func Open(dir string, mapSize int64) (*Env, error) {
	cdir := C.CString(dir)
	defer C.free(unsafe.Pointer(cdir))
	e := &Env{writes: make(chan func()), done: make(chan struct{})}
	if rc := C.kv_open(cdir, C.size_t(mapSize), &e.env, &e.dbi); rc != 0 {
		return nil, lmdbError("open "+dir, rc)
	}
	go e.writer()
	return e, nil
}

// writer runs every write transaction on one locked OS thread until Close.
func (e *Env) writer() {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	for f := range e.writes {
		f()
	}
	close(e.done)
}

// write runs f on the writer thread and returns its error.
func (e *Env) write(f func() C.int, op string) error {
	res := make(chan C.int, 1)
	e.writes <- func() { res <- f() }
	if rc := <-res; rc != 0 {
		return lmdbError(op, rc)
	}
	return nil
}

// Put stores n pairs in one synced write transaction. keys holds n keys of
// klen bytes back to back, vals n values of vlen bytes.
func (e *Env) Put(keys []byte, klen int, vals []byte, vlen int) error {
	n := len(keys) / klen
	if n == 0 {
		return nil
	}
	if len(vals) != n*vlen {
		return errors.New("lmdb: keys and values differ in count")
	}
	return e.write(func() C.int {
		return C.kv_put(e.env, e.dbi, cbytes(keys), C.size_t(klen), cbytes(vals), C.size_t(vlen), C.size_t(n))
	}, "put")
}

// Delete removes the n keys of klen bytes packed in keys in one synced write
// transaction. Every key must exist.
func (e *Env) Delete(keys []byte, klen int) error {
	n := len(keys) / klen
	if n == 0 {
		return nil
	}
	return e.write(func() C.int {
		return C.kv_del(e.env, e.dbi, cbytes(keys), C.size_t(klen), C.size_t(n))
	}, "delete")
}

// Get looks up the keys of klen bytes packed in keys, all in one read
// transaction in one C loop. It returns the number found and a checksum of
// the values' lengths and first bytes.
func (e *Env) Get(keys []byte, klen int) (found int, sum uint64, err error) {
	n := len(keys) / klen
	if n == 0 {
		return 0, 0, nil
	}
	var f C.size_t
	var s C.uint64_t
	if rc := C.kv_get(e.env, e.dbi, cbytes(keys), C.size_t(klen), C.size_t(n), &f, &s); rc != 0 {
		return 0, 0, lmdbError("get", rc)
	}
	return int(f), uint64(s), nil
}

// Scan reads every pair in key order in one read transaction and returns
// their number and the sum of key and value lengths.
func (e *Env) Scan() (count int, sum uint64, err error) {
	var c C.size_t
	var s C.uint64_t
	if rc := C.kv_scan(e.env, e.dbi, &c, &s); rc != 0 {
		return 0, 0, lmdbError("scan", rc)
	}
	return int(c), uint64(s), nil
}

// CopyFD writes a consistent copy of the environment's data file to the
// file descriptor fd, which must be in blocking mode (mdb_env_copyfd).
func (e *Env) CopyFD(fd uintptr) error {
	if rc := C.mdb_env_copyfd(e.env, C.mdb_filehandle_t(fd)); rc != 0 {
		return lmdbError("copyfd", rc)
	}
	return nil
}

// Close stops the writer thread and closes the environment. No other method
// may be running or called afterwards.
func (e *Env) Close() error {
	e.closeOnce.Do(func() {
		close(e.writes)
		<-e.done
		C.mdb_env_close(e.env)
	})
	return nil
}

// cbytes returns a C view of b's first byte. b holds no Go pointers, so cgo's
// pointer rules allow passing it for the duration of the call.
func cbytes(b []byte) *C.char {
	return (*C.char)(unsafe.Pointer(unsafe.SliceData(b)))
}

func lmdbError(op string, rc C.int) error {
	return fmt.Errorf("lmdb: %s: %s", op, C.GoString(C.mdb_strerror(rc)))
}
