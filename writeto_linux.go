//go:build linux

package mapkv

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// maxKernelChunk bounds one sendfile or copy_file_range call, as Go's own
// sendfile does, so that a blocking destination returns now and then.
const maxKernelChunk = 4 << 20

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
