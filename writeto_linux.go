//go:build linux

package mapkv

import (
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// maxKernelChunk bounds one sendfile or copy_file_range call, so that a
// blocking destination returns now and then. (With streamNotSentLowat a
// call to a TCP socket returns much sooner anyway; the chunk size made no
// measurable difference between 1 and 16 MiB.)
const maxKernelChunk = 4 << 20

// streamNotSentLowat is the TCP_NOTSENT_LOWAT a TCP connection gets while
// sendfile streams an image to it (unless the caller set one): the kernel
// then queues at most this many bytes in the socket beyond what the
// window lets it send, instead of up to the whole send buffer (4 MiB with
// the default autotuning).
//
// sendfile queues page references without copying, so without the limit
// it fills the send buffer at once and the sender sleeps. The queued data
// then goes out when ACKs open the window: from the ACK's softirq, on the
// receiving CPU, inside the receiver's recvmsg. On loopback that puts the
// sender's transmit work, the receive processing and the copy to user
// space all on the receiver's CPU, and segments sent from two CPUs go
// through two per-CPU backlogs and arrive out of order (SACK recovery and
// retransmits on loopback, in nstat). With the limit, most segments leave
// from the sender's own sendfile call, on its CPU.
//
// Measured on Linux 6.18 (2 vCPUs, BBR), streaming a 227 MB page-cached
// database over a new loopback connection to a reader with a 1 MiB
// buffer: 0.6 CPU-s/GB and 1.1-1.6 GB/s without the limit, 0.2-0.3
// CPU-s/GB and 2.5-4.7 GB/s with 64 KiB (bbolt's pread+write: 0.4-0.5
// CPU-s/GB); 32 and 128 KiB did worse than 64 KiB (loopback's MSS is
// 64 KiB). It does not help a long-lived connection whose congestion
// window has shrunk (see BenchmarkWriteTo). It bounds only unsent data,
// not data in flight, so on a real network the congestion window is
// untouched; the sender is just woken more often to top up the queue
// (servers commonly set such a limit system-wide).
const streamNotSentLowat = 64 << 10

// copyMethod is how the kernel can move file bytes to a destination.
type copyMethod int

const (
	copyNone      copyMethod = iota
	copySendfile             // sockets, pipes, devices
	copyFileRange            // regular files, then sendfile
)

// zeroCopyTarget returns the raw descriptor of w and how the kernel can
// feed it, or copyNone for writers it cannot (anything that is not a bare
// socket or file: a TLS connection, a bufio.Writer, an http.ResponseWriter).
func zeroCopyTarget(w io.Writer) (syscall.RawConn, copyMethod) {
	var (
		rc  syscall.RawConn
		err error
		how = copySendfile
	)
	switch d := w.(type) {
	case *net.TCPConn:
		rc, err = d.SyscallConn()
	case *net.UnixConn:
		// Datagram and seqpacket sockets would cut the image into
		// messages of whatever size the kernel chose.
		if d.LocalAddr() == nil || d.LocalAddr().Network() != "unix" {
			return nil, copyNone
		}
		rc, err = d.SyscallConn()
	case *os.File:
		fi, serr := d.Stat()
		if serr != nil {
			return nil, copyNone
		}
		if fi.Mode().IsRegular() {
			how = copyFileRange
		}
		rc, err = d.SyscallConn()
	default:
		return nil, copyNone
	}
	if err != nil {
		return nil, copyNone
	}
	return rc, how
}

// copyFile moves [off, end) of the data file to w with the kernel, if w
// is a destination the kernel can feed, and returns the offset it
// reached. The caller writes the rest from the mapping: what remains when
// w is of another kind, when the kernel refuses the pair of files
// (EINVAL, EXDEV, ...), or when the data file ends early.
func (tx *Tx) copyFile(w io.Writer, off, end int64, s *WriteStats) (int64, error) {
	dst, how := zeroCopyTarget(w)
	if how == copyNone || off >= end {
		return off, nil
	}
	src, err := tx.db.file.SyscallConn()
	if err != nil {
		return off, nil
	}
	if _, ok := w.(*net.TCPConn); ok {
		defer limitNotSent(dst)()
	}
	var cerr error
	// Control keeps the data file's descriptor open for the whole copy,
	// even if the DB is closed meanwhile (the mapping is pinned by tx).
	err = src.Control(func(sfd uintptr) {
		var n int64
		if how == copyFileRange {
			n, cerr = kernelCopy(dst, int(sfd), off, end, copyFileRangeCall)
			s.CopyFileRange += n
			off += n
			if cerr != nil || off >= end {
				return
			}
		}
		n, cerr = kernelCopy(dst, int(sfd), off, end, sendfileCall)
		s.Sendfile += n
		off += n
	})
	if f, ok := w.(*os.File); ok && cerr != nil {
		// The runtime's error for a file closed under the copy is not
		// os.ErrClosed; report it as Write would.
		if _, serr := f.Stat(); errors.Is(serr, os.ErrClosed) {
			cerr = &os.PathError{Op: "write", Path: f.Name(), Err: os.ErrClosed}
		}
	}
	// An error of Control itself means the data file was closed (DB.Close
	// ran): the pinned mapping still holds the image, so it is no error.
	return off, cerr
}

// limitNotSent sets TCP_NOTSENT_LOWAT on the TCP socket c to
// streamNotSentLowat, unless c has a limit of its own or the system
// default is already as tight, and returns the function that puts the
// option back as it was. It is a tuning, not a requirement: a socket that
// refuses the option streams as it is, and a connection closed meanwhile
// has nothing to restore.
//
// A socket reports 0 when it follows the system default
// (net.ipv4.tcp_notsent_lowat), and -1 (no limit) when accepted from a
// listener that offered MPTCP (Go's listeners do by default) even if the
// connection fell back to plain TCP; any other value is the caller's.
func limitNotSent(c syscall.RawConn) (restore func()) {
	var (
		was int
		set bool
	)
	c.Control(func(fd uintptr) {
		v, err := unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_NOTSENT_LOWAT)
		switch {
		case err != nil:
			return
		case v == 0:
			if d := systemNotSentLowat(); d > 0 && d <= streamNotSentLowat {
				return
			}
		case v != -1:
			return
		}
		was = v
		set = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_NOTSENT_LOWAT, streamNotSentLowat) == nil
	})
	if !set {
		return func() {}
	}
	return func() {
		c.Control(func(fd uintptr) {
			unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_NOTSENT_LOWAT, was)
		})
	}
}

// systemNotSentLowat is net.ipv4.tcp_notsent_lowat, or 0 if unknown.
var systemNotSentLowat = sync.OnceValue(func() int64 {
	b, err := os.ReadFile("/proc/sys/net/ipv4/tcp_notsent_lowat")
	if err != nil {
		return 0
	}
	v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil || v < 0 {
		return 0
	}
	return v
})

// kernelCall moves up to n bytes from src at *off to dst, advancing *off.
type kernelCall struct {
	name string
	once func(dst, src int, off *int64, n int) (int, error)
}

var (
	sendfileCall = kernelCall{"sendfile", func(dst, src int, off *int64, n int) (int, error) {
		return unix.Sendfile(dst, src, off, n)
	}}
	// copy_file_range writes at dst's own file offset (nil), as Write would.
	copyFileRangeCall = kernelCall{"copy_file_range", func(dst, src int, off *int64, n int) (int, error) {
		return unix.CopyFileRange(src, off, dst, nil, n, 0)
	}}
)

// kernelCopy repeats call until [off, end) is done, the source ends (a
// call returns 0), the kernel declines the pair of files (returned as nil:
// the caller takes another path from where this one stopped) or a real
// error. EAGAIN waits in the runtime poller until dst is writable.
//
// Each chunk takes dst's write lock anew, so that closing dst from
// another goroutine (an interrupted backup, a server shutting down) stops
// the copy within a chunk, with the error of a closed file or connection.
func kernelCopy(dst syscall.RawConn, src int, off, end int64, call kernelCall) (int64, error) {
	start := off
	var (
		n   int
		err error
	)
	// One closure for all chunks: the loop allocates nothing.
	once := func(fd uintptr) bool {
		for {
			n, err = call.once(int(fd), src, &off, int(min(end-off, maxKernelChunk)))
			switch err {
			case unix.EINTR:
				continue
			case unix.EAGAIN:
				return false // wait until fd is writable
			}
			return true
		}
	}
	for off < end {
		werr := dst.Write(once)
		switch {
		case werr != nil:
			return off - start, werr
		case err != nil && declined(err):
			return off - start, nil
		case err != nil:
			return off - start, os.NewSyscallError(call.name, err)
		case n == 0:
			return off - start, nil // the data file ends before end
		}
	}
	return off - start, nil
}

// declined reports errors by which the kernel declines a pair of files
// (a destination opened with O_APPEND, file systems that cannot copy
// between each other, an old kernel) rather than failing the transfer.
// Whatever remains is written from the mapping, where a real problem with
// the destination shows up again as the error of Write.
func declined(err error) bool {
	switch err {
	case unix.EINVAL, unix.ENOSYS, unix.EOPNOTSUPP, unix.EXDEV, unix.EBADF, unix.EPERM:
		return true
	}
	return false
}

// isFault reports the error of a write(2) whose source bytes lie in a part
// of the mapping the file no longer backs.
func isFault(err error) bool { return errors.Is(err, unix.EFAULT) }
