//go:build linux

package mapkv

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/mapkv/mapkv/page"
)

// The lock file (path + "-lock") lets processes share one database: one
// writer process and any number of read-only processes, each seeing new
// commits as they happen. It is mapped shared by every opener and holds a
// table of reader slots, one cache line each:
//
//	header (64 bytes): magic u32 "MKVL", version u32, slot count u32, pad,
//	                   latest committed txid u64 (published by the writer),
//	                   slots ever claimed u64 (slots are claimed lowest
//	                   first; the writer reads only these)
//	slot i (64 bytes at 64+64*i): owner pid u64, txid being read u64 (0: idle)
//
// A reader process claims slots once (an OFD write lock on the slot's first
// byte, held while it owns the slot, which the kernel drops if the process
// dies) and keeps them in a pool, so a read transaction only stores its
// txid: no system call. The writer process takes an OFD write lock on byte
// 0 (one writer at a time), publishes each commit's txid, and before
// reusing pages reads every slot: a page freed by transaction t is reused
// only once no slot reads a txid below t. A slot whose lock is free but
// whose pid is set belonged to a process that died: the writer clears it.
//
// A reader announces its txid, then re-reads the published txid: if it
// moved, it announces again (the LMDB protocol), so that a writer that
// scanned the slots before the announcement cannot have released pages of
// the state it reads.
const (
	lockMagic      = 0x4c564b4d // "MKVL"
	lockVersion    = 2
	lockHeaderSize = 64
	lockSlotSize   = 64
	lockWriterByte = 0
	lockInitByte   = 1
	// legacyByte is locked (shared) in the data file by a read-only opener
	// that cannot write the lock file; while any holds it, the writer
	// reuses no page at all.
	legacyByte = 1
)

type lockFile struct {
	f      *os.File
	data   []byte
	nslots int
	pid    uint64

	mu      sync.Mutex
	pool    []int        // slots this handle owns and is not using
	owned   map[int]bool // every slot this handle owns
	checked map[int]time.Time
}

// errNoLockFile means the lock file could not be opened for writing.
var errNoLockFile = errors.New("lock file not writable")

func openLockFile(path string, mode os.FileMode, nslots int) (*lockFile, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, mode)
	if err != nil {
		if errors.Is(err, os.ErrPermission) || errors.Is(err, unix.EROFS) {
			return nil, errNoLockFile
		}
		return nil, err
	}
	lf := &lockFile{f: f, pid: uint64(os.Getpid()), owned: map[int]bool{}, checked: map[int]time.Time{}}
	if err := lf.init(nslots); err != nil {
		f.Close()
		return nil, fmt.Errorf("mapkv: lock file %s: %w", path, err)
	}
	return lf, nil
}

func (lf *lockFile) init(nslots int) error {
	if err := lf.lock(lockInitByte, true, true); err != nil {
		return err
	}
	defer lf.unlock(lockInitByte)
	fi, err := lf.f.Stat()
	if err != nil {
		return err
	}
	hdr := make([]byte, lockHeaderSize)
	n, _ := lf.f.ReadAt(hdr, 0)
	valid := n == lockHeaderSize && le32(hdr[0:]) == lockMagic && le32(hdr[4:]) == lockVersion
	if valid {
		nslots = int(le32(hdr[8:]))
		valid = nslots > 0 && fi.Size() >= int64(lockHeaderSize+nslots*lockSlotSize)
	}
	size := lockHeaderSize + nslots*lockSlotSize
	if !valid {
		// A new (or unusable) lock file: no process can be using it.
		if err := lf.f.Truncate(0); err != nil {
			return err
		}
		if err := lf.f.Truncate(int64(size)); err != nil {
			return err
		}
		clear(hdr)
		put32(hdr[0:], lockMagic)
		put32(hdr[4:], lockVersion)
		put32(hdr[8:], uint32(nslots))
		if _, err := lf.f.WriteAt(hdr, 0); err != nil {
			return err
		}
	}
	lf.data, err = unix.Mmap(int(lf.f.Fd()), 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return err
	}
	lf.nslots = nslots
	return nil
}

func le32(b []byte) uint32 {
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}
func put32(b []byte, v uint32) {
	b[0], b[1], b[2], b[3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
}

// word returns the 8-byte word at off in the mapping, for atomic access.
// off is a multiple of 8 and the mapping is page-aligned.
func (lf *lockFile) word(off int) *uint64 {
	return (*uint64)(unsafe.Pointer(unsafe.SliceData(lf.data[off : off+8])))
}

func (lf *lockFile) txid() page.TxID { return page.TxID(atomic.LoadUint64(lf.word(16))) }

// publish records the latest committed txid for reader processes.
func (lf *lockFile) publish(t page.TxID) { atomic.StoreUint64(lf.word(16), uint64(t)) }

func slotOff(i int) int                    { return lockHeaderSize + i*lockSlotSize }
func (lf *lockFile) slotPid(i int) *uint64 { return lf.word(slotOff(i)) }
func (lf *lockFile) slotTx(i int) *uint64  { return lf.word(slotOff(i) + 8) }

// lock takes an OFD lock on one byte of the lock file.
func (lf *lockFile) lock(b int64, write, wait bool) error {
	return ofdLock(lf.f, b, write, wait)
}

func (lf *lockFile) unlock(b int64) {
	fl := unix.Flock_t{Type: unix.F_UNLCK, Whence: 0, Start: b, Len: 1}
	unix.FcntlFlock(lf.f.Fd(), unix.F_OFD_SETLK, &fl)
}

// ofdLock takes an open-file-description lock on byte b of f. Without wait
// it fails at once with errLockBusy when another holder conflicts.
func ofdLock(f *os.File, b int64, write, wait bool) error {
	typ := int16(unix.F_RDLCK)
	if write {
		typ = unix.F_WRLCK
	}
	cmd := unix.F_OFD_SETLK
	if wait {
		cmd = unix.F_OFD_SETLKW
	}
	for {
		fl := unix.Flock_t{Type: typ, Whence: 0, Start: b, Len: 1}
		err := unix.FcntlFlock(f.Fd(), cmd, &fl)
		switch err {
		case nil:
			return nil
		case unix.EINTR:
			continue
		case unix.EAGAIN, unix.EACCES:
			return errLockBusy
		}
		return err
	}
}

var errLockBusy = errors.New("lock held by another process")

// ofdHeld reports whether anyone other than f's description holds a lock
// conflicting with a write lock on byte b.
func ofdHeld(f *os.File, b int64) bool {
	fl := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0, Start: b, Len: 1}
	if err := unix.FcntlFlock(f.Fd(), unix.F_OFD_GETLK, &fl); err != nil {
		return true // unknown: assume held, the safe answer
	}
	return fl.Type != unix.F_UNLCK
}

// lockWriter makes this handle the one writer, waiting up to timeout.
func (lf *lockFile) lockWriter(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		err := lf.lock(lockWriterByte, true, false)
		if err != errLockBusy {
			return err
		}
		if timeout <= 0 || time.Now().After(deadline) {
			return errLockBusy
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// writerAlive reports whether a process holds the writer lock.
func (lf *lockFile) writerAlive() bool { return ofdHeld(lf.f, lockWriterByte) }

// acquire returns a slot this handle owns, claiming a new one if none is
// idle. Only a claim makes system calls.
func (lf *lockFile) acquire() (int, error) {
	lf.mu.Lock()
	defer lf.mu.Unlock()
	if n := len(lf.pool); n > 0 {
		s := lf.pool[n-1]
		lf.pool = lf.pool[:n-1]
		return s, nil
	}
	for i := 0; i < lf.nslots; i++ {
		if lf.owned[i] {
			continue
		}
		if atomic.LoadUint64(lf.slotPid(i)) != 0 && atomic.LoadUint64(lf.slotTx(i)) != 0 && ofdHeld(lf.f, int64(slotOff(i))) {
			continue // busy, owner alive
		}
		if err := lf.lock(int64(slotOff(i)), true, false); err != nil {
			continue
		}
		// Ours now; whatever it held belonged to a dead process. Raise
		// the claimed count before the slot is ever announced in.
		for {
			n := atomic.LoadUint64(lf.word(24))
			if n > uint64(i) || atomic.CompareAndSwapUint64(lf.word(24), n, uint64(i)+1) {
				break
			}
		}
		atomic.StoreUint64(lf.slotTx(i), 0)
		atomic.StoreUint64(lf.slotPid(i), lf.pid)
		lf.owned[i] = true
		return i, nil
	}
	return 0, fmt.Errorf("%w: all %d reader slots of the lock file are in use", ErrTooManyReaders, lf.nslots)
}

// release returns an idle slot to this handle's pool.
func (lf *lockFile) release(s int) {
	atomic.StoreUint64(lf.slotTx(s), 0)
	lf.mu.Lock()
	lf.pool = append(lf.pool, s)
	lf.mu.Unlock()
}

// announce records that slot s reads txid t.
func (lf *lockFile) announce(s int, t page.TxID) { atomic.StoreUint64(lf.slotTx(s), uint64(t)) }

// oldest returns the smallest txid any other process's reader reads,
// clearing slots of processes that died (checked at most once a second
// per slot, as it costs a system call).
func (lf *lockFile) oldest() (page.TxID, bool) {
	var min page.TxID
	found := false
	now := time.Now()
	lf.mu.Lock()
	defer lf.mu.Unlock()
	for i := 0; i < lf.claimed(); i++ {
		t := page.TxID(atomic.LoadUint64(lf.slotTx(i)))
		if t == 0 || lf.owned[i] {
			continue
		}
		if now.Sub(lf.checked[i]) > time.Second {
			lf.checked[i] = now
			if !ofdHeld(lf.f, int64(slotOff(i))) {
				// The owner died with a transaction open: reclaim.
				atomic.StoreUint64(lf.slotTx(i), 0)
				atomic.StoreUint64(lf.slotPid(i), 0)
				continue
			}
		}
		if !found || t < min {
			min, found = t, true
		}
	}
	return min, found
}

// claimed returns how many slots, from the first, have ever been claimed.
func (lf *lockFile) claimed() int {
	return int(min(atomic.LoadUint64(lf.word(24)), uint64(lf.nslots)))
}

// slots lists the reader slots in use: pid and txid.
func (lf *lockFile) slots() []ReaderStat {
	var out []ReaderStat
	for i := 0; i < lf.claimed(); i++ {
		if t := atomic.LoadUint64(lf.slotTx(i)); t != 0 {
			out = append(out, ReaderStat{TxID: t, Count: 1, PID: int(atomic.LoadUint64(lf.slotPid(i)))})
		}
	}
	return out
}

func (lf *lockFile) close() {
	lf.mu.Lock()
	for s := range lf.owned {
		atomic.StoreUint64(lf.slotTx(s), 0)
		atomic.StoreUint64(lf.slotPid(s), 0)
	}
	lf.owned, lf.pool = nil, nil
	lf.mu.Unlock()
	unix.Munmap(lf.data)
	lf.f.Close() // drops every OFD lock of this handle
}

// legacyReader reports whether a read-only process without the lock file
// holds the data file (see legacyByte).
func legacyReader(f *os.File) bool { return ofdHeld(f, legacyByte) }

// lockLegacy marks this read-only handle as a reader the writer cannot see.
func lockLegacy(f *os.File) error { return ofdLock(f, legacyByte, false, false) }

const sharedReaders = true
