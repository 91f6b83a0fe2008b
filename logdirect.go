package mapkv

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"unsafe"
)

// logDirect writes the log's records around the page cache (O_DIRECT on
// Linux; see openLogDirect). The log is written once and read only by a
// replay after a crash, so keeping its pages cached only cost: the copy
// into the cache, the cache's own bookkeeping and writeback (on a random
// load of 1M keys, 1.8 GB of records), and memory the size of the log
// (up to 512 MiB) taken from the page cache, which on the benchmark's VM
// is itself slow to hand out once the host has taken free memory back.
// Measured on random loads of 1M keys (16-byte keys, 100-byte values;
// bench/, same run, alternating): 10,000-key commits 263-288k keys/s
// buffered against 305-312k direct, 1,000-key commits 135-155k against
// 165-170k; the process's system CPU on the /tmp harness 2.8 s against
// 2.1 s (one pair of runs). One-key commits did not change (median
// 106-112 µs against 102-105 µs).
//
// Direct writes must begin at a multiple of align, cover whole multiples
// of it and come from memory aligned to it. Records follow each other at
// any byte, so each write begins at the block that holds the end of the
// previous record: tail keeps that block's bytes up to the record's
// start, and they are written again, unchanged, ahead of the new record
// (a power cut tearing that block leaves the same bytes whichever of its
// sectors it keeps). Past the record's end the last block is padded with
// zeros, which the next record overwrites: for a replay, the log ends
// there as it ends at the zeros the writer keeps ahead of its records.
type logDirect struct {
	f     *os.File // the log, opened for direct I/O
	align int64
	buf   []byte // aligned staging memory, a multiple of align
	tail  []byte // the log's bytes from the block holding wal.off up to it
	prev  []byte // tail before the last record (walRevoke puts it back)
	// aio writes a small record and flushes it while the commit writes
	// its nodes to the data file (submit, await); inflight is the bytes
	// of the write under way.
	aio      aioCtx
	inflight int
}

// directChunk bounds the staging memory (a handle keeps what its largest
// write needed: 1 MiB once the log has been filled with zeros ahead of
// its records, which happens early): a larger record is written in
// pieces of this size, each copied, then written while the writer waits.
// Measured on random loads of 1M keys (10,000-key commits, the /tmp
// harness, five runs each in turn): pieces of 256 KiB 301k keys/s
// (median), 1 MiB 322k, 16 MiB 307k.
const directChunk = 1 << 20

// errNotSubmitted: submit did not start the record's write (no AIO
// here); the caller writes it as before.
var errNotSubmitted = errors.New("mapkv: log record not submitted")

// logSync turns the asynchronous record writes off for logs opened from
// now on (tests run both ways: SetLogSync).
var logSync bool

// canSubmit reports whether a record of n bytes at off may go through
// submit: d takes asynchronous writes, the record fits one staging chunk
// and needs no zeros written after it (it ends before filled).
func (d *logDirect) canSubmit(off, n, filled int64) bool {
	return d != nil && d.aio.ready() && off+n <= filled && int64(len(d.tail))+n <= directChunk
}

// submit is write for a record canSubmit took, flushed as well: it
// starts the write (with RWF_DSYNC) and returns; await waits for it. The
// staging memory is the kernel's until then. errNotSubmitted: nothing
// was started (and d takes no more).
//
// Measured on one-key commits into a 1M-key file (the /tmp harness,
// 2,000 commits a round): the commit's six data-file writes (about 17 µs)
// and the flush's own system call no longer add to the log's write and
// flush.
func (d *logDirect) submit(iov [][]byte, off, n int64) error {
	pos := off - int64(len(d.tail)) // aligned
	b := d.stage(int64(len(d.tail)) + n)
	fill := copy(b, d.tail)
	for _, v := range iov {
		fill += copy(b[fill:], v)
	}
	m := int(roundUp(int64(fill), d.align))
	clear(b[fill:m])
	if err := d.aio.submit(d.f, b[:m], pos); err != nil {
		return err
	}
	d.inflight = m
	end := off + n
	d.prev = append(d.prev[:0], d.tail...)
	d.tail = append(d.tail[:0], b[end&^(d.align-1)-pos:fill]...)
	return nil
}

// await waits for the write submit started, if one is under way.
func (d *logDirect) await() error {
	if d.inflight == 0 {
		return nil
	}
	n, err := d.aio.wait()
	want := d.inflight
	d.inflight = 0
	if err != nil {
		return err
	}
	if n != want {
		return fmt.Errorf("mapkv: log write of %d bytes wrote %d", want, n)
	}
	return nil
}

// errDirectUnsupported reports a file system that refused a direct write:
// the log is then written through the page cache.
var errDirectUnsupported = errors.New("mapkv: direct I/O not supported for the log")

// stage returns aligned staging memory of at least n bytes (at most
// directChunk), keeping it for the next record.
func (d *logDirect) stage(n int64) []byte {
	n = min(roundUp(max(n, d.align), d.align), directChunk)
	if int64(len(d.buf)) >= n {
		return d.buf
	}
	raw := make([]byte, n+d.align)
	skip := int64(0)
	if r := int64(uintptr(unsafe.Pointer(&raw[0]))) % d.align; r != 0 {
		skip = d.align - r
	}
	d.buf = raw[skip : skip+n : skip+n]
	return d.buf
}

// pwrite writes b (aligned) at off.
func (d *logDirect) pwrite(b []byte, off int64) error {
	_, err := d.f.WriteAt(b, off)
	if errors.Is(err, syscall.EINVAL) {
		return errDirectUnsupported
	}
	return err
}

// write writes the n bytes of iov at off, where the previous record
// ended (d.tail holds the bytes of its block before off).
func (d *logDirect) write(iov [][]byte, off, n int64) error {
	pos := off - int64(len(d.tail)) // aligned
	b := d.stage(int64(len(d.tail)) + n)
	fill := copy(b, d.tail)
	for _, v := range iov {
		for len(v) > 0 {
			c := copy(b[fill:], v)
			fill += c
			v = v[c:]
			if fill == len(b) {
				if err := d.pwrite(b, pos); err != nil {
					return err
				}
				pos += int64(fill)
				fill = 0
			}
		}
	}
	end := off + n
	keep := b[end&^(d.align-1)-pos : fill] // the new tail, within b
	if fill > 0 {
		m := int(roundUp(int64(fill), d.align))
		clear(b[fill:m])
		if err := d.pwrite(b[:m], pos); err != nil {
			return err
		}
	}
	d.prev = append(d.prev[:0], d.tail...)
	d.tail = append(d.tail[:0], keep...)
	return nil
}

// wroteAround notes that the n bytes of iov were written at off through
// the page cache (see logCachedMin), where the previous record ended:
// the tail becomes the record's bytes in its last block.
func (d *logDirect) wroteAround(iov [][]byte, off, n int64) {
	end := off + n
	k := int(end - end&^(d.align-1)) // bytes of the log in the record's last block
	d.prev = append(d.prev[:0], d.tail...)
	// The last k bytes of the old tail followed by the record.
	b := make([]byte, k)
	at := k
	for i := len(iov) - 1; i >= 0 && at > 0; i-- {
		c := min(len(iov[i]), at)
		at -= c
		copy(b[at:], iov[i][len(iov[i])-c:])
	}
	copy(b[:at], d.prev[len(d.prev)-at:]) // the record began in this block
	d.tail = append(d.tail[:0], b...)
}

// zero writes zeros from off (aligned up) to end (aligned up).
func (d *logDirect) zero(off, end int64) error {
	off, end = roundUp(off, d.align), roundUp(end, d.align)
	if off >= end {
		return nil
	}
	b := d.stage(end - off)
	clear(b)
	for off < end {
		m := min(int64(len(b)), end-off)
		if err := d.pwrite(b[:m], off); err != nil {
			return err
		}
		off += m
	}
	return nil
}

// restarted sets the tail for a generation whose header h was just
// written at offset 0: the first record follows it.
func (d *logDirect) restarted(h []byte) {
	d.tail = append(d.tail[:0], h...)
	d.prev = d.prev[:0]
}

// revoked puts back the tail before the last record, which walRevoke
// took back: the next record goes where it began.
func (d *logDirect) revoked() {
	d.tail = append(d.tail[:0], d.prev...)
}
