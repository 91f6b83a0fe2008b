package bench

import (
	"errors"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// receiver is a loopback TCP sink that counts the bytes of one connection.
type receiver struct {
	ln   *net.TCPListener
	done chan recvResult
}

type recvResult struct {
	n   int64
	end time.Time
	err error
}

// startReceiver listens on 127.0.0.1 and drains the first connection into a
// large buffer until EOF.
func startReceiver() (*receiver, error) {
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, err
	}
	r := &receiver{ln: ln, done: make(chan recvResult, 1)}
	go func() {
		c, err := ln.AcceptTCP()
		if err != nil {
			r.done <- recvResult{err: err}
			return
		}
		defer c.Close()
		buf := make([]byte, 1<<20)
		var n int64
		for {
			k, err := c.Read(buf)
			n += int64(k)
			if err == io.EOF {
				r.done <- recvResult{n: n, end: time.Now()}
				return
			}
			if err != nil {
				r.done <- recvResult{n: n, err: err}
				return
			}
		}
	}()
	return r, nil
}

// dial connects to the receiver.
func (r *receiver) dial() (*net.TCPConn, error) {
	return net.DialTCP("tcp", nil, r.ln.Addr().(*net.TCPAddr))
}

// close stops listening.
func (r *receiver) close() error { return r.ln.Close() }

// streamTo opens a receiver, lets send write to it, and returns the bytes
// the receiver got and the time from the start of send until the receiver
// saw the end of the stream.
func streamTo(send func(*net.TCPConn) (int64, error)) (int64, time.Duration, error) {
	r, err := startReceiver()
	if err != nil {
		return 0, 0, err
	}
	defer r.close()
	conn, err := r.dial()
	if err != nil {
		return 0, 0, err
	}
	defer conn.Close()
	start := time.Now()
	sent, err := send(conn)
	if err != nil {
		return 0, 0, err
	}
	if err := conn.CloseWrite(); err != nil {
		return 0, 0, err
	}
	res := <-r.done
	if res.err != nil {
		return 0, 0, res.err
	}
	if sent >= 0 && sent != res.n {
		return 0, 0, errors.New("receiver got a different byte count than was sent")
	}
	return res.n, res.end.Sub(start), nil
}

// sendFile streams the file at path with a bare io.Copy from an *os.File
// wrapped in an io.LimitedReader to the *net.TCPConn, which Go turns into
// sendfile(2). It is the floor any snapshot mechanism is measured against.
func sendFile(path string) func(*net.TCPConn) (int64, error) {
	return func(conn *net.TCPConn) (int64, error) {
		f, size, err := openSized(path)
		if err != nil {
			return 0, err
		}
		defer f.Close()
		return io.Copy(conn, &io.LimitedReader{R: f, N: size})
	}
}

// fdatasyncLatencies times count bare commits of one 4 KiB page each: a
// pwrite over already allocated blocks of a file in dir, then fdatasync.
// It is the floor for commit-sync latency on this disk.
func fdatasyncLatencies(dir string, count int) ([]float64, error) {
	const page = 4096
	const pages = 256
	f, err := os.OpenFile(filepath.Join(dir, "fdatasync.bin"), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	buf := make([]byte, page*pages)
	if _, err := f.Write(buf); err != nil {
		return nil, err
	}
	if err := f.Sync(); err != nil {
		return nil, err
	}
	fd := int(f.Fd())
	lat := make([]float64, 0, count)
	for i := range count {
		buf[i%page]++
		start := time.Now()
		if _, err := f.WriteAt(buf[:page], int64(i%pages)*page); err != nil {
			return nil, err
		}
		if err := syscall.Fdatasync(fd); err != nil {
			return nil, err
		}
		lat = append(lat, micros(time.Since(start)))
	}
	return lat, nil
}

// diskUsage returns the bytes allocated on disk to the files under dir
// (st_blocks, so sparse and preallocated regions count as they really are)
// and their apparent size.
func diskUsage(dir string) (allocated, apparent int64, err error) {
	err = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		apparent += fi.Size()
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			allocated += st.Blocks * 512
		} else {
			allocated += fi.Size()
		}
		return nil
	})
	return allocated, apparent, err
}

// countingWriter counts the bytes written through it.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// micros converts a duration to microseconds.
func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
