package mapkv

import (
	"os"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// openLogDirect opens the log at path a second time, for direct I/O
// (O_DIRECT), if its file system takes direct writes aligned to at most a
// page (statx's STATX_DIOALIGN; kernels before 6.1 do not say, and a
// page is assumed). Otherwise, or if it cannot, it returns nil: the log
// is written through the page cache.
func openLogDirect(path string) *logDirect {
	align := int64(os.Getpagesize())
	var st unix.Statx_t
	if err := unix.Statx(unix.AT_FDCWD, path, 0, unix.STATX_DIOALIGN, &st); err == nil && st.Mask&unix.STATX_DIOALIGN != 0 {
		if st.Dio_offset_align == 0 || int64(st.Dio_offset_align) > align || int64(st.Dio_mem_align) > align {
			return nil // no direct I/O here, or blocks larger than a page
		}
	}
	f, err := os.OpenFile(path, os.O_RDWR|unix.O_DIRECT, 0)
	if err != nil {
		return nil
	}
	d := &logDirect{f: f, align: align}
	if !logSync {
		d.aio.setup()
	}
	return d
}

// aioCtx is a Linux AIO context of one request, for logDirect.submit: an
// O_DIRECT write with RWF_DSYNC runs, and flushes, while the caller goes
// on (io_submit), and await collects it (io_getevents). A zero aioCtx, or
// one whose setup or submission failed (no AIO in this kernel, or a
// sandbox that forbids it), takes no requests: records are then written
// and flushed synchronously.
type aioCtx struct {
	ctx     uintptr
	pending bool // a request was submitted and its event not yet read
	cb      aioCB
	cbs     [1]*aioCB
	ev      [1]aioEvent
}

// aioCB is the kernel's struct iocb (64 bytes, little-endian layout).
type aioCB struct {
	data     uint64
	key      uint32
	rwFlags  int32
	opcode   uint16
	prio     int16
	fd       uint32
	buf      uint64
	nbytes   uint64
	offset   int64
	reserved uint64
	flags    uint32
	resfd    uint32
}

// aioEvent is the kernel's struct io_event.
type aioEvent struct {
	data, obj uint64
	res, res2 int64
}

const aioCmdPwrite = 1 // IOCB_CMD_PWRITE

// aioFree holds AIO contexts that no log uses now, for the next one:
// destroying a context (io_destroy) waits for an RCU grace period, 30-40
// ms on the machines measured, which every Close of a database would pay.
// The process keeps as many contexts as it had logs open at once (each
// holds a ring of a page or two in the kernel).
var aioFree struct {
	sync.Mutex
	ctxs []uintptr
}

func (c *aioCtx) setup() {
	if one := uint16(1); *(*byte)(unsafe.Pointer(&one)) != 1 {
		return // aioCB has the little-endian layout (aio_key and aio_rw_flags swap places on big-endian machines)
	}
	aioFree.Lock()
	if n := len(aioFree.ctxs); n > 0 {
		c.ctx = aioFree.ctxs[n-1]
		aioFree.ctxs = aioFree.ctxs[:n-1]
	}
	aioFree.Unlock()
	if c.ctx != 0 {
		return
	}
	var ctx uintptr
	if _, _, e := unix.Syscall(unix.SYS_IO_SETUP, 1, uintptr(unsafe.Pointer(&ctx)), 0); e == 0 {
		c.ctx = ctx
	}
}

func (c *aioCtx) ready() bool { return c.ctx != 0 }

// submit starts a flushed write of b (aligned) at off to f. It returns
// errNotSubmitted, and takes no more requests, if the kernel refused it.
func (c *aioCtx) submit(f *os.File, b []byte, off int64) error {
	c.cb = aioCB{opcode: aioCmdPwrite, fd: uint32(f.Fd()), buf: uint64(uintptr(unsafe.Pointer(&b[0]))),
		nbytes: uint64(len(b)), offset: off, rwFlags: unix.RWF_DSYNC}
	c.cbs[0] = &c.cb
	n, _, e := unix.Syscall(unix.SYS_IO_SUBMIT, c.ctx, 1, uintptr(unsafe.Pointer(&c.cbs[0])))
	if e != 0 || n != 1 {
		c.close()
		return errNotSubmitted
	}
	c.pending = true
	return nil
}

// wait returns the result of the request submitted last: the bytes
// written, or its error.
func (c *aioCtx) wait() (int, error) {
	for {
		n, _, e := unix.Syscall6(unix.SYS_IO_GETEVENTS, c.ctx, 1, 1, uintptr(unsafe.Pointer(&c.ev[0])), 0, 0)
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return 0, e
		}
		if n != 1 {
			continue
		}
		c.pending = false
		if r := c.ev[0].res; r < 0 {
			return 0, unix.Errno(-r)
		}
		return int(c.ev[0].res), nil
	}
}

// close gives the context back for another log (see aioFree), or
// destroys it if the event of its last request was not read (a failed
// io_getevents): the next log must not find it.
func (c *aioCtx) close() {
	if c.ctx != 0 && c.pending {
		unix.Syscall(unix.SYS_IO_DESTROY, c.ctx, 0, 0)
		c.ctx, c.pending = 0, false
	}
	if c.ctx != 0 {
		aioFree.Lock()
		aioFree.ctxs = append(aioFree.ctxs, c.ctx)
		aioFree.Unlock()
		c.ctx = 0
	}
}
