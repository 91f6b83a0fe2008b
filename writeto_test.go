//go:build linux

package mapkv_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mapkv/mapkv"
)

// wtOpen opens a fresh database in a temporary directory, closed at the
// end of the test.
func wtOpen(tb testing.TB, opts *mapkv.Options) *mapkv.DB {
	tb.Helper()
	o := mapkv.Options{NoSync: true}
	if opts != nil {
		o = *opts
	}
	db, err := mapkv.Open(filepath.Join(tb.TempDir(), "src.db"), &o)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

// wtFill puts n keys with values of about size bytes into bucket b,
// some in a nested bucket, and a few large (overflow) values, in
// transactions of 1000 keys.
func wtFill(tb testing.TB, db *mapkv.DB, bucket string, n, size int) {
	tb.Helper()
	for lo := 0; lo < n; lo += 1000 {
		err := db.Update(func(tx *mapkv.Tx) error {
			b, err := tx.CreateBucketIfNotExists([]byte(bucket))
			if err != nil {
				return err
			}
			nb, err := b.CreateBucketIfNotExists([]byte("nested"))
			if err != nil {
				return err
			}
			for i := lo; i < min(lo+1000, n); i++ {
				v := bytes.Repeat([]byte{byte(i)}, size+i%7)
				if i%97 == 0 {
					v = bytes.Repeat([]byte{byte(i)}, 20000)
				}
				k := fmt.Appendf(nil, "k%08d", i)
				if err := b.Put(k, v); err != nil {
					return err
				}
				if i%10 == 0 {
					if err := nb.Put(k, v[:1+i%13]); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil {
			tb.Fatal(err)
		}
	}
}

// wtDump returns every key and value a transaction sees, nested buckets
// included, by path.
func wtDump(tb testing.TB, tx *mapkv.Tx) map[string]string {
	tb.Helper()
	out := map[string]string{}
	var walk func(prefix string, b *mapkv.Bucket)
	walk = func(prefix string, b *mapkv.Bucket) {
		for k, v := range b.All() {
			p := prefix + "/" + string(k)
			if v == nil {
				if nb := b.Bucket(k); nb != nil {
					out[p] = "<bucket>"
					walk(p, nb)
					continue
				}
			}
			out[p] = string(v)
		}
	}
	err := tx.ForEachBucket(func(name []byte, b *mapkv.Bucket) error {
		walk(string(name), b)
		return nil
	})
	if err == nil {
		err = tx.Err()
	}
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// wtVerify opens the image at path read-only, checks it and compares its
// data with want and its txid with txid.
func wtVerify(tb testing.TB, path string, size int64, txid uint64, want map[string]string) {
	tb.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		tb.Fatal(err)
	}
	if fi.Size() != size {
		tb.Fatalf("image is %d bytes, want %d", fi.Size(), size)
	}
	db, err := mapkv.Open(path, &mapkv.Options{ReadOnly: true})
	if err != nil {
		tb.Fatalf("opening the image: %v", err)
	}
	defer db.Close()
	if err := db.Check(); err != nil {
		tb.Fatalf("image fails Check: %v", err)
	}
	if st := db.Stats(); st.TxID != txid || st.MetaFallback != "" {
		tb.Fatalf("image is at tx %d (fallback %q), want tx %d", st.TxID, st.MetaFallback, txid)
	}
	err = db.View(func(tx *mapkv.Tx) error {
		got := wtDump(tb, tx)
		if !maps.Equal(got, want) {
			tb.Errorf("image holds %d entries, want %d, or they differ", len(got), len(want))
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
}

// wtSnapshot begins a read transaction and returns it with its data.
func wtSnapshot(tb testing.TB, db *mapkv.DB) (*mapkv.Tx, map[string]string) {
	tb.Helper()
	tx, err := db.Begin(false)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { tx.Rollback() })
	return tx, wtDump(tb, tx)
}

// wtWantStats asserts which paths moved the bytes of an image.
func wtWantStats(tb testing.TB, tx *mapkv.Tx, s mapkv.WriteStats, want mapkv.WriteStats) {
	tb.Helper()
	if s != want {
		tb.Fatalf("stats %+v, want %+v (image %d bytes)", s, want, tx.Size())
	}
}

func wtPageSize(db *mapkv.DB) int64 { return int64(db.Stats().PageSize) }

// wtReceive copies r into a new file in dir and returns its path.
func wtReceive(tb testing.TB, dir string, r io.Reader) (string, error) {
	p := filepath.Join(dir, "image.db")
	f, err := os.Create(p)
	if err != nil {
		return p, err
	}
	defer f.Close()
	_, err = io.Copy(f, r)
	return p, err
}

// wtOverSocket streams tx over a connected pair of sockets of the network
// ("tcp" or "unix") and returns the received file and the sender's stats.
func wtOverSocket(t *testing.T, network string, tx *mapkv.Tx) (string, mapkv.WriteStats) {
	addr := "127.0.0.1:0"
	if network == "unix" {
		addr = filepath.Join(t.TempDir(), "s.sock")
	}
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type result struct {
		path string
		err  error
	}
	done := make(chan result, 1)
	dir := t.TempDir()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- result{err: err}
			return
		}
		defer c.Close()
		p, err := wtReceive(t, dir, c)
		done <- result{p, err}
	}()
	c, err := net.Dial(network, ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s, err := tx.WriteToStats(c)
	c.Close()
	if err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	return r.path, s
}

func TestWriteToTCP(t *testing.T) {
	db := wtOpen(t, nil)
	wtFill(t, db, "b", 5000, 300)
	tx, want := wtSnapshot(t, db)
	path, s := wtOverSocket(t, "tcp", tx)
	ps := wtPageSize(db)
	wtWantStats(t, tx, s, mapkv.WriteStats{Sendfile: tx.Size() - 2*ps, Meta: 2 * ps})
	wtVerify(t, path, tx.Size(), tx.ID(), want)
}

// wtNotSentLowat returns the TCP_NOTSENT_LOWAT of c (0: not set).
func wtNotSentLowat(t *testing.T, c *net.TCPConn) int {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var v int
	var gerr error
	if err := rc.Control(func(fd uintptr) {
		v, gerr = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_TCP, tcpNotSentLowat)
	}); err != nil {
		t.Fatal(err)
	}
	if gerr != nil {
		t.Fatalf("getsockopt TCP_NOTSENT_LOWAT: %v", gerr)
	}
	return v
}

// tcpNotSentLowat is TCP_NOTSENT_LOWAT (the syscall package lacks it).
const tcpNotSentLowat = 0x19

// wtSystemNotSentLowat reads net.ipv4.tcp_notsent_lowat.
func wtSystemNotSentLowat(t *testing.T) int64 {
	b, err := os.ReadFile("/proc/sys/net/ipv4/tcp_notsent_lowat")
	if err != nil {
		t.Skipf("cannot read the system default: %v", err)
	}
	v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestWriteToNotSentLowat checks that WriteTo bounds the unsent queue of a
// TCP socket (TCP_NOTSENT_LOWAT, 64 KiB) only while it streams, puts the
// socket's own setting back after, leaves a value the caller set alone,
// and still moves everything but the metas with sendfile. It streams from
// the dialing side (the option reads 0: the system default) and from the
// accepting side of a listener that offers MPTCP, as Go's do by default
// (the option reads -1 there: no limit).
func TestWriteToNotSentLowat(t *testing.T) {
	const streamLowat = 64 << 10 // streamNotSentLowat in writeto_linux.go
	system := wtSystemNotSentLowat(t)
	db := wtOpen(t, nil)
	// An image far larger than the socket buffers, so that the stream
	// waits for the receiver, which reads only when told.
	wtFill(t, db, "b", 5000, 2000)
	tx, want := wtSnapshot(t, db)
	ps := wtPageSize(db)
	for _, tc := range []struct {
		name   string
		accept bool // stream from the accepted side
		preset int  // set by the caller first, if not 0
	}{
		{"dialed", false, 0},
		{"dialed-caller-set", false, 16 << 10},
		{"accepted", true, 0},
		{"accepted-caller-set", true, 1 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var lc net.ListenConfig
			lc.SetMultipathTCP(true) // Go's default; the kernel may refuse it
			ln, err := lc.Listen(t.Context(), "tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			type result struct {
				path string
				err  error
			}
			read := make(chan struct{})
			received := make(chan result, 1)
			dir := t.TempDir()
			// The receiving end reads only once told to.
			receive := func(c net.Conn) {
				defer c.Close()
				<-read
				p, err := wtReceive(t, dir, c)
				received <- result{p, err}
			}
			var c *net.TCPConn
			if tc.accept {
				go func() {
					rc, err := net.Dial("tcp", ln.Addr().String())
					if err != nil {
						received <- result{err: err}
						return
					}
					receive(rc)
				}()
				ac, err := ln.Accept()
				if err != nil {
					t.Fatal(err)
				}
				c = ac.(*net.TCPConn)
			} else {
				go func() {
					ac, err := ln.Accept()
					if err != nil {
						received <- result{err: err}
						return
					}
					receive(ac)
				}()
				dc, err := net.Dial("tcp", ln.Addr().String())
				if err != nil {
					t.Fatal(err)
				}
				c = dc.(*net.TCPConn)
			}
			defer c.Close()
			if tc.preset != 0 {
				rc, _ := c.SyscallConn()
				rc.Control(func(fd uintptr) {
					err = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, tcpNotSentLowat, tc.preset)
				})
				if err != nil {
					t.Fatal(err)
				}
			}
			before := wtNotSentLowat(t, c)
			if tc.preset != 0 && before != tc.preset {
				t.Fatalf("TCP_NOTSENT_LOWAT is %d after setting %d", before, tc.preset)
			}
			t.Logf("TCP_NOTSENT_LOWAT before the stream: %d (system default %d)", before, system)
			wantDuring := streamLowat
			switch {
			case tc.preset != 0:
				wantDuring = tc.preset
			case before == 0 && system <= streamLowat:
				wantDuring = 0 // the system default is tighter already
			}
			type sent struct {
				s   mapkv.WriteStats
				err error
			}
			done := make(chan sent, 1)
			go func() {
				s, err := tx.WriteToStats(c)
				done <- sent{s, err}
			}()
			// While the receiver does not read, the stream is stuck in
			// sendfile with the option as WriteTo set it.
			deadline := time.Now().Add(10 * time.Second)
			for {
				got := wtNotSentLowat(t, c)
				if got == wantDuring && (got != before || wantDuring == before) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("TCP_NOTSENT_LOWAT during the stream is %d, want %d (was %d)", got, wantDuring, before)
				}
				time.Sleep(time.Millisecond)
			}
			if wantDuring == before {
				// Give WriteTo time to have changed it, had it meant to.
				time.Sleep(50 * time.Millisecond)
				if got := wtNotSentLowat(t, c); got != before {
					t.Fatalf("WriteTo changed TCP_NOTSENT_LOWAT to %d (was %d)", got, before)
				}
			}
			close(read)
			r := <-done
			if r.err != nil {
				t.Fatal(r.err)
			}
			if got := wtNotSentLowat(t, c); got != before {
				t.Errorf("TCP_NOTSENT_LOWAT after the stream is %d, want %d (as before)", got, before)
			}
			wtWantStats(t, tx, r.s, mapkv.WriteStats{Sendfile: tx.Size() - 2*ps, Meta: 2 * ps})
			c.Close()
			rr := <-received
			if rr.err != nil {
				t.Fatal(rr.err)
			}
			wtVerify(t, rr.path, tx.Size(), tx.ID(), want)
		})
	}
}

func TestWriteToUnixSocket(t *testing.T) {
	db := wtOpen(t, nil)
	wtFill(t, db, "b", 5000, 300)
	tx, want := wtSnapshot(t, db)
	path, s := wtOverSocket(t, "unix", tx)
	ps := wtPageSize(db)
	wtWantStats(t, tx, s, mapkv.WriteStats{Sendfile: tx.Size() - 2*ps, Meta: 2 * ps})
	wtVerify(t, path, tx.Size(), tx.ID(), want)
}

func TestWriteToPipe(t *testing.T) {
	db := wtOpen(t, nil)
	wtFill(t, db, "b", 5000, 300)
	tx, want := wtSnapshot(t, db)
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	dir := t.TempDir()
	done := make(chan error, 1)
	var path string
	go func() {
		var err error
		path, err = wtReceive(t, dir, pr)
		done <- err
	}()
	s, err := tx.WriteToStats(pw)
	pw.Close()
	if err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	ps := wtPageSize(db)
	wtWantStats(t, tx, s, mapkv.WriteStats{Sendfile: tx.Size() - 2*ps, Meta: 2 * ps})
	wtVerify(t, path, tx.Size(), tx.ID(), want)
}

func TestWriteToRegularFile(t *testing.T) {
	db := wtOpen(t, nil)
	wtFill(t, db, "b", 5000, 300)
	tx, want := wtSnapshot(t, db)
	path := filepath.Join(t.TempDir(), "image.db")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	s, err := tx.WriteToStats(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	ps := wtPageSize(db)
	wtWantStats(t, tx, s, mapkv.WriteStats{CopyFileRange: tx.Size() - 2*ps, Meta: 2 * ps})
	wtVerify(t, path, tx.Size(), tx.ID(), want)
}

// Across file systems copy_file_range may be refused (EXDEV); sendfile
// then moves the bytes. Either way nothing goes through user space.
func TestWriteToOtherFileSystem(t *testing.T) {
	db := wtOpen(t, nil)
	wtFill(t, db, "b", 2000, 300)
	dir, err := os.MkdirTemp("/dev/shm", "mapkv-writeto-")
	if err != nil {
		t.Skipf("no /dev/shm to write to: %v", err)
	}
	defer os.RemoveAll(dir)
	var a, b syscall.Stat_t
	if syscall.Stat(dir, &a) != nil || syscall.Stat(db.Path(), &b) != nil || a.Dev == b.Dev {
		t.Skip("/dev/shm is on the data file's file system")
	}
	tx, want := wtSnapshot(t, db)
	path := filepath.Join(dir, "image.db")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	s, err := tx.WriteToStats(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	ps := wtPageSize(db)
	if s.Mapped != 0 || s.CopyFileRange+s.Sendfile != tx.Size()-2*ps {
		t.Fatalf("stats %+v: want all pages moved by the kernel", s)
	}
	t.Logf("to another file system: %+v", s)
	wtVerify(t, path, tx.Size(), tx.ID(), want)
}

// An O_APPEND file is refused by both copy_file_range and sendfile: the
// image is then written from the mapping, after what the file held.
func TestWriteToAppendFile(t *testing.T) {
	db := wtOpen(t, nil)
	wtFill(t, db, "b", 2000, 300)
	tx, want := wtSnapshot(t, db)
	path := filepath.Join(t.TempDir(), "image.db")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	s, err := tx.WriteToStats(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	ps := wtPageSize(db)
	wtWantStats(t, tx, s, mapkv.WriteStats{Mapped: tx.Size() - 2*ps, Meta: 2 * ps})
	wtVerify(t, path, tx.Size(), tx.ID(), want)
}

func TestWriteToBuffer(t *testing.T) {
	db := wtOpen(t, nil)
	wtFill(t, db, "b", 5000, 300)
	tx, want := wtSnapshot(t, db)
	var buf bytes.Buffer
	n, err := tx.WriteTo(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if n != tx.Size() || int64(buf.Len()) != n {
		t.Fatalf("WriteTo returned %d and wrote %d bytes, want %d", n, buf.Len(), tx.Size())
	}
	var buf2 bytes.Buffer
	s, err := tx.WriteToStats(&buf2)
	if err != nil {
		t.Fatal(err)
	}
	ps := wtPageSize(db)
	wtWantStats(t, tx, s, mapkv.WriteStats{Mapped: tx.Size() - 2*ps, Meta: 2 * ps})
	if !bytes.Equal(buf.Bytes(), buf2.Bytes()) {
		t.Fatal("two images of one transaction differ")
	}
	path := filepath.Join(t.TempDir(), "image.db")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	wtVerify(t, path, tx.Size(), tx.ID(), want)
}

func TestWriteToClosedTx(t *testing.T) {
	db := wtOpen(t, nil)
	tx, err := db.Begin(false)
	if err != nil {
		t.Fatal(err)
	}
	tx.Rollback()
	if _, err := tx.WriteTo(io.Discard); !errors.Is(err, mapkv.ErrTxClosed) {
		t.Fatalf("WriteTo on a closed tx: %v, want ErrTxClosed", err)
	}
}

// Closing the destination from another goroutine (an interrupted backup)
// stops a kernel copy within a chunk instead of finishing the image.
func TestWriteToClosedMidway(t *testing.T) {
	db := wtOpen(t, nil)
	wtFill(t, db, "b", 600, 32<<10) // about 20 MiB
	tx, _ := wtSnapshot(t, db)
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	go func() {
		io.CopyN(io.Discard, pr, 1<<20)
		pw.Close()
		io.Copy(io.Discard, pr)
	}()
	s, err := tx.WriteToStats(pw)
	if !errors.Is(err, os.ErrClosed) {
		t.Fatalf("WriteTo to a pipe closed midway: %v (%+v), want os.ErrClosed", err, s)
	}
	if s.Total() > 8<<20 {
		t.Fatalf("wrote %d of %d bytes after the pipe was closed at 1 MiB", s.Total(), tx.Size())
	}
}

// A read transaction outlives DB.Close with its mapping; the data file's
// descriptor is gone, so the image comes from the mapping.
func TestWriteToAfterClose(t *testing.T) {
	db := wtOpen(t, nil)
	wtFill(t, db, "b", 2000, 300)
	tx, want := wtSnapshot(t, db)
	ps := wtPageSize(db)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "image.db")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	s, err := tx.WriteToStats(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	wtWantStats(t, tx, s, mapkv.WriteStats{Mapped: tx.Size() - 2*ps, Meta: 2 * ps})
	wtVerify(t, path, tx.Size(), tx.ID(), want)
}

// If another process cuts the file short beneath a reader, WriteTo must
// fail, not hand out a short or zero-filled image, and not crash.
func TestWriteToTruncatedBeneath(t *testing.T) {
	db := wtOpen(t, nil)
	wtFill(t, db, "b", 3000, 300)
	tx, _ := wtSnapshot(t, db)
	ps := wtPageSize(db)
	if err := os.Truncate(db.Path(), 4*ps); err != nil {
		t.Fatal(err)
	}
	for _, dst := range []string{"file", "pipe", "buffer"} {
		var w io.Writer
		switch dst {
		case "file":
			f, err := os.Create(filepath.Join(t.TempDir(), "image.db"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			w = f
		case "pipe":
			pr, pw, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer pw.Close()
			go func() { io.Copy(io.Discard, pr); pr.Close() }()
			w = pw
		case "buffer":
			w = new(bytes.Buffer)
		}
		s, err := tx.WriteToStats(w)
		if !errors.Is(err, mapkv.ErrCorrupt) {
			t.Errorf("%s: WriteTo of a file truncated beneath it: %v, want ErrCorrupt", dst, err)
		}
		if s.Total() >= tx.Size() {
			t.Errorf("%s: wrote %d bytes (%+v) of an image the file no longer holds", dst, s.Total(), s)
		}
	}
}

// Writers commit hundreds of transactions, growing, remapping and
// freeing, while a slow reader drains the image through a pipe: the image
// is the state as of the snapshot's txid.
func TestWriteToConcurrentWriters(t *testing.T) {
	db := wtOpen(t, &mapkv.Options{NoSync: true, MaxSize: 4 << 20, InitialSize: 64 << 10, ShrinkThreshold: 64 << 10})
	wtFill(t, db, "b", 6000, 300)
	tx, want := wtSnapshot(t, db)
	startTx := tx.ID()

	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	type result struct {
		s   mapkv.WriteStats
		err error
	}
	sent := make(chan result, 1)
	go func() {
		s, err := tx.WriteToStats(pw)
		pw.Close()
		sent <- result{s, err}
	}()

	// After each chunk the reader takes, the writer commits a few
	// transactions: overwrites (copy-on-write frees pages), new keys
	// (growth past the reservation: remaps), and deletes (a free tail).
	commit := func(round int) {
		for j := 0; j < 3; j++ {
			err := db.Update(func(tx *mapkv.Tx) error {
				b := tx.Bucket([]byte("b"))
				for i := 0; i < 50; i++ {
					k := fmt.Appendf(nil, "k%08d", (round*150+j*50+i)*7%6000)
					if err := b.Put(k, bytes.Repeat([]byte("w"), 500)); err != nil {
						return err
					}
				}
				c, err := tx.CreateBucketIfNotExists([]byte("grow"))
				if err != nil {
					return err
				}
				if round%20 < 10 {
					return c.Put(fmt.Appendf(nil, "g%06d-%d", round, j), make([]byte, 30000))
				}
				return tx.DeleteBucket([]byte("grow"))
			})
			if err != nil && !errors.Is(err, mapkv.ErrBucketNotFound) {
				t.Error(err)
			}
		}
	}
	path := filepath.Join(t.TempDir(), "image.db")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 32<<10)
	rounds := 0
	for {
		n, err := io.ReadFull(pr, buf)
		if _, werr := f.Write(buf[:n]); werr != nil {
			t.Fatal(werr)
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if rounds < 200 {
			if rounds == 10 {
				st := db.Stats()
				if st.OpenReadTxN != 1 || st.OldestReadTxID != startTx {
					t.Errorf("mid-stream stats: %d readers, oldest %d; want 1 reading %d", st.OpenReadTxN, st.OldestReadTxID, startTx)
				}
			}
			commit(rounds)
			rounds++
		}
	}
	r := <-sent
	if r.err != nil {
		t.Fatal(r.err)
	}
	ps := wtPageSize(db)
	wtWantStats(t, tx, r.s, mapkv.WriteStats{Sendfile: tx.Size() - 2*ps, Meta: 2 * ps})
	st := db.Stats()
	if st.TxID < startTx+300 || st.RemapN == 0 {
		t.Fatalf("writers committed up to tx %d from %d with %d remaps during the stream; the test wants hundreds and a remap", st.TxID, startTx, st.RemapN)
	}
	tx.Rollback()
	wtVerify(t, path, tx.Size(), startTx, want)
	if err := db.Check(); err != nil {
		t.Fatal(err)
	}
}

// TestWriteToNoReads runs a child test under strace and checks that
// WriteTo to a regular file, a pipe, a TCP socket and a bytes.Buffer never
// reads the data file: copy_file_range, sendfile, and write from the
// mapping only.
func TestWriteToNoReads(t *testing.T) {
	if os.Getenv("MAPKV_STRACE_CHILD") != "" {
		wtStraceChild(t)
		return
	}
	strace, err := exec.LookPath("strace")
	if err != nil {
		t.Skip("strace is not installed; the WriteStats counters are the check")
	}
	if testing.Short() {
		t.Skip("spawns strace")
	}
	out := filepath.Join(t.TempDir(), "trace")
	cmd := exec.Command(strace, "-f", "-qq", "-o", out,
		"-e", "trace=read,pread64,readv,preadv,preadv2,copy_file_range,sendfile,sendfile64,write,mmap",
		os.Args[0], "-test.run=^TestWriteToNoReads$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), "MAPKV_STRACE_CHILD=1")
	b, err := cmd.CombinedOutput()
	if err != nil {
		if strings.Contains(string(b), "ptrace") || strings.Contains(string(b), "Operation not permitted") {
			t.Skipf("strace cannot trace here: %s", b)
		}
		t.Fatalf("child under strace: %v\n%s", err, b)
	}
	trace, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	// The child names the data file's descriptors in its begin marker.
	var fds []string
	in := false
	var reads []string
	calls := map[string]int{}
	for line := range strings.Lines(string(trace)) {
		if _, after, ok := strings.Cut(line, "mapkv-writeto-begin fds="); ok {
			list, _, _ := strings.Cut(after, "\\n")
			fds = strings.Split(list, ",")
			in = true
			continue
		}
		if strings.Contains(line, "mapkv-writeto-end") {
			in = false
			continue
		}
		f := strings.Fields(line)
		if !in || len(f) < 2 || f[1] == "---" {
			continue
		}
		call, args, _ := strings.Cut(f[1], "(")
		if call == "sendfile64" {
			call = "sendfile" // its name on 32-bit Linux
		}
		calls[call]++
		if !strings.Contains(call, "read") {
			continue
		}
		fd, _, _ := strings.Cut(args, ",")
		for _, d := range fds {
			if fd == d {
				reads = append(reads, strings.TrimSpace(line))
			}
		}
	}
	if len(fds) == 0 || len(calls) == 0 {
		t.Fatalf("no markers or no calls in the trace (fds %v, calls %v): is the trace right?", fds, calls)
	}
	if len(reads) > 0 {
		t.Errorf("WriteTo read the data file %d times: %s", len(reads), strings.Join(reads[:min(len(reads), 5)], "\n"))
	}
	if calls["copy_file_range"] == 0 || calls["sendfile"] == 0 || calls["write"] == 0 {
		t.Errorf("calls seen: %v; want copy_file_range, sendfile and write", calls)
	}
	t.Logf("data file fds %v; calls while streaming: %v", fds, calls)
}

func wtStraceChild(t *testing.T) {
	db := wtOpen(t, nil)
	wtFill(t, db, "b", 5000, 300)
	tx, _ := wtSnapshot(t, db)
	var fds []string
	ents, _ := os.ReadDir("/proc/self/fd")
	for _, e := range ents {
		if p, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && p == db.Path() {
			fds = append(fds, e.Name())
		}
	}
	if len(fds) == 0 {
		t.Fatalf("no descriptor of %s in /proc/self/fd", db.Path())
	}
	f, err := os.Create(filepath.Join(t.TempDir(), "image.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() { io.Copy(io.Discard, pr) }()
	go func() {
		if c, err := ln.Accept(); err == nil {
			io.Copy(io.Discard, c)
			c.Close()
		}
	}()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	buf.Grow(int(tx.Size()))
	os.Stderr.WriteString("mapkv-writeto-begin fds=" + strings.Join(fds, ",") + "\n")
	var stats []mapkv.WriteStats
	for _, w := range []io.Writer{f, pw, conn, &buf} {
		s, err := tx.WriteToStats(w)
		if err != nil {
			t.Error(err)
		}
		stats = append(stats, s)
	}
	os.Stderr.WriteString("mapkv-writeto-end\n")
	pw.Close()
	conn.Close()
	if stats[0].CopyFileRange == 0 || stats[1].Sendfile == 0 || stats[2].Sendfile == 0 || stats[3].Mapped == 0 {
		t.Fatalf("stats %+v", stats)
	}
}

// BenchmarkWriteTo streams one image to a loopback TCP receiver with
// WriteTo (sendfile), with WriteTo forced onto the mapping path (write(2)
// from the map), and with a bare sendfile of the same file through Go's
// net stack, all over one long-lived connection; and with WriteTo and the
// bare sendfile over a new connection per image, as bench/ and
// snapshot.Handler stream (the time then runs until the receiver, reading
// into 1 MiB, has seen the end). cpu-ns/op is the whole process's CPU
// (sender and receiver).
//
// Measured on Linux 6.18 loopback (2 vCPUs, BBR, a busy machine): over
// new connections WriteTo streams at about twice the bare sendfile's rate
// for half of its CPU (64 MiB: 0.27-0.38 against 0.6-0.67 CPU-s/GB),
// thanks to the TCP_NOTSENT_LOWAT it sets (see streamNotSentLowat in
// writeto_linux.go). Over the long-lived connection it gains nothing and
// the mapped path takes less CPU: loopback reorders segments sent from
// two CPUs, the connection's congestion window shrinks after the
// resulting retransmits, and a sender limited by its window transmits
// from ACKs on the receiver's CPU whatever the option says.
func BenchmarkWriteTo(b *testing.B) {
	for _, mb := range []int{8, 64} {
		b.Run(fmt.Sprintf("%dMiB", mb), func(b *testing.B) {
			db := wtOpen(b, nil)
			wtFill(b, db, "b", mb*1024/32, 32<<10)
			tx, err := db.Begin(false)
			if err != nil {
				b.Fatal(err)
			}
			defer tx.Rollback()
			conn := wtSink(b)
			size := tx.Size()
			b.Run("WriteTo", func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(size)
				defer wtCPU(b)()
				for b.Loop() {
					if _, err := tx.WriteTo(conn); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("mapped", func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(size)
				w := struct{ io.Writer }{conn} // hides the socket
				defer wtCPU(b)()
				for b.Loop() {
					if _, err := tx.WriteTo(w); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("WriteTo-newconn", func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(size)
				dial := wtFreshSink(b)
				defer wtCPU(b)()
				for b.Loop() {
					c, wait := dial()
					if _, err := tx.WriteTo(c); err != nil {
						b.Fatal(err)
					}
					if n := wait(); n != size {
						b.Fatalf("receiver got %d bytes, want %d", n, size)
					}
				}
			})
			b.Run("bare-sendfile-newconn", func(b *testing.B) {
				f, err := os.Open(db.Path())
				if err != nil {
					b.Fatal(err)
				}
				defer f.Close()
				b.ReportAllocs()
				b.SetBytes(size)
				dial := wtFreshSink(b)
				defer wtCPU(b)()
				for b.Loop() {
					if _, err := f.Seek(0, io.SeekStart); err != nil {
						b.Fatal(err)
					}
					c, wait := dial()
					if n, err := c.ReadFrom(&io.LimitedReader{R: f, N: size}); err != nil || n != size {
						b.Fatal(n, err)
					}
					if n := wait(); n != size {
						b.Fatalf("receiver got %d bytes, want %d", n, size)
					}
				}
			})
			b.Run("bare-sendfile", func(b *testing.B) {
				f, err := os.Open(db.Path())
				if err != nil {
					b.Fatal(err)
				}
				defer f.Close()
				b.ReportAllocs()
				b.SetBytes(size)
				defer wtCPU(b)()
				for b.Loop() {
					if _, err := f.Seek(0, io.SeekStart); err != nil {
						b.Fatal(err)
					}
					if n, err := conn.ReadFrom(&io.LimitedReader{R: f, N: size}); err != nil || n != size {
						b.Fatal(n, err)
					}
				}
			})
		})
	}
}

// wtCPU reports the process's CPU time (user and system, sender and
// receiver together) per operation as cpu-ns/op: where sendfile saves
// copies, it shows there even when loopback throughput does not.
func wtCPU(b *testing.B) func() {
	var before syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &before)
	return func() {
		var after syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &after)
		ns := func(r syscall.Rusage) int64 { return r.Utime.Nano() + r.Stime.Nano() }
		b.ReportMetric(float64(ns(after)-ns(before))/float64(b.N), "cpu-ns/op")
	}
}

// wtSink returns a loopback TCP connection whose far end reads and drops
// everything.
func wtSink(b *testing.B) *net.TCPConn {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		buf := make([]byte, 256<<10)
		for {
			if _, err := c.Read(buf); err != nil {
				return
			}
		}
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return c.(*net.TCPConn)
}

// wtFreshSink returns a function that dials a new loopback TCP connection
// whose far end reads into 1 MiB and drops everything, as bench's
// receiver does, and a function that closes the sending side and returns
// the bytes the far end got once it has seen the end.
func wtFreshSink(b *testing.B) func() (*net.TCPConn, func() int64) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	got := make(chan int64)
	go func() {
		buf := make([]byte, 1<<20)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			var n int64
			for {
				k, err := c.Read(buf)
				n += int64(k)
				if err != nil {
					break
				}
			}
			c.Close()
			got <- n
		}
	}()
	return func() (*net.TCPConn, func() int64) {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		tc := c.(*net.TCPConn)
		return tc, func() int64 {
			tc.CloseWrite()
			n := <-got
			tc.Close()
			return n
		}
	}
}
